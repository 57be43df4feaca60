"""Checkpoint systems written in other languages, on Apache Kafka: Java's kafka-clients, Go's
Sarama and kafka-go, Node's kafkajs, each at its own defaults (tests/clients/, built from the
registries with their lock files). Each publishes a mixed log (bad input, duplicates; lines keyed
by their checkpoint, bad lines without one without a key) and the worker's figures and outputs
equal the oracle's; two of them also with a worker killed mid-stream. A Go consumer then reads
border.alerts and border.deadletter and checks every field against the contract.

kafka-go's Writer balances round-robin whatever the key: one checkpoint's events land on every
partition, and reach their home partition (through the hop) in an order no one upstream decides.
The contract counts each message once on any partition, and processes in order what is in order
on one partition; so with kafka-go what must hold exactly is what does not depend on that order:
every message accepted or rejected once, by the same reasons, the same persons by checkpoint,
direction and citizenship, and each output on its topic once. The log then has no id used again
a day later (which copy is the duplicate would depend on the order)."""

from __future__ import annotations

import json
import signal
import time

import pytest

from bordermon import metrics as catalog
from harness.metrics import consumed, parse_metrics, sample
from harness.processes import Worker, base_env, committed_offsets, read_topic, wait_until
from tests.fixtures.checks import assert_metrics_match
from tests.fixtures.clients import OTHER_CLIENTS, check_outputs_with_go, publish_with
from tests.fixtures.crash import CRASH_WINDOW
from tests.fixtures.mixedlog import mixed_log, write_log
from tests.fixtures.oracle import run_oracle
from tests.fixtures.registry import ALL_CHECKPOINTS, CHECKPOINTS, REGISTRY
from tests.integration.test_real_clients import assert_outputs_exactly_once

pytestmark = [pytest.mark.integration, pytest.mark.brokers("kafka")]

# Where each client's keyed messages land: on their checkpoint's home partition (murmur2, as
# Kafka's Java client hashes: none off it) or off it, mostly where the named partitioner puts them
# (a checkpoint for which two hashes agree is put down to the first that explains it).
OFF_HOME = {"java": None, "kafkajs": None, "sarama": "fnv1a", "kafka-go": "unknown"}
IN_ORDER = {"java", "kafkajs", "sarama"}  # one checkpoint's events on one partition, in order


def off_partition(metrics: dict) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, value in metrics.get(catalog.EVENTS_OFF_PARTITION.series, {}).items():
        name = dict(labels)["partitioner"]
        out[name] = out.get(name, 0) + value
    return out


def assert_order_free_figures_match(metrics: dict, expected, address: str, lines: list[bytes]) -> None:
    for t in ("arrival", "crossing", "lanes"):
        assert sample(metrics, catalog.EVENTS_ACCEPTED.series, type=t) == expected.accepted[t], t
    for reason in ("malformed", "invalid", "unknown_checkpoint", "duplicate"):
        assert sample(metrics, catalog.EVENTS_REJECTED.series, reason=reason) == expected.rejected[reason], reason
    for (cid, d), persons in expected.persons.items():
        assert sample(metrics, catalog.CROSSING_PERSONS.series, checkpoint=cid, direction=d) == persons, (cid, d)
    for citizenship, net in expected.cumulative.items():
        assert sample(metrics, catalog.NET_FLOW_CUMULATIVE.series, citizenship=citizenship) == net, citizenship
    dead = [json.loads(r.value) for r in read_topic(address, "border.deadletter")]
    assert len({(d["partition"], d["offset"]) for d in dead}) == len(dead) == sum(expected.rejected.values())
    alerts = [json.loads(r.value)["transition_id"] for r in read_topic(address, "border.alerts")]
    assert len(set(alerts)) == len(alerts), "each alert once"
    assert sum(expected.accepted.values()) + len(dead) == len(lines)


@pytest.mark.parametrize("client", OTHER_CLIENTS)
def test_a_mixed_log_from_another_language_equals_the_oracle(broker, client, tmp_path):
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY)
    env = base_env(broker, BORDERMON_CHECKPOINTS=str(registry))
    lines = mixed_log(CHECKPOINTS, good_count=8_000, seed=sum(map(ord, client)), reuse_after_a_day=client in IN_ORDER)
    log = tmp_path / "mixed.jsonl"
    write_log(str(log), lines)
    expected = run_oracle(lines, REGISTRY, time.time())
    worker = Worker(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        assert publish_with(client, broker.address, log) == len(lines)
        wait_until(lambda: consumed(parse_metrics(worker.metrics())) == len(lines), 90, "every line counted")
        metrics = parse_metrics(worker.metrics())
        if client in IN_ORDER:
            assert_metrics_match(metrics, expected, ALL_CHECKPOINTS)
            assert_outputs_exactly_once(broker.address, expected, lines)
        else:
            assert_order_free_figures_match(metrics, expected, broker.address, lines)
        off = {name: n for name, n in off_partition(metrics).items() if n > 0}
        assert (max(off, key=off.__getitem__) if off else None) == OFF_HOME[client], off
        if client == "java":  # the outputs of this run, read and checked by a Go consumer
            checked = check_outputs_with_go(broker.address)
            assert checked["problems"] == [], checked["problems"][:5]
            alerts = [r.value for r in read_topic(broker.address, "border.alerts")]
            assert sum(checked["alerts"].values()) == len(alerts) > 0
            assert set(checked["alerts"]) == {"QueueOverload", "QueueOverloadForecast"}, checked["alerts"]
            assert checked["deadletters"] == dict(+expected.rejected), checked["deadletters"]
    finally:
        assert worker.stop() == 0, worker.tail()


@pytest.mark.parametrize("client", ["java", "sarama"])
def test_a_worker_killed_while_another_language_publishes(broker, client, tmp_path):
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY)
    env = base_env(broker, BORDERMON_CHECKPOINTS=str(registry), **CRASH_WINDOW)
    lines = mixed_log(CHECKPOINTS, good_count=12_000, seed=77)
    expected = run_oracle(lines, REGISTRY, time.time())
    # Mid-stream by construction, whatever this machine's speed: the first worker has made part
    # of the first 70% durable when it is killed, and the other 30% is published after the kill.
    # (Killing at "40% counted" of a log published whole let a fast worker finish it first.)
    cut = len(lines) * 7 // 10
    before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    write_log(str(before), lines[:cut])
    write_log(str(after), lines[cut:])
    first = Worker(env, tmp_path / "worker1.log")
    first.wait_ready()
    assert publish_with(client, broker.address, before) == cut
    wait_until(lambda: consumed(parse_metrics(first.metrics())) > len(lines) * 0.4, 90, "40% counted")
    wait_until(lambda: committed_offsets(broker.address) > 0, 60, "input made durable and committed")
    first.stop(signal.SIGKILL)
    assert publish_with(client, broker.address, after) == len(lines) - cut
    second = Worker(env, tmp_path / "worker2.log")
    try:
        second.wait_ready()
        wait_until(lambda: consumed(parse_metrics(second.metrics())) == len(lines), 120, "all counted after the kill")
        metrics = parse_metrics(second.metrics())
        assert_metrics_match(metrics, expected, ALL_CHECKPOINTS)
        assert_outputs_exactly_once(broker.address, expected, lines)
        processed = sample(metrics, catalog.MESSAGES_PROCESSED.series)
        assert processed >= len(lines) - cut, "the replacement read what was published after the kill"
    finally:
        assert second.stop() == 0, second.tail()
