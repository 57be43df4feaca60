"""Settings: names fixed by the operator contract, resolved once into one immutable object."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field

from bordermon.errors import BordermonError
from bordermon.security import KafkaSecurity, security_env
from bordermon.security import from_env as security_from_env

EVENTS_TOPIC = "border.events"
ALERTS_TOPIC = "border.alerts"
DEADLETTER_TOPIC = "border.deadletter"
TOPICS = (EVENTS_TOPIC, ALERTS_TOPIC, DEADLETTER_TOPIC)
# Internal: events found off their checkpoint's home partition, forwarded there (streams.worker.commit).
REPARTITION_TOPIC = "bordermon-repartition"
APP_ID = "bordermon"
STATE_TABLE = "state"
CHANGELOG_TOPIC = f"{APP_ID}-{STATE_TABLE}-changelog"  # Faust's name for the table's changelog
COMMIT_INTERVAL = 1.0  # how often a worker commits offsets (s)


@dataclass(frozen=True)
class Settings:
    """Every setting, resolved once (flags > environment > config file > these defaults) and
    passed down explicitly. Kafka security comes from the environment only (secrets never sit in
    a config file)."""

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
    session_timeout: float | None = None  # `session_timeout_for`: by membership when unset
    state_flush_interval: float | None = None  # `flush_interval_for`: by checkpoints when unset
    data_dir: str | None = None
    exactly_once: str = "bordermon"  # see EXACTLY_ONCE
    web_config: str | None = None  # `bordermon.webconfig`
    security: KafkaSecurity = field(default_factory=KafkaSecurity)

    @property
    def worker_data_dir(self) -> str:
        """Where the worker may write: never the working directory, which may be read-only."""
        import tempfile

        return self.data_dir or os.path.join(tempfile.gettempdir(), f"bordermon-{os.getuid()}")

    @property
    def bootstrap_list(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]


# How long the group coordinator waits without a heartbeat before it drops a member. A dynamic
# member's is short: a dead worker's partitions move on after it (6 s is Apache Kafka's
# `group.min.session.timeout.ms`). A static member's is how long a crashed worker may take to
# come back before its partitions move; Kafka hands a returning static member its partitions at
# once (KIP-345): measured 2.7-3.1 s from kill -9 to processing again, so 10 s covers a restart
# with room. On the embedded broker it must also outlast the member's own join and sync: Tansu
# 0.6 holds a static member's join for half the session timeout, rounded up to a second, and its
# sync 3 s, and does not count the sync as contact, so its first heartbeat comes S/2 + 3 s + one
# heartbeat interval after the last contact. At 6 s two members started together looped (the
# later one dropped after every sync, both rejoining: 4 runs in 6). There the static session is
# 8 s and the heartbeat interval 0.2 s (7.2 s, 0.8 s to spare; at 10 s and 1 s it was 9 s, 1 s to
# spare, and a 9 s session still joins for 5 s); every second off the join is one off a static
# member's recovery there (kill -9 to ready, bundled registry: 10 s session 9.49-9.62 s, 8 s with
# 0.2 s heartbeats 8.43-8.66 s, measured 2026-12-07). For the same reason, on Tansu a session is
# never shorter than the rebalance timeout (a join there lasts half of it); Kafka counts a member
# waiting in a join as alive, so there the two are independent (compose and Kubernetes set a 20 s
# rebalance timeout, which a dead dynamic member's 6 s session must not grow to).
DYNAMIC_SESSION_TIMEOUT = 6.0
STATIC_SESSION_TIMEOUT = 10.0
EMBEDDED_STATIC_SESSION_TIMEOUT = 8.0
HEARTBEAT_INTERVAL = 1.0
EMBEDDED_HEARTBEAT_INTERVAL = 0.2


def session_timeout_for(settings: Settings, joins_count_as_contact: bool) -> float:
    """`joins_count_as_contact`: `bordermon.kafka.BrokerTraits.joins_count_as_contact`."""
    if settings.session_timeout is not None:
        return settings.session_timeout
    if not settings.group_instance_id:
        floor = DYNAMIC_SESSION_TIMEOUT
    else:
        floor = STATIC_SESSION_TIMEOUT if joins_count_as_contact else EMBEDDED_STATIC_SESSION_TIMEOUT
    return floor if joins_count_as_contact else max(settings.rebalance_timeout, floor)


# What one fetch may return of one partition (Faust's default `consumer_max_fetch_size`, named
# here so the embedded broker's whole-fetch limit can match it).
FETCH_BYTES_PER_PARTITION = 1024 * 1024


def fetch_max_bytes_for(partition_limit_honoured: bool) -> int | None:
    """The consumer's limit on a whole fetch: the client's default where the broker keeps each
    partition to its own limit; one partition's worth where it does not (`BrokerTraits`), so no
    partition is buffered larger than on Kafka."""
    return None if partition_limit_honoured else FETCH_BYTES_PER_PARTITION


def heartbeat_interval_for(joins_count_as_contact: bool) -> float:
    """How often a member tells the coordinator it is alive: on the embedded broker soon after a
    sync, which is not contact there (above)."""
    return HEARTBEAT_INTERVAL if joins_count_as_contact else EMBEDDED_HEARTBEAT_INTERVAL


# A partition's state write covers every checkpoint it touched since the last one. With a few
# checkpoints per partition, writes every 0.1 s are cheap and keep little pending (a 1 s interval
# held 14-22 MB more on the 24-checkpoint bench and was no faster); with hundreds, they cost the
# drain (2,400 checkpoints: 1 s drained 5-28% faster than 0.1 s in 6 of 6 paired runs; 2 s gave
# 2,400 / 24 checkpoint drain ratios of 0.833, 0.841, 0.811 on Apache Kafka against 0.765-0.831
# at 1 s, peak RSS 353-363 MB). Offsets wait for the state, so a longer interval commits them
# less often too: after a crash, up to that much more is processed again (exactly, but later).
MIN_FLUSH_INTERVAL = 0.1
MAX_FLUSH_INTERVAL = 2.0
CHECKPOINT_WRITES_PER_SECOND = 150  # per partition, before the interval grows


def flush_interval_for(settings: Settings, checkpoints: int, partitions: int) -> float:
    if settings.state_flush_interval is not None:
        return settings.state_flush_interval
    per_partition = checkpoints / max(1, partitions)
    return min(MAX_FLUSH_INTERVAL, max(MIN_FLUSH_INTERVAL, per_partition / CHECKPOINT_WRITES_PER_SECOND))


# How a batch's outputs, state and input offsets become durable together (docs/reliability.md):
# bordermon's commit protocol (`streams.worker.commit`), or Apache Kafka's transactions
# (`streams.worker.transactions`; its readers must use read_committed).
EXACTLY_ONCE = ("bordermon", "kafka-transactions")


@dataclass(frozen=True)
class Option:
    field: str
    env: str
    kind: type
    help: str
    choices: tuple[str, ...] = ()

    @property
    def default(self) -> object:
        return getattr(DEFAULTS, self.field)


DEFAULTS = Settings()

# Every setting: its Settings field (= config-file key), environment variable, type and help.
OPTIONS = (
    Option("bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS", str, "Kafka bootstrap servers"),
    Option("checkpoints_path", "BORDERMON_CHECKPOINTS", str, "checkpoint registry YAML (bundled if unset)"),
    Option("web_port", "BORDERMON_WEB_PORT", int, "worker HTTP port (/metrics, /healthz, /readyz)"),
    Option("web_host", "BORDERMON_WEB_HOST", str, "worker HTTP bind address"),
    Option("alertmanager_url", "BORDERMON_ALERTMANAGER_URL", str, "Alertmanager to push QueueOverload to"),
    Option("alertmanager_repush_seconds", "BORDERMON_ALERTMANAGER_REPUSH_SECONDS", float,
           "re-push firing alerts this often"),
    Option("partitions", "BORDERMON_PARTITIONS", int, "partitions when creating topics"),
    Option("replication_factor", "BORDERMON_REPLICATION_FACTOR", int, "replication when creating topics"),
    Option("rebalance_timeout", "BORDERMON_REBALANCE_TIMEOUT", float, "consumer group rebalance timeout (s)"),
    Option("batch_max", "BORDERMON_BATCH_MAX", int, "most messages per fetch, processed as one batch"),
    Option("delivery_timeout", "BORDERMON_DELIVERY_TIMEOUT", float,
           "producers retry a message this long (s) before giving up"),
    Option("fetch_max_wait", "BORDERMON_FETCH_MAX_WAIT", float,
           "longest a worker's idle fetch waits for new events (s); bounds live latency"),
    Option("group_instance_id", "BORDERMON_GROUP_INSTANCE_ID", str,
           "static membership id ({hostname} expands): a restarted worker takes over at once"),
    Option("session_timeout", "BORDERMON_SESSION_TIMEOUT", float,
           f"consumer group session timeout (s) [{STATIC_SESSION_TIMEOUT:g} with a static membership id "
           f"({EMBEDDED_STATIC_SESSION_TIMEOUT:g} on the embedded broker), else {DYNAMIC_SESSION_TIMEOUT:g}]"),
    Option("state_flush_interval", "BORDERMON_STATE_FLUSH_INTERVAL", float,
           f"a partition's state is written at most this often (s); its offsets are committed after "
           f"[{MIN_FLUSH_INTERVAL:g}, or checkpoints per partition / {CHECKPOINT_WRITES_PER_SECOND}, "
           f"at most {MAX_FLUSH_INTERVAL:g}]"),
    Option("data_dir", "BORDERMON_DATA_DIR", str,
           "the one directory a worker writes (Faust creates it; state lives in Kafka) [TMPDIR/bordermon-UID]"),
    Option("web_config", "BORDERMON_WEB_CONFIG", str,
           "TLS and basic auth for the worker's HTTP port: a Prometheus exporter --web.config.file YAML"),
    Option("exactly_once", "BORDERMON_EXACTLY_ONCE", str,
           "how outputs, state and offsets become durable together: bordermon (the commit protocol) or "
           "kafka-transactions (Apache Kafka's; consumers of border.alerts then read with read_committed)",
           EXACTLY_ONCE),
)  # fmt: skip
CONFIG_ENV = "BORDERMON_CONFIG"


@dataclass(frozen=True)
class Resolved:
    """The effective settings, where each value came from, and the config file read (if any)."""

    settings: Settings
    sources: dict[str, str]
    config_file: str | None


def config_file_path(explicit: str | None, env: Mapping[str, str]) -> str | None:
    """--config, then $BORDERMON_CONFIG, then ./bordermon.toml, then ~/.config/bordermon/config.toml."""
    if explicit:
        return explicit
    if env.get(CONFIG_ENV):
        return env[CONFIG_ENV]
    for candidate in ("bordermon.toml", os.path.expanduser("~/.config/bordermon/config.toml")):
        if os.path.isfile(candidate):
            return candidate
    return None


def _read_config_file(path: str | None) -> dict[str, object]:
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
    if raw is None or raw == "":
        return None
    try:
        value = option.kind(raw)
    except (TypeError, ValueError):
        raise BordermonError(f"{source}: {option.field} must be {option.kind.__name__}, got {raw!r}") from None
    if option.choices and value not in option.choices:
        raise BordermonError(f"{source}: {option.field} must be one of {', '.join(option.choices)}, got {raw!r}")
    return value


def resolve(
    flags: Mapping[str, object] | None = None, env: Mapping[str, str] | None = None, config_path: str | None = None
) -> Resolved:
    """Effective settings from flags > environment > config file > defaults, with provenance."""
    env = os.environ if env is None else env
    flags = flags or {}
    path = config_file_path(config_path, env)
    from_file = _read_config_file(path)
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        value, source = option.default, "default"
        if option.field in from_file:
            value, source = _convert(option, from_file[option.field], f"config file {path}"), f"config file {path}"
        if env.get(option.env):
            value, source = _convert(option, env[option.env], option.env), f"env {option.env}"
        if flags.get(option.field) is not None:
            value, source = flags[option.field], "flag"
        values[option.field], sources[option.field] = value, source
    settings = Settings(**values, security=security_from_env(env))  # type: ignore[arg-type]
    return Resolved(settings, sources, path)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process resolve the same settings (demo, tests)."""
    out = {o.env: str(getattr(settings, o.field)) for o in OPTIONS if getattr(settings, o.field) is not None}
    out.update(security_env(settings.security))
    return out
