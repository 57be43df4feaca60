"""The QueueOverload state machine, edge cases named in the contract and issue 2."""

import math

import pytest

from bordermon.registry import parse_registry
from bordermon.timeutil import parse_rfc3339
from streams.domain.alerts import AlertState, step

THR, FOR, RATIO = 7200.0, 600.0, 0.8


def run(events, for_seconds=FOR, ratio=RATIO):
    state, out = AlertState(), []
    for t, wait in events:
        tr = step(state, t, wait, THR, for_seconds, ratio)
        if tr:
            out.append((tr.status, tr.starts_at, tr.fired_at, tr.ends_at))
    return state, out


def test_fires_after_for_minutes_from_first_event_over_threshold():
    _, out = run([(0, 7200), (300, 8000), (599, 9000), (600, 9000), (700, 9000)])
    assert out == [("firing", 0, 600, None)]


def test_pending_is_dropped_by_an_event_below_threshold_and_restarts():
    state, out = run([(0, 7200), (300, 7199), (400, 7300), (999, 7300), (1000, 7300)])
    assert out == [("firing", 400, 1000, None)]
    assert state.firing


def test_for_minutes_zero_fires_on_the_first_event():
    _, out = run([(10, 7200)], for_seconds=0)
    assert out == [("firing", 10, 10, None)]


def test_infinite_wait_fires_and_does_not_resolve_until_finite_and_low():
    _, out = run([(0, math.inf), (600, math.inf), (700, 7000), (800, 5759.9)])
    assert out == [("firing", 0, 600, None), ("resolved", 0, 600, 800)]


def test_resolve_ratio_hysteresis_keeps_firing_between_ratio_and_threshold():
    state, out = run([(0, 8000), (600, 8000), (700, 7000), (800, 5760)])
    assert out == [("firing", 0, 600, None)]
    assert state.firing  # 5760 = 0.8 * 7200 is not below the resolve level
    _, out = run([(0, 8000), (600, 8000), (700, 5759)])
    assert out[-1] == ("resolved", 0, 600, 700)


def test_out_of_order_event_before_t0_does_not_fire():
    # t - t0 is negative for an older event: still pending, fires once enough event time passed.
    _, out = run([(1000, 8000), (100, 8000), (1599, 8000), (1600, 8000)])
    assert out == [("firing", 1000, 1600, None)]


def test_after_resolve_a_new_episode_starts_fresh():
    _, out = run([(0, 8000), (600, 8000), (700, 0), (800, 8000), (1400, 8000)])
    assert [o[0] for o in out] == ["firing", "resolved", "firing"]
    assert out[2][1] == 800


def test_offsets_are_the_same_instant():
    a = parse_rfc3339("2022-09-21T11:15:00+05:00")
    b = parse_rfc3339("2022-09-21T06:15:00Z")
    assert a == b
    _, out = run([(a, 8000), (b + 600, 8000)])
    assert out == [("firing", a, a + 600, None)]


REGISTRY = """
alerting: {for_minutes: 10, resolve_ratio: 0.8}
checkpoints:
  - {id: a, name: A, region: R, lat: 0, lon: 0, mode: road, lanes: {in: 1, out: 1},
     lane_capacity_per_hour: 30, wait_warning_minutes: 120, wait_critical_minutes: 360}
  - {id: b, name: B, region: R, lat: 0, lon: 0, mode: road, lanes: {in: 1, out: 1},
     lane_capacity_per_hour: 30, wait_warning_minutes: 120, wait_critical_minutes: 360,
     alerting: {for_minutes: 0}}
  - {id: c, name: C, region: R, lat: 0, lon: 0, mode: road, lanes: {in: 1, out: 1},
     lane_capacity_per_hour: 30, wait_warning_minutes: 120, wait_critical_minutes: 360,
     alerting: {resolve_ratio: 0.5}}
"""


@pytest.mark.parametrize(("cid", "for_seconds", "ratio"), [("a", 600.0, 0.8), ("b", 0.0, 0.8), ("c", 600.0, 0.5)])
def test_per_checkpoint_overrides_merge_with_defaults(cid, for_seconds, ratio):
    cp = parse_registry(REGISTRY, "test")[cid]
    assert (cp.for_seconds, cp.resolve_ratio) == (for_seconds, ratio)
