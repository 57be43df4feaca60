"""Issue 27 on real brokers: a grouped registry end to end with two workers, oracle-exact, and the
public wait-times feed fetched over HTTP from each worker (each serves what it owns)."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import jsonschema
import pytest

from bordermon import metrics as catalog
from harness.metrics import consumed, merge_workers, sample
from harness.processes import Worker, base_env, read_topic, run_cli, wait_until
from tests.fixtures.checks import assert_alerts_match, assert_metrics_match
from tests.fixtures.mixedlog import mixed_log, write_log
from tests.fixtures.oracle import run_oracle
from tests.fixtures.registry import ALL_CHECKPOINTS, CHECKPOINTS, GROUPED_REGISTRY, GROUPS

pytestmark = pytest.mark.integration
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs/api/waits.schema.json").read_text())
LANE_TYPE = {"cars": "passenger_vehicle_lanes", "buses": "passenger_vehicle_lanes",
             "trucks": "commercial_vehicle_lanes", "foot": "pedestrian_lanes"}  # fmt: skip


def waits(worker: Worker) -> list[dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{worker.port}/api/v1/waits", headers={"Accept": "*/*"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        return json.loads(response.read())


@pytest.mark.brokers("tansu", "kafka")
def test_a_grouped_registry_is_exact_with_two_workers_and_their_feeds_cover_it_once(broker, tmp_path):
    registry = tmp_path / "grouped.yaml"
    registry.write_text(GROUPED_REGISTRY)
    lines = mixed_log(CHECKPOINTS, good_count=8000, seed=27, lane_groups=GROUPS)
    log = tmp_path / "grouped.jsonl"
    write_log(str(log), lines)
    expected = run_oracle(lines, GROUPED_REGISTRY, time.time())
    env = base_env(broker, BORDERMON_CHECKPOINTS=str(registry))
    workers = [Worker(env, tmp_path / f"w{i}.log") for i in (1, 2)]
    try:
        for w in workers:
            w.wait_ready()
        replay = run_cli(["replay", str(log), "--max-speed", "-q"], env)
        assert replay.returncode == 0, replay.stderr

        def merged() -> tuple[dict, list]:
            return merge_workers([w.metrics() for w in workers])

        wait_until(lambda: consumed(merged()[0]) == len(lines), 120, "every line counted by the two workers")
        total, twice = merged()
        assert not twice, twice
        assert_metrics_match(total, expected, ALL_CHECKPOINTS)
        assert_alerts_match([r.value for r in read_topic(broker.address, "border.alerts")], expected)
        assert {(t[0], t[2]) for t in expected.transitions} >= {("syrym", "trucks"), ("kairak", "buses")}

        feeds = [waits(w) for w in workers]
        for feed in feeds:
            jsonschema.validate(feed, SCHEMA)
        ports = sorted(e["port_number"] for feed in feeds for e in feed)
        assert ports == sorted(f"{c}/{d}" for c in ALL_CHECKPOINTS for d in ("in", "out")), "each once, all"
        assert all(feeds), "both workers own checkpoints"
        for entry in (e for feed in feeds for e in feed):
            cid, d = entry["checkpoint_id"], entry["direction"]
            for group in expected.groups[cid]:
                shown = entry[LANE_TYPE.get(group, "pedestrian_lanes" if cid == "astana-airport" else
                                            "passenger_vehicle_lanes")]  # fmt: skip
                assert group in shown["lane_groups"]
                if cid == "idle":
                    assert shown["standard_lanes"]["operational_status"] == "Update Pending", "no event yet"
                    continue
                labels = {"checkpoint": cid, "direction": d, "lane_group": group}
                lanes = sample(total, catalog.LANES_OPEN.series, **labels)
                assert lanes == expected.lanes[(cid, d, group)]
                if len(shown["lane_groups"]) == 1 and lanes > 0:  # one group: its own figures
                    wait_expected = sample(total, catalog.WAIT_EXPECTED.series, **labels)
                    assert shown["standard_lanes"]["delay_minutes"] == str(round(wait_expected / 60)), labels
                    assert shown["standard_lanes"]["lanes_open"] == str(int(lanes))
                elif len(shown["lane_groups"]) == 1:
                    assert shown["standard_lanes"]["operational_status"] == "Lanes Closed"
    finally:
        for w in workers:
            w.stop()
