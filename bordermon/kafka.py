"""Kafka plumbing shared by every command: reachability, admin, topic creation."""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from bordermon.config import EVENTS_TOPIC, TOPICS, Settings
from bordermon.errors import BordermonError
from bordermon.security import client_options, from_env

log = logging.getLogger("bordermon.kafka")


def check_reachable(settings: Settings, timeout: float = 3.0) -> None:
    """Fail fast with one line when no bootstrap server accepts a TCP connection."""
    problems = []
    for server in settings.bootstrap_list:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
                return
        except (OSError, ValueError) as exc:
            problems.append(f"{server} ({getattr(exc, 'strerror', None) or exc})")
    raise BordermonError(f"cannot reach Kafka at {', '.join(problems)}; is the broker running?")


def admin_client(settings: Settings) -> KafkaAdminClient:
    check_reachable(settings)
    security = from_env()
    try:
        return KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_list,
            client_id="bordermon-admin",
            request_timeout_ms=10000,
            **client_options(security),
        )
    except KafkaError as exc:
        # The port answered TCP, so a refused handshake is most often a security mismatch
        # (plaintext client on an authenticating listener, wrong user or password).
        raise BordermonError(
            f"cannot talk to Kafka at {settings.bootstrap_servers} with {security.describe()}: {exc}; "
            "the port accepts connections, so check that BORDERMON_KAFKA_SECURITY_PROTOCOL and the "
            "SASL/TLS settings match the broker's listener"
        ) from None


def ensure_topics(settings: Settings, changelogs: Sequence[str] = ()) -> int:
    """Create the contract's topics (and the given compacted changelogs, partitioned like
    border.events) when missing; return the partition count of border.events."""
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        replication = settings.replication_factor
        _create(admin, [NewTopic(t, settings.partitions, replication) for t in TOPICS if t not in existing])
        partitions = partitions_of(admin, EVENTS_TOPIC)
        compacted = {"cleanup.policy": "compact"}
        _create(
            admin,
            [NewTopic(t, partitions, replication, topic_configs=compacted) for t in changelogs
             if t not in existing],
        )  # fmt: skip
        return partitions
    finally:
        admin.close()


def _create(admin: KafkaAdminClient, topics: list[NewTopic]) -> None:
    if not topics:
        return
    try:
        admin.create_topics(topics)
        log.info("created topics", extra={"topics": [t.name for t in topics]})
    except TopicAlreadyExistsError:
        pass  # another worker won the race


def partitions_of(admin: KafkaAdminClient, topic: str) -> int:
    described: list[dict[str, Any]] = admin.describe_topics([topic])
    for entry in described:
        if (entry.get("name") or entry.get("topic")) == topic and entry.get("partitions"):
            return len(entry["partitions"])
    raise BordermonError(f"topic {topic} has no partitions on the broker")
