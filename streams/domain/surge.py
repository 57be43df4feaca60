"""ArrivalSurge: a surge of arrivals at one checkpoint and direction, flagged at event time (pure).

The recent rate is the arrivals of the last event-time hour (every lane group together). It is
compared with what is typical for that time at that checkpoint and direction, learned from its own
hourly arrival counts of the last four weeks and robust to the outliers it looks for:
- the median of the same hour of the week over the previous weeks, once three weeks are known;
- before that, the median of the same hour of the day over the previous days, once three are known;
  (each past hour taken as the mean of it and its two neighbours: small counts are noisy);
- before that, nothing: silent (a checkpoint with no history has no "typical").
Because the last hour straddles two clock hours, the baseline blends theirs by how much of the
hour each covers. A new normal ends an alert: the baseline is at least the lower of the same
moment one and two days before, so two days at a new level make it typical.

It fires when the rate has stayed at or above max(3 × baseline, 20 an hour) for 30 minutes of
event time (the floor keeps a quiet checkpoint's chance bursts from looking like surges) and
resolves at the first arrival with the rate below half that level. Only accepted arrivals drive
it: a queue that grows because lanes closed is not a surge. Everything here is in the changelog,
so a restarted worker emits the transitions of an uninterrupted one.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

from streams.domain.alerts import AlertState, Transition, step

HOUR = 3600.0
HISTORY_HOURS = 4 * 168  # four weeks of hourly counts per checkpoint and direction
WEEK_HOURS, DAY_HOURS = 168, 24
MIN_WEEKS, MIN_DAYS, DAYS = 3, 3, 7
SURGE_RATIO = 3.0  # the rate must reach this multiple of the baseline...
# ...and this many arrivals an hour. At a quiet checkpoint a chance burst reaches three times a
# baseline of a few an hour, more so while only days are known and weekdays set a weekend's
# baseline (`make accuracy`, 3 seeds: a floor of 10 with a 5-sigma Poisson term fired 0.5-1.1
# times per 100 checkpoint-days of ordinary and holiday traffic and 0-2 times on `lane-failure`;
# a floor of 20 fired 0.06-0.42 times and never on `lane-failure`, as early at the busiest; the
# Poisson term then binds nowhere: b + 5 sqrt(b) < max(3b, 20) for every b).
MIN_SURGE_PER_HOUR = 20.0
SURGE_FOR_SECONDS = 1800.0
SURGE_RESOLVE_RATIO = 0.5
MAX_COUNT = 65535  # counts are kept as uint16: an hour with more arrivals saturates


def surge_level(baseline: float) -> float:
    """The arrivals per hour at and above which the rate counts as a surge."""
    return max(SURGE_RATIO * baseline, MIN_SURGE_PER_HOUR)


@dataclass(slots=True)
class SurgeState:
    """Hourly arrival counts of one checkpoint and direction, and its ArrivalSurge alert."""

    # counts[i] is the hour `end - (len(counts) - 1 - i)` (hours since the Unix epoch, event time).
    counts: array[int] = field(default_factory=lambda: array("H"))
    end: int = -1
    start: int = -1  # the hour of the first arrival: hours before it are unknown, not zero
    alert: AlertState = field(default_factory=AlertState)
    # `_seasonals` of the last evaluation: they read hours a day or more back, which change only
    # with an arrival that late, which clears it.
    _cache: tuple[int, float | None, float | None, float | None, tuple[int, ...] | None] | None = None
    # An arrival in the newest hour with `now` before `_quiet_until` cannot start a surge unless
    # that hour's count reaches `_quiet_limit` (`arrive`'s O(1) path). The newest hour spans
    # [_from, _until) in seconds, so the check needs no division; `_quiet_until` is the end of that
    # hour while the limit holds and -inf once something may have changed it.
    _quiet_until: float = -math.inf
    _quiet_limit: float = math.inf
    _from: float = 0.0
    _until: float = 0.0

    @classmethod
    def restored(cls, counts: array[int], end: int, start: int, alert: AlertState) -> SurgeState:
        """From the changelog."""
        state = cls(counts, start=start, alert=alert)
        state._set_end(end)
        return state

    def arrive(self, t: float, now: float) -> bool:
        """Count an arrival at `t`; False when no surge can start at `now` (the checkpoint's latest
        event time), and `evaluate` need not be asked. Once per arrival: the common case is a
        few comparisons."""
        if self._from <= t < self._until:
            counts = self.counts
            count = counts[-1] + 1
            if count <= MAX_COUNT:
                counts[-1] = count
                if now < self._quiet_until:
                    return count >= self._quiet_limit
                return not self.quiet(now)
        self.add(t)
        return not self.quiet(now)

    def add(self, t: float) -> None:
        hour = int(t // HOUR)
        counts = self.counts
        self._quiet_until = -math.inf
        if hour == self.end:
            if counts[-1] < MAX_COUNT:
                counts[-1] += 1
            return
        if self.end < 0:
            counts.append(0)
            self.start = hour
            self._set_end(hour)
        elif hour > self.end:
            gap = hour - self.end
            if gap >= HISTORY_HOURS:
                del counts[:]
                counts.append(0)
            else:
                if gap == 1:  # the next hour: the common case
                    counts.append(0)
                else:
                    counts.extend(array("H", bytes(2 * gap)))
                if len(counts) > HISTORY_HOURS:
                    del counts[: len(counts) - HISTORY_HOURS]
            self._set_end(hour)
        cache = self._cache
        if cache is not None and hour <= cache[0] - DAY_HOURS + 1:
            self._cache = None  # a late arrival changed an hour the cached baselines were taken from
        self.start = max(min(self.start, hour), self.end - len(counts) + 1)
        index = len(counts) - 1 - (self.end - hour)
        if index >= 0 and counts[index] < MAX_COUNT:
            counts[index] += 1

    def _set_end(self, hour: int) -> None:
        self.end = hour
        self._from, self._until = hour * HOUR, (hour + 1) * HOUR

    def _seasonal(self, hour: int) -> float | None:
        """The median over the previous weeks (or days) of the mean count of the three hours
        around `hour` (the neighbours damp the noise of small counts). Once per hour and
        direction; indexes the counts directly, as it runs for every checkpoint every hour."""
        counts, end = self.counts, self.end
        base = len(counts) - 1 - end  # the index of hour h is base + h
        low, high = self.start + 1, end - 1  # hours whose neighbours are both known
        for period, most, least in ((WEEK_HOURS, HISTORY_HOURS // WEEK_HOURS, MIN_WEEKS), (DAY_HOURS, DAYS, MIN_DAYS)):
            if (hour - low) // period < least:
                continue  # fewer than `least` of these hours are known: a young history's common case
            sums = []
            for k in range(1, most + 1):
                h = hour - k * period
                if low <= h <= high:
                    i = base + h
                    sums.append(counts[i - 1] + counts[i] + counts[i + 1])
            if len(sums) >= least:
                sums.sort()
                middle = len(sums) // 2
                median = sums[middle] if len(sums) % 2 else (sums[middle - 1] + sums[middle]) / 2
                return median / 3.0
        return None

    def _seasonals(self, hour: int) -> tuple[int, float | None, float | None, float | None, tuple[int, ...] | None]:
        """(hour, its baseline, the previous hour's, the lowest surge level either allows, the
        counts of the same two hours one and two days before when all four are known)."""
        cache = self._cache
        if cache is None or cache[0] != hour:
            # The hour before was this one an hour ago: its baseline is cached already.
            previous = cache[1] if cache is not None and cache[0] == hour - 1 else self._seasonal(hour - 1)
            this = self._seasonal(hour)
            floor = None if this is None or previous is None else surge_level(min(this, previous))
            counts, end = self.counts, self.end
            oldest = max(self.start, end - len(counts) + 1)
            days = None
            if oldest <= hour - 2 * DAY_HOURS - 1 and hour - DAY_HOURS <= end:  # all four hours known
                base = len(counts) - 1 - end
                days = tuple(counts[base + hour - k * DAY_HOURS - i] for k in (1, 2) for i in (0, 1))
            cache = (hour, this, previous, floor, days)
            self._cache = cache
        return cache

    def baseline(self, now: float) -> float | None:
        """Typical arrivals per hour for the hour ending at `now`; None while too little is known."""
        hour = int(now // HOUR)
        _, this, previous, _, days = self._seasonals(hour)
        if this is None or previous is None:
            return None
        share = (now - hour * HOUR) / HOUR  # of the last hour that falls in this clock hour
        typical = share * this + (1.0 - share) * previous
        if days is not None:  # a new normal: the same moment one and two days ago, whichever was lower
            one, two = share * days[0] + (1.0 - share) * days[1], share * days[2] + (1.0 - share) * days[3]
            typical = max(typical, min(one, two))
        return typical

    def quiet(self, now: float) -> bool:
        """True when no surge can start at `now`. No surge starts below the lowest level this hour
        allows, and the last hour's arrivals are at most those of this clock hour and the one before
        (`start` is the first hour `counts` holds)."""
        if self.alert.pending_since is not None:
            self._quiet_until = -math.inf
            return False
        return self._quiet_at(now)

    def _quiet_at(self, now: float) -> bool:
        hour = int(now // HOUR)
        counts, lag = self.counts, hour - self.end
        before = counts[-2] if len(counts) > 1 else 0
        bound = counts[-1] + before if lag == 0 else counts[-1] if lag == 1 else 0
        if bound < MIN_SURGE_PER_HOUR:
            # Below every surge level: this hour's baseline is not needed yet (small checkpoints,
            # nights: most hours end here).
            floor: float | None = MIN_SURGE_PER_HOUR
        else:
            cache = self._cache
            floor = (cache if cache is not None and cache[0] == hour else self._seasonals(hour))[3]
        if lag == 0:  # for the rest of this hour, `arrive` compares the newest count with this limit
            self._quiet_until = self._until
            self._quiet_limit = math.inf if floor is None else floor - before
        return floor is None or bound < floor

    def evaluate(self, t: float, now: float, rate: float) -> tuple[Transition, float, float | None] | None:
        """Advance the alert at an arrival at `t`, with the rate and the baseline taken at `now`,
        the checkpoint's latest event time: (transition, rate, baseline). Call it unless `quiet`."""
        baseline = self.baseline(now)
        # History out of reach (a silence of weeks) while pending or firing: nothing is a surge.
        level = surge_level(baseline) if baseline is not None else math.inf
        tr = step(self.alert, t, rate / level, 1.0, SURGE_FOR_SECONDS, SURGE_RESOLVE_RATIO)
        self._quiet_until = -math.inf  # the alert may be pending now: `quiet` decides again
        return None if tr is None else (tr, rate, baseline)
