"""Configuration precedence (flags > env > config file > defaults) and help texts."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = str(Path(sys.executable).with_name("bordermon"))


def bordermon(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BORDERMON_", "KAFKA_"))}
    return subprocess.run([BIN, *args], capture_output=True, text=True, env={**clean, **(env or {})}, cwd=cwd)


def test_precedence_flag_over_env_over_file_over_default(tmp_path):
    config = tmp_path / "bordermon.toml"
    config.write_text('web_port = 7001\nbatch_max = 500\nweb_host = "10.0.0.1"\n')
    env = {"BORDERMON_BATCH_MAX": "900", "BORDERMON_WEB_HOST": "10.0.0.2"}
    result = bordermon("--web-host", "10.0.0.3", "config", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["web_port"] == {"value": 7001, "source": f"config file {Path('bordermon.toml')}",
                                "env": "BORDERMON_WEB_PORT"}  # fmt: skip
    assert data["batch_max"]["value"] == 900 and data["batch_max"]["source"] == "env BORDERMON_BATCH_MAX"
    assert data["web_host"]["value"] == "10.0.0.3" and data["web_host"]["source"] == "flag"
    assert data["partitions"] == {"value": 8, "source": "default", "env": "BORDERMON_PARTITIONS"}


@pytest.mark.parametrize(
    ("content", "message"),
    [("nope = 1\n", "unknown key(s) nope"), ("web_port = 'x'\n", "web_port must be int"), ("= broken", "config file")],
)
def test_bad_config_file_is_one_line(tmp_path, content, message):
    path = tmp_path / "c.toml"
    path.write_text(content)
    result = bordermon("--config", str(path), "config")
    assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1


def test_every_command_has_help_with_examples():
    commands = ["broker", "worker", "replay", "simulate", "record", "status", "demo", "config", "webhook-log"]
    for name in commands:
        result = bordermon(name, "--help")
        assert result.returncode == 0, name
        assert "Example" in result.stdout, f"{name} --help has no example"
    assert "Example" in bordermon("dashboards", "push", "--help").stdout


def test_static_members_get_a_session_that_outlasts_the_embedded_brokers_join_and_sync():
    from dataclasses import replace

    from bordermon.config import DEFAULTS, session_timeout_for

    embedded = False  # a join there is not contact
    assert session_timeout_for(DEFAULTS, embedded) == 6.0, "a dead dynamic member is noticed quickly"
    static = replace(DEFAULTS, group_instance_id="bordermon-{hostname}")
    assert session_timeout_for(static, embedded) == 8.0
    assert session_timeout_for(replace(static, rebalance_timeout=20.0), embedded) == 20.0, "never below a join"
    assert session_timeout_for(replace(static, session_timeout=45.0), embedded) == 45.0, "the setting wins"


def test_on_kafka_sessions_do_not_grow_with_the_rebalance_timeout():
    from dataclasses import replace

    from bordermon.config import DEFAULTS, session_timeout_for

    kafka = True  # a member waiting in a join is alive
    slow_joins = replace(DEFAULTS, rebalance_timeout=20.0)  # compose's and Kubernetes' setting
    assert session_timeout_for(slow_joins, kafka) == 6.0, "a dead dynamic member moves on after 6 s, not 20"
    assert session_timeout_for(replace(slow_joins, group_instance_id="w-0"), kafka) == 10.0
    assert session_timeout_for(replace(slow_joins, session_timeout=30.0), kafka) == 30.0


def test_on_the_embedded_broker_a_static_members_first_heartbeat_comes_before_its_session_ends():
    """Tansu holds a static member's join for half the session (rounded up to a second) and its
    sync 3 s, neither counted as contact; the first heartbeat follows one interval later."""
    import math
    from dataclasses import replace

    from bordermon.config import DEFAULTS, heartbeat_interval_for, session_timeout_for

    static = replace(DEFAULTS, group_instance_id="w-0")
    for rebalance in (4.0, 6.0, 20.0):
        session = session_timeout_for(replace(static, rebalance_timeout=rebalance), False)
        first_heartbeat = math.ceil(session / 2) + 3 + heartbeat_interval_for(False)
        assert session - first_heartbeat >= 0.5, (rebalance, session, first_heartbeat)
    assert heartbeat_interval_for(True) == 1.0, "Kafka counts a join as contact: no hurry there"


def test_state_is_written_less_often_as_checkpoints_per_partition_grow_up_to_a_bound():
    from dataclasses import replace

    from bordermon.config import DEFAULTS, MAX_FLUSH_INTERVAL, flush_interval_for

    assert flush_interval_for(DEFAULTS, 24, 8) == 0.1, "a few per partition: frequent small writes"
    assert flush_interval_for(DEFAULTS, 800, 8) == pytest.approx(2 / 3)
    assert flush_interval_for(DEFAULTS, 2400, 8) == MAX_FLUSH_INTERVAL == 2.0
    assert flush_interval_for(DEFAULTS, 24_000, 8) == MAX_FLUSH_INTERVAL, "bounded: what a crash re-processes"
    assert flush_interval_for(DEFAULTS, 2400, 0) == MAX_FLUSH_INTERVAL
    assert flush_interval_for(replace(DEFAULTS, state_flush_interval=0.05), 2400, 8) == 0.05, "the setting wins"


def test_on_the_embedded_broker_a_fetch_asks_for_one_partitions_worth_in_all():
    """Tansu ignores a fetch's per-partition limit and fills partitions up to the whole request's
    limit: the worker's aiokafka consumer asks for one partition's worth in all there, and keeps
    the client's default where the broker honours the per-partition limit (Kafka)."""
    import asyncio

    from aiokafka import AIOKafkaConsumer

    from bordermon.config import DEFAULTS, FETCH_BYTES_PER_PARTITION
    from bordermon.kafka import BrokerTraits
    from bordermon.registry import load_registry
    from streams.worker.app import Pipeline

    client_default = inspect.signature(AIOKafkaConsumer).parameters["fetch_max_bytes"].default

    async def built(kraft: bool) -> tuple[int, int]:
        pipeline = Pipeline(DEFAULTS, load_registry(None), 8, BrokerTraits(kraft=kraft))
        app = pipeline.app
        consumer = app.consumer._new_consumer_thread()._create_worker_consumer(app.transport)
        await pipeline.shutdown()
        return consumer._fetch_max_bytes, consumer._max_partition_fetch_bytes

    assert asyncio.run(built(kraft=False)) == (FETCH_BYTES_PER_PARTITION, FETCH_BYTES_PER_PARTITION)
    assert asyncio.run(built(kraft=True)) == (client_default, FETCH_BYTES_PER_PARTITION)
