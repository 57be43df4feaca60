"""Per-checkpoint and per-partition state: how events change it, and how it is persisted (pure).

The unit of persistence is a partition of border.events: its record holds the offsets applied
and which head of each checkpoint is committed; each checkpoint's head (queues, lanes, alerts,
counters) is written only when the checkpoint changed, and its event ids and crossings as
append-only deltas (see `streams.domain.stateformat` for the keys and why the record is written last).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bordermon.events import DIRECTIONS, DUPLICATE, EVENT_TYPES, REJECT_REASONS, Crossing, Event, Lanes
from bordermon.observability import ARRIVAL_SURGE, QUEUE_OVERLOAD, QUEUE_OVERLOAD_FORECAST
from bordermon.registry import DEFAULT_LANE_GROUP, Checkpoint, LaneGroup
from streams.domain.alerts import SEVERITIES, AlertState, Transition, step
from streams.domain.estimates import BusySpans, Throughput, seconds_until, wait_seconds
from streams.domain.recentids import IdSetFactory, RecentIds
from streams.domain.stateformat import (
    AlertRecord,
    CheckpointRecord,
    DeltaRecord,
    PartitionRecord,
    QueueRecord,
    StateFormatError,
    SurgeRecord,
    decode,
    delta_key,
    encode,
    head_key,
    pack_times,
    record_key,
    unpack_times,
)
from streams.domain.surge import SurgeState
from streams.domain.windows import LONGEST, WINDOWS, NetFlowWindow, SortedTimes

DEDUP_SECONDS = 86400.0
ADVICE_HORIZON_HOURS = 2.0
RATE_WINDOW_SECONDS = 3600.0
# A checkpoint's deltas are rewritten as a few large ones when it has more than this many live.
MAX_LIVE_DELTAS = 256
COMPACT_CHUNK = 5000

Write = tuple[bytes, bytes | None]  # changelog key, value (None = delete)
NO_ALERTS: tuple[()] = ()


def lanes_needed(
    queue: int, arrivals_per_hour: float, capacity_per_hour: float, warning_seconds: float, lanes_open: int
) -> int:
    """Extra lanes that bring the wait estimate under the warning threshold within two hours.

    With L lanes, after H hours the queue is q + λH − LμH; its wait estimate (q + λH − LμH)/(Lμ)
    is under W hours (strictly, as the alert fires at the threshold) when L > (q + λH) / (μ (H + W)).
    """
    horizon, warning_hours = ADVICE_HORIZON_HOURS, warning_seconds / 3600.0
    needed = math.floor((queue + arrivals_per_hour * horizon) / (capacity_per_hour * (horizon + warning_hours))) + 1
    return max(0, needed - lanes_open)


WARNING, CRITICAL = SEVERITIES  # written out where a scrape computes both for every queue
# `QueueState.samples`, by name.
QUEUE_SAMPLES = (
    "length",
    "wait",
    "observed_wait",
    "expected_wait",
    "clearance",
    "forecast_firing",
    "lanes",
    f"{WARNING}_firing",
    f"{CRITICAL}_firing",
    f"{WARNING}_forecast",
    f"{CRITICAL}_forecast",
    "lanes_needed",
    "arrivals",
)


def throughput_of(group: LaneGroup) -> Throughput:
    """A queue's clearance measurement, weighed against its lanes' nominal rate."""
    return Throughput(group.lane_capacity_per_hour)


@dataclass(slots=True)
class QueueState:
    """The queue of one lane group in one direction (CONTRACT.md, "Lane groups"): its lanes,
    parties, alerts and measured rates; the estimates use the group's capacity and thresholds."""

    group: LaneGroup
    lanes: int
    # The lowest wait at which any alert can start or stay (the lowest resolve level, or the
    # forecast's floor): below it, with nothing engaged, an event changes no alert (`apply`).
    quiet: float
    throughput: Throughput  # the measured clearance, over the window the group's lanes need (`throughput_of`)
    # Arrival times of the parties waiting, first in first out, from `head` on: the contract's
    # queue_length is their number and the first gives the observed wait. A flat array and an
    # index, not a deque: an empty deque costs 760 bytes and a party 32 (with three lane groups
    # at 2,400 checkpoints, 14,400 queues held 11 MB of deques while 1,600 parties waited); an
    # empty array 64, a party 8. `apply` drops what the head passed.
    waiting: array[float] = field(default_factory=lambda: array("d"))
    head: int = 0
    observed_wait: float = 0.0
    alerts: dict[str, AlertState] = field(default_factory=lambda: {s: AlertState() for s in SEVERITIES})
    # Arrivals within the rate window (event time).
    arrivals: SortedTimes = field(default_factory=SortedTimes)
    forecast: AlertState = field(default_factory=AlertState)  # QueueOverloadForecast
    engaged: bool = False  # some alert is pending or firing (derived from `alerts` and `forecast`)

    @classmethod
    def empty(cls, cp: Checkpoint, group: LaneGroup, direction: str) -> QueueState:
        return cls(group, group.initial_lanes(direction), quiet_wait(cp, group), throughput_of(group))

    @property
    def length(self) -> int:
        return len(self.waiting) - self.head

    def arrivals_per_hour(self, now: float) -> float:
        return self.arrivals.count_after(now - RATE_WINDOW_SECONDS) * 3600.0 / RATE_WINDOW_SECONDS

    def wait_seconds(self) -> float:
        """The contract's wait estimate, with the group's nominal capacity."""
        return wait_seconds(self.length, self.lanes, self.group.lane_capacity_per_hour)

    def clearance_per_lane(self, now: float | None) -> float:
        """Parties one lane clears per hour, measured against the nominal capacity (`streams.domain.estimates`)."""
        return self.group.lane_capacity_per_hour if now is None else self.throughput.rate_per_lane(now)

    def expected_wait_seconds(self, now: float | None) -> float:
        return wait_seconds(self.length, self.lanes, self.clearance_per_lane(now))

    def forecast_seconds(self, severity: str, now: float | None) -> float:
        """Event time until the contract's estimate reaches the threshold at current rates."""
        g = self.group
        return seconds_until(
            g.threshold_seconds(severity),
            self.length,
            self.lanes,
            g.lane_capacity_per_hour,
            self.arrivals_per_hour(now if now is not None else 0.0),
            self.clearance_per_lane(now) * self.lanes,
        )

    def advice(self, now: float | None) -> tuple[float, int]:
        """(arrivals per hour over the last event-time hour, extra lanes needed)."""
        g = self.group
        rate = self.arrivals_per_hour(now) if now is not None else 0.0
        return rate, lanes_needed(self.length, rate, g.lane_capacity_per_hour, g.warning_seconds, self.lanes)

    def samples(self, now: float | None) -> tuple[float, ...]:
        """What a scrape exports of this queue, in `QUEUE_SAMPLES` order: the values of the
        methods above, each rate measured once for all of them (a scrape of 2,400 checkpoints
        with three lane groups makes 14,400 of these)."""
        g, n, lanes, alerts = self.group, self.length, self.lanes, self.alerts
        nominal = g.lane_capacity_per_hour
        clearance = self.clearance_per_lane(now)
        arriving = self.arrivals_per_hour(now if now is not None else 0.0)
        clearing = clearance * lanes
        return (
            n,
            wait_seconds(n, lanes, nominal),
            self.observed_wait,
            wait_seconds(n, lanes, clearance),
            clearing,
            1.0 if self.forecast.fired_at is not None else 0.0,
            lanes,
            1.0 if alerts[WARNING].fired_at is not None else 0.0,
            1.0 if alerts[CRITICAL].fired_at is not None else 0.0,
            seconds_until(g.warning_seconds, n, lanes, nominal, arriving, clearing),
            seconds_until(g.critical_seconds, n, lanes, nominal, arriving, clearing),
            lanes_needed(n, arriving if now is not None else 0.0, nominal, g.warning_seconds, lanes),
            arriving,
        )

    def prune(self, now: float) -> None:
        self.arrivals.prune(now - RATE_WINDOW_SECONDS)
        self.throughput.prune(now)

    def note_engagement(self) -> None:
        self.engaged = self.forecast.pending_since is not None or any(
            a.pending_since is not None for a in self.alerts.values()
        )

    def to_record(self) -> QueueRecord:
        tp = self.throughput
        return QueueRecord(
            lanes=self.lanes,
            queue=pack_times(self.waiting[self.head :]),
            observed_wait=self.observed_wait,
            alerts={s: AlertRecord(a.pending_since, a.fired_at) for s, a in self.alerts.items()},
            arrivals=self.arrivals.times.tobytes(),
            cleared=tp.cleared.times.tobytes(),
            busy=list(tp.busy),
            busy_since=tp.busy_since,
            busy_lanes=tp.busy_lanes,
            forecast=AlertRecord(self.forecast.pending_since, self.forecast.fired_at),
        )

    @classmethod
    def from_record(cls, cp: Checkpoint, group: LaneGroup, rec: QueueRecord) -> QueueState:
        tp = throughput_of(group)
        tp.cleared = SortedTimes.of(unpack_times(rec.cleared))
        tp.busy = BusySpans(rec.busy)
        tp.busy_since, tp.busy_lanes = rec.busy_since, rec.busy_lanes
        state = cls(
            group,
            lanes=rec.lanes,
            quiet=quiet_wait(cp, group),
            waiting=unpack_times(rec.queue),
            observed_wait=rec.observed_wait,
            alerts={s: AlertState(a.pending_since, a.fired_at) for s, a in rec.alerts.items()},
            arrivals=SortedTimes.of(unpack_times(rec.arrivals)),
            throughput=tp,
            forecast=AlertState(rec.forecast.pending_since, rec.forecast.fired_at),
        )
        state.note_engagement()
        return state


