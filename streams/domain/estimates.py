"""Measured waits and the forecast of an overload, from the events themselves (pure, event time).

The contract's estimate divides the queue by the registry's nominal capacity; real lanes rarely
clear at it. Here the clearance rate is *measured*, the way traveller-information systems that
work do it (throughput, not assumed capacity):

- `Throughput` counts, over the last hour of event time, the crossings that cleared a party from a
  non-empty queue, and the lane-hours the queue was busy (non-empty), lanes weighted. Their ratio is
  the rate one lane really clears while there is work, which adapts to slow lanes, secondary checks
  and shift changes, and, multiplied by the lanes open now, follows a lane change at once.
- Few clearances say little (one lorry served in 5 or in 15 minutes), so the nominal capacity
  counts as `PRIOR_PARTIES` parties already seen clearing at it: the rate is
  (PRIOR_PARTIES + cleared) / (PRIOR_PARTIES / nominal + busy lane-hours), the mean of a
  Gamma-Poisson posterior with the nominal rate as the prior's mean. A fresh or quiet queue gets
  the nominal rate, a busy one what it really cleared, and nothing jumps at a threshold. Measured on
  the 2022 scenario (`python -m bench.accuracy --seed N`, seeds 1-3) it beat the earlier rule
  (nominal until 8 cleared in the hour) on every seed: its error over every party 0.65 / 0.61 /
  0.72 of the estimate's -> 0.49 / 0.60 / 0.64 (bench/README.md has the alternatives measured).
- Slow lanes get a longer window (`measuring_window`): one lorry lane clears about 6 an hour, so in
  an hour the prior would outweigh what was seen, hours wrong on a day-long queue behind a slow
  lane. The window is long enough for twice `PRIOR_PARTIES` at the nominal rate; it follows a change
  more slowly, which is the price of measuring at all there.
- Expected wait for a party joining now: the queue divided by that rate (the nominal formula with
  the measured rate in place of the nominal one): 0 for an empty queue, +Inf with no lane open.
- Forecast: the event time until the contract's estimate reaches a threshold, if the queue keeps
  growing at (arrivals per hour over the last hour) − (measured clearance per hour): +Inf when it
  is not growing, 0 when the threshold is already reached.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator

from streams.domain.windows import SortedTimes

WINDOW_SECONDS = 3600.0
PRIOR_PARTIES = 8.0


def measuring_window(nominal_per_lane_per_hour: float) -> float:
    """Seconds of event time a queue's clearance is measured over: an hour, or long enough for one
    lane at its nominal rate to clear twice `PRIOR_PARTIES` parties."""
    return max(WINDOW_SECONDS, 2 * PRIOR_PARTIES / nominal_per_lane_per_hour * 3600.0)


class BusySpans:
    """Closed busy spans (start, end, lanes) of a queue, oldest first, in three flat arrays.

    A queue that empties between arrivals closes a span per event. As tuples in a deque they cost
    ~80 bytes each and were most of the garbage collector's young generation in a 2,400-checkpoint
    drain (160,000-200,000 of its objects at each collection); arrays are neither."""

    __slots__ = ("ends", "lanes", "starts")

    def __init__(self, spans: Iterable[tuple[float, float, int]] = ()) -> None:
        self.starts, self.ends, self.lanes = array("d"), array("d"), array("q")
        for start, end, lanes in spans:
            self.add(start, end, lanes)

    def add(self, start: float, end: float, lanes: int) -> None:
        self.starts.append(start)
        self.ends.append(end)
        self.lanes.append(lanes)

    def drop_ended_by(self, cutoff: float) -> None:
        """Drop the oldest spans while they end at or before `cutoff`."""
        ends, k = self.ends, 0
        while k < len(ends) and ends[k] <= cutoff:
            k += 1
        if k:
            del self.starts[:k], self.ends[:k], self.lanes[:k]

    def __iter__(self) -> Iterator[tuple[float, float, int]]:
        # Not `strict`: `add` and `drop_ended_by` keep the three the same length, and the check
        # was a sixth of `lane_hours`, which a scrape calls for each of 14,400 queues.
        return zip(self.starts, self.ends, self.lanes)  # noqa: B905


class Throughput:
    """Busy lane-time and clearances of one queue over its measuring window of event time."""

    __slots__ = ("busy", "busy_lanes", "busy_since", "cleared", "events", "memo", "nominal", "window")

    def __init__(self, nominal_per_lane_per_hour: float) -> None:
        self.nominal = nominal_per_lane_per_hour  # the prior's mean (registry capacity, > 0)
        self.window = measuring_window(nominal_per_lane_per_hour)
        self.cleared = SortedTimes()  # crossings that cleared a party from a non-empty queue
        self.busy = BusySpans()  # closed busy spans
        self.busy_since: float | None = None  # the queue is non-empty since then ...
        self.busy_lanes = 0  # ... with this many lanes open
        self.events = 0  # observed so far: with `now`, what `rate_per_lane` depends on
        self.memo: tuple[float, int, float] | None = None  # (now, events, rate) last computed

    def observe(self, t: float, before: int, after: int, lanes: int) -> None:
        """After an event at t took the queue from `before` to `after` parties with `lanes` open."""
        self.events += 1
        if before > 0 and after < before:
            self.cleared.add(t)
        if self.busy_since is not None and (after == 0 or lanes != self.busy_lanes):
            self.busy.add(self.busy_since, max(t, self.busy_since), self.busy_lanes)
            self.busy_since = None
        if after > 0 and self.busy_since is None:
            self.busy_since, self.busy_lanes = t, lanes

    def prune(self, now: float) -> None:
        """Drop what no window ending at `now` or later can reach (results never depend on when)."""
        cutoff = now - self.window
        self.cleared.prune(cutoff)
        self.busy.drop_ended_by(cutoff)

    def lane_hours(self, now: float) -> float:
        """Busy lane-hours in (now - window, now]: each span clipped to the window, lanes weighted."""
        low = now - self.window
        total = 0.0
        for start, end, lanes in self.busy:  # conditionals, not min/max: a third of the time
            if end > low:
                span = (end if end < now else now) - (start if start > low else low)
                if span > 0:
                    total += span * lanes
        if self.busy_since is not None and now > self.busy_since:
            total += (now - max(self.busy_since, low)) * self.busy_lanes
        return total / 3600.0

    def rate_per_lane(self, now: float) -> float:
        """Parties one lane clears per hour while busy: measured, weighed against the nominal rate.

        Remembered until the next event or another `now`: a scrape asks for it four times per
        queue, and `lane_hours` walks every busy span of the hour (thousands on a queue that
        empties between arrivals)."""
        memo = self.memo
        if memo is not None and memo[0] == now and memo[1] == self.events:
            return memo[2]
        cleared = self.cleared.count_in(now - self.window, now)
        rate = (PRIOR_PARTIES + cleared) / (PRIOR_PARTIES / self.nominal + self.lane_hours(now))
        self.memo = (now, self.events, rate)
        return rate


def wait_seconds(queue: int, lanes: int, per_lane_per_hour: float) -> float:
    """queue / (lanes x rate) x 3600; 0 for an empty queue, +Inf with no lane open."""
    if queue <= 0:
        return 0.0
    if lanes <= 0 or per_lane_per_hour <= 0:
        return math.inf
    return queue / (lanes * per_lane_per_hour) * 3600.0


def seconds_until(threshold_seconds: float, queue: int, lanes: int, nominal_per_lane: float,
                  arrivals_per_hour: float, clearance_per_hour: float) -> float:  # fmt: skip
    """Event time until the contract's estimate (nominal capacity) reaches `threshold_seconds`."""
    if lanes <= 0:
        return 0.0 if queue > 0 else math.inf
    at_threshold = threshold_seconds / 3600.0 * lanes * nominal_per_lane  # the queue that reaches it
    if queue >= at_threshold:
        return 0.0
    growth = arrivals_per_hour - clearance_per_hour
    if growth <= 0:
        return math.inf
    return (at_threshold - queue) / growth * 3600.0
