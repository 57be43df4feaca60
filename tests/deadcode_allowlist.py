# ruff: noqa
"""Names the dead-code check (`vulture`, run by `make test`, settings in pyproject.toml) must not
report: each is used by something vulture cannot see. Reviewed; add a name only with its reason.
Test files' `pytestmark`, pytest hooks, signal handlers' `frame` and http.server's handler
methods are ignored by name in pyproject.toml."""

# The event and registry schemas decode every contract field, used or not (msgspec Structs).
age_band, sex  # bordermon/events.py
name_kk, name_ru  # bordermon/registry.py

# logging.Formatter/LogRecord attributes the standard library reads.
_.msg, _.levelno, _.exc_text, _.converter  # bordermon/logs.py

# click registers the commands through their decorators.
show_config, webhook_log, dashboards_push, backtest, demo  # shell/cli.py

# Faust calls these through the app: agents, timers, signals and web pages (decorators).
process, before_shutdown, push_alerts, partition_count, readyz, healthz  # streams/worker/app.py
# A strong reference to the crash task, so that asyncio does not drop it before it runs.
_.crashing  # streams/worker/app.py

# Faust and aiokafka internals overridden or set in streams/worker/faustadapter.py (each names why there).
_._fetch_max_wait_ms, _._isolation_level, _._new_consumer_thread, _._drain_messages, _._n_acked, _.perform_seek
ChangelogOnlyStore, _.on_rebalance, generation_id, newly_assigned, _.persisted_offset
_.apply_changelog_batch, to_key, to_value, _.on_start, _.on_assignment
_._topic_groups, _._active_tps, _._standby_tps, _._new_consumer
DocumentedOnlyWeb, default_blueprints, production_blueprints, debug_blueprints, optional_blueprints

# aiohttp's property: the length of a body that streams/worker/webaccess.py sends in pieces.
_.content_length  # streams/worker/webaccess.py