def queue_name(direction: str, group: str) -> str:
    """A queue's key in its checkpoint's record: the bare direction for the one group of a
    checkpoint without groups, as states were written before lane groups existed."""
    return direction if group == DEFAULT_LANE_GROUP else f"{direction}/{group}"


def parse_queue_name(key: str, cp: Checkpoint) -> tuple[str, LaneGroup] | None:
    """(direction, group) of a queue record key; a bare direction is the first group's (the state
    of a checkpoint that has since gained groups); a group the registry no longer has, None."""
    direction, _, group = key.partition("/")
    found = cp.group_by_id.get(group) if group else cp.default_group
    return None if found is None else (direction, found)


FORECAST_SEVERITY = "warning"  # a ticket, not a page
SURGE_SEVERITY = "warning"  # CONTRACT.md: an early warning, a ticket
# The forecast is considered once the contract's estimate reaches this share of the critical
# threshold (below it, nothing can be near enough to need a forecast; the hot path stays cheap).
FORECAST_FLOOR = 0.1


def quiet_wait(cp: Checkpoint, group: LaneGroup) -> float:
    """The lowest wait at which any of a group's alerts can start or stay."""
    return min(
        FORECAST_FLOOR * group.critical_seconds, *(group.threshold_seconds(s) * cp.resolve_ratio for s in SEVERITIES)
    )


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A transition with the context a consumer of `border.alerts` needs."""

    checkpoint: Checkpoint
    direction: str
    group: LaneGroup | None  # None for ArrivalSurge, which watches every group of the direction
    severity: str
    transition: Transition
    wait_seconds: float
    queue_length: int
    lanes_open: int
    arrivals_per_hour: float = 0.0
    lanes_needed: int = 0
    alertname: str = QUEUE_OVERLOAD
    forecast_seconds: float | None = None  # QueueOverloadForecast: event time until critical
    baseline_per_hour: float | None = None  # ArrivalSurge: the typical rate it was judged against

    @property
    def queue(self) -> str:
        """The queue it is about (`streams.domain.state.queue_name`); a direction for ArrivalSurge."""
        return self.direction if self.group is None else queue_name(self.direction, self.group.id)


class PendingDeltas:
    """The ids and crossings a checkpoint accepted since its last delta was written.

    In flat containers, not a tuple per id and per crossing: with hundreds of checkpoints per
    partition a state write comes every second or two (`bordermon.config.flush_interval_for`), and the
    ~100,000 tuples pending were what the garbage collector's young generation held at most of
    its collections in a 2,400-checkpoint drain; strings in a list and numbers in arrays it does
    not visit one by one."""

    __slots__ = ("crossing_nets", "crossing_times", "id_times", "ids")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.id_times = array("d")
        self.crossing_times = array("d")
        self.crossing_nets = array("q")

    def __bool__(self) -> bool:
        return bool(self.ids or self.crossing_times)

    def record(self) -> DeltaRecord:
        return DeltaRecord(list(zip(self.ids, self.id_times, strict=True)),
                           list(zip(self.crossing_times, self.crossing_nets, strict=True)))  # fmt: skip


class CheckpointState:
    """Queue, lanes, alerts, counters, windows and seen ids of one checkpoint."""

    __slots__ = (
        "accepted",
        "arrived_at",
        "by_mode",
        "citizenship_persons",
        "cp",
        "deltas",
        "first",
        "last_ts",
        "new",
        "next_seq",
        "off_partition",
        "persons",
        "queues",
        "seen",
        "surges",
        "window",
    )

    def __init__(self, cp: Checkpoint, ids: IdSetFactory = RecentIds) -> None:
        self.cp = cp
        self.last_ts: float | None = None
        # Wall-clock time this worker last accepted an event here (not persisted: after a restart
        # the public feed says "Update Pending" until the next one).
        self.arrived_at: float | None = None
        # direction -> lane group id -> its queue, in registry order
        self.queues = {d: {g.id: QueueState.empty(cp, g, d) for g in cp.lane_groups} for d in DIRECTIONS}
        self.surges = {d: SurgeState() for d in DIRECTIONS}  # ArrivalSurge, per direction
        self.first: dict[str, QueueState] = {}  # direction -> the first group's queue
        self.by_mode: dict[str, dict[str | None, QueueState]] = {}  # direction -> mode -> its group's queue
        self._route()
        self.accepted = dict.fromkeys(EVENT_TYPES, 0)
        self.persons = dict.fromkeys(DIRECTIONS, 0)
        self.citizenship_persons: dict[str, dict[str, int]] = {d: {} for d in DIRECTIONS}
        self.off_partition: dict[str, int] = {}
        self.window = NetFlowWindow()
        self.seen = ids()
        # Persistence of ids and crossings: deltas written so far, and what is not yet written.
        self.next_seq = 0
        self.deltas: dict[int, float] = {}
        self.new = PendingDeltas()

    def _route(self) -> None:
        """Where `apply` finds the queue of an event (after the queues were made or replaced)."""
        cp = self.cp
        self.first = {d: groups[cp.default_group.id] for d, groups in self.queues.items()}
        self.by_mode = {d: {m: groups[g.id] for m, g in cp.group_by_mode.items()} for d, groups in self.queues.items()}

    # -- applying events -------------------------------------------------------------------

    def apply(self, event: Event, t: float) -> Sequence[AlertEvent] | str:
        """Apply an accepted event at event time t; return alert transitions, or DUPLICATE.

        The hottest code of the pipeline (once per event): locals over attribute lookups."""
        event_id = event.event_id
        last = self.last_ts
        if self.seen.check_and_add(event_id, t, (t if last is None or t > last else last) - DEDUP_SECONDS):
            return DUPLICATE
        new = self.new
        new.ids.append(event_id)
        new.id_times.append(t)
        if last is None or t > last:
            self.last_ts = t
        direction = event.direction
        kind = type(event)
        surged = None  # an ArrivalSurge transition, from an arrival
        if kind is Lanes:
            group = event.lane_group  # type: ignore[union-attr]
            d = self.first[direction] if group is None else self.queues[direction][group]
        else:
            d = self.by_mode[direction].get(event.mode) or self.first[direction]  # type: ignore[union-attr]
        waiting = d.waiting
        before = len(waiting) - d.head
        if kind is Crossing:
            self.accepted["crossing"] += 1
            if before:
                # The first party leaves (`QueueState.waiting`): the head moves on, and the
                # array drops what it passed once that is half of it (amortised O(1)).
                head = d.head
                waited = t - waiting[head]
                d.observed_wait = waited if waited > 0.0 else 0.0
                head += 1
                if head * 2 >= len(waiting):
                    del waiting[:head]
                    head = 0
                d.head = head
            persons = event.persons  # type: ignore[union-attr]
            self.persons[direction] += persons
            tally = self.citizenship_persons[direction]
            citizenship = event.citizenship  # type: ignore[union-attr]
            tally[citizenship] = tally.get(citizenship, 0) + persons
            net = persons if direction == "in" else -persons
            self.window.add(t, net)
            new.crossing_times.append(t)
            new.crossing_nets.append(net)
        elif kind is Lanes:
            self.accepted["lanes"] += 1
            d.lanes = event.lanes_open  # type: ignore[union-attr]
        else:
            self.accepted["arrival"] += 1
            waiting.append(t)
            d.arrivals.add(t)
            surge = self.surges[direction]
            latest = t if last is None or t > last else last  # self.last_ts, set above
            if surge.arrive(t, latest):
                surged = surge.evaluate(t, latest, self.arrivals_per_hour(direction))
        queued, lanes = len(waiting) - d.head, d.lanes
        d.throughput.observe(t, before, queued, lanes)
        # Fast path: with no alert pending or firing, a wait under every resolve level and under the
        # forecast's floor changes nothing. (The arithmetic of estimates.wait_seconds: both agree
        # at the boundary.)
        if not d.engaged and (
            queued == 0 or (lanes > 0 and queued / (lanes * d.group.lane_capacity_per_hour) * 3600.0 < d.quiet)
        ):
            return NO_ALERTS if surged is None else self._surge_alert(direction, d, *surged)
        out = self._evaluate_alerts(direction, d, t)
        return out if surged is None else [*self._surge_alert(direction, d, *surged), *out]

    def _surge_alert(self, direction: str, d: QueueState, tr: Transition, rate: float, baseline: float | None
                     ) -> list[AlertEvent]:  # fmt: skip
        return [AlertEvent(self.cp, direction, None, SURGE_SEVERITY, tr, d.wait_seconds(), d.length, d.lanes, rate,
                           0, ARRIVAL_SURGE, None, baseline)]  # fmt: skip

    def version(self) -> tuple[int, int]:
        """Moves whenever anything exported from this state may have: every change goes through
        `apply`, which counts the event it accepts, or `note_off_partition`; `prune` drops only
        what no exported window reaches. Both counts only grow, so a state rebuilt from the
        changelog has a version of its own unless it is the same state. A scrape re-renders a
        checkpoint only when this moved."""
        return sum(self.accepted.values()), sum(self.off_partition.values())

    def note_off_partition(self, partitioner: str, count: int = 1) -> None:
        self.off_partition[partitioner] = self.off_partition.get(partitioner, 0) + count

    def _evaluate_alerts(self, direction: str, d: QueueState, t: float) -> list[AlertEvent]:
        cp, g, now = self.cp, d.group, self.last_ts
        wait = d.wait_seconds()
        out: list[AlertEvent] = []
        for severity, alert in d.alerts.items():
            if wait < g.threshold_seconds(severity) * cp.resolve_ratio and alert.pending_since is None:
                continue  # nothing pending, nothing firing, nothing to start
            tr = step(alert, t, wait, g.threshold_seconds(severity), cp.for_seconds, cp.resolve_ratio)
            if tr is not None:
                rate, extra = d.advice(now)
                out.append(AlertEvent(cp, direction, g, severity, tr, wait, d.length, d.lanes, rate, extra))
        # QueueOverloadForecast: the urgency horizon / (time until critical) reaches 1 when the
        # critical threshold is forecast within the horizon; the same state machine as above.
        until = d.forecast_seconds("critical", now)
        urgency = math.inf if until <= 0 else cp.forecast_horizon_seconds / until
        tr = step(d.forecast, t, urgency, 1.0, cp.forecast_for_seconds, cp.forecast_resolve_ratio)
        if tr is not None:
            rate, extra = d.advice(now)
            out.append(AlertEvent(cp, direction, g, FORECAST_SEVERITY, tr, wait, d.length, d.lanes, rate, extra,
                                  QUEUE_OVERLOAD_FORECAST, until))  # fmt: skip
        d.note_engagement()
        return out

    def each_queue(self) -> Iterator[tuple[str, QueueState]]:
        """(direction, queue) of every lane group, directions first, groups in registry order."""
        for direction, groups in self.queues.items():
            for q in groups.values():
                yield direction, q

    def queue(self, direction: str, group: str | None = None) -> QueueState:
        """The queue of `group` (the first group when None) in `direction`."""
        groups = self.queues[direction]
        return groups[group] if group is not None else next(iter(groups.values()))

    def arrivals_per_hour(self, direction: str) -> float:
        """Arrivals over the last event-time hour in `direction`, every lane group together."""
        now = self.last_ts
        return 0.0 if now is None else sum(q.arrivals_per_hour(now) for q in self.queues[direction].values())

    def firing_alerts(self) -> list[AlertEvent]:
        """Every alert firing now, as the transition that fired it (for re-pushing from state)."""
        out = []
        now = self.last_ts
        for direction, d in self.each_queue():
            rate, extra = d.advice(now)
            wait = d.wait_seconds()
            for severity, alert in d.alerts.items():
                if alert.fired_at is not None and alert.pending_since is not None:
                    tr = Transition("firing", alert.pending_since, alert.fired_at, None)
                    out.append(AlertEvent(self.cp, direction, d.group, severity, tr, wait, d.length, d.lanes, rate,
                                          extra))  # fmt: skip
            f = d.forecast
            if f.fired_at is not None and f.pending_since is not None:
                tr = Transition("firing", f.pending_since, f.fired_at, None)
                until = d.forecast_seconds("critical", now)
                out.append(AlertEvent(self.cp, direction, d.group, FORECAST_SEVERITY, tr, wait, d.length, d.lanes,
                                      rate, extra, QUEUE_OVERLOAD_FORECAST, until))  # fmt: skip
        for direction, surge in self.surges.items():
            a = surge.alert
            if a.fired_at is not None and a.pending_since is not None and now is not None:
                tr = Transition("firing", a.pending_since, a.fired_at, None)
                out += self._surge_alert(direction, self.first[direction], tr, self.arrivals_per_hour(direction),
                                         surge.baseline(now))  # fmt: skip
        return out

    def prune(self) -> None:
        if self.last_ts is None:
            return
        self.window.prune(self.last_ts)
        for _, q in self.each_queue():
            q.prune(self.last_ts)
        # Ids at or before this are dropped when the table is next rebuilt (`RecentIds`).
        self.seen.horizon = self.last_ts - DEDUP_SECONDS

    def net_flows(self) -> dict[str, int]:
        if self.last_ts is None:
            return dict.fromkeys(WINDOWS, 0)
        return self.window.sums_over(self.last_ts, WINDOWS)

    # -- persistence -----------------------------------------------------------------------

    def to_record(self) -> CheckpointRecord:
        """For encoding at once: it shares this state's dicts (copying them cost a tenth of a
        forwarding worker's time)."""
        return CheckpointRecord(
            last_ts=self.last_ts,
            queues={queue_name(d, q.group.id): q.to_record() for d, q in self.each_queue()},
            accepted=self.accepted,
            persons=self.persons,
            citizenship_persons=self.citizenship_persons,
            off_partition=self.off_partition,
            next_seq=self.next_seq,
            deltas=self.deltas,
            surges={
                d: SurgeRecord(s.counts.tobytes(), s.end, s.start, AlertRecord(s.alert.pending_since, s.alert.fired_at))
                for d, s in self.surges.items()
                if s.end >= 0
            },
        )

    @classmethod
    def from_record(cls, cp: Checkpoint, rec: CheckpointRecord, ids: IdSetFactory = RecentIds) -> CheckpointState:
        state = cls(cp, ids)
        state.last_ts = rec.last_ts
        for key, value in rec.queues.items():
            where = parse_queue_name(key, cp)
            if where is not None:
                direction, group = where
                state.queues[direction][group.id] = QueueState.from_record(cp, group, value)
        state._route()
        state.accepted.update(rec.accepted)
        state.persons.update(rec.persons)
        for d, tally in rec.citizenship_persons.items():
            state.citizenship_persons[d] = dict(tally)
        state.off_partition = dict(rec.off_partition)
        state.next_seq = rec.next_seq
        state.deltas = dict(rec.deltas)
        for direction, surge in rec.surges.items():
            counts = array("H")
            counts.frombytes(surge.counts)
            alert = AlertState(surge.alert.pending_since, surge.alert.fired_at)
            state.surges[direction] = SurgeState.restored(counts, surge.end, surge.start, alert)
        return state

    def load_deltas(self, deltas: Sequence[DeltaRecord]) -> None:
        """The persisted deltas, oldest first (a later id's time replaces an earlier one's)."""
        self.seen.put_many([pair for delta in deltas for pair in delta.ids])
        add = self.window.add
        for delta in deltas:
            for ts, net in delta.crossings:
                add(ts, net)

    def delta_writes(self, partition: int) -> tuple[list[Write], list[Write]]:
        """(writes before the record, tombstones after it) for the ids and crossings accepted since
        the last call: a new delta, expired deltas dropped, everything rewritten compactly when
        too many are live."""
        writes: list[Write] = []
        cid = self.cp.id
        new = self.new
        if new:
            newest = max(new.id_times) if new.ids else (self.last_ts or 0.0)
            writes.append((delta_key(partition, cid, self.next_seq), encode(new.record())))
            self.deltas[self.next_seq] = newest
            self.next_seq += 1
            self.new = PendingDeltas()
        self.prune()
        horizon = (self.last_ts or 0.0) - max(LONGEST, DEDUP_SECONDS)
        dead = [seq for seq, newest in self.deltas.items() if newest <= horizon]
        for seq in dead:
            del self.deltas[seq]
        if len(self.deltas) > MAX_LIVE_DELTAS:
            dead.extend(self.deltas)
            self.deltas.clear()
            writes.extend(self._compacted(partition))
        return writes, [(delta_key(partition, cid, seq), None) for seq in dead]

    def _compacted(self, partition: int) -> list[Write]:
        """All live ids and crossings as a few bounded deltas (keeps recovery fast)."""
        horizon = self.seen.horizon
        ids = [(event_id, ts) for event_id, ts in self.seen.items() if ts > horizon]
        crossings = list(zip(self.window.ts, self.window.net, strict=True))
        newest = self.last_ts if self.last_ts is not None else 0.0
        writes: list[Write] = []
        for i in range(0, max(len(ids), len(crossings)), COMPACT_CHUNK):
            delta = DeltaRecord(ids[i : i + COMPACT_CHUNK], crossings[i : i + COMPACT_CHUNK])
            writes.append((delta_key(partition, self.cp.id, self.next_seq), encode(delta)))
            self.deltas[self.next_seq] = newest
            self.next_seq += 1
        return writes


