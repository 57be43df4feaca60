"""Kafka plumbing shared by every command: reachability, topic creation, producers."""

from __future__ import annotations

import logging
import socket
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
    try:
        return KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_list,
            client_id="bordermon-admin",
            request_timeout_ms=10000,
            **client_options(from_env()),
        )
    except KafkaError as exc:
        raise BordermonError(f"cannot talk to Kafka at {settings.bootstrap_servers}: {exc}") from None


def ensure_topics(settings: Settings) -> int:
    """Create the contract's topics when missing; return the partition count of border.events."""
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(t, settings.partitions, settings.replication_factor) for t in TOPICS if t not in existing]
        if missing:
            try:
                admin.create_topics(missing)
                log.info("created topics", extra={"topics": [t.name for t in missing]})
            except TopicAlreadyExistsError:
                pass  # another worker won the race
        return partitions_of(admin, EVENTS_TOPIC)
    finally:
        admin.close()


def partitions_of(admin: KafkaAdminClient, topic: str) -> int:
    described: list[dict[str, Any]] = admin.describe_topics([topic])
    for entry in described:
        if (entry.get("name") or entry.get("topic")) == topic and entry.get("partitions"):
            return len(entry["partitions"])
    raise BordermonError(f"topic {topic} has no partitions on the broker")
