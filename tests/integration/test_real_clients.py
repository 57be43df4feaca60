"""Producers nobody here wrote: the mixed log published with librdkafka (confluent-kafka) and
aiokafka at their own partitioners, through real workers, equals the oracle every time.

librdkafka's default partitioner hashes keys with CRC32 (`consistent_random`), Sarama's and
librdkafka's `fnv1a` with FNV-1a; only murmur2 places a checkpoint on its home partition, so
most of these messages take the repartition hop. Each output must be on its topic once, also
when a worker is killed with SIGKILL mid-stream and when workers join and leave.
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from bordermon import metrics as catalog
from harness.metrics import consumed, parse_metrics, sample
from harness.processes import Worker, base_env, read_topic, wait_until
from tests.fixtures.checks import assert_alerts_match, assert_metrics_match
from tests.fixtures.clients import publish_with_aiokafka, publish_with_librdkafka
from tests.fixtures.crash import CRASH_WINDOW
from tests.fixtures.inprocess import PARTITIONERS
from tests.fixtures.mixedlog import mixed_log
from tests.fixtures.oracle import run_oracle
from tests.fixtures.registry import ALL_CHECKPOINTS, CHECKPOINTS, REGISTRY

pytestmark = pytest.mark.integration


def off_home(lines: list[bytes], partitions: int, partitioner: str) -> int:
    """Messages naming a known checkpoint (valid or not: validation happens at home) that this
    partitioner places off murmur2's partition."""
    rng = random.Random(0)
    place, home = PARTITIONERS[partitioner], PARTITIONERS["murmur2"]
    count = 0
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        cid = obj.get("checkpoint_id") if isinstance(obj, dict) else None
        if cid in CHECKPOINTS:
            key = cid.encode()
            count += place(key, partitions, rng) != home(key, partitions, rng)
    return count


def merged(workers: list[Worker]) -> dict:
    """border_* series summed over the live workers (each checkpoint is exported by one)."""
    total: dict = {}
    for w in workers:
        if w.proc.poll() is not None:
            continue
        for name, series in parse_metrics(w.metrics()).items():
            if name.startswith("border_"):
                slot = total.setdefault(name, {})
                for labels, value in series.items():
                    slot[labels] = slot.get(labels, 0) + value
    return total


def assert_outputs_exactly_once(address: str, expected, lines: list[bytes]) -> None:
    alerts = [r.value for r in read_topic(address, "border.alerts")]
    assert_alerts_match(alerts, expected)
    ids = Counter(json.loads(a)["transition_id"] for a in alerts)
    assert max(ids.values(), default=1) == 1, f"alerts sent twice: {[i for i, n in ids.items() if n > 1][:3]}"
    dead = [json.loads(r.value) for r in read_topic(address, "border.deadletter")]
    places = Counter((d["partition"], d["offset"]) for d in dead)
    assert max(places.values(), default=1) == 1, "a dead letter was written twice"
    assert Counter(d["reason"] for d in dead) == +expected.rejected
    assert sum(expected.accepted.values()) + len(dead) == len(lines)


@pytest.fixture
def registry_env(broker, tmp_path):
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY)
    return base_env(broker, BORDERMON_CHECKPOINTS=str(registry))


def off_partition_total(metrics: dict, partitioner: str) -> float:
    return sum(v for k, v in metrics.get(catalog.EVENTS_OFF_PARTITION.series, {}).items()
               if dict(k)["partitioner"] == partitioner)  # fmt: skip


