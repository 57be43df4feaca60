"""Who may do what on a locked Kafka cluster: bordermon's SASL/SCRAM users and their ACLs.

Applied once by an administrator connection (a super user), before any worker starts:
`python -m bordermon.locks` creates the contract's and the worker's topics, each principal's SCRAM
credential (the password from the environment variable it names) and its ACLs. docker-compose.secure.yml
runs it as the `kafka-locks` job; deploy/kubernetes/kafka-locks-job.yaml as a Job; the tests apply
the same grants (tests/integration/test_locks.py).

Every principal gets the least it needs, nothing with a wildcard:
- the worker reads border.events, writes border.alerts and border.deadletter, reads and writes its
  internal topics (forwarding, state changelog), uses its consumer group and, with the
  kafka-transactions option, its transactional ids;
- a producer (replay, simulate, a checkpoint system) only writes border.events;
- record only reads border.events (it keeps its positions in its own manifest, not in a group).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourceType,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from bordermon.config import (
    ALERTS_TOPIC,
    APP_ID,
    CHANGELOG_TOPIC,
    DEADLETTER_TOPIC,
    EVENTS_TOPIC,
    REPARTITION_TOPIC,
    Settings,
)
from bordermon.errors import BordermonError

log = logging.getLogger("bordermon.locks")

READ, WRITE, DESCRIBE = ACLOperation.READ, ACLOperation.WRITE, ACLOperation.DESCRIBE
# The kafka-transactions option names its producers bordermon-<partition> (streams/worker/transactions.py).
TRANSACTIONAL_PREFIX = f"{APP_ID}-"


@dataclass(frozen=True)
class Grant:
    resource: ResourceType
    name: str
    operations: tuple[ACLOperation, ...]
    pattern: ACLResourcePatternType = ACLResourcePatternType.LITERAL


@dataclass(frozen=True)
class Principal:
    user: str
    password_env: str
    grants: tuple[Grant, ...]


def topic(name: str, *operations: ACLOperation) -> Grant:
    return Grant(ResourceType.TOPIC, name, operations)


WORKER_TOPICS = (
    topic(EVENTS_TOPIC, READ, DESCRIBE),
    topic(ALERTS_TOPIC, WRITE, DESCRIBE),
    topic(DEADLETTER_TOPIC, WRITE, DESCRIBE),
    topic(REPARTITION_TOPIC, READ, WRITE, DESCRIBE),
    topic(CHANGELOG_TOPIC, READ, WRITE, DESCRIBE),
    Grant(ResourceType.TRANSACTIONAL_ID, TRANSACTIONAL_PREFIX, (WRITE, DESCRIBE), ACLResourcePatternType.PREFIXED),
)
WORKER = Principal(
    "bordermon-worker", "BORDERMON_WORKER_PASSWORD", (*WORKER_TOPICS, Grant(ResourceType.GROUP, APP_ID, (READ,)))
)
PRODUCER = Principal("bordermon-producer", "BORDERMON_PRODUCER_PASSWORD", (topic(EVENTS_TOPIC, WRITE, DESCRIBE),))
RECORDER = Principal("bordermon-recorder", "BORDERMON_RECORDER_PASSWORD", (topic(EVENTS_TOPIC, READ, DESCRIBE),))
PRINCIPALS = (WORKER, PRODUCER, RECORDER)


def acls_of(principal: Principal) -> list[ACL]:
    return [
        ACL(
            f"User:{principal.user}",
            "*",
            operation,
            ACLPermissionType.ALLOW,
            ResourcePattern(grant.resource, grant.name, grant.pattern),
        )
        for grant in principal.grants
        for operation in grant.operations
    ]


def apply(settings: Settings, principals: Sequence[Principal], passwords: Mapping[str, str]) -> None:
    """Topics, credentials and ACLs, through an administrator connection (`settings`). Idempotent:
    applying again updates the passwords and leaves the ACLs as they are."""
    from bordermon.kafka import admin_client, ensure_worker_topics

    missing = [p.password_env for p in principals if not passwords.get(p.password_env)]
    if missing:
        raise BordermonError(f"set {', '.join(missing)}: each principal's password comes from the environment")
    ensure_worker_topics(settings, CHANGELOG_TOPIC)
    admin = admin_client(settings)
    try:
        upserts = [UserScramCredentialUpsertion(p.user, ScramMechanism.SCRAM_SHA_512, passwords[p.password_env])
                   for p in principals]  # fmt: skip
        problems = {user: error for user, error in admin.alter_user_scram_credentials(upserts).items() if error}
        if problems:
            raise BordermonError(f"SCRAM credentials refused: {problems}")
        result = admin.create_acls([acl for p in principals for acl in acls_of(p)])
        if result.get("failed"):
            raise BordermonError(f"ACLs refused: {[str(f) for f in result['failed']][:3]}")
    finally:
        admin.close()
    for p in principals:
        log.info("principal ready", extra={"user": p.user, "grants": len(acls_of(p))})


def main() -> int:
    from bordermon.config import resolve
    from bordermon.logs import setup_logging

    setup_logging()
    try:
        apply(resolve().settings, PRINCIPALS, os.environ)
    except BordermonError as exc:
        print(f"bordermon.locks: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
