"""Broker faults on a three-node Apache Kafka cluster (docker-compose.cluster.yml: replication 3,
min.insync.replicas 2; producers acks=all and idempotent), under traffic. Each run ends with
every figure, alert transition and dead letter equal to the oracle's, which is what an undisturbed
single-broker run gives (tests/integration/test_pipeline.py): nothing lost, nothing counted twice.

Long (a cluster per test, ~1 min each): marked `faults`; `make test` runs them, `make test-faults`
runs them alone.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bordermon import metrics as catalog
from bordermon.config import CHANGELOG_TOPIC, EVENTS_TOPIC
from bordermon.partitioning import partition_for_key
from harness.metrics import consumed, parse_metrics, sample
from harness.processes import BIN, KafkaBroker, Worker, base_env, read_topic, wait_until
from producers.replay import key_and_time
from tests.fixtures.checks import assert_metrics_match
from tests.fixtures.crash import scenario
from tests.fixtures.registry import CHECKPOINTS
from tests.integration.test_real_clients import assert_outputs_exactly_once

pytestmark = [pytest.mark.integration, pytest.mark.faults]
PARTITIONS = 8
TRAFFIC_SECONDS = 25.0  # the replay's length in wall time: faults land while it runs


@dataclass
class Run:
    cluster: KafkaBroker
    env: dict[str, str]
    workers: list[Worker]
    replay: subprocess.Popen
    lines: list[bytes]
    expected: object
    tmp: Path

    samples: list[tuple[float, int]] = field(default_factory=list)

    def counted(self) -> int:
        return sum(int(consumed(parse_metrics(w.metrics()))) for w in self.workers if w.proc.poll() is None)

    def watch(self) -> None:
        """From the fault on, sample the count every 0.25 s (a thread): `longest_stall` reads it."""
        self.fault_at = time.monotonic()

        def sample_until_done() -> None:
            while not self.samples or self.samples[-1][1] < len(self.lines):
                with contextlib.suppress(OSError):  # a worker between kill and replacement
                    self.samples.append((time.monotonic(), self.counted()))
                time.sleep(0.25)
                if time.monotonic() - self.fault_at > 300:
                    return

        threading.Thread(target=sample_until_done, daemon=True).start()

    def longest_stall(self) -> float:
        """The longest time the count stood still, from the fault until every line was counted."""
        moved = [self.fault_at] + [t for (_, before), (t, n) in itertools.pairwise(self.samples) if n > before]
        return max(b - a for a, b in itertools.pairwise(moved)) if len(moved) > 1 else 0.0


@pytest.fixture
def cluster(tmp_path):
    kafka = KafkaBroker(tmp_path / "kafka", nodes=3)
    yield kafka
    kafka.stop()


def event_span(lines: list[bytes]) -> float:
    """Seconds of event time the replay paces over: valid events only (replay sends the others,
    a 2099 typo among them, at once), so the traffic really lasts TRAFFIC_SECONDS."""
    stamps = [t for line in lines if (t := key_and_time(line)[1]) is not None]
    return max(stamps) - min(stamps)


def busiest_partition(lines: list[bytes]) -> int:
    """The border.events partition the most lines are keyed to (replay keys by checkpoint)."""
    counts: Counter = Counter()
    for line in lines:
        try:
            cid = json.loads(line).get("checkpoint_id")
        except (ValueError, AttributeError):
            continue
        if isinstance(cid, str):
            counts[partition_for_key(cid.encode(), PARTITIONS)] += 1
    return counts.most_common(1)[0][0]


def traffic(cluster: KafkaBroker, tmp_path: Path, seed: int, **extra: str) -> Run:
    """A worker on the cluster and a replay of a mixed log paced over TRAFFIC_SECONDS."""
    run = scenario(tmp_path, good_count=12_000, seed=seed)
    env = base_env(cluster, BORDERMON_CHECKPOINTS=str(run.registry), **extra)
    assert env["BORDERMON_REPLICATION_FACTOR"] == "3", "docker-compose.cluster.yml's client settings"
    worker = Worker(env, tmp_path / "worker-1.log")
    worker.wait_ready(120)
    span = event_span(run.lines)
    speed = max(1.0, span / TRAFFIC_SECONDS)
    log = tmp_path / "replay.out"
    replay = subprocess.Popen([BIN, "replay", str(run.log), "--speed", f"{speed:.0f}", "-q"], env=env,
                              stdout=log.open("w"), stderr=subprocess.STDOUT)  # fmt: skip
    return Run(cluster, env, [worker], replay, run.lines, run.expected, tmp_path)


def finish(run: Run) -> None:
    """The replay ends (it rides out the fault), every line is counted once, the figures are the oracle's."""
    assert run.replay.wait(240) == 0, (run.tmp / "replay.out").read_text()
    wait_until(lambda: run.counted() == len(run.lines), 180, "every line counted")
    live = [w for w in run.workers if w.proc.poll() is None]
    assert len(live) == 1, "one worker left"
    metrics = parse_metrics(live[0].metrics())
    assert_metrics_match(metrics, run.expected, [*CHECKPOINTS, "idle"])
    on_topic = len(read_topic(run.cluster.address, EVENTS_TOPIC))
    assert on_topic == len(run.lines), "the idempotent replay wrote each line once"
    assert_outputs_exactly_once(run.cluster.address, run.expected, run.lines)
    if run.samples:  # the figure for docs/reliability.md's faults table (pytest -rP shows it)
        print(f"longest stall after the fault: {run.longest_stall():.1f} s; every line counted "
              f"{run.samples[-1][0] - run.fault_at:.1f} s after it")  # fmt: skip
    for w in run.workers:
        if w.proc.poll() is None:
            assert w.stop() == 0, w.tail()


