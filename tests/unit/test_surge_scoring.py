"""`make accuracy`'s surge scoring (bench/surge.py): the NAB-style score and the z-score anchor,
on logs whose answers are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from bench.surge import Log, nab, sigmoid, zscore_detections

DAY = 86400.0
START = 1_650_000_000.0 - 1_650_000_000.0 % DAY


def log(labels: list[tuple[str, float]], days: int = 20, arrivals: dict | None = None) -> Log:
    return Log("test", START, START + days * DAY,
               [{"checkpoint_id": cid, "direction": "in", "onset": _iso(t), "end": _iso(t + DAY)} for cid, t in labels],
               [], arrivals or {})  # fmt: skip


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_every_onset_detected_at_once_scores_the_best_and_none_scores_minus_one_each():
    onsets = [("a", START + 10 * DAY), ("b", START + 12 * DAY)]
    raw, windows = nab(log(onsets), {("a", "in"): [onsets[0][1]], ("b", "in"): [onsets[1][1]]})
    assert windows == 2 and raw == pytest.approx(2 * sigmoid(-1.0))
    raw, _ = nab(log(onsets), {})
    assert raw == pytest.approx(-2.0)


def test_a_later_detection_in_the_window_is_worth_less_and_one_after_it_costs_less_than_one_far_away():
    onset = START + 10 * DAY
    width = 0.1 * 20 * DAY  # one surge in a 20-day log
    early, _ = nab(log([("a", onset)]), {("a", "in"): [onset + 0.1 * width]})
    late, _ = nab(log([("a", onset)]), {("a", "in"): [onset + 0.9 * width]})
    assert early > late > 0
    near, _ = nab(log([("a", onset)]), {("a", "in"): [onset + 1.1 * width]})  # a miss and a false alarm near it
    far, _ = nab(log([("a", onset)]), {("b", "in"): [onset]})  # a miss and a false alarm on another stream
    assert far == pytest.approx(-1.0 - 0.11)
    assert -1.0 - 0.11 < near < -1.0


def test_the_zscore_anchor_fires_5_minutes_into_a_rise_after_a_flat_week_and_not_before():
    flat = np.arange(START, START + 9 * DAY, 60.0)  # one arrival a minute for 9 days
    surge = np.arange(START + 9 * DAY, START + 10 * DAY, 10.0)  # then six a minute
    fired = zscore_detections(log([], 10, {("a", "in"): np.concatenate([flat, surge])}))[("a", "in")]
    assert fired[0] == START + 9 * DAY + 5 * 60, [(t - START) / 60 for t in fired[:3]]
    quiet = zscore_detections(log([], 10, {("a", "in"): flat}))[("a", "in")]
    assert quiet == []
