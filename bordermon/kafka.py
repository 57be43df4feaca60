"""Kafka plumbing shared by every command: reachability, admin, topic creation."""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from bordermon.config import EVENTS_TOPIC, REPARTITION_TOPIC, TOPICS, Settings
from bordermon.errors import BordermonError
from bordermon.security import client_options, from_env

log = logging.getLogger("bordermon.kafka")
# Forwarded events are consumed within seconds; a week covers any outage a worker comes back from.
REPARTITION_RETENTION_MS = 7 * 24 * 3600 * 1000


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
    """Create the contract's topics, the repartition topic and the given compacted changelogs
    when missing; return the partition count of border.events. border.events may have been
    created beforehand with any count: the internal topics follow it, and one that exists
    with another count is an error (its partitions would not line up with the state's)."""
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        replication = settings.replication_factor
        _create(admin, [NewTopic(t, settings.partitions, replication) for t in TOPICS if t not in existing])
        partitions = partitions_of(admin, EVENTS_TOPIC)
        internal = [(REPARTITION_TOPIC, {"cleanup.policy": "delete", "retention.ms": str(REPARTITION_RETENTION_MS)})]
        internal += [(t, {"cleanup.policy": "compact"}) for t in changelogs]
        _create(
            admin, [NewTopic(t, partitions, replication, topic_configs=c) for t, c in internal if t not in existing]
        )
        for topic, _ in internal:
            count = partitions_of(admin, topic)
            if count != partitions:
                raise BordermonError(
                    f"{topic} has {count} partitions but border.events has {partitions}: "
                    f"they must match; delete {topic} (internal to bordermon) and start the worker again"
                )
        return partitions
    finally:
        admin.close()


def partition_counts(settings: Settings, topics: Sequence[str]) -> dict[str, int]:
    admin = admin_client(settings)
    try:
        return {topic: partitions_of(admin, topic) for topic in topics}
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
