"""ArrivalSurge against its independent model (tests/fixtures/surgeref.py), on weeks of seasonal
traffic with labelled surges and decoys: the same transitions, also across crashes at the worst
moment; found within 90 minutes of onset; silent on an ordinary peak, on too little history, and
when a queue grows for want of lanes."""

from __future__ import annotations

import time
from datetime import timedelta

import orjson
import pytest

from bordermon.config import ALERTS_TOPIC, EVENTS_TOPIC
from bordermon.registry import parse_registry
from streams.domain.surge import SurgeState, surge_level
from tests.fixtures.checks import assert_surges_match
from tests.fixtures.inprocess import InProcessWorker, MemoryBroker, crash_in_rounds, publish
from tests.fixtures.oracle import run_oracle
from tests.fixtures.registry import REGISTRY
from tests.fixtures.seasonal import START, Episode, seasonal_log

ONSET = START + timedelta(days=28, hours=1)  # 06:00 local on the 29th day
MEANS = {("syrym", "in"): 30.0, ("syrym", "out"): 20.0, ("kairak", "in"): 12.0}
EPISODES = [
    Episode("syrym", "in", ONSET, 48, 6.0, surge=True),
    Episode("kairak", "in", ONSET - timedelta(days=3), 24, 1.8, surge=False),  # a holiday's peak
]


@pytest.fixture(scope="module")
def log():
    return seasonal_log(MEANS, 31, EPISODES, seed=1)


@pytest.fixture(scope="module")
def expected(log):
    return run_oracle(log, REGISTRY, time.time())


