"""Kafka plumbing shared by every command: reachability, admin, topic creation."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
)

from bordermon.config import APP_ID, EVENTS_TOPIC, REPARTITION_TOPIC, TOPICS, Settings
from bordermon.errors import BordermonError
from bordermon.refusals import client_errors
from bordermon.refusals import reason as refusal_reason
from bordermon.security import client_options

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


# A cluster that just lost a broker lists it in metadata until its session times out (9 s by
# default in KRaft); kafka-python's admin may send a request there and fail at once with a refused
# connection instead of trying another node. Measured: a worker started while one of three brokers
# was down exited with ECONNREFUSED (tests/integration/test_cluster_faults.py, leader change).
FAILOVER_SECONDS = 30.0
_TRANSIENT = (KafkaConnectionError, NodeNotReadyError, KafkaTimeoutError)


class FailoverAdmin:
    """kafka-python's admin client, each call tried again (on the next least-loaded node) while
    the cluster fails over or answers a retriable error, for up to FAILOVER_SECONDS."""

    def __init__(self, client: KafkaAdminClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name == "close":
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            deadline = time.monotonic() + FAILOVER_SECONDS
            while True:
                try:
                    return attr(*args, **kwargs)
                except KafkaError as exc:
                    # Retriable: no coordinator yet (the offsets topic is made on first use), a leader moving.
                    if not (isinstance(exc, _TRANSIENT) or exc.retriable) or time.monotonic() > deadline:
                        raise
                    log.info("a broker did not answer; trying again", extra={"call": name, "error": str(exc)})
                    time.sleep(0.5)

        return call


def admin_client(settings: Settings) -> KafkaAdminClient:
    check_reachable(settings)
    security = settings.security
    with client_errors() as errors:
        try:
            return _failover(
                KafkaAdminClient(
                    bootstrap_servers=settings.bootstrap_list,
                    client_id="bordermon-admin",
                    request_timeout_ms=10000,
                    **client_options(security),
                )
            )
        except KafkaError as exc:
            why = refusal_reason(security, errors, settings.bootstrap_list)
            # The port answered TCP, so a refused handshake is most often a security mismatch.
            raise BordermonError(
                f"cannot talk to Kafka at {settings.bootstrap_servers} with {security.describe()}: "
                + (
                    why
                    or f"{exc}; the port accepts connections, so check that BORDERMON_KAFKA_SECURITY_PROTOCOL "
                    "and the SASL/TLS settings match the broker's listener"
                )
            ) from None


def _failover(client: KafkaAdminClient) -> KafkaAdminClient:
    return cast(KafkaAdminClient, FailoverAdmin(client))


@dataclass(frozen=True)
class BrokerTraits:
    """What bordermon adapts to in the broker it talks to (docs/reliability.md, "Two brokers").

    Apache Kafka in KRaft mode is told by its finalized `metadata.version` feature
    (DescribeFeatures); the embedded broker (Tansu 0.6) finalizes none. Any broker that is not
    recognised as KRaft Kafka gets the embedded broker's rules, which are safe everywhere and
    only slower: the end of a log is found by reading until nothing more comes (Tansu reports
    end offsets short), and the session timeout of a member outlasts its group joins (Tansu
    completes a join after about half the rebalance timeout, without counting it as contact)."""

    kraft: bool

    @property
    def exact_end_offsets(self) -> bool:
        """ListOffsets(latest) is the log's real end: a read may stop there."""
        return self.kraft

    @property
    def idempotent_producers(self) -> bool:
        """InitProducerId works: producers can be idempotent (Tansu 0.6 answers it with an unknown
        error, so a producer asking for idempotence cannot start there)."""
        return self.kraft

    @property
    def partition_fetch_limit_honoured(self) -> bool:
        """A fetch returns at most its per-partition byte limit of each partition. Tansu 0.6 fills
        the first partitions with data up to the whole request's limit (5 MiB at most) and ignores
        theirs: with 8 partitions a worker's consumer held up to 8 x 5 MiB of fetched records
        where Kafka hands it 8 x 1 MiB (bench/README.md, 2026-12-07)."""
        return self.kraft

    @property
    def joins_count_as_contact(self) -> bool:
        """A member waiting in a group join is alive to the coordinator, whatever its session timeout."""
        return self.kraft

    def describe(self) -> str:
        return "Apache Kafka (KRaft)" if self.kraft else "a broker without KRaft features (embedded rules)"


def broker_traits(settings: Settings) -> BrokerTraits:
    admin = admin_client(settings)
    try:
        features = admin.describe_features()
    except KafkaError:
        features = {}
    finally:
        admin.close()
    metadata_version = (features or {}).get("metadata.version") or {}
    return BrokerTraits(kraft=bool(metadata_version.get("finalized")))


def ensure_topics(settings: Settings, topics: Sequence[str] = TOPICS) -> int:
    """Create the contract's topics (or those of them a command uses) when missing; return the
    partition count of border.events (which may have been created beforehand with any count).
    On a cluster with ACLs a principal sees only the topics it may describe: a producer asks for
    border.events alone (bordermon.locks)."""
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        replication = settings.replication_factor
        _create(admin, [NewTopic(t, settings.partitions, replication) for t in topics if t not in existing])
        return partitions_of(admin, EVENTS_TOPIC)
    finally:
        admin.close()