class PartitionState:
    """All state derived from one partition of border.events (and the forwarded messages of its
    checkpoints); persisted under its record, which is written last in every batch."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.applied = -1
        self.hop_applied = -1
        self.hop_sources: dict[int, int] = {}
        self.out_marks: dict[str, int] = {}
        self.rejected = dict.fromkeys(REJECT_REASONS, 0)
        self.checkpoints: dict[str, CheckpointState] = {}
        self.slots: dict[str, int] = {}
        self.touched: set[str] = set()
        self.dirty = False
        # Identities of outputs a crashed predecessor delivered after the last committed state:
        # re-processing regenerates them and they must not be sent twice (not persisted).
        self.delivered: set[Any] = set()
        self.delivered_until = (-1, -1)  # (applied, hop_applied) past which none can recur

    def forget_delivered_when_passed(self) -> None:
        if self.delivered and self.applied >= self.delivered_until[0] and self.hop_applied >= self.delivered_until[1]:
            self.delivered.clear()

    def changelog_writes(self) -> list[Write]:
        """Everything that persists what changed since the last call, in the order that keeps the
        changelog consistent at every prefix: deltas, heads (in their other slot), the record,
        then tombstones of deltas no head references any more."""
        p = self.partition
        writes: list[Write] = []
        tombstones: list[Write] = []
        for cid in sorted(self.touched):
            cs = self.checkpoints[cid]
            new, dead = cs.delta_writes(p)
            writes.extend(new)
            tombstones.extend(dead)
            slot = 1 - self.slots.get(cid, 1)
            writes.append((head_key(p, cid, slot), encode(cs.to_record())))
            self.slots[cid] = slot
        writes.append((record_key(p), encode(self.to_record())))
        self.touched.clear()
        self.dirty = False
        return writes + tombstones

    def settle(self) -> None:
        """For in-process runs that persist nothing: drop what would have been written, prune."""
        for cs in self.checkpoints.values():
            cs.prune()
        self.discard_pending()

    def discard_pending(self) -> None:
        for cid in self.touched:
            cs = self.checkpoints[cid]
            cs.new = PendingDeltas()
        self.touched.clear()
        self.dirty = False

    def to_record(self) -> PartitionRecord:
        """For encoding at once (shares this state's dicts)."""
        return PartitionRecord(
            applied=self.applied,
            hop_applied=self.hop_applied,
            hop_sources=self.hop_sources,
            out_marks=self.out_marks,
            rejected=self.rejected,
            heads=self.slots,
        )


def load_partition(
    partition: int, get: Any, checkpoints: dict[str, Checkpoint], ids: IdSetFactory = RecentIds
) -> PartitionState:
    """Rebuild a partition's state from the changelog (`get(key) -> value | None`); state of a
    checkpoint no longer in the registry is kept on disk but not loaded."""
    ps = PartitionState(partition)
    key = record_key(partition)
    raw = get(key)
    if raw is None:
        return ps
    rec = decode(PartitionRecord, key, raw)
    ps.applied, ps.hop_applied = rec.applied, rec.hop_applied
    ps.hop_sources, ps.out_marks = dict(rec.hop_sources), dict(rec.out_marks)
    ps.rejected.update(rec.rejected)
    ps.slots = dict(rec.heads)
    for cid, slot in rec.heads.items():
        cp = checkpoints.get(cid)
        if cp is None:
            continue
        hkey = head_key(partition, cid, slot)
        head_raw = get(hkey)
        if head_raw is None:
            raise StateFormatError(f"state {hkey.decode(errors='replace')} is referenced by its record but missing")
        cs = CheckpointState.from_record(cp, decode(CheckpointRecord, hkey, head_raw), ids)
        deltas = []
        for seq in sorted(cs.deltas):
            dkey = delta_key(partition, cid, seq)
            delta_raw = get(dkey)
            if delta_raw is None:
                raise StateFormatError(f"state {dkey.decode(errors='replace')} is referenced by its head but missing")
            deltas.append(decode(DeltaRecord, dkey, delta_raw))
        cs.load_deltas(deltas)
        cs.prune()
        ps.checkpoints[cid] = cs
    return ps
