"""Per-checkpoint and per-partition state, and how it is applied and serialised (pure).

The unit of persistence is a partition: one small record holds every checkpoint head of the
partition, its reject counters and the last source offset applied. Event ids (for duplicate
detection) and crossings (for rolling windows) are written as append-only deltas.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bordermon.events import DIRECTIONS, DUPLICATE, EVENT_TYPES, REJECT_REASONS, Crossing, Event, Lanes
from bordermon.registry import Checkpoint
from streams.alerts import SEVERITIES, AlertState, Transition, step
from streams.windows import LONGEST, WINDOWS, NetFlowWindow

DEDUP_SECONDS = 86400.0
ADVICE_HORIZON_HOURS = 2.0
RATE_WINDOW_SECONDS = 3600.0


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


def wait_estimate_seconds(queue: int, lanes: int, capacity_per_hour: float) -> float:
    """queue / (lanes x capacity) x 3600; 0 for an empty queue, +Inf with no lane open."""
    if queue <= 0:
        return 0.0
    if lanes <= 0:
        return math.inf
    return queue / (lanes * capacity_per_hour) * 3600.0


@dataclass(slots=True)
class DirectionState:
    queue: int
    lanes: int
    alerts: dict[str, AlertState] = field(default_factory=lambda: {s: AlertState() for s in SEVERITIES})
    # Arrival times in the last hour of event time, for capacity advice (rebuilt after a restart).
    recent_arrivals: deque[float] = field(default_factory=deque)

    def arrivals_per_hour(self, now: float) -> float:
        recent = self.recent_arrivals
        while recent and recent[0] <= now - RATE_WINDOW_SECONDS:
            recent.popleft()
        return float(len(recent))

    def to_list(self) -> list[Any]:
        return [self.queue, self.lanes, {s: a.to_list() for s, a in self.alerts.items()}]

    @classmethod
    def from_list(cls, data: list[Any]) -> DirectionState:
        return cls(data[0], data[1], {s: AlertState.from_list(a) for s, a in data[2].items()})


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A transition with the context a consumer of `border.alerts` needs."""

    checkpoint: Checkpoint
    direction: str
    severity: str
    transition: Transition
    wait_seconds: float
    queue_length: int
    lanes_open: int
    arrivals_per_hour: float = 0.0
    lanes_needed: int = 0


