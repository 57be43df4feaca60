"""`bordermon simulate`: a seeded discrete-event simulation of every checkpoint and direction.

Parties arrive as a non-homogeneous Poisson process (scenario daily volume x diurnal profile),
wait in one FIFO queue per checkpoint and direction, and are served by the lanes open. Queue
overload is never scripted: it happens when arrivals exceed what the open lanes clear. Operators
react the way 2022 reports describe: when parties have waited 1.5x the critical threshold,
another lane opens (at most two above the registry, one a day, none at Syrym, reduced to one lane
by repairs); extra lanes close again once the queue has been empty for a while.

Lanes do not clear at the registry's nominal `lane_capacity_per_hour`, as real ones never do:
each lane has its own speed (median 90% of nominal, most between 70% and 110%), entries slow by a
quarter on surge days (document checks of men of draft age in 2022), and at each shift change
(08:00 and 20:00 local) lanes work at half speed for 30 minutes. Kairak's nominal 20 an hour per
lane, from 2022 reports of a car every 3-5 minutes, thus clears 11-16 an hour per lane in the surge.
Every crossing carries `true_wait_s`, the seconds its party waited from joining the queue to
clearing control, for scoring wait estimates against (`make accuracy`); the pipeline ignores it.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from bordermon.registry import DEFAULT_LANE_GROUP, Checkpoint, LaneGroup, Registry
from producers.scenarios import (
    BASELINE_RU_PER_DAY,
    DAY,
    ORDINARY_AGES,
    ORDINARY_SEX,
    OTHER_CITIZENSHIPS,
    SURGE_AGES,
    SURGE_LABEL_RATIO,
    SURGE_SEX,
    Scenario,
    capacities,
    ordinary_factor,
)

# Hourly arrival profile (UTC+5 local day), mean 1: quiet nights, busy afternoons.
DIURNAL = [0.35, 0.3, 0.3, 0.35, 0.5, 0.7, 0.9, 1.1, 1.3, 1.45, 1.5, 1.5,
           1.5, 1.45, 1.4, 1.35, 1.3, 1.25, 1.15, 1.0, 0.9, 0.75, 0.6, 0.45]  # fmt: skip
_mean = sum(DIURNAL) / 24
DIURNAL = [v / _mean for v in DIURNAL]
LOCAL_OFFSET_H = 5

# Lorries are 40% of the vehicles that cross the Kazakhstan-Russia border: 2.2 million of the 5.5
# million in 2023, about 1.3 times 2022's (Russia's government, via SeaNews, 4 July 2024). They
# carry freight, not travellers: they cross at an ordinary day's rate whatever the scenario scripts
# for persons, and their drivers are counted in the day's persons, not on top of them.
LORRY_SHARE_OF_VEHICLES = 2.2 / 5.5
FREIGHT_MODES = frozenset({"truck"})
PartyKind = tuple[str, float, tuple[int, ...]]


def _with_lorries(passengers: list[PartyKind], drivers: tuple[int, ...]) -> list[PartyKind]:
    """Road parties with lorries weighted so that they are `LORRY_SHARE_OF_VEHICLES` of the vehicles
    (everything but pedestrians) on an ordinary day."""
    vehicles = sum(w for mode, w, _ in passengers if mode != "pedestrian")
    share = LORRY_SHARE_OF_VEHICLES
    return [*passengers, ("truck", vehicles * share / (1 - share), drivers)]


# Party make-up by checkpoint mode on an ordinary day: (mode, weight, persons choices).
PARTIES: dict[str, list[PartyKind]] = {
    "road": _with_lorries([("car", 0.78, (1, 1, 1, 2, 2, 3, 4)), ("bus", 0.02, tuple(range(15, 46))),
                           ("pedestrian", 0.12, (1,))], drivers=(1, 1, 2)),
    "rail": [("rail", 1.0, (1, 1, 2, 3, 4))],
    "air": [("air", 1.0, (1, 1, 1, 2, 3))],
    "pedestrian": [("pedestrian", 1.0, (1,))],
}  # fmt: skip
NON_RU_PER_DAY = 12000.0  # other citizenships (mostly Kazakh) each way, spread by capacity
MAX_EXTRA_LANES = 2
LANE_SPEED_MEDIAN = 0.92  # a lane's real clearance rate / the registry's nominal rate (lognormal)
LANE_SPEED_SIGMA = 0.1
SURGE_ENTRY_SLOWDOWN = 1.15  # service time on surge days, entering
SHIFT_CHANGES_LOCAL_H = (8, 20)
SHIFT_CHANGE_S = 1800.0
SHIFT_CHANGE_SLOWDOWN = 2.0
LANE_REACTION_S = 24 * 3600.0  # 2022: extra lanes came after days, not hours
NO_EXTRA_LANES = {"syrym"}


# Lorries cross day and night: their arrivals vary less over the day than cars' (mean 1).
TRUCK_DIURNAL = [0.7, 0.65, 0.65, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.25, 1.25, 1.25,
                 1.25, 1.2, 1.2, 1.15, 1.15, 1.1, 1.05, 1.0, 0.95, 0.9, 0.8, 0.75]  # fmt: skip
_truck_mean = sum(TRUCK_DIURNAL) / 24
TRUCK_DIURNAL = [v / _truck_mean for v in TRUCK_DIURNAL]


def weight(kinds: list[PartyKind]) -> float:
    """The summed weight of these party kinds."""
    return sum(w for _, w, _ in kinds)


def mean_persons(kinds: list[PartyKind]) -> float:
    """Persons per party of these kinds, weighted (0 for none)."""
    total = weight(kinds)
    return sum(w * sum(p) / len(p) for _, w, p in kinds) / total if total else 0.0


def freight_split(kinds: list[PartyKind]) -> tuple[list[PartyKind], list[PartyKind]]:
    """(lorries, everything else) of these party kinds, in their order."""
    return [k for k in kinds if k[0] in FREIGHT_MODES], [k for k in kinds if k[0] not in FREIGHT_MODES]


def share(part: list[PartyKind], whole: list[PartyKind]) -> float:
    """The weight of `part` over that of `whole` (0 when `whole` has none)."""
    return weight(part) / weight(whole) if whole else 0.0


def group_parties(cp: Checkpoint, group: LaneGroup) -> list[PartyKind]:
    """The party kinds of a checkpoint that queue in `group`: those of its modes, and, in the
    first group, those no group lists (CONTRACT.md: a mode no group lists queues in the first)."""
    listed = set(cp.group_by_mode)
    first = group is cp.default_group
    return [p for p in PARTIES[cp.mode] if p[0] in group.modes or (first and p[0] not in listed)]


@dataclass(slots=True)
class Lanes:
    """Piecewise-constant lanes open, with changes appended in time order."""

    times: list[float]
    counts: list[int]

    def at(self, t: float) -> tuple[int, float | None]:
        """Lanes open at t and the time of the next change (None if none)."""
        i = len(self.times) - 1
        while i > 0 and self.times[i] > t:
            i -= 1
        nxt = self.times[i + 1] if i + 1 < len(self.times) else None
        return self.counts[i], nxt

    def set(self, t: float, count: int) -> None:
        if self.times[-1] == t:
            self.counts[-1] = count
        else:
            self.times.append(t)
            self.counts.append(count)


class DailyPersons:
    """Persons one checkpoint and direction sees in a day: Russian citizens and the rest."""

    def __init__(self, scenario: Scenario, registry: Registry, cid: str, direction: str) -> None:
        self.scenario, self.direction = scenario, direction
        caps = capacities(registry, direction)
        self.non_ru_share = caps[cid] / sum(caps.values())
        self.ordinary_share, self.surge_share = scenario.ru_shares(registry, cid, direction)

    def scripted(self, day: date) -> tuple[float, float]:
        """(Russian, other) on `day` as the scenario has it."""
        share = self.surge_share if self.scenario.in_surge(day) else self.ordinary_share
        other = NON_RU_PER_DAY * ordinary_factor(day) * self.non_ru_share
        return self.scenario.ru_per_day(self.direction, day) * share, other

    def ordinary_ru(self, day: date) -> float:
        """Russian citizens on `day` had the scenario scripted nothing."""
        return BASELINE_RU_PER_DAY * self.ordinary_share * ordinary_factor(day)

    def ordinary(self, day: date) -> float:
        """All persons on `day` had the scenario scripted nothing: its week and holidays only."""
        return (BASELINE_RU_PER_DAY * self.ordinary_share + NON_RU_PER_DAY * self.non_ru_share) * ordinary_factor(day)


def surge_labels(scenario: Scenario, registry: Registry, start: datetime, days: int) -> list[dict[str, str]]:
    """The surges of a run as ground truth: per checkpoint and direction, each run of days on
    which the script multiplies that stream's ordinary traffic by `SURGE_LABEL_RATIO` or more
    (onset and end at UTC midnights, where the scenario's daily figures change; a surge that
    starts on the scenario's onset day starts at the onset's moment, as its arrivals do)."""
    first = start.date()
    labels = []
    for cid in registry.checkpoints:
        for d in ("in", "out"):
            daily = DailyPersons(scenario, registry, cid, d)
            onset = None
            for k in range(days + 1):
                day = first + timedelta(days=k)
                surging = k < days and sum(daily.scripted(day)) >= SURGE_LABEL_RATIO * daily.ordinary(day)
                if surging and onset is None:
                    onset = day
                elif not surging and onset is not None:
                    began = f"{onset}T00:00:00Z"
                    if scenario.surge_onset is not None and onset == scenario.surge_onset.date():
                        began = scenario.surge_onset.strftime("%Y-%m-%dT%H:%M:%SZ")
                    labels.append({"checkpoint_id": cid, "direction": d, "onset": began, "end": f"{day}T00:00:00Z"})
                    onset = None
    return labels


def labels_path(out: str) -> str:
    """The sidecar of a log written to `out`: x.jsonl.gz -> x.surges.json."""
    folder, _, name = out.rpartition("/")
    stem = name.split(".jsonl")[0] if ".jsonl" in name else name.rsplit(".", 1)[0]
    return f"{folder}/{stem}.surges.json" if folder else f"{stem}.surges.json"


class Stream:
    """One checkpoint and direction: arrivals, a FIFO queue, lanes, crossings."""

    def __init__(self, cp: Checkpoint, direction: str, scenario: Scenario, registry: Registry,
                 rng: random.Random, start: float, end: float, group: LaneGroup | None = None) -> None:  # fmt: skip
        self.cp, self.direction, self.scenario, self.registry = cp, direction, scenario, registry
        self.rng, self.start, self.end = rng, start, end
        # One queue per lane group (CONTRACT.md, "Lane groups"): its lanes, capacity, thresholds
        # and its share of the checkpoint's parties; without groups, the checkpoint's own.
        self.group = group or cp.default_group
        self.parties = group_parties(cp, self.group)
        base = self.group.initial_lanes(direction)
        self.base_lanes = base
        self.max_lanes = base if cp.id in NO_EXTRA_LANES else base + MAX_EXTRA_LANES
        self.lanes = Lanes([start], [base])
        self.free = [start] * (self.max_lanes + 1)
        self.service = 3600.0 / self.group.lane_capacity_per_hour
        self.surge_days: dict[int, float] = {}  # day -> surge_from
        # Its own generator: arrivals stay what they were before lanes had speeds.
        speeds = random.Random(f"{rng.random()}/lanes")
        self.lane_speed = [speeds.lognormvariate(math.log(LANE_SPEED_MEDIAN), LANE_SPEED_SIGMA)
                           for _ in range(self.max_lanes + 1)]  # fmt: skip
        # Parties of each kind arrive as they would without groups: lorries at an ordinary day's
        # rate, the other kinds with the scenario's persons less the drivers; a group takes its
        # kinds' share of each.
        freight, passengers = freight_split(PARTIES[cp.mode])
        self.lorries_per_party = share(freight, PARTIES[cp.mode])  # on an ordinary day
        self.persons_mean = mean_persons(PARTIES[cp.mode])
        self.driver_mean = mean_persons(freight)
        self.passenger_mean = mean_persons(passengers)
        self.freight_kinds, self.passenger_kinds = freight_split(self.parties)  # this group's (a subset, in order)
        self.passenger_share = share(self.passenger_kinds, passengers)
        self.freight_share = share(self.freight_kinds, freight)
        # The kind of each party, drawn when its events are made: a lorry's or a passenger's.
        by_kind = ((True, self.freight_kinds), (False, self.passenger_kinds))
        self.kind_choice = {lorry: WeightedChoice(kinds, [w for _, w, _ in kinds]) for lorry, kinds in by_kind if kinds}
        self.last_change = start
        self.last_busy = start
        if scenario.lane_failure and scenario.lane_failure[0] == cp.id:
            _, when, duration = scenario.lane_failure
            failure = when.timestamp()
            if start <= failure < end:
                self.lanes.set(failure, 0)
                self.lanes.set(failure + duration, base)
                self.last_change = math.inf  # the outage is the story: no operator reaction

    def hourly_rates(self) -> Iterator[tuple[float, float, bool, bool]]:
        """(hour start, parties per hour, is Russian, is a lorry) for each hour of the run."""
        t = self.start
        daily = DailyPersons(self.scenario, self.registry, self.cp.id, self.direction)
        onset = self.scenario.surge_onset
        while t < self.end:
            day = datetime.fromtimestamp(t, UTC).date()
            hour = int((t // 3600 + LOCAL_OFFSET_H) % 24)
            ru, other = daily.scripted(day)
            if onset is not None and day == onset.date():
                ru = self._onset_day_ru(daily, day, t, ru, onset.timestamp())
            ordinary = daily.ordinary(day)
            lorries = ordinary / self.persons_mean * self.lorries_per_party  # a day's, both kinds of driver
            drivers = lorries * self.driver_mean
            ru_drivers = drivers * (daily.ordinary_ru(day) / ordinary if ordinary else 0.0)
            if self.freight_kinds:
                factor = TRUCK_DIURNAL[hour] / 24 * self.freight_share / self.driver_mean
                yield t, ru_drivers * factor, True, True
                yield t, (drivers - ru_drivers) * factor, False, True
            if self.passenger_kinds:
                factor = DIURNAL[hour] / 24 / self.passenger_mean * self.passenger_share
                yield t, max(0.0, ru - ru_drivers) * factor, True, False
                yield t, max(0.0, other - drivers + ru_drivers) * factor, False, False
            t += 3600

    def persons_per_party(self, lorry: bool) -> float:
        """The persons a party of `hourly_rates` stands for, on average."""
        return self.driver_mean if lorry else self.passenger_mean

    def _onset_day_ru(self, daily: DailyPersons, day: date, t: float, scripted: float, onset: float) -> float:
        """Russians per day at hour `t` of the surge's first day: an ordinary day's before the
        onset, after it the rest of the script's figure (so the day's total is the official one)."""
        ordinary = daily.ordinary_ru(day)
        if t < onset:
            return ordinary
        hours_before = int((onset % DAY) // 3600)
        before = sum(DIURNAL[(h + LOCAL_OFFSET_H) % 24] for h in range(hours_before)) / 24
        return max(0.0, (scripted - ordinary * before) / (1.0 - before))

    def arrivals(self) -> list[tuple[float, bool, bool]]:
        """(time, is Russian, is a lorry) of each party's arrival, in time order."""
        out: list[tuple[float, bool, bool]] = []
        expo = self.rng.expovariate
        for hour_start, rate, ru, lorry in self.hourly_rates():
            if rate <= 0:
                continue
            t = hour_start + expo(rate / 3600)
            while t < hour_start + 3600:
                out.append((t, ru, lorry))
                t += expo(rate / 3600)
        out.sort()
        return out

    def _earliest_start(self, a: float) -> tuple[float, int] | None:
        t = a
        while True:
            count, nxt = self.lanes.at(t)
            if count == 0:
                if nxt is None:
                    return None
                t = nxt
                continue
            lane = min(range(count), key=self.free.__getitem__)
            s = max(self.free[lane], t)
            if nxt is not None and s >= nxt:
                t = nxt
                continue
            return s, lane

    def _react(self, a: float, wait: float) -> bool:
        """Operators open a lane after long waits, close extra ones after a quiet spell."""
        count, _ = self.lanes.at(a)
        if a - self.last_change < LANE_REACTION_S:
            return False
        if wait > 1.5 * self.group.critical_seconds and count < self.max_lanes:
            self.lanes.set(a, count + 1)
            self.last_change = a
            return True
        if wait == 0 and count > self.base_lanes and a - self.last_busy > LANE_REACTION_S:
            self.lanes.set(a, count - 1)
            self.last_change = a
            return True
        return False

    def service_time(self, start: float, lane: int) -> float:
        """Mean seconds to clear one party on this lane from `start`: nominal / the lane's speed,
        slower on surge days when entering and at shift changes."""
        seconds = self.service / self.lane_speed[lane]
        if self.direction == "in":
            day = int(start // DAY)
            surge_from = self.surge_days.get(day)
            if surge_from is None:
                surge_from = self.surge_days[day] = self.scenario.surge_from(datetime.fromtimestamp(start, UTC).date())
            if start >= surge_from:
                seconds *= SURGE_ENTRY_SLOWDOWN
        local = (start / 3600 + LOCAL_OFFSET_H) % 24
        if any(0 <= (local - h) * 3600 < SHIFT_CHANGE_S for h in SHIFT_CHANGES_LOCAL_H):
            seconds *= SHIFT_CHANGE_SLOWDOWN
        return seconds

    def run(self) -> list[tuple[float, int, str, Any]]:
        """Events as (ts, order, kind, payload) sorted by ts."""
        events: list[tuple[float, int, str, Any]] = []
        rng = self.rng
        n = 0
        for a, ru, lorry in self.arrivals():
            found = self._earliest_start(a)
            if found is not None and self._react(a, found[0] - a):
                found = self._earliest_start(a)
            events.append((a, n, "arrival", (ru, lorry)))
            n += 1
            if found is None:
                continue
            s, lane = found
            if s > a:
                self.last_busy = s
            done = s + self.service_time(s, lane) * rng.uniform(0.5, 1.5)
            self.free[lane] = done
            if done < self.end:
                events.append((done, n, "crossing", (ru, lorry, round(done) - round(a))))
                n += 1
        for t, count in zip(self.lanes.times[1:], self.lanes.counts[1:], strict=True):
            if t < self.end:
                events.append((t, n, "lanes", count))
                n += 1
        events.sort()
        return events


class WeightedChoice:
    """One weighted draw, cumulative weights computed once: the same draw `rng.choices(population,
    weights)` makes from the same rng state, without rebuilding the weights per event."""

    __slots__ = ("cum_weights", "hi", "population", "total")

    def __init__(self, population: list[Any], weights: list[float]) -> None:
        self.population = population
        self.cum_weights = list(itertools.accumulate(weights))
        self.total = self.cum_weights[-1] + 0.0
        self.hi = len(population) - 1

    def __call__(self, rng: random.Random) -> Any:
        return self.population[bisect.bisect(self.cum_weights, rng.random() * self.total, 0, self.hi)]


def _choice(weights: dict[str, float]) -> WeightedChoice:
    return WeightedChoice(list(weights), list(weights.values()))


OTHER_CITIZENSHIP_CHOICE = _choice(OTHER_CITIZENSHIPS)
AGE_CHOICE = {True: _choice(SURGE_AGES), False: _choice(ORDINARY_AGES)}
SEX_CHOICE = {True: _choice(SURGE_SEX), False: _choice(ORDINARY_SEX)}


class SecondFormatter:
    """RFC 3339 UTC to the second ("2022-09-21T06:00:00Z"): dates formatted once a day, times once."""

    def __init__(self) -> None:
        self._dates: dict[int, str] = {}
        self._times = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in range(86400)]

    def __call__(self, ts: float) -> str:
        day, second = divmod(round(ts), 86400)
        date_part = self._dates.get(day)
        if date_part is None:
            date_part = self._dates[day] = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%dT")
        return date_part + self._times[second]


