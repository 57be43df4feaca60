"""Scenario figures, measured from each scenario's own output (via the CLI)."""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest

from bordermon.registry import load_registry
from bordermon.timeutil import parse_rfc3339
from streams.domain.processor import Processor
from streams.offline.local import LocalRun

BIN = str(Path(sys.executable).with_name("bordermon"))
LAND_NAMED = ["syrym", "taskala", "zhana-zhol", "karakoga", "kairak", "astana-airport", "almaty-airport"]


def simulate_bytes(tmp_path_factory, scenario: str, *extra: str) -> bytes:
    out = tmp_path_factory.mktemp(scenario) / "events.jsonl.gz"
    result = subprocess.run(
        [BIN, "simulate", "--scenario", scenario, "--out", str(out), *extra], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return gzip.decompress(out.read_bytes())


def simulate(tmp_path_factory, scenario: str, *extra: str) -> tuple[list[dict], bytes]:
    raw = simulate_bytes(tmp_path_factory, scenario, *extra)
    return [orjson.loads(line) for line in raw.splitlines()], raw


def worst_waits_hours(events: list[dict], lane_group: str = "cars") -> dict[tuple[str, str], float]:
    """Wait estimate as the contract defines it, recomputed independently from the events, per
    checkpoint and direction in `lane_group` (the only group of a checkpoint without groups)."""
    registry = load_registry()
    queue: Counter = Counter()
    lanes: dict = {}
    worst: dict = defaultdict(float)
    for e in events:
        cp = registry[e["checkpoint_id"]]
        group = (
            cp.group_by_id[e["lane_group"]]
            if e["type"] == "lanes" and "lane_group" in e
            else cp.group_of(e.get("mode"))
        )
        if group.id not in (lane_group, "all"):
            continue
        key = (e["checkpoint_id"], e["direction"])
        if e["type"] == "arrival":
            queue[key] += 1
        elif e["type"] == "crossing":
            queue[key] = max(0, queue[key] - 1)
        else:
            lanes[key] = e["lanes_open"]
        n = lanes.get(key, group.initial_lanes(key[1]))
        wait = 0.0 if queue[key] == 0 else float("inf") if n == 0 else queue[key] / (n * group.lane_capacity_per_hour)
        worst[key] = max(worst[key], wait)
    return worst


@pytest.fixture(scope="module")
def mobilization(tmp_path_factory):
    return simulate(tmp_path_factory, "mobilization-2022")


def ru_persons(events, direction, first, last):
    return sum(
        e["persons"]
        for e in events
        if e["type"] == "crossing"
        and e["citizenship"] == "RU"
        and e["direction"] == direction
        and first <= e["ts"][:10] <= last
    )


def test_mobilization_spans_its_period_in_order_with_unique_ids(mobilization):
    events, _ = mobilization
    assert events[0]["ts"].startswith("2022-09-14") and events[-1]["ts"].startswith("2022-11-30")
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    assert len({e["event_id"] for e in events}) == len(events)


def test_same_seed_same_bytes_other_seed_other_traffic(tmp_path_factory):
    """Two runs of the surge's first days are byte-identical; another seed is not. (How fast the
    simulator runs is a bench figure: `make bench` reports simulate_events_per_s.)"""
    args = ("--start", "2022-09-20", "--days", "4")
    first = simulate_bytes(tmp_path_factory, "mobilization-2022", *args)
    second = simulate_bytes(tmp_path_factory, "mobilization-2022", *args)
    other = simulate_bytes(tmp_path_factory, "mobilization-2022", *args, "--seed", "2")
    assert len(first) > 1_000_000 and first == second
    assert other != first


def test_mobilization_matches_official_figures(mobilization):
    events, _ = mobilization
    surge_in = ru_persons(events, "in", "2022-09-21", "2022-10-04")
    surge_out = ru_persons(events, "out", "2022-09-21", "2022-10-04")
    print(f"\n21 Sep-4 Oct: {surge_in:,} RU in, {surge_out:,} RU out")
    assert 180_000 <= surge_in <= 220_000
    assert 132_300 <= surge_out <= 161_700
    daily = Counter()
    for e in events:
        if e["type"] == "crossing" and e["citizenship"] == "RU" and e["direction"] == "in":
            daily[e["ts"][:10]] += e["persons"]
    peak_day, peak = daily.most_common(1)[0]
    print(f"peak {peak:,} on {peak_day}")
    assert 27_000 <= peak <= 33_000 and "2022-09-22" <= peak_day <= "2022-09-28"
    oct34_in = ru_persons(events, "in", "2022-10-03", "2022-10-04")
    oct34_out = ru_persons(events, "out", "2022-10-03", "2022-10-04")
    assert 14_000 * 0.9 <= oct34_in <= 16_000 * 1.1, oct34_in
    assert 21_000 * 0.9 <= oct34_out <= 22_000 * 1.1, oct34_out
    assert oct34_out > oct34_in  # more left than arrived by early October
    total_in = ru_persons(events, "in", "2022-09-21", "2022-11-29")
    total_out = ru_persons(events, "out", "2022-09-21", "2022-11-29")
    print(f"by 29 Nov: {total_in:,} in, {total_out:,} out, {total_in - total_out:,} stayed")
    assert 400_000 <= total_in <= 440_000
    assert 288_000 <= total_out <= 352_000
    assert 85_000 <= total_in - total_out <= 115_000


def test_mobilization_demographics_and_where_they_crossed(mobilization):
    events, _ = mobilization
    surge = [
        e
        for e in events
        if e["type"] == "crossing"
        and e["citizenship"] == "RU"
        and e["direction"] == "in"
        and "2022-09-21" <= e["ts"][:10] <= "2022-10-04"
    ]
    persons = sum(e["persons"] for e in surge)

    def by(field: str) -> Counter:
        totals: Counter = Counter()
        for e in surge:
            totals[e[field]] += e["persons"]
        return totals

    sexes, ages, where = by("sex"), by("age_band"), by("checkpoint_id")
    assert sexes["m"] / persons > 0.75
    assert ages["18-28"] / persons > 0.5
    assert ages.most_common(2)[1][0] == "29-39"
    assert (ages["40-59"] + ages["60+"]) / persons < 0.15
    assert sum(where[c] for c in LAND_NAMED) / persons > 0.6


def test_mobilization_land_queues_overload_by_themselves(mobilization):
    events, _ = mobilization
    worst = worst_waits_hours(events)
    land = {k: v for k, v in worst.items() if load_registry()[k[0]].mode == "road"}
    top = sorted(land.items(), key=lambda kv: -kv[1])[:4]
    print("\nworst land waits (h):", [(k, round(v, 1)) for k, v in top])
    assert top[0][1] >= 10
    assert sum(v >= 6 for v in land.values()) >= 3  # several land checkpoints past critical
    lanes = [e for e in events if e["type"] == "lanes"]
    assert lanes and all(e["lanes_open"] > 0 for e in lanes)  # operators open lanes in response


def test_mobilization_lorries_follow_the_freight_figure_not_the_surge(mobilization):
    """Lorries are 40% of the vehicles on an ordinary day (2.2M of 5.5M in 2023), cross at that
    rate through the surge, and queue in their own lanes: hours, not the cars' surge."""
    events, _ = mobilization
    per_day: Counter = Counter()
    for e in events:
        if e["type"] == "crossing" and e["mode"] in ("car", "bus", "truck"):
            per_day[(e["ts"][:10], e["mode"] == "truck")] += 1
    before = [per_day[(f"2022-09-{d:02d}", True)] for d in range(14, 21)]
    surge = [per_day[(f"2022-09-{d:02d}", True)] for d in range(22, 29)]
    vehicles = sum(per_day[(f"2022-09-{d:02d}", k)] for d in range(14, 21) for k in (False, True))
    assert 0.35 <= sum(before) / vehicles <= 0.45, sum(before) / vehicles
    # 2022: ~1.7M lorries through 30 road checkpoints; the bundled 17 carry their share or so.
    national_each_way_per_day = 1_700_000 / 365 / 2
    assert 0.6 <= sum(before) / 7 / 2 / (national_each_way_per_day * 17 / 30) <= 1.1
    assert abs(sum(surge) / sum(before) - 1) < 0.1  # freight does not flee the mobilization
    lorries = worst_waits_hours(events, "trucks")
    cars = worst_waits_hours(events, "cars")
    assert max(cars.values()) > 10 and 1 < max(lorries.values()) < 48, (max(cars.values()), max(lorries.values()))
    assert lorries[("syrym", "in")] < cars[("syrym", "in")] / 2  # the surge is the cars'


def run_pipeline(events: list[dict]) -> tuple[Processor, list[dict]]:
    run = LocalRun(load_registry())
    alerts = []
    for result in run.feed(orjson.dumps(e) for e in events):
        alerts += [orjson.loads(o.value) for o in result.alerts]
    return run.processor, alerts


def test_lane_failure_takes_all_lanes_for_two_hours_and_alerts(tmp_path_factory):
    events, _ = simulate(tmp_path_factory, "lane-failure", "--seed", "3")
    changes = [e for e in events if e["type"] == "lanes" and e["checkpoint_id"] == "zhana-zhol"]
    # Every lane of every group (cars and lorries alike) closes, and reopens two hours later.
    groups = load_registry()["zhana-zhol"].lane_groups
    assert sorted({(e["direction"], e.get("lane_group", "all")) for e in changes}) == sorted(
        (d, g.id) for d in ("in", "out") for g in groups
    )
    for direction in ("in", "out"):
        for group in groups:
            off, on = [e for e in changes if e["direction"] == direction and e.get("lane_group", "all") == group.id]
            assert off["lanes_open"] == 0 and on["lanes_open"] == group.initial_lanes(direction)
            assert parse_rfc3339(on["ts"]) - parse_rfc3339(off["ts"]) == 2 * 3600
    _, alerts = run_pipeline(events)
    zj = [(a["severity"], a["status"], a["direction"]) for a in alerts if a["checkpoint_id"] == "zhana-zhol"]
    assert ("critical", "firing", "in") in zj and ("critical", "resolved", "in") in zj
    assert all(a["checkpoint_id"] == "zhana-zhol" for a in alerts if a["severity"] == "critical")


def test_baseline_is_ordinary_traffic(tmp_path_factory):
    events, _ = simulate(tmp_path_factory, "baseline", "--days", "3")
    days = Counter(e["ts"][:10] for e in events if e["type"] == "crossing")
    assert len(days) == 3
    ru_daily = ru_persons(events, "in", "2022-08-01", "2022-08-03") / 3
    assert 2_500 <= ru_daily <= 3_500
    _, alerts = run_pipeline(events)
    assert not [a for a in alerts if a["severity"] == "critical"]
    assert max(worst_waits_hours(events).values()) < 2


def test_lanes_clear_below_nominal_and_every_crossing_knows_its_wait(mobilization):
    """The simulator's service is not the registry's nominal figure, and it tells each party's
    true wait: the time from its arrival (an event of the same queue) to its crossing."""
    events, _ = mobilization
    arrivals: dict = defaultdict(set)
    for e in events:
        if e["type"] == "arrival":
            arrivals[(e["checkpoint_id"], e["direction"])].add(parse_rfc3339(e["ts"]))
    crossings = [e for e in events if e["type"] == "crossing"]
    assert all(e["true_wait_s"] >= 0 for e in crossings)
    sample = crossings[:: len(crossings) // 2000]
    matched = sum(parse_rfc3339(e["ts"]) - e["true_wait_s"] in arrivals[(e["checkpoint_id"], e["direction"])]
                  for e in sample)  # fmt: skip
    assert matched == len(sample)
    # Kairak entering during the surge: in hours with a long queue (all lanes busy), each open lane
    # clears clearly fewer than the registry's nominal 20 parties an hour.
    lanes = 2
    per_lane: Counter = Counter()
    for e in events:
        if e["checkpoint_id"] != "kairak" or e["direction"] != "in":
            continue
        if e["type"] == "lanes":
            lanes = e["lanes_open"]
        elif e["type"] == "crossing" and e["true_wait_s"] > 3 * 3600 and lanes:
            per_lane[e["ts"][:13]] += 1 / lanes
    assert len(per_lane) >= 24
    mean = sum(per_lane.values()) / len(per_lane)
    assert 0.55 * 20 <= mean <= 0.9 * 20, mean