class CheckpointState:
    """Queue, lanes, alerts, counters, windows and seen ids of one checkpoint."""

    __slots__ = (
        "accepted",
        "by_citizenship",
        "citizenship_persons",
        "cp",
        "dirs",
        "last_ts",
        "new_crossings",
        "new_ids",
        "persons",
        "seen",
        "window",
    )

    def __init__(self, cp: Checkpoint) -> None:
        self.cp = cp
        self.last_ts: float | None = None
        self.dirs = {d: DirectionState(0, cp.initial_lanes(d)) for d in DIRECTIONS}
        self.accepted = dict.fromkeys(EVENT_TYPES, 0)
        self.persons = dict.fromkeys(DIRECTIONS, 0)
        self.by_citizenship: dict[str, int] = {}
        self.citizenship_persons: dict[str, dict[str, int]] = {d: {} for d in DIRECTIONS}
        self.window = NetFlowWindow()
        self.seen: dict[str, float] = {}
        # Accepted since the last flush, to be written as a delta.
        self.new_ids: list[list[Any]] = []
        self.new_crossings: list[list[Any]] = []

    # -- applying events -------------------------------------------------------------------

    def is_duplicate(self, event_id: str, t: float) -> bool:
        prev = self.seen.get(event_id)
        if prev is None:
            return False
        reference = t if self.last_ts is None or t > self.last_ts else self.last_ts
        return prev > reference - DEDUP_SECONDS

    def apply(self, event: Event, t: float) -> list[AlertEvent] | str:
        """Apply an accepted event at event time t; return alert transitions, or DUPLICATE."""
        if self.is_duplicate(event.event_id, t):
            return DUPLICATE
        seen = self.seen
        seen.pop(event.event_id, None)  # re-insert at the end: the dict stays roughly ts-ordered
        seen[event.event_id] = t
        self.new_ids.append([event.event_id, t])
        if self.last_ts is None or t > self.last_ts:
            self.last_ts = t
        d = self.dirs[event.direction]
        kind = type(event)
        if kind is Crossing:
            self.accepted["crossing"] += 1
            if d.queue > 0:
                d.queue -= 1
            persons = event.persons
            net = persons if event.direction == "in" else -persons
            self.persons[event.direction] += persons
            self.by_citizenship[event.citizenship] = self.by_citizenship.get(event.citizenship, 0) + net
            tally = self.citizenship_persons[event.direction]
            tally[event.citizenship] = tally.get(event.citizenship, 0) + persons
            self.window.add(t, net)
            self.new_crossings.append([t, net])
        elif kind is Lanes:
            self.accepted["lanes"] += 1
            d.lanes = event.lanes_open
        else:
            self.accepted["arrival"] += 1
            d.queue += 1
            d.recent_arrivals.append(t)
        return self._evaluate_alerts(event.direction, d, t)

    def _evaluate_alerts(self, direction: str, d: DirectionState, t: float) -> list[AlertEvent]:
        cp = self.cp
        wait = wait_estimate_seconds(d.queue, d.lanes, cp.lane_capacity_per_hour)
        out: list[AlertEvent] = []
        for severity, alert in d.alerts.items():
            if wait < cp.threshold_seconds(severity) * cp.resolve_ratio and alert.pending_since is None:
                continue  # fast path: nothing pending, nothing firing, nothing to start
            tr = step(alert, t, wait, cp.threshold_seconds(severity), cp.for_seconds, cp.resolve_ratio)
            if tr is not None:
                rate = d.arrivals_per_hour(self.last_ts or t)
                extra = lanes_needed(d.queue, rate, cp.lane_capacity_per_hour, cp.warning_seconds, d.lanes)
                out.append(AlertEvent(cp, direction, severity, tr, wait, d.queue, d.lanes, rate, extra))
        return out

    def advice(self, direction: str) -> tuple[float, int]:
        """(arrivals per hour over the last event-time hour, extra lanes needed)."""
        d, cp = self.dirs[direction], self.cp
        rate = d.arrivals_per_hour(self.last_ts) if self.last_ts is not None else 0.0
        return rate, lanes_needed(d.queue, rate, cp.lane_capacity_per_hour, cp.warning_seconds, d.lanes)

    def prune(self) -> None:
        if self.last_ts is None:
            return
        self.window.prune(self.last_ts)
        cutoff = self.last_ts - DEDUP_SECONDS
        seen = self.seen
        # Ids arrive roughly in ts order; drop from the front until a recent one.
        for event_id, ts in list(_take_while_old(seen, cutoff)):
            if seen.get(event_id) == ts:
                del seen[event_id]

    def wait_seconds(self, direction: str) -> float:
        d = self.dirs[direction]
        return wait_estimate_seconds(d.queue, d.lanes, self.cp.lane_capacity_per_hour)

    def net_flows(self) -> dict[str, int]:
        if self.last_ts is None:
            return dict.fromkeys(WINDOWS, 0)
        return {name: self.window.sum_over(self.last_ts, w) for name, w in WINDOWS.items()}

    # -- persistence -----------------------------------------------------------------------

    def head(self) -> dict[str, Any]:
        return {
            "last_ts": self.last_ts,
            "dirs": {d: s.to_list() for d, s in self.dirs.items()},
            "accepted": self.accepted,
            "persons": self.persons,
            "by_citizenship": self.by_citizenship,
            "citizenship_persons": self.citizenship_persons,
        }

    @classmethod
    def from_head(cls, cp: Checkpoint, head: dict[str, Any]) -> CheckpointState:
        state = cls(cp)
        state.last_ts = head["last_ts"]
        state.dirs = {d: DirectionState.from_list(v) for d, v in head["dirs"].items()}
        state.accepted.update(head["accepted"])
        state.persons.update(head["persons"])
        state.by_citizenship = dict(head["by_citizenship"])
        for d, tally in head.get("citizenship_persons", {}).items():
            state.citizenship_persons[d] = dict(tally)
        return state

    def take_delta(self) -> dict[str, Any] | None:
        if not self.new_ids and not self.new_crossings:
            return None
        delta = {"ids": self.new_ids, "x": self.new_crossings}
        self.new_ids, self.new_crossings = [], []
        return delta

    def load_delta(self, delta: dict[str, Any]) -> None:
        seen = self.seen
        for event_id, ts in delta["ids"]:
            seen.pop(event_id, None)
            seen[event_id] = ts
        for ts, net in delta["x"]:
            self.window.add(ts, net)

    def live_data(self) -> dict[str, Any]:
        """Everything still needed for windows and de-duplication (for compaction)."""
        return {
            "ids": [[k, v] for k, v in self.seen.items()],
            "x": [[t, n] for t, n in zip(self.window.ts, self.window.net, strict=True)],
        }


def _take_while_old(seen: dict[str, float], cutoff: float):  # type: ignore[no-untyped-def]
    for event_id, ts in seen.items():
        if ts > cutoff:
            return
        yield event_id, ts


class PartitionState:
    """All state derived from one source partition; persisted as one record per batch."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.applied_offset = -1
        self.rejected = dict.fromkeys(REJECT_REASONS, 0)
        self.checkpoints: dict[str, CheckpointState] = {}
        self.next_seq = 0
        # seq -> {checkpoint id: newest ts in that delta}; a delta dies when all are older than 24 h.
        self.live: dict[int, dict[str, float]] = {}

    def record(self) -> dict[str, Any]:
        return {
            "v": 1,
            "applied_offset": self.applied_offset,
            "rejected": self.rejected,
            "next_seq": self.next_seq,
            "live": {str(k): v for k, v in self.live.items()},
            "checkpoints": {cid: cs.head() for cid, cs in self.checkpoints.items()},
        }

    def expired_deltas(self) -> list[int]:
        """Deltas whose every entry is older than any window or duplicate check can reach."""
        dead = []
        for seq, newest in self.live.items():
            if all(
                (cs := self.checkpoints.get(cid)) is not None
                and cs.last_ts is not None
                and ts <= cs.last_ts - max(LONGEST, DEDUP_SECONDS)
                for cid, ts in newest.items()
            ):
                dead.append(seq)
        return dead