class EventFactory:
    """Turns simulated (ts, kind) into contract events with persons and demographics."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario = scenario
        self.rng = random.Random(seed ^ 0x5EED)
        self.prefix = f"{scenario.name[:4]}{seed}-"
        self.n = 0
        self._surge_by_day: dict[int, float] = {}  # day -> surge_from
        self._timestamp = SecondFormatter()

    def _surge_day(self, ts: float) -> bool:
        day = int(ts // DAY)  # the event's UTC day, as a number: no datetime per event
        surge_from = self._surge_by_day.get(day)
        if surge_from is None:
            surge_from = self._surge_by_day[day] = self.scenario.surge_from(datetime.fromtimestamp(ts, UTC).date())
        return ts >= surge_from

    def make(
        self, cp: Checkpoint, direction: str, ts: float, kind: str, payload: Any, stream: Stream
    ) -> dict[str, Any]:
        self.n += 1
        ev: dict[str, Any] = {
            "event_id": f"{self.prefix}{self.n}",
            "type": kind,
            "checkpoint_id": cp.id,
            "direction": direction,
            "ts": self._timestamp(ts),
        }
        if kind == "lanes":
            ev["lanes_open"] = payload
            if stream.group.id != DEFAULT_LANE_GROUP:
                ev["lane_group"] = stream.group.id
            return ev
        rng = self.rng
        ru, lorry = payload[0], payload[1]
        mode, _, persons = stream.kind_choice[lorry](rng)
        ev["mode"] = mode
        if kind == "crossing":
            true_wait = payload[2]
            surge = ru and not lorry and direction == "in" and self._surge_day(ts)  # drivers keep their trade
            ev["persons"] = rng.choice(persons)
            ev["citizenship"] = "RU" if ru else OTHER_CITIZENSHIP_CHOICE(rng)
            ev["age_band"] = AGE_CHOICE[bool(surge)](rng)
            ev["sex"] = SEX_CHOICE[bool(surge)](rng)
            ev["true_wait_s"] = true_wait
        return ev


def simulate(
    scenario: Scenario,
    registry: Registry,
    days: int | None = None,
    seed: int = 1,
    on_day: Callable[[date], None] | None = None,
    start_at: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """All events of the run in event-time order (from `start_at`, queues empty, if given)."""
    start = (start_at or scenario.start).timestamp()
    end = start + (days or scenario.default_days) * DAY
    per_stream: list[list[tuple[float, int, str, Any]]] = []
    refs: list[tuple[Checkpoint, str, Stream]] = []
    for cp in registry.checkpoints.values():
        for d in ("in", "out"):
            for group in cp.lane_groups:
                # Without groups, the stream and its draws are what they were before groups.
                grouped = group.id != DEFAULT_LANE_GROUP
                rng = random.Random(f"{seed}/{cp.id}/{d}/{group.id}" if grouped else f"{seed}/{cp.id}/{d}")
                stream = Stream(cp, d, scenario, registry, rng, start, end, group)
                if not stream.parties:
                    continue  # a group whose modes this checkpoint's traffic never has
                per_stream.append(stream.run())
                refs.append((cp, d, stream))
    factory = EventFactory(scenario, seed)
    merged = heapq.merge(*[_tagged(k, s) for k, s in enumerate(per_stream)])
    current_day = None
    for ts, k, _, kind, payload in merged:
        if on_day is not None and (day := int(ts // DAY)) != current_day:
            current_day = day
            on_day(datetime.fromtimestamp(ts, UTC).date())
        cp, d, stream = refs[k]
        yield factory.make(cp, d, ts, kind, payload, stream)


def _tagged(k: int, events: list[tuple[float, int, str, Any]]) -> Iterator[tuple[float, int, int, str, Any]]:
    for ts, n, kind, payload in events:
        yield ts, k, n, kind, payload


def encode(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def resolve_run(scenario_name: str, days: int | None, start_at: datetime | None) -> tuple[Scenario, int]:
    """The scenario asked for and how many days to simulate: `days`, else to the scenario's end
    from `start_at`, else the scenario's own length."""
    from bordermon.errors import BordermonError
    from producers.scenarios import SCENARIOS

    scenario = SCENARIOS.get(scenario_name)
    if scenario is None:
        raise BordermonError(f"unknown scenario {scenario_name!r}; choose from {', '.join(SCENARIOS)}")
    if start_at is not None and days is None:
        scenario_end = scenario.start + timedelta(days=scenario.default_days)
        days = max(1, (scenario_end - start_at).days)
    return scenario, days or scenario.default_days


