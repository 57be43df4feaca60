"""What the tests run on Apache Kafka is what docker-compose.yml and deploy/kubernetes/ deploy: one
pinned version, the broker settings read from the compose files, the workers' settings too."""

from __future__ import annotations

from pathlib import Path

import yaml

from harness import apachekafka
from harness.apachekafka import (
    NODE_SPECIFIC,
    compose_node_env,
    compose_settings,
    compose_worker_settings,
    kafka_version,
    properties_from_env,
)

ROOT = Path(__file__).resolve().parents[2]


def compose(path: str) -> dict:
    return yaml.safe_load((ROOT / path).read_text())


def test_every_kafka_image_in_compose_is_the_version_the_pom_pins():
    images = {name: s["image"] for name, s in compose("docker-compose.yml")["services"].items()
              if s.get("image", "").startswith("apache/kafka")}  # fmt: skip
    assert set(images) == {"kafka", "kafka-2", "kafka-3"}
    assert set(images.values()) == {f"apache/kafka:{kafka_version()}"}
    assert kafka_version().startswith("4."), "the current 4.x line: every client bordermon uses speaks it"


def test_the_image_turns_environment_names_into_kafka_settings():
    env = {"KAFKA_NODE_ID": "1", "KAFKA_MIN_INSYNC_REPLICAS": "2", "KAFKA_SOME___DASHED": "x",
           "KAFKA_DOUBLE__UNDERSCORE": "y", "KAFKA_HEAP_OPTS": "-Xmx1g", "OTHER": "z"}  # fmt: skip
    assert properties_from_env(env) == {
        "node.id": "1", "min.insync.replicas": "2", "some-dashed": "x", "double_underscore": "y"
    }  # fmt: skip


def test_one_node_runs_compose_settings_with_replication_one():
    settings = compose_settings(1)
    assert settings["process.roles"] == "broker,controller"
    for key in ("default.replication.factor", "min.insync.replicas", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor", "transaction.state.log.min.isr"):  # fmt: skip
        assert settings[key] == "1", key
    assert settings["auto.create.topics.enable"] == "false"
    assert settings["group.initial.rebalance.delay.ms"] == "0"
    assert not NODE_SPECIFIC & settings.keys()


def test_the_cluster_overlay_replicates_three_times_and_acknowledges_with_two_on_every_node():
    nodes = [compose_settings(3, node) for node in (1, 2, 3)]
    assert nodes[0] == nodes[1] == nodes[2], "the three nodes differ only in their id and addresses"
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor"):  # fmt: skip
        assert nodes[0][key] == "3", key
    assert nodes[0]["min.insync.replicas"] == nodes[0]["transaction.state.log.min.isr"] == "2"
    ids = {properties_from_env(compose_node_env(3, node))["node.id"] for node in (1, 2, 3)}
    assert ids == {"1", "2", "3"}
    voters = properties_from_env(compose_node_env(3, 1))["controller.quorum.voters"]
    assert voters.count("@") == 3


def test_kubernetes_workers_use_the_settings_the_kafka_tests_give_workers():
    configmap = yaml.safe_load((ROOT / "deploy/kubernetes/configmap.yaml").read_text())["data"]
    tested = compose_worker_settings()  # harness.processes.base_env uses these on Kafka
    shared = {k for k in tested if k in configmap}
    assert "BORDERMON_REBALANCE_TIMEOUT" in shared
    assert {k: configmap[k] for k in shared} == {k: tested[k] for k in shared}
    cluster = compose_settings(3)
    assert configmap["BORDERMON_REPLICATION_FACTOR"] == cluster["default.replication.factor"]
    clients = compose("docker-compose.cluster.yml")["services"]["worker"]["environment"]
    assert clients["BORDERMON_REPLICATION_FACTOR"] == cluster["default.replication.factor"]


def test_the_harness_starts_nodes_with_exactly_compose_settings_plus_addresses(tmp_path, monkeypatch):
    monkeypatch.setattr(apachekafka, "ensure_jars", lambda: tmp_path)  # no JVM: the settings only
    for nodes in (1, 3):
        cluster = apachekafka.KafkaCluster(nodes=nodes, root=tmp_path / f"c{nodes}")
        for node in cluster.members:
            props = cluster.properties(node)
            assert {k: v for k, v in props.items() if k not in NODE_SPECIFIC} == compose_settings(nodes, node.node_id)
            assert (
                props["listeners"] == f"INTERNAL://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}"
            )
            assert props["controller.quorum.voters"].count("@127.0.0.1:") == nodes
