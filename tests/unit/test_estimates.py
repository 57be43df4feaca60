"""Measured clearance, expected wait and the overload forecast (streams.domain.estimates), and the
QueueOverloadForecast they drive."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from bordermon.events import Arrival, Crossing, Lanes
from bordermon.registry import parse_registry
from streams.domain.estimates import (
    PRIOR_PARTIES,
    WINDOW_SECONDS,
    Throughput,
    measuring_window,
    seconds_until,
    wait_seconds,
)
from streams.domain.state import CheckpointState

REGISTRY = parse_registry(
    """
checkpoints:
  - {id: syrym, name: S, region: R, lat: 0, lon: 0, mode: road, lanes: {in: 1, out: 1},
     lane_capacity_per_hour: 30, wait_warning_minutes: 120, wait_critical_minutes: 360}
""",
    "test",
)
T0 = datetime(2022, 9, 22, tzinfo=UTC).timestamp()


def posterior(cleared: float, lane_hours: float, nominal: float) -> float:
    """The rate the module documents, written out here: the nominal rate as PRIOR_PARTIES seen."""
    return (PRIOR_PARTIES + cleared) / (PRIOR_PARTIES / nominal + lane_hours)


def test_clearance_is_crossings_over_busy_lane_hours_weighed_against_nominal():
    tp = Throughput(30.0)
    tp.observe(0, 0, 1, 2)  # the queue becomes busy with two lanes
    for i in range(1, 21):
        tp.observe(i * 180.0, 5, 4, 2)  # 20 parties cleared in an hour, still busy
    assert tp.lane_hours(3600) == pytest.approx(2.0)
    assert tp.rate_per_lane(3600) == pytest.approx(posterior(20, 2.0, 30.0))  # 12.4: nearer 10 than 30
    agreeing = Throughput(10.0)
    agreeing.observe(0, 0, 1, 2)
    for i in range(1, 21):
        agreeing.observe(i * 180.0, 5, 4, 2)
    assert agreeing.rate_per_lane(3600) == pytest.approx(10.0), "a prior that agrees changes nothing"


def test_idle_time_is_not_counted_and_little_evidence_stays_near_nominal():
    tp = Throughput(30.0)
    assert tp.rate_per_lane(3600) == pytest.approx(30.0), "nothing seen: the nominal rate"
    tp.observe(0, 0, 3, 1)
    for i in range(3):
        tp.observe(60.0 * (i + 1), 3 - i, 2 - i, 1)  # 3 cleared in 3 busy minutes: 60 an hour
    assert tp.rate_per_lane(3600) == pytest.approx(posterior(3, 0.05, 30.0))
    assert 30 < tp.rate_per_lane(3600) < 36, "three quick crossings move the rate only a little"
    tp.observe(3000, 0, 1, 1)
    for i in range(10):
        tp.observe(3000 + 30 * (i + 1), 2, 1, 1)  # 10 cleared in 5 busy minutes
    assert tp.lane_hours(3300) == pytest.approx((3 * 60 + 300) / 3600), "busy 0-180 s and 3000-3300 s"
    assert tp.rate_per_lane(3300) == pytest.approx(posterior(13, (3 * 60 + 300) / 3600, 30.0))


def test_a_slow_lane_is_measured_over_a_longer_window():
    # A lorry lane: 6 an hour nominal, really 5 an hour, busy for four hours.
    assert measuring_window(60) == WINDOW_SECONDS, "a car lane keeps the hour"
    window = measuring_window(6)
    assert window == pytest.approx(2 * PRIOR_PARTIES / 6 * 3600)
    tp = Throughput(6.0)
    assert tp.window == window
    tp.observe(0, 0, 30, 1)
    for i in range(1, 21):
        tp.observe(i * 720.0, 30, 29, 1)  # one cleared every 12 minutes, still busy
    now = 20 * 720.0
    assert tp.rate_per_lane(now) == pytest.approx(posterior(14, window / 3600, 6.0)), "14 cleared in 2.67 h"
    assert tp.rate_per_lane(now) < posterior(5, 1.0, 6.0), "nearer the real 5 an hour than one hour's evidence"


def test_a_lane_change_splits_busy_time():
    tp = Throughput(30.0)
    tp.observe(0, 0, 3, 1)
    tp.observe(1800, 3, 3, 3)  # lanes 1 -> 3 while busy
    assert tp.lane_hours(3600) == pytest.approx(0.5 * 1 + 0.5 * 3)


def test_wait_and_forecast_edges():
    assert wait_seconds(0, 0, 30) == 0 and math.isinf(wait_seconds(5, 0, 30))
    assert wait_seconds(60, 2, 15) == 7200
    # 1 lane at 30 nominal, critical 6 h -> 180 parties; queue 120 growing 40 an hour -> 1.5 h.
    assert seconds_until(6 * 3600, 120, 1, 30, 60, 20) == pytest.approx(5400)
    assert math.isinf(seconds_until(6 * 3600, 120, 1, 30, 20, 20)), "not growing"
    assert seconds_until(6 * 3600, 200, 1, 30, 0, 30) == 0, "already there"
    assert seconds_until(6 * 3600, 3, 0, 30, 0, 0) == 0 and math.isinf(seconds_until(60, 0, 0, 30, 5, 0))


def feed(cs: CheckpointState, minutes: int) -> list:
    """An arrival every minute, a crossing every three: the queue grows 40 an hour."""
    out = []
    for m in range(minutes):
        t = T0 + 60 * m
        ts = datetime.fromtimestamp(t, UTC)
        out += cs.apply(Arrival(event_id=f"a{m}", checkpoint_id="syrym", direction="in", ts=ts), t)
        if m % 3 == 2:
            c = Crossing(event_id=f"c{m}", checkpoint_id="syrym", direction="in", ts=ts, persons=1, citizenship="RU")
            out += cs.apply(c, t)
    return out


def test_forecast_fires_well_before_the_overload_it_forecasts():
    cs = CheckpointState(REGISTRY["syrym"])
    transitions = feed(cs, 320)
    fired = {(a.alertname, a.severity): a.transition.fired_at for a in transitions if a.transition.status == "firing"}
    forecast = fired[("QueueOverloadForecast", "warning")]
    critical = fired[("QueueOverload", "critical")]
    assert critical - forecast >= 30 * 60, (critical - forecast) / 60
    q = cs.queue("in")
    assert q.clearance_per_lane(cs.last_ts) == pytest.approx(posterior(20, 1.0, 30), rel=0.05), "measured, near 20"
    assert q.expected_wait_seconds(cs.last_ts) > q.wait_seconds(), "slower lanes: a longer expected wait"


def test_forecast_resolves_when_the_queue_stops_growing():
    cs = CheckpointState(REGISTRY["syrym"])
    feed(cs, 240)
    assert cs.queue("in").forecast.firing
    t = T0 + 240 * 60
    resolved = []
    for i in range(60):  # lanes opened: the queue shrinks
        t += 60
        ts = datetime.fromtimestamp(t, UTC)
        if i == 0:
            resolved += cs.apply(Lanes(event_id="l", checkpoint_id="syrym", direction="in", ts=ts, lanes_open=4), t)
        c = Crossing(event_id=f"x{i}", checkpoint_id="syrym", direction="in", ts=ts, persons=1, citizenship="RU")
        resolved += cs.apply(c, t)
    assert [a.transition.status for a in resolved if a.alertname == "QueueOverloadForecast"] == ["resolved"]


def test_the_remembered_rate_is_always_the_one_computed_afresh():
    """`rate_per_lane` remembers its answer until the next event or another `now`: at every
    step it equals the rate of a throughput rebuilt from the same spans (as a restore does)."""
    import random

    rng = random.Random(11)
    tp, t, queue, lanes = Throughput(30.0), 0.0, 0, 2
    probe = 0.0  # a `now` asked again after events: the remembered answer must not outlive them
    rates: set[float] = set()
    for i in range(3000):
        if i % 50 == 0:
            probe = t + 2000.0
        t += rng.uniform(0, 40)
        before = queue
        kind = rng.random()
        if kind < 0.5:
            queue += 1
        elif kind < 0.95:
            queue = max(0, queue - 1)
        else:
            lanes = rng.choice([1, 2, 3])
        tp.observe(t, before, queue, lanes)
        for now in (probe,) if i // 25 % 2 else (t, t):  # runs of the same `now` across events
            fresh = Throughput(30.0)
            fresh.cleared, fresh.busy = tp.cleared, tp.busy
            fresh.busy_since, fresh.busy_lanes = tp.busy_since, tp.busy_lanes
            assert tp.rate_per_lane(now) == fresh.rate_per_lane(now)
            rates.add(fresh.rate_per_lane(now))
        if rng.random() < 0.05:
            tp.prune(t)
    assert len(rates) > 1000, "the rate moved with what was seen: the memo was tested against many answers"


def test_busy_lane_hours_are_each_span_clipped_to_the_hour():
    import random

    rng = random.Random(4)
    tp = Throughput(30.0)
    t = 0.0
    for _ in range(2000):  # spans a little out of order, as late events make them
        start = t + rng.uniform(-30, 60)
        tp.busy.add(start, start + rng.uniform(0, 120), rng.randint(1, 4))
        t += 45
    for now in (0.0, 1800.0, t / 2, t - 10, t + 5000, t + 10_000):
        low = now - 3600.0
        expected = sum(max(0.0, min(e, now) - max(s, low)) * lanes for s, e, lanes in tp.busy) / 3600.0
        assert tp.lane_hours(now) == expected, now  # the same arithmetic, the same floats