def open_log(out: str) -> Any:
    """The log file to write (gzip when its name ends in .gz); a one-line error when it cannot be."""
    import gzip

    from bordermon.errors import BordermonError

    try:
        return gzip.open(out, "wb", compresslevel=3) if out.endswith(".gz") else open(out, "wb")
    except OSError as exc:
        raise BordermonError(f"{out}: {exc.strerror or exc}") from None


def write_labels(out: str, scenario: Scenario, registry: Registry, seed: int, start: datetime, days: int) -> str:
    """The labelled surges beside the log (`make accuracy` scores ArrivalSurge on them)."""
    labels = surge_labels(scenario, registry, start, days)
    sidecar = {"scenario": scenario.name, "seed": seed, "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
               "days": days, "label_ratio": SURGE_LABEL_RATIO, "surges": labels}  # fmt: skip
    with open(labels_path(out), "wb") as f:
        f.write(orjson.dumps(sidecar, option=orjson.OPT_INDENT_2) + b"\n")
    return f" (labelled surges: {len(labels)} in {labels_path(out)})"


def emit(events: Iterator[dict[str, Any]], handle: Any | None, publisher: Any | None, resume: int) -> int:
    """Each event to the log file in blocks, or to the publisher from position `resume` until it
    is asked to stop; the count of events written or sent."""
    from bordermon.timeutil import parse_rfc3339

    count = 0
    batch: list[bytes] = []
    for position, event in enumerate(events):
        if publisher is not None:
            if publisher.stop.requested:
                break
            if position < resume:
                continue
        line = encode(event)
        count += 1
        if handle is None:
            publisher.send(event["checkpoint_id"].encode(), line, parse_rfc3339(event["ts"]), position)
            continue
        batch.append(line)
        if len(batch) >= 4096:
            handle.write(b"\n".join(batch) + b"\n")
            batch.clear()
    if handle is not None and batch:
        handle.write(b"\n".join(batch) + b"\n")
    if publisher is not None:
        publisher.flush()
    return count


