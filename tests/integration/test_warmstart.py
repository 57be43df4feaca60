"""Warm start on both brokers: when a prefetched changelog partition may be reused.

The embedded broker holds a static member's join for seconds, which the prefetch fills; Apache
Kafka hands a returning static member its partitions at once, so there the prefetch only starts
the read earlier (both measured in bench/README.md). The reuse rule is the same on both."""

from __future__ import annotations

import json
import signal

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from bordermon.config import CHANGELOG_TOPIC, Settings
from bordermon.kafka import ensure_topics
from harness.metrics import consumed, parse_metrics
from harness.processes import Worker, base_env, run_cli, wait_until
from streams.worker.changelog import PartitionReader
from tests.fixtures.checks import assert_metrics_match
from tests.fixtures.crash import CRASH_WINDOW, scenario
from tests.fixtures.registry import CHECKPOINTS

pytestmark = pytest.mark.integration

TOPIC = "warm-start-check"


def produce(address: str, records: list[tuple[int, bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=address)
    for partition, key, value in records:
        producer.send(TOPIC, key=key, value=value, partition=partition)
    producer.flush()
    producer.close()


def create_topic(address: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=address)
    admin.create_topics([NewTopic(TOPIC, 3, 1)])
    admin.close()


@pytest.mark.brokers("tansu", "kafka")
def test_a_partition_is_reused_only_while_its_log_still_ends_with_the_record_read_last(broker):
    reader = PartitionReader([broker.address], Settings().security, exact_end_offsets=broker.kind == "kafka")
    create_topic(broker.address)
    # Keys never repeat across partitions (a changelog's start with their partition).
    produce(broker.address, [(0, b"a", b"1"), (0, b"b", b"2"), (0, b"a", b"4"), (1, b"c", b"3")])
    snapshot = reader.read_partitions(TOPIC, [0, 1, 2])
    assert snapshot.data == {b"a": b"4", b"b": b"2", b"c": b"3"}
    assert snapshot.last == {0: (2, b"a", b"4"), 1: (0, b"c", b"3")}  # 2 is empty: no record to match
    assert reader.still_ending_with(TOPIC, snapshot.last) == {0, 1}

    produce(broker.address, [(1, b"c", b"3")])  # a later write, even of the same value
    assert reader.still_ending_with(TOPIC, snapshot.last) == {0}

    # A reset log: deleted and written again, with another record where the last one was.
    admin = KafkaAdminClient(bootstrap_servers=broker.address)
    admin.delete_topics([TOPIC])
    wait_until(lambda: TOPIC not in admin.list_topics(), 30, "topic deleted")
    admin.close()
    create_topic(broker.address)
    produce(broker.address, [(0, b"a", b"1"), (0, b"b", b"2"), (0, b"a", b"9")])
    assert reader.still_ending_with(TOPIC, snapshot.last) == set()


def recovered(log_text: str) -> dict:
    records = [json.loads(line) for line in log_text.splitlines() if '"partitions recovered"' in line]
    assert records, log_text[-2000:]
    return records[-1]


@pytest.mark.brokers("tansu", "kafka")
def test_a_static_member_killed_mid_stream_is_replaced_from_state_prefetched_during_its_join(broker, tmp_path):
    """The replacement reads its partitions' state while it joins (on Tansu while the broker holds
    the join; on Kafka, whose join is immediate, while Faust starts), and ends with what the
    oracle computes: nothing lost, nothing counted twice."""
    run = scenario(tmp_path, good_count=10_000, seed=11)
    lines, log, expected = run.lines, run.log, run.expected
    env = base_env(
        broker,
        BORDERMON_CHECKPOINTS=str(run.registry),
        **CRASH_WINDOW,  # state written before the kill at 40%
        BORDERMON_GROUP_INSTANCE_ID="warm-0",
        BORDERMON_DATA_DIR=str(tmp_path / "data"),
    )
    partitions = ensure_topics(Settings(bootstrap_servers=broker.address))
    first = Worker(env, tmp_path / "worker1.log")
    first.wait_ready()
    assert json.loads((tmp_path / "data" / "owned-warm-0.json").read_text()) == {"partitions": list(range(partitions))}
    assert run_cli(["replay", str(log), "--max-speed"], env).returncode == 0
    wait_until(lambda: consumed(parse_metrics(first.metrics())) > len(lines) * 0.4, 60, "40% consumed")
    reader = PartitionReader([broker.address], Settings().security, exact_end_offsets=broker.kind == "kafka")
    # The kill must come after some state was written: 40% consumed alone came before the first
    # state write on a fast machine (issue 26), so wait for the condition itself.
    wait_until(lambda: reader.read_partitions(CHANGELOG_TOPIC, range(partitions)).last, 60, "some state written")
    first.stop(signal.SIGKILL)
    with_state = reader.read_partitions(CHANGELOG_TOPIC, range(partitions)).last
    assert with_state, "the kill must come after some state was written"

    second = Worker(env, tmp_path / "worker2.log")
    try:
        second.wait_ready()
        record = recovered(second.log_path.read_text())
        # Every partition with state came from the prefetch (the others have nothing to read).
        assert record["prefetched"] == sorted(with_state), record
        wait_until(lambda: consumed(parse_metrics(second.metrics())) == len(lines), 120, "all consumed")
        assert_metrics_match(parse_metrics(second.metrics()), expected, [*CHECKPOINTS, "idle"])
    finally:
        assert second.stop() == 0, second.tail()
