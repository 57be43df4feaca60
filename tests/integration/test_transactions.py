"""Kafka's own exactly-once (`BORDERMON_EXACTLY_ONCE=kafka-transactions`, streams/worker/transactions.py)
on Apache Kafka: the same oracle as bordermon's protocol, through a crash and a rebalance, with
each alert and dead letter on its topic once for a read_committed reader."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter

import pytest

from harness.metrics import consumed, parse_metrics
from harness.processes import Worker, base_env, committed_offsets, read_topic, run_cli, wait_until
from tests.fixtures.checks import assert_alerts_match, assert_metrics_match
from tests.fixtures.clients import publish_with_librdkafka
from tests.fixtures.crash import CRASH_WINDOW, scenario
from tests.fixtures.registry import ALL_CHECKPOINTS, CHECKPOINTS

pytestmark = [pytest.mark.integration, pytest.mark.brokers("kafka")]
TRANSACTIONS = {"BORDERMON_EXACTLY_ONCE": "kafka-transactions"}


def assert_each_output_once_for_read_committed(address: str, expected, total: int) -> None:
    alerts = [r.value for r in read_topic(address, "border.alerts", read_committed=True)]
    assert_alerts_match(alerts, expected)
    ids = Counter(json.loads(a)["transition_id"] for a in alerts)
    assert max(ids.values(), default=1) == 1, "an alert twice for a read_committed reader"
    dead = [json.loads(r.value) for r in read_topic(address, "border.deadletter", read_committed=True)]
    assert max(Counter((d["partition"], d["offset"]) for d in dead).values(), default=1) == 1
    assert Counter(d["reason"] for d in dead) == +expected.rejected
    assert sum(expected.accepted.values()) + len(dead) == total


def test_transactions_end_to_end_equal_the_oracle(broker, tmp_path):
    run = scenario(tmp_path, good_count=20_000, seed=2022)
    env = base_env(broker, BORDERMON_CHECKPOINTS=str(run.registry), **TRANSACTIONS)
    worker = Worker(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        assert run_cli(["replay", str(run.log), "--max-speed", "-q"], env).returncode == 0
        wait_until(lambda: consumed(parse_metrics(worker.metrics())) == len(run.lines), 90, "all consumed")
        assert_metrics_match(parse_metrics(worker.metrics()), run.expected, [*CHECKPOINTS, "idle"])
        assert_each_output_once_for_read_committed(broker.address, run.expected, len(run.lines))
    finally:
        assert worker.stop() == 0, worker.tail()


def test_transactions_kill_9_mid_stream_leave_each_output_once(broker, tmp_path):
    """After kill -9 the replacement fences the dead worker's producers (aborting what it left
    open) and goes on from the committed offsets: nothing skipped, nothing read back, and a
    read_committed reader sees every alert and dead letter exactly once."""
    run = scenario(tmp_path, good_count=20_000, seed=7)
    env = base_env(broker, BORDERMON_CHECKPOINTS=str(run.registry), **CRASH_WINDOW, **TRANSACTIONS)
    first = Worker(env, tmp_path / "worker1.log")
    first.wait_ready()
    assert run_cli(["replay", str(run.log), "--max-speed", "-q"], env).returncode == 0
    wait_until(lambda: consumed(parse_metrics(first.metrics())) > len(run.lines) * 0.4, 60, "40% consumed")
    # The kill must land after a committed transaction: 40% consumed alone can all sit in the
    # worker's first open transactions on a fast machine (CI saw the replacement do everything).
    wait_until(lambda: committed_offsets(broker.address) > 0, 60, "a transaction committed")
    first.stop(signal.SIGKILL)
    second = Worker(env, tmp_path / "worker2.log")
    try:
        second.wait_ready()
        wait_until(lambda: consumed(parse_metrics(second.metrics())) == len(run.lines), 120, "all consumed")
        metrics = parse_metrics(second.metrics())
        assert_metrics_match(metrics, run.expected, [*CHECKPOINTS, "idle"])
        assert_each_output_once_for_read_committed(broker.address, run.expected, len(run.lines))
        processed = json.loads(second.get("/healthz"))["processed"]
        assert 0 < processed < len(run.lines), "the kill landed mid-stream: the replacement did the rest"
    finally:
        assert second.stop() == 0, second.tail()


def test_transactions_two_three_two_workers_with_forwarded_traffic(broker, tmp_path):
    from tests.fixtures.mixedlog import mixed_log
    from tests.fixtures.oracle import run_oracle
    from tests.fixtures.registry import REGISTRY
    from tests.integration.test_real_clients import merged

    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY)
    env = base_env(broker, BORDERMON_CHECKPOINTS=str(registry), **TRANSACTIONS)
    lines = mixed_log(CHECKPOINTS, good_count=12_000, seed=31)
    expected = run_oracle(lines, REGISTRY, time.time())
    half = len(lines) // 2
    workers = [Worker(env, tmp_path / f"w{i}.log") for i in (1, 2)]
    try:
        for w in workers:
            w.wait_ready()
        publish_with_librdkafka(broker.address, lines[:half])
        workers.append(Worker(env, tmp_path / "w3.log"))
        workers[-1].wait_ready()
        publish_with_librdkafka(broker.address, lines[half:])
        assert workers[0].stop(signal.SIGTERM) == 0
        wait_until(lambda: consumed(merged(workers)) == len(lines), 120, "every line counted by the survivors")
        assert_metrics_match(merged(workers), expected, ALL_CHECKPOINTS)
        assert_each_output_once_for_read_committed(broker.address, expected, len(lines))
    finally:
        for w in workers:
            w.stop()


def test_each_owned_partition_writes_through_its_own_transactional_id(broker, tmp_path):
    """The transactions are real: the broker's coordinator knows `bordermon-<p>` for every
    partition, each having committed, and the outputs carry transaction markers."""
    from kafka import KafkaAdminClient

    run = scenario(tmp_path, good_count=3_000, seed=5)
    env = base_env(broker, BORDERMON_CHECKPOINTS=str(run.registry), **TRANSACTIONS)
    worker = Worker(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        assert run_cli(["replay", str(run.log), "--max-speed", "-q"], env).returncode == 0
        wait_until(lambda: consumed(parse_metrics(worker.metrics())) == len(run.lines), 90, "all consumed")
        wait_until(lambda: json.loads(worker.get("/healthz"))["unsettled"] == 0, 30, "the last transactions committed")
        owned = json.loads(worker.get("/healthz"))["partitions"]

        def transactions() -> dict[str, str]:
            admin = KafkaAdminClient(bootstrap_servers=broker.address)
            try:
                return {t.transactional_id: str(t.state.value) for ts in admin.list_transactions().values() for t in ts}
            finally:
                admin.close()

        def all_complete() -> dict[str, str] | None:
            # A commit returns to the producer at PrepareCommit; CompleteCommit follows once the
            # coordinator wrote the markers (CI saw one transaction in between).
            listed = transactions()
            done = {f"bordermon-{p}" for p in owned} <= set(listed)
            return listed if done and {listed[f"bordermon-{p}"] for p in owned} <= {"CompleteCommit", "Empty"} else None

        wait_until(all_complete, 30, f"every owned partition's transaction complete ({owned})")
    finally:
        assert worker.stop() == 0, worker.tail()


def test_an_alert_commits_without_waiting_out_the_state_write_interval(broker, tmp_path):
    """A batch with an alert starts its transaction at once (streams/worker/transactions.py):
    with a 10 s write interval, the alert reaches a read_committed reader in well under it,
    while the transaction the same batches would otherwise join commits only after it."""
    registry = tmp_path / "registry.yaml"
    registry.write_text(
        "alerting: {for_minutes: 10, resolve_ratio: 0.8}\ncheckpoints:\n"
        "  - {id: probe, name: Probe, region: Test, lat: 51.0, lon: 51.0, mode: road, lanes: {in: 2, out: 2},\n"
        "     lane_capacity_per_hour: 30, wait_warning_minutes: 60, wait_critical_minutes: 120}\n"
    )
    log = tmp_path / "log.jsonl"
    events = [
        {"type": "arrival", "ts": "2022-09-21T06:00:00Z"},
        {"type": "lanes", "ts": "2022-09-21T06:01:00Z", "lanes_open": 0},  # wait +Inf: both pending
        {"type": "lanes", "ts": "2022-09-21T06:12:00Z", "lanes_open": 0},  # ten minutes on: both fire
    ]
    log.write_text("".join(
        json.dumps({"event_id": f"e{n}", "checkpoint_id": "probe", "direction": "in", **e}) + "\n"
        for n, e in enumerate(events)
    ))  # fmt: skip
    interval = 10.0
    env = base_env(broker, BORDERMON_CHECKPOINTS=str(registry), BORDERMON_STATE_FLUSH_INTERVAL=str(interval),
                   **TRANSACTIONS)  # fmt: skip
    worker = Worker(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        assert run_cli(["replay", str(log), "--max-speed", "-q"], env).returncode == 0
        sent = time.monotonic()  # after the last send: a transaction the batches joined commits >= ~10 s on

        def fired() -> list[dict]:
            alerts = [json.loads(r.value) for r in read_topic(broker.address, "border.alerts", read_committed=True)]
            return [a for a in alerts if a["alertname"] == "QueueOverload" and a["status"] == "firing"]

        alerts = wait_until(fired, 30, "the alerts committed", interval=0.05)
        took = time.monotonic() - sent
        assert sorted(a["severity"] for a in alerts) == ["critical", "warning"]
        assert took < interval / 2, f"the alerts waited {took:.1f} s: the transaction waited out the interval"
    finally:
        assert worker.stop() == 0, worker.tail()
