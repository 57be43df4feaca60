"""Issue 5: the reduced benchmark, as CI runs it. The full one is `make bench` (1M events)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HALF_TARGET_RATIO = 0.10  # the target is 20% of the ceiling
# The processor state's bytes per live id on 2,400 checkpoints at 200,000 ids, traced in process
# (bench/scale.py): 149 measured in CI on 2026-11-29 (178 before arrival times moved to arrays),
# so a regression of a quarter fails.
MAX_STATE_BYTES_PER_ID = 190


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_reduced_bench_keeps_the_pipeline_above_half_its_target_ratio(tmp_path, capsys):
    out = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "bench.run", "--events", "100000", "--cycles", "10", "--brokers", "tansu,kafka",
           "--gate", str(HALF_TARGET_RATIO), "--out", str(out), "--scale-events", "200000", "--scale-guard",
           "--max-bytes-per-id", str(MAX_STATE_BYTES_PER_ID)]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=880, cwd=ROOT)
    with capsys.disabled():  # the table, in the CI log
        print("\n" + run.stdout)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert set(results["brokers"]) == {"tansu", "kafka"}, "both brokers, side by side, in one run"
    for kind, measured in results["brokers"].items():
        assert measured["pipeline_ratio_to_ceiling"] >= HALF_TARGET_RATIO, kind
        state = measured["recovery_state"]
        assert state["exact"] and state["accepted_plus_rejected"] == state["messages_on_topic"], (kind, state)
        assert measured["alert_latency_ms"]["samples"] == 20 and measured["metric_latency_ms"]["samples"] == 20
        assert 0 < measured["scale"]["state_bytes_per_live_id"] <= MAX_STATE_BYTES_PER_ID, measured["scale"]
        wide = measured["scale"]["wide"]
        assert wide["drain_events_per_s"] > 0 and wide["live_ids"] == 200_000, wide
