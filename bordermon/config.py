"""Settings from the environment (names fixed by the operator contract)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

EVENTS_TOPIC = "border.events"
ALERTS_TOPIC = "border.alerts"
DEADLETTER_TOPIC = "border.deadletter"
TOPICS = (EVENTS_TOPIC, ALERTS_TOPIC, DEADLETTER_TOPIC)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        from bordermon.errors import BordermonError

        raise BordermonError(f"{name} must be an integer, got {raw!r}") from None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        from bordermon.errors import BordermonError

        raise BordermonError(f"{name} must be a number, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str = "127.0.0.1:9092"
    checkpoints_path: str | None = None
    web_port: int = 6066
    web_host: str = "127.0.0.1"
    alertmanager_url: str | None = None
    alertmanager_repush_seconds: float = 60.0
    partitions: int = 8
    replication_factor: int = 1
    # Tansu completes a group join after ~half the rebalance timeout, so keep it short.
    rebalance_timeout: float = 6.0
    batch_max: int = 2000
    batch_within: float = 0.05
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def bootstrap_list(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]


def load_settings() -> Settings:
    return Settings(
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or "127.0.0.1:9092",
        checkpoints_path=os.environ.get("BORDERMON_CHECKPOINTS") or None,
        web_port=_env_int("BORDERMON_WEB_PORT", 6066),
        web_host=os.environ.get("BORDERMON_WEB_HOST") or "127.0.0.1",
        alertmanager_url=os.environ.get("BORDERMON_ALERTMANAGER_URL") or None,
        alertmanager_repush_seconds=_env_float("BORDERMON_ALERTMANAGER_REPUSH_SECONDS", 60.0),
        partitions=_env_int("BORDERMON_PARTITIONS", 8),
        replication_factor=_env_int("BORDERMON_REPLICATION_FACTOR", 1),
        rebalance_timeout=_env_float("BORDERMON_REBALANCE_TIMEOUT", 6.0),
        batch_max=_env_int("BORDERMON_BATCH_MAX", 2000),
        batch_within=_env_float("BORDERMON_BATCH_WITHIN", 0.05),
    )
