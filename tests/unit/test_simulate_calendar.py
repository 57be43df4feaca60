"""The simulator's calendar (weekdays, holidays) and its labelled surges (the sidecar file)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bordermon.registry import load_registry
from producers.scenarios import HOLIDAY_PEAKS, SCENARIOS, SURGE_IN_SHARES, SURGE_ONSET, SURGE_START, ordinary_factor
from producers.simulate import DIURNAL, TRUCK_DIURNAL, DailyPersons, Stream, labels_path, surge_labels

BIN = str(Path(sys.executable).with_name("bordermon"))
REGISTRY = load_registry(None)
BUSIEST = sorted(SURGE_IN_SHARES, key=lambda c: -SURGE_IN_SHARES[c])[:5]


def test_an_ordinary_week_averages_one_with_busier_weekends_and_holiday_peaks():
    week = [ordinary_factor(date(2022, 8, 1) + timedelta(days=k)) for k in range(7)]  # Mon 1 Aug 2022
    assert abs(sum(week) / 7 - 1.0) < 1e-9
    assert min(week[4:]) > max(week[1:3])  # Friday to Sunday above Tuesday and Wednesday
    assert ordinary_factor(date(2022, 8, 30)) == ordinary_factor(date(2022, 8, 23)) * HOLIDAY_PEAKS[date(2022, 8, 30)]


def test_the_2022_surge_is_labelled_at_its_busiest_checkpoints_and_nothing_before_it():
    labels = surge_labels(SCENARIOS["mobilization-2022"], REGISTRY, datetime(2022, 8, 17, tzinfo=UTC), 42)
    onsets = {(x["checkpoint_id"], x["direction"]): x["onset"] for x in labels}
    # Of the five largest shares of the surge, the land checkpoints' arrivals multiply; Astana
    # airport's ordinary traffic is large enough that its share only raises it by half.
    land = [cid for cid in BUSIEST if REGISTRY.checkpoints[cid].mode == "road"]
    assert len(land) == 4 and ("astana-airport", "in") not in onsets
    for cid in land:
        assert onsets[(cid, "in")] == "2022-09-21T06:00:00Z"  # the announcement, 09:00 Moscow time
    assert min(onsets.values()) >= f"{SURGE_START}T00:00:00Z"  # Constitution Day is no surge
    assert all(x["onset"] < x["end"] <= "2022-09-28T00:00:00Z" for x in labels)


def test_the_surge_starts_at_the_announcement_and_its_first_day_keeps_the_official_figure():
    scenario = SCENARIOS["mobilization-2022"]
    cp = REGISTRY.checkpoints["kairak"]
    day_start = datetime(2022, 9, 21, tzinfo=UTC).timestamp()
    daily = DailyPersons(scenario, REGISTRY, "kairak", "in")
    # Russian persons per hour over the checkpoint's lane groups: lorry drivers at an ordinary
    # day's rate, travellers the rest.
    russians: dict[float, float] = {}
    for group in cp.lane_groups:
        stream = Stream(cp, "in", scenario, REGISTRY, random.Random(1), day_start, day_start + 86400.0, group)
        for t, rate, ru, lorry in stream.hourly_rates():
            if ru:
                russians[t] = russians.get(t, 0.0) + rate * stream.persons_per_party(lorry)
    assert len(russians) == 24
    assert abs(sum(russians.values()) - daily.scripted(SURGE_START)[0]) < 1e-6  # the day's figure holds
    onset = SURGE_ONSET.timestamp()
    before = [r for t, r in russians.items() if t < onset]
    assert len(before) == 6
    ordinary_day = daily.ordinary_ru(SURGE_START)
    assert all(r <= ordinary_day / 24 * max(DIURNAL + TRUCK_DIURNAL) for r in before)  # an ordinary night
    assert russians[onset] > 5 * before[-1]  # and then the surge, at once


def test_nauryz_is_a_large_ordinary_peak_and_labelled_no_surge():
    holiday = SCENARIOS["holiday"]
    assert surge_labels(holiday, REGISTRY, holiday.start, holiday.default_days) == []
    daily = DailyPersons(holiday, REGISTRY, "kairak", "in")
    peak, tuesday = sum(daily.scripted(date(2023, 3, 22))), sum(daily.scripted(date(2023, 3, 14)))
    assert peak >= 2.0 * tuesday
    assert (date(2023, 3, 22) - holiday.start.date()).days >= 28  # four ordinary weeks before it


def test_a_lane_failure_started_weeks_earlier_still_fails_on_its_day():
    scenario = SCENARIOS["lane-failure"]
    cp = REGISTRY.checkpoints["zhana-zhol"]
    start = datetime(2022, 7, 4, tzinfo=UTC).timestamp()
    stream = Stream(cp, "in", scenario, REGISTRY, random.Random(1), start, start + 31 * 86400.0)
    failure = datetime(2022, 8, 2, 6, tzinfo=UTC).timestamp()
    assert stream.lanes.at(failure + 60) == (0, failure + 7200)
    assert stream.lanes.at(failure - 60)[0] == cp.initial_lanes("in")


def test_simulate_writes_the_labels_beside_the_log(tmp_path):
    out = tmp_path / "surge.jsonl.gz"
    args = ["simulate", "--scenario", "mobilization-2022", "--start", "2022-09-20", "--days", "2", "--out", str(out)]
    result = subprocess.run([BIN, *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    sidecar = json.loads((tmp_path / "surge.surges.json").read_text())
    assert labels_path(str(out)) == str(tmp_path / "surge.surges.json")
    assert sidecar["scenario"] == "mobilization-2022" and sidecar["start"] == "2022-09-20T00:00:00Z"
    kairak = [x for x in sidecar["surges"] if x["checkpoint_id"] == "kairak" and x["direction"] == "in"]
    assert kairak == [{"checkpoint_id": "kairak", "direction": "in", "onset": "2022-09-21T06:00:00Z",
                       "end": "2022-09-22T00:00:00Z"}]  # fmt: skip