def run(log, partitions=1, crash_every=None):
    broker = MemoryBroker()
    broker.create(EVENTS_TOPIC, partitions)
    publish(broker, log, "murmur2")
    worker = InProcessWorker(parse_registry(REGISTRY, "test"), broker, batch=500, commit_every=4)
    if crash_every is None:
        worker.run()
    else:
        crash_in_rounds(worker, len(log) // (500 * crash_every) + 1, lambda _: crash_every)
    return worker


def test_the_pipeline_flags_what_the_independent_model_flags(log, expected):
    worker = run(log)
    assert_surges_match(worker.broker.values(ALERTS_TOPIC), expected)


def test_a_worker_that_crashes_again_and_again_emits_the_uninterrupted_transitions(log, expected):
    """Crashes after outputs and before state, every 40 batches: the hourly counts and the alert
    come back from the changelog, and no transition is lost or sent twice."""
    worker = run(log, partitions=2, crash_every=40)
    assert_surges_match(worker.broker.values(ALERTS_TOPIC), expected)


def test_the_labelled_surge_is_found_within_90_minutes_and_nothing_else_is(expected):
    fired = [s for s in expected.surges if s[2] == "firing"]
    assert [(s[0], s[1]) for s in fired] == [("syrym", "in")], fired
    delay = (fired[0][4] - ONSET.timestamp()) / 60
    assert 0 < delay <= 90, delay
    (resolved,) = [s for s in expected.surges if s[2] == "resolved"]
    end = (ONSET + timedelta(hours=48)).timestamp()
    assert end <= resolved[5] <= end + 2 * 3600, "it ends when the surge does"


def test_a_new_normal_ends_the_alert_within_days_not_weeks():
    onset = START + timedelta(days=21)
    lasting = [Episode("syrym", "in", onset, 24 * 9, 4.0, surge=True)]
    expected = run_oracle(seasonal_log({("syrym", "in"): 30.0}, 31, lasting, seed=2), REGISTRY, time.time())
    statuses = [(s[2], (s[4 if s[2] == "firing" else 5] - onset.timestamp()) / 3600) for s in expected.surges]
    assert statuses[0][0] == "firing" and statuses[0][1] <= 1.5, statuses
    assert statuses[1][0] == "resolved" and statuses[1][1] <= 52, "two days at the new level make it typical"
    assert len(statuses) <= 4, f"it does not flap: {statuses}"


def test_silent_with_less_than_three_days_of_history():
    state = SurgeState()
    t = START.timestamp()
    for i in range(2 * 24 * 30):  # two days at 30 an hour
        state.add(t + i * 120)
    assert state.baseline(t + 2 * 86400) is None
    for i in range(3000):  # then a wave no history can call unusual
        now = t + 2 * 86400 + i
        assert not state.arrive(now, now) or state.evaluate(now, now, 3600.0) is None


def test_a_queue_that_grows_for_want_of_lanes_is_not_a_surge(log, expected):
    """The lanes closing at syrym out (its arrivals unchanged) flag nothing there."""
    closed = {"event_id": "close", "type": "lanes", "checkpoint_id": "syrym", "direction": "out",
              "ts": (START + timedelta(days=29)).strftime("%Y-%m-%dT%H:%M:%SZ"), "lanes_open": 0}  # fmt: skip
    lanes_closed = run_oracle([*log, orjson.dumps(closed)], REGISTRY, time.time())
    assert not [s for s in lanes_closed.surges if s[:2] == ("syrym", "out")]


def test_the_level_needs_three_times_the_baseline_and_twenty_an_hour():
    assert surge_level(0) == 20 and surge_level(4.6) == 20, "at least twenty an hour"
    assert surge_level(6.7) == pytest.approx(20.1), "three times the baseline above that"
    assert surge_level(100) == 300


def test_the_message_and_the_alertmanager_payload_have_the_contracts_fields():
    from bordermon.registry import parse_registry as parse
    from streams.domain.alertmessages import AlertMessage
    from streams.domain.alerts import Transition
    from streams.domain.state import AlertEvent

    cp = parse(REGISTRY, "test")["syrym"]
    resolved = Transition("resolved", 1663545600.0, 1663547400.0, 1663720000.0)
    event = AlertEvent(cp, "in", None, "warning", resolved, 0.0, 12, 1, 73.0, 0, "ArrivalSurge", None, 76.26)
    message = orjson.loads(AlertMessage.of(event).border_alert())
    assert set(message) >= {"alertname", "severity", "status", "checkpoint_id", "direction", "starts_at",
                            "fired_at", "ends_at", "arrivals_per_hour", "baseline_per_hour"}  # fmt: skip
    assert (message["arrivals_per_hour"], message["baseline_per_hour"], message["ends_at"]) == (
        73.0, 76.3, "2022-09-21T00:26:40Z")  # fmt: skip
    assert "lane_group" not in message, "per checkpoint and direction, every group together"
    pushed = AlertMessage.of(event).alertmanager_alert("http://worker")
    assert pushed["labels"] == {"alertname": "ArrivalSurge", "severity": "warning", "checkpoint": "syrym",
                                "direction": "in"}  # fmt: skip
    assert pushed["endsAt"] == message["ends_at"] and pushed["annotations"]["runbook_url"].endswith("ArrivalSurge.md")


def test_the_report_draws_the_surge_on_its_own_row_from_firing_to_resolved(log, expected):
    from dashboards.report import alerts_figure, collect

    registry = parse_registry(REGISTRY, "test")
    data = collect(registry, log, 3600.0, now=time.time())
    (surge,) = [i for i in data.intervals if i.alertname == "ArrivalSurge"]
    fired = next(s for s in expected.surges if s[2] == "firing")
    resolved = next(s for s in expected.surges if s[2] == "resolved")
    assert (surge.checkpoint, surge.direction, surge.start, surge.end) == ("syrym", "in", fired[4], resolved[5])
    (trace,) = [t for t in alerts_figure(data, registry).data if t.name == "ArrivalSurge warning"]
    assert list(trace.y) == ["syrym in · surge"] and trace.marker.color == "#17becf"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_baseline_is_the_independent_models_at_every_hour_and_any_history(seed):
    """On histories of hours to five weeks, with gaps and late arrivals, the baseline at any moment
    is the independent model's, or absent where the model's is: the weeks and days it reads, their
    neighbours, the median and the blend of two clock hours, not only the alerts they lead to."""
    import random

    from tests.fixtures.surgeref import SurgeModel

    rng = random.Random(seed)
    compared = known = 0
    for _ in range(60):
        state, model = SurgeState(), SurgeModel()
        start = rng.randrange(400_000, 500_000) * 3600.0
        span = rng.choice([5, 30, 80, 200, 500, 900]) * 3600.0
        times = sorted(start + rng.uniform(0, span) for _ in range(rng.randrange(20, 600)))
        for k, t in enumerate(times):
            if rng.random() < 0.05 and k:  # a late arrival, up to two days behind
                t = max(start, t - rng.uniform(0, 2 * 86400))
            state.add(t)
            model.arrival(t, t)
        for hour in range(state.end - 900, state.end + 3, rng.choice([1, 5, 11])):
            now = hour * 3600.0 + rng.uniform(0, 3600)
            want = model.baseline(now)
            got = state.baseline(now)
            assert (got is None) == (want is None), (hour, got, want)
            if want is not None:
                assert got == pytest.approx(want, rel=1e-12), hour
                known += 1
            compared += 1
    assert known > 1000 and compared > known, (known, compared)