def ensure_worker_topics(settings: Settings, changelog: str | None = None) -> int:
    """The contract's topics, and the worker's internal ones with border.events' partition count:
    the repartition topic and (given) the state changelog. An internal topic that exists with
    another count is recreated when empty (a broker that was reset auto-creates topics with its
    default count) and is an error otherwise: its partitions would not line up with the state's."""
    partitions = ensure_topics(settings)
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        replication = settings.replication_factor
        internal = {REPARTITION_TOPIC: {"cleanup.policy": "delete", "retention.ms": str(REPARTITION_RETENTION_MS)}}
        if changelog is not None:
            internal[changelog] = {"cleanup.policy": "compact"}
        # Every mismatch is judged before anything changes: a refusal leaves the topics as they were.
        mismatched = {t: partitions_of(admin, t) for t in internal if t in existing}
        mismatched = {t: n for t, n in mismatched.items() if n != partitions}
        for topic, count in mismatched.items():
            if not _is_empty(settings, topic):
                raise BordermonError(
                    f"{topic} has {count} partitions but border.events has {partitions}: they must match; "
                    f"delete {topic} (internal to bordermon) once no worker runs, and start the workers again"
                )
        for topic, config in internal.items():
            if topic in mismatched:
                log.warning("recreating an empty internal topic", extra={"topic": topic, "partitions": partitions})
                admin.delete_topics([topic])
                _wait_gone(admin, topic)
            elif topic in existing:
                continue
            _create(admin, [NewTopic(topic, partitions, replication, topic_configs=config)])
        return partitions
    finally:
        admin.close()


def _is_empty(settings: Settings, topic: str) -> bool:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_list, enable_auto_commit=False, **client_options(settings.security)
    )
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return all(end == 0 for end in consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def _wait_gone(admin: KafkaAdminClient, topic: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while topic in set(admin.list_topics()):
        if time.monotonic() > deadline:
            raise BordermonError(f"{topic} could not be deleted within {timeout:.0f} s")
        time.sleep(0.1)


def check_group_access(settings: Settings) -> None:
    """One line when this principal may not use the workers' consumer group (an ACL missing):
    aiokafka's coordinator would retry GroupAuthorizationFailed forever without a word."""
    admin = admin_client(settings)
    try:
        admin.describe_groups([APP_ID])
    except GroupAuthorizationFailedError:
        raise BordermonError(
            f"{who(admin)} may not use the consumer group {APP_ID}: the worker's principal needs READ on "
            f"Group:{APP_ID} (python -m bordermon.locks grants it)"
        ) from None
    finally:
        admin.close()


def partition_count_changed(now: int, started: int) -> str:
    """What a worker says when border.events no longer has the partition count it started with."""
    return (
        f"border.events has {now} partitions, this worker started with {started}: state is laid out by "
        "partition, so the workers stop (partitions added, or an in-memory broker reset); see "
        "docs/reliability.md, 'Changing the partition count'"
    )


def partition_counts(settings: Settings, topics: Sequence[str]) -> dict[str, int]:
    admin = admin_client(settings)
    try:
        return {topic: partitions_of(admin, topic) for topic in topics}
    finally:
        admin.close()


def who(admin: KafkaAdminClient) -> str:
    """The principal an admin client logged in as, for error lines."""
    user = admin.config.get("sasl_plain_username")
    return f"user {user}" if user else "this client"


def _create(admin: KafkaAdminClient, topics: list[NewTopic]) -> None:
    if not topics:
        return
    try:
        admin.create_topics(topics)
        log.info("created topics", extra={"topics": [t.name for t in topics]})
    except TopicAlreadyExistsError:
        pass  # another worker won the race
    except (TopicAuthorizationFailedError, ClusterAuthorizationFailedError):
        names = ", ".join(t.name for t in topics)
        raise BordermonError(
            f"{names}: missing, or not visible to {who(admin)}, who may not create them; on a cluster with ACLs "
            "an administrator creates the topics and grants each principal its rights (python -m bordermon.locks)"
        ) from None
    for topic in topics:  # visible with its partitions before anyone uses it (TOPIC_VISIBLE_SECONDS)
        partitions_of(admin, topic.name)


# A topic just created on a cluster reaches every broker's metadata a moment later.
TOPIC_VISIBLE_SECONDS = 15.0


def partitions_of(admin: KafkaAdminClient, topic: str) -> int:
    deadline = time.monotonic() + TOPIC_VISIBLE_SECONDS
    while True:
        described: list[dict[str, Any]] = admin.describe_topics([topic])
        for entry in described:
            if (entry.get("name") or entry.get("topic")) == topic and entry.get("partitions"):
                return len(entry["partitions"])
        if time.monotonic() > deadline:
            raise BordermonError(f"topic {topic} has no partitions on the broker")
        time.sleep(0.1)