def when_a_third_is_counted(run: Run) -> None:
    wait_until(lambda: run.counted() > len(run.lines) // 3, 120, "a third counted")


def test_the_leader_of_the_busiest_partition_killed_and_restarted(cluster, tmp_path):
    run = traffic(cluster, tmp_path, seed=41)
    when_a_third_is_counted(run)
    run.watch()
    leader = cluster.cluster.leader(EVENTS_TOPIC, busiest_partition(run.lines))
    cluster.cluster.kill(leader)
    wait_until(lambda: cluster.cluster.leader(EVENTS_TOPIC, busiest_partition(run.lines)) != leader, 60,
               "a new leader elected")  # fmt: skip
    cluster.cluster.start_node(leader)
    finish(run)


def test_the_leader_of_a_changelog_partition_killed_and_restarted(cluster, tmp_path):
    run = traffic(cluster, tmp_path, seed=42)
    when_a_third_is_counted(run)
    run.watch()
    leader = cluster.cluster.leader(CHANGELOG_TOPIC, busiest_partition(run.lines))
    cluster.cluster.kill(leader)
    cluster.cluster.start_node(leader)
    finish(run)


def test_a_rolling_restart_of_all_three_brokers(cluster, tmp_path):
    run = traffic(cluster, tmp_path, seed=43)
    when_a_third_is_counted(run)
    run.watch()
    for node in (1, 2, 3):
        cluster.cluster.stop_node(node)  # SIGTERM: a controlled shutdown moves leadership first
        cluster.cluster.start_node(node)
    finish(run)


def test_one_broker_down_for_the_rest_of_the_run(cluster, tmp_path):
    run = traffic(cluster, tmp_path, seed=44)
    when_a_third_is_counted(run)
    run.watch()
    cluster.cluster.kill(2)  # 2 of 3 up: min.insync.replicas 2 still acknowledges every write
    finish(run)


def test_two_brokers_down_stall_without_loss_and_catch_up_when_they_return(cluster, tmp_path):
    """1 of 3 up: no write can reach two in-sync replicas. The worker says so in one log line
    and in `bordermon_unacknowledged_write_seconds`, acknowledges nothing it could not make
    durable, stays up, and ends exact once the brokers are back."""
    run = traffic(cluster, tmp_path, seed=45)
    worker = run.workers[0]
    when_a_third_is_counted(run)
    cluster.cluster.kill(2)
    cluster.cluster.kill(3)

    def stalled() -> bool:
        age = sample(parse_metrics(worker.metrics()), catalog.UNACKNOWLEDGED_WRITE_AGE.series) or 0
        return age >= 5 and "the brokers are not acknowledging writes" in worker.tail(20_000)

    wait_until(stalled, 60, "the worker to say the writes are stalled")
    lines = [json.loads(line) for line in worker.log_path.read_text().splitlines()
             if "not acknowledging writes" in line]  # fmt: skip
    assert len(lines) == 1 and lines[0]["level"] == "error", lines
    assert worker.proc.poll() is None, "it waits, it does not stop"
    cluster.cluster.start_node(2)
    cluster.cluster.start_node(3)
    back = time.monotonic()
    wait_until(lambda: "writes acknowledged again" in worker.tail(50_000), 120, "the writes to resume")
    print(f"writes acknowledged again {time.monotonic() - back:.1f} s after the brokers were back")
    finish(run)


def test_a_worker_killed_during_a_leader_change(cluster, tmp_path):
    run = traffic(cluster, tmp_path, seed=46)
    when_a_third_is_counted(run)
    run.watch()
    leader = cluster.cluster.leader(EVENTS_TOPIC, busiest_partition(run.lines))
    cluster.cluster.kill(leader)
    run.workers[0].stop(signal.SIGKILL)  # while the partitions' leadership moves
    run.workers.append(Worker(run.env, tmp_path / "worker-2.log"))
    cluster.cluster.start_node(leader)
    run.workers[-1].wait_ready(120)
    finish(run)