class CountingEvents:
    """The simulation's events, counted as they are drawn (the progress bar shows the count)."""

    def __init__(self, events: Iterator[dict[str, Any]]) -> None:
        self.events = events
        self.drawn = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            self.drawn += 1
            yield event


def run_simulation(
    scenario_name: str,
    registry: Registry,
    days: int | None,
    seed: int,
    out: str | None,
    publisher: Any | None,
    console: Any,
    start_at: datetime | None = None,
    resume: int = 0,
) -> str:
    """Write (or publish) a whole run with a progress bar; return the summary line."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    scenario, total_days = resolve_run(scenario_name, days, start_at)
    run_start = start_at or scenario.start
    first_day = run_start.date()
    started = time.monotonic()
    progress = Progress(
        TextColumn(f"[bold]simulate[/] {scenario.name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days  {task.fields[day]}  {task.fields[events]:,} events"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = progress.add_task("sim", total=total_days, day="", events=0)
    drawn: CountingEvents

    def on_day(day: date) -> None:
        progress.update(task, completed=(day - first_day).days, day=str(day), events=drawn.drawn)

    drawn = CountingEvents(simulate(scenario, registry, total_days, seed, on_day, start_at))
    handle = open_log(out) if out is not None else None
    try:
        with progress:
            count = emit(iter(drawn), handle, publisher, resume)
            progress.update(task, completed=total_days)
    finally:
        if handle is not None:
            handle.close()
    elapsed = time.monotonic() - started
    where = "border.events" if out is None else out + write_labels(out, scenario, registry, seed, run_start, total_days)
    stopped = ""
    if publisher is not None and publisher.stop.requested:
        stopped = (
            f"; stopped by {publisher.stop.requested}, everything sent was delivered: "
            f"resume with --resume {publisher.next_position}"
        )
    return (
        f"simulated {scenario.name}: {total_days} days from {first_day}, seed {seed}, "
        f"{count:,} events to {where} in {elapsed:.1f}s{stopped}"
    )
