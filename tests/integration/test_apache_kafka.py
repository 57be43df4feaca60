"""The Apache Kafka the tests start (harness/apachekafka.py) and the command people use for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bordermon.config import CHANGELOG_TOPIC, REPARTITION_TOPIC, TOPICS, Settings
from bordermon.kafka import ensure_worker_topics
from harness.apachekafka import cache_root, kafka_version
from harness.processes import KafkaBroker, base_env, run_cli, wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_without_maven_central_or_a_cache_the_start_is_one_clear_line(tmp_path):
    """No network to Maven Central (an unreachable proxy), an empty Maven repository and an empty
    cache: `make test` stops at its `--fetch-only` step with one line saying so."""
    env = {**os.environ, "BORDERMON_KAFKA_CACHE": str(tmp_path / "cache"),
           "MAVEN_OPTS": f"-Dmaven.repo.local={tmp_path / 'm2'} -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=9 "
                         "-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=9"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "harness.apachekafka", "--fetch-only"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith(f"apache-kafka: error: cannot fetch Apache Kafka {kafka_version()}'s jars")
    assert "Maven Central" in errors[0] and str(tmp_path / "cache") in errors[0]


def test_a_three_node_cluster_replicates_the_topics_the_worker_creates(tmp_path):
    """docker-compose.cluster.yml's cluster: every node registered, and the contract's topics
    created by bordermon with replication 3 and min.insync.replicas 2 (the broker default)."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    kafka = KafkaBroker(tmp_path / "kafka", nodes=3)
    try:
        assert kafka.cluster.registered_brokers() == {1, 2, 3}
        env = base_env(kafka, BORDERMON_REPLICATION_FACTOR="3")
        sent = run_cli(["simulate", "--scenario", "baseline", "--days", "1", "--kafka"], env, timeout=300)
        assert sent.returncode == 0, sent.stderr  # a producer creates border.events only
        # What a worker creates at start (bordermon worker, before Faust).
        ensure_worker_topics(Settings(bootstrap_servers=kafka.address, replication_factor=3), CHANGELOG_TOPIC)
        admin = KafkaAdminClient(bootstrap_servers=kafka.address)
        names = [*TOPICS, REPARTITION_TOPIC, CHANGELOG_TOPIC]
        try:
            # The creator waited until the broker it asked listed the partitions; the broker this
            # client asks may learn of them a moment later (CI once saw the changelog with none).
            wait_until(
                lambda: all(topic["partitions"] for topic in admin.describe_topics(names)),
                30,
                "every topic's partitions known to the broker asked",
            )
            for topic in admin.describe_topics(names):
                assert {len(p["replica_nodes"]) for p in topic["partitions"]} == {3}, topic["name"]
                assert {len(p["isr_nodes"]) for p in topic["partitions"]} == {3}, topic["name"]
            resource = ConfigResource(ConfigResourceType.TOPIC, "border.events", {"min.insync.replicas": None})
            configs = admin.describe_configs([resource], config_filter="all")["topic"]["border.events"]
            assert configs["min.insync.replicas"]["value"] == "2"
        finally:
            admin.close()
    finally:
        kafka.stop()


def test_the_jars_are_cached_so_a_second_start_needs_no_maven(tmp_path, monkeypatch):
    assert (cache_root() / "libs" / ".complete").exists(), "make test fetched them (install-kafka)"
    monkeypatch.setenv("PATH", "/nonexistent")  # no mvn, no java on the PATH...
    from harness import apachekafka

    assert apachekafka.ensure_jars() == cache_root() / "libs"  # ...and the cache is enough