@pytest.mark.brokers("tansu", "kafka")
def test_librdkafka_default_partitioner_equals_oracle(broker, registry_env, tmp_path):
    lines = mixed_log(CHECKPOINTS, good_count=20_000, seed=2022)
    expected = run_oracle(lines, REGISTRY, time.time())
    worker = Worker(registry_env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        publish_with_librdkafka(broker.address, lines)  # partitioner: consistent_random (CRC32)
        wait_until(lambda: consumed(parse_metrics(worker.metrics())) == len(lines), 90, "every line counted")
        metrics = parse_metrics(worker.metrics())
        assert_metrics_match(metrics, expected, ALL_CHECKPOINTS)
        assert_outputs_exactly_once(broker.address, expected, lines)
        forwarded = sample(metrics, catalog.MESSAGES_FORWARDED.series)
        assert forwarded == off_home(lines, 8, "crc32") > 0
        assert off_partition_total(metrics, "crc32") == forwarded
    finally:
        assert worker.stop() == 0, worker.tail()


@pytest.mark.brokers("tansu", "kafka")
def test_fnv1a_into_a_topic_created_beforehand_with_3_partitions(broker, registry_env, tmp_path):
    admin = KafkaAdminClient(bootstrap_servers=broker.address)
    admin.create_topics([NewTopic("border.events", 3, 1)])
    admin.close()
    lines = mixed_log(CHECKPOINTS, good_count=12_000, seed=5)
    expected = run_oracle(lines, REGISTRY, time.time())
    worker = Worker(registry_env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        assert json.loads(worker.get("/healthz"))["partitions"] == [0, 1, 2]
        publish_with_librdkafka(broker.address, lines, partitioner="fnv1a")
        wait_until(lambda: consumed(parse_metrics(worker.metrics())) == len(lines), 90, "every line counted")
        metrics = parse_metrics(worker.metrics())
        assert_metrics_match(metrics, expected, ALL_CHECKPOINTS)
        assert_outputs_exactly_once(broker.address, expected, lines)
        assert off_partition_total(metrics, "fnv1a") > 0
    finally:
        assert worker.stop() == 0, worker.tail()


@pytest.mark.brokers("tansu", "kafka")
def test_kill_9_while_forwarded_traffic_flows(broker, registry_env, tmp_path):
    lines = mixed_log(CHECKPOINTS, good_count=20_000, seed=7)
    expected = run_oracle(lines, REGISTRY, time.time())
    # Many batches and frequent state writes: the kill lands between durable and committed ones.
    env = {**registry_env, **CRASH_WINDOW}
    first = Worker(env, tmp_path / "worker1.log")
    first.wait_ready()
    publish_with_librdkafka(broker.address, lines)
    wait_until(lambda: consumed(parse_metrics(first.metrics())) > len(lines) * 0.4, 90, "40% counted")
    first.stop(signal.SIGKILL)
    second = Worker(env, tmp_path / "worker2.log")
    try:
        second.wait_ready()
        wait_until(lambda: consumed(parse_metrics(second.metrics())) == len(lines), 90, "all counted after the kill")
        metrics = parse_metrics(second.metrics())
        assert_metrics_match(metrics, expected, ALL_CHECKPOINTS)
        assert_outputs_exactly_once(broker.address, expected, lines)
        skipped = sample(metrics, catalog.MESSAGES_SKIPPED.series) or 0
        forwarded_here = sample(metrics, catalog.MESSAGES_FORWARDED_RECEIVED.series) or 0
        delivered = (sample(metrics, catalog.MESSAGES_PROCESSED.series) or 0) + forwarded_here
        print(f"\nreplacement: {delivered:.0f} messages delivered, {skipped:.0f} skipped as already applied")
        assert skipped > 0, "the kill must land mid-stream: the replacement finds work already applied"
    finally:
        assert second.stop() == 0, second.tail()


@pytest.mark.brokers("tansu", "kafka")
def test_two_three_two_workers_with_forwarded_traffic(broker, registry_env, tmp_path):
    lines = mixed_log(CHECKPOINTS, good_count=12_000, seed=31)
    expected = run_oracle(lines, REGISTRY, time.time())
    half = len(lines) // 2
    workers = [Worker(registry_env, tmp_path / f"w{i}.log") for i in (1, 2)]
    try:
        for w in workers:
            w.wait_ready()
        publish_with_librdkafka(broker.address, lines[:half])
        workers.append(Worker(registry_env, tmp_path / "w3.log"))  # joins mid-stream
        workers[-1].wait_ready()
        publish_with_librdkafka(broker.address, lines[half:])
        assert workers[0].stop(signal.SIGTERM) == 0  # leaves gracefully
        try:
            wait_until(lambda: consumed(merged(workers)) == len(lines), 120, "every line counted by the survivors")
        # Twice in CI on Kafka, 6 and 9 short: a never-committed partition's records fetched and dropped during
        # the rebalance the leaver starts were not read again (docs/reliability.md). Say which worker owns what.
        except AssertionError as exc:
            health = [w.get("/healthz") for w in workers[1:]]
            raise AssertionError(f"{exc}; counted {consumed(merged(workers))} of {len(lines)}; {health}") from None

        def exported_once() -> bool:
            seen: Counter = Counter()
            for w in workers[1:]:
                for labels in parse_metrics(w.metrics()).get(catalog.QUEUE_LENGTH.series, {}):
                    seen[labels] += 1
            return bool(seen) and max(seen.values()) == 1

        wait_until(exported_once, 60, "each checkpoint exported by exactly one worker")
        assert_metrics_match(merged(workers), expected, ALL_CHECKPOINTS)
        assert_outputs_exactly_once(broker.address, expected, lines)
    finally:
        for w in workers:
            w.stop()


@pytest.mark.brokers("tansu", "kafka")
def test_aiokafka_without_keys_counts_every_message(broker, registry_env, tmp_path):
    """Unkeyed messages land anywhere: no order across partitions, but nothing lost or doubled."""
    lines = mixed_log(CHECKPOINTS, good_count=6_000, seed=9)
    expected = run_oracle(lines, REGISTRY, time.time())
    worker = Worker(registry_env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        publish_with_aiokafka(broker.address, lines, keyed=False)
        wait_until(lambda: consumed(parse_metrics(worker.metrics())) == len(lines), 90, "every line counted")
        metrics = parse_metrics(worker.metrics())
        for t in ("arrival", "crossing", "lanes"):
            assert sample(metrics, catalog.EVENTS_ACCEPTED.series, type=t) == expected.accepted[t]
        assert sample(metrics, catalog.EVENTS_REJECTED.series, reason="malformed") == expected.rejected["malformed"]
        assert off_partition_total(metrics, "no_key") > 0
    finally:
        assert worker.stop() == 0, worker.tail()


@pytest.mark.brokers("tansu", "kafka")
def test_internal_topic_with_another_partition_count_is_recreated_when_empty_refused_otherwise(broker, tmp_path):
    """A reset broker auto-creates topics with its own default count; an empty internal topic is
    recreated to match border.events, a non-empty one stops the worker with one line."""
    from kafka import KafkaProducer

    from harness.processes import run_cli

    admin = KafkaAdminClient(bootstrap_servers=broker.address)
    admin.create_topics([NewTopic("border.events", 6, 1), NewTopic("bordermon-repartition", 4, 1)])
    env = base_env(broker)
    worker = Worker(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        assert json.loads(worker.get("/healthz"))["partitions"] == list(range(6))
        described = admin.describe_topics(["bordermon-repartition"])
        assert len(described[0]["partitions"]) == 6
    finally:
        assert worker.stop() == 0, worker.tail()
    admin.delete_topics(["bordermon-repartition"])
    wait_until(lambda: "bordermon-repartition" not in admin.list_topics(), 10, "topic deleted")
    admin.create_topics([NewTopic("bordermon-repartition", 2, 1)])
    producer = KafkaProducer(bootstrap_servers=broker.address)
    producer.send("bordermon-repartition", b"forwarded, not yet applied").get(10)
    producer.close()
    admin.close()
    refused = run_cli(["worker"], {**env, "BORDERMON_WEB_PORT": str(worker.port)}, timeout=60)
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines() == [
        "bordermon: error: bordermon-repartition has 2 partitions but border.events has 6: they must match; "
        "delete bordermon-repartition (internal to bordermon) once no worker runs, and start the workers again"
    ]
