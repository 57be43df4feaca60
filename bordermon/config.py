"""Settings from the environment (names fixed by the operator contract)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass

EVENTS_TOPIC = "border.events"
ALERTS_TOPIC = "border.alerts"
DEADLETTER_TOPIC = "border.deadletter"
TOPICS = (EVENTS_TOPIC, ALERTS_TOPIC, DEADLETTER_TOPIC)
# Internal: events found off their checkpoint's home partition, forwarded there (streams.commit).
REPARTITION_TOPIC = "bordermon-repartition"
APP_ID = "bordermon"
STATE_TABLE = "state"
CHANGELOG_TOPIC = f"{APP_ID}-{STATE_TABLE}-changelog"  # Faust's name for the table's changelog


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
    batch_max: int = 5000
    delivery_timeout: float = 120.0
    fetch_max_wait: float = 0.05
    group_instance_id: str | None = None
    data_dir: str | None = None
    state_flush_interval: float = 0.1

    @property
    def worker_data_dir(self) -> str:
        """Where the worker may write: never the working directory, which may be read-only."""
        import tempfile

        return self.data_dir or os.path.join(tempfile.gettempdir(), f"bordermon-{os.getuid()}")

    @property
    def bootstrap_list(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]


@dataclass(frozen=True)
class Option:
    field: str
    env: str
    kind: type
    default: object
    help: str


# Every setting: its Settings field (= config-file key), environment variable, type and default.
OPTIONS = (
    Option("bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS", str, "127.0.0.1:9092", "Kafka bootstrap servers"),
    Option("checkpoints_path", "BORDERMON_CHECKPOINTS", str, None, "checkpoint registry YAML (bundled if unset)"),
    Option("web_port", "BORDERMON_WEB_PORT", int, 6066, "worker HTTP port (/metrics, /healthz)"),
    Option("web_host", "BORDERMON_WEB_HOST", str, "127.0.0.1", "worker HTTP bind address"),
    Option("alertmanager_url", "BORDERMON_ALERTMANAGER_URL", str, None, "Alertmanager to push QueueOverload to"),
    Option("alertmanager_repush_seconds", "BORDERMON_ALERTMANAGER_REPUSH_SECONDS", float, 60.0,
           "re-push firing alerts this often"),
    Option("partitions", "BORDERMON_PARTITIONS", int, 8, "partitions when creating topics"),
    Option("replication_factor", "BORDERMON_REPLICATION_FACTOR", int, 1, "replication when creating topics"),
    Option("rebalance_timeout", "BORDERMON_REBALANCE_TIMEOUT", float, 6.0, "consumer group rebalance timeout (s)"),
    Option("batch_max", "BORDERMON_BATCH_MAX", int, 5000, "most messages per fetch, processed as one batch"),
    Option("delivery_timeout", "BORDERMON_DELIVERY_TIMEOUT", float, 120.0,
           "producers retry a message this long (s) before giving up"),
    Option("fetch_max_wait", "BORDERMON_FETCH_MAX_WAIT", float, 0.05,
           "longest a worker's idle fetch waits for new events (s); bounds live latency"),
    Option("group_instance_id", "BORDERMON_GROUP_INSTANCE_ID", str, None,
           "static membership id ({hostname} expands): a restarted worker takes over at once"),
    Option("state_flush_interval", "BORDERMON_STATE_FLUSH_INTERVAL", float, 0.1,
           "a partition's state is written at most this often (s); its offsets are committed after"),
    Option("data_dir", "BORDERMON_DATA_DIR", str, None,
           "the one directory a worker writes (Faust creates it; state lives in Kafka) [TMPDIR/bordermon-UID]"),
)  # fmt: skip

# Set by the CLI from its global flags; highest precedence.
FLAG_OVERRIDES: dict[str, object] = {}
CONFIG_PATH_OVERRIDE: list[str] = []


def config_file_path() -> str | None:
    """--config, then $BORDERMON_CONFIG, then ./bordermon.toml, then ~/.config/bordermon/config.toml."""
    if CONFIG_PATH_OVERRIDE:
        return CONFIG_PATH_OVERRIDE[0]
    if os.environ.get("BORDERMON_CONFIG"):
        return os.environ["BORDERMON_CONFIG"]
    for candidate in ("bordermon.toml", os.path.expanduser("~/.config/bordermon/config.toml")):
        if os.path.isfile(candidate):
            return candidate
    return None


def _read_config_file(path: str | None) -> dict[str, object]:
    from bordermon.errors import BordermonError

    if path is None:
        return {}
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise BordermonError(f"config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BordermonError(f"config file {path}: {exc}") from None
    known = {o.field for o in OPTIONS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise BordermonError(
            f"config file {path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return data


def _convert(option: Option, raw: object, source: str) -> object:
    from bordermon.errors import BordermonError

    if raw is None or raw == "":
        return None
    try:
        return option.kind(raw)
    except (TypeError, ValueError):
        raise BordermonError(f"{source}: {option.field} must be {option.kind.__name__}, got {raw!r}") from None


def resolve() -> tuple[Settings, dict[str, str]]:
    """Effective settings and where each value came from (flag, env, config file or default)."""
    path = config_file_path()
    from_file = _read_config_file(path)
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        value, source = option.default, "default"
        if option.field in from_file:
            value, source = _convert(option, from_file[option.field], f"config file {path}"), f"config file {path}"
        if os.environ.get(option.env):
            value, source = _convert(option, os.environ[option.env], option.env), f"env {option.env}"
        if FLAG_OVERRIDES.get(option.field) is not None:
            value, source = FLAG_OVERRIDES[option.field], "flag"
        values[option.field], sources[option.field] = value, source
    return Settings(**values), sources  # type: ignore[arg-type]


def load_settings() -> Settings:
    return resolve()[0]
