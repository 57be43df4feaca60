"""ArrivalSurge on real brokers: weeks of seasonal traffic with a labelled surge through a worker
killed with SIGKILL while the surge builds; the replacement's transitions are those of the
independent model (an uninterrupted run), each once."""

from __future__ import annotations

import json
import signal
import time
from datetime import timedelta

import pytest

from bordermon.timeutil import parse_rfc3339
from harness.metrics import consumed, parse_metrics
from harness.processes import Worker, base_env, read_topic, run_cli
from tests.fixtures.checks import assert_surges_match
from tests.fixtures.crash import CRASH_WINDOW
from tests.fixtures.mixedlog import write_log
from tests.fixtures.oracle import run_oracle
from tests.fixtures.registry import REGISTRY
from tests.fixtures.seasonal import START, Episode, seasonal_log

pytestmark = pytest.mark.integration
ONSET = START + timedelta(days=28, hours=1)


@pytest.mark.brokers("tansu", "kafka")
def test_a_worker_killed_while_a_surge_builds_emits_the_uninterrupted_transitions(broker, tmp_path):
    episodes = [Episode("syrym", "in", ONSET, 30, 6.0, surge=True)]
    lines = seasonal_log({("syrym", "in"): 20.0, ("kairak", "in"): 8.0}, 30, episodes, seed=3)
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY)
    expected = run_oracle(lines, REGISTRY, time.time())
    assert [s[2] for s in expected.surges] == ["firing", "resolved"], expected.surges
    (fired,) = [s for s in expected.surges if s[2] == "firing"]
    # The kill lands while the surge is pending: after the line where it began, before it fired.
    cut = next(i for i, line in enumerate(lines) if parse_rfc3339(json.loads(line)["ts"]) > fired[3] + 300)
    assert parse_rfc3339(json.loads(lines[cut])["ts"]) < fired[4], "the cut falls before it fired"
    before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    write_log(str(before), lines[:cut])
    write_log(str(after), lines[cut:])

    env = base_env(broker, BORDERMON_CHECKPOINTS=str(registry), **CRASH_WINDOW)
    first = Worker(env, tmp_path / "worker1.log")
    first.wait_ready()
    assert run_cli(["replay", str(before), "--max-speed", "-q"], env).returncode == 0
    first.wait_until(lambda: consumed(parse_metrics(first.metrics())) == cut, 120, "the log up to the cut")
    first.wait_until(lambda: json.loads(first.get("/healthz"))["unsettled"] == 0, 30, "its state durable")
    first.stop(signal.SIGKILL)
    assert run_cli(["replay", str(after), "--max-speed", "-q"], env).returncode == 0
    second = Worker(env, tmp_path / "worker2.log")
    try:
        second.wait_ready()
        second.wait_until(lambda: consumed(parse_metrics(second.metrics())) == len(lines), 180, "all consumed")
        messages = [r.value for r in read_topic(second.env["KAFKA_BOOTSTRAP_SERVERS"], "border.alerts")]
        # A transition sent before the kill may be sent again, with the same transition_id.
        unique = list({json.loads(m)["transition_id"]: m for m in messages}.values())
        assert_surges_match(unique, expected)
    finally:
        assert second.stop() == 0, second.tail()
