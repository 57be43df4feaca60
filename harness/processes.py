"""Real processes for integration tests: the embedded broker, workers, the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from bordermon.broker import start_broker
from bordermon.config import APP_ID
from bordermon.ports import free_port

BIN = str(Path(sys.executable).with_name("bordermon"))


class ProcessGone(Exception):
    """A process a wait depends on has exited: waiting longer cannot help."""


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2) -> object:
    """Poll a condition (not a sleep-as-synchronisation: it returns as soon as it holds). Fails at
    once, with the process's last words, when the predicate finds its process gone."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except ProcessGone as gone:
            raise AssertionError(f"waiting for {what}: {gone}") from None
        except Exception as exc:
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


class Broker:
    """The embedded broker (Tansu), in memory."""

    kind = "tansu"

    def __init__(self, authentication: bool = False, log_path: Path | None = None) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.authentication = authentication
        self.log_path = log_path
        self.proc = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        if self.log_path is None:
            return start_broker("127.0.0.1", self.port, self.authentication)
        with open(self.log_path, "ab") as log:  # the broker keeps its own copy of the descriptor
            return start_broker("127.0.0.1", self.port, self.authentication, log)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def restart(self) -> None:
        """Kill and start again on the same port: in memory, it comes back empty."""
        self.stop()
        self.proc = self._start()


class KafkaBroker:
    """Apache Kafka (KRaft) from Maven Central's jars, with docker-compose.yml's settings: one node
    by default, three with `nodes=3` (docker-compose.cluster.yml). Its data lives in `root`."""

    kind = "kafka"

    def __init__(self, root: Path | None = None, nodes: int = 1, secure: bool = False, **extra: str) -> None:
        from harness.apachekafka import KafkaCluster

        self.cluster = KafkaCluster(nodes=nodes, root=root, extra=dict(extra), secure=secure).start()
        self.address = self.cluster.address

    def stop(self) -> None:
        self.cluster.stop()

    def restart(self) -> None:
        """kill -9 every node and start it again: unlike the embedded broker, Kafka keeps its logs."""
        self.cluster.restart()


AnyBroker = Broker | KafkaBroker
BROKER_KINDS = ("tansu", "kafka")


def start_broker_of(kind: str, root: Path | None = None) -> AnyBroker:
    """A fresh broker of a kind: `tansu` (embedded, in memory) or `kafka` (Apache Kafka, one node)."""
    if kind == "kafka":
        return KafkaBroker(root)
    if kind == "tansu":
        return Broker()
    raise ValueError(f"unknown broker kind {kind!r}; one of {BROKER_KINDS}")


class Worker:
    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.port = free_port()
        self.env = {**env, "BORDERMON_WEB_PORT": str(self.port)}
        self.log_path = log_path
        self.log = open(log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([BIN, "worker", *args], env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def get(self, path: str) -> str:
        if self.proc.poll() is not None:
            raise ProcessGone(f"the worker exited with {self.proc.returncode}: {self.tail()}")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
            return r.read().decode()

    def wait_until(self, predicate: Callable[[], object], timeout: float, what: str) -> object:
        """`wait_until`, and when it times out, the worker's log says what it was doing."""
        try:
            return wait_until(predicate, timeout, what)
        except AssertionError as failed:
            raise AssertionError(f"{failed}\n--- the worker's log ends:\n{self.tail()}") from None

    def metrics(self) -> str:
        return self.get("/metrics")

    def page_faults(self) -> int:
        """Minor page faults so far (`minflt` in /proc/<pid>/stat): pages the worker touched for
        the first time. On this machine's VM each costs ~30 µs once past a warm pool (bench/README.md)."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as stat:
                # Fields after the command name, which is in parentheses and may hold spaces.
                return int(stat.read().rsplit(")", 1)[1].split()[7])
        except (OSError, IndexError, ValueError):
            return 0

    def memory_mb(self, field: str = "VmRSS") -> float:
        """Resident memory from the kernel (`VmRSS` now, `VmHWM` its peak since the start), MB; 0
        once the process is gone. Read from /proc, not from a /metrics scrape: sampling memory
        must not cost the worker a scrape (at 2,400 checkpoints one is ~86,000 samples)."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as status:
                for line in status:
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) / 1024  # kB
        except OSError:
            pass
        return 0.0

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}: {self.tail()}")
            return '"partitions":[' in self.get("/healthz") and '"partitions":[]' not in self.get("/healthz")

        wait_until(ready, timeout, "worker to own partitions")

    def tail(self, n: int = 3000) -> str:
        return self.log_path.read_bytes()[-n:].decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=timeout)


READ_TOPIC_TIMEOUT = 90.0


def committed_offsets(bootstrap: str, group: str = APP_ID) -> int:
    """The sum of the offsets `group` has committed: above zero once a worker has made input durable."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
        return sum(meta.offset for meta in offsets.values() if meta.offset > 0)
    finally:
        admin.close()


def read_topic(
    bootstrap: str, topic: str, idle_polls: int = 3, limit: int | None = None, read_committed: bool = False
) -> list:
    """Every record of a topic, read until every partition reached the end offset it had when the
    read began and the broker has nothing more to give (or `limit` read); with `read_committed`,
    only what committed transactions wrote (and non-transactional writes). Both conditions: the
    embedded broker reports end offsets short, and a cluster that just lost a leader gives empty
    polls before the partition's new leader answers."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        isolation_level="read_committed" if read_committed else "read_uncommitted",
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        records, empty = [], 0
        deadline = time.monotonic() + READ_TOPIC_TIMEOUT
        while empty < idle_polls:
            batch = consumer.poll(timeout_ms=200)
            if not batch:
                caught_up = all(consumer.position(tp) >= ends[tp] for tp in tps)
                if not caught_up and time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{topic}: positions short of the end offsets {ends} after {READ_TOPIC_TIMEOUT:.0f} s"
                    )
                empty = empty + 1 if caught_up else 0
                continue
            empty = 0
            for recs in batch.values():
                records.extend(recs)
            if limit is not None and len(records) >= limit:
                break
        return records
    finally:
        consumer.close()


def base_env(broker: AnyBroker, **extra: str) -> dict[str, str]:
    """A clean environment for bordermon commands against `broker`. On Apache Kafka the workers get
    the settings docker-compose.yml gives them (so the tests run what compose deploys); on the
    embedded broker a short rebalance timeout, as it completes a group join after half of it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BORDERMON_", "KAFKA_"))}
    if broker.kind == "kafka":
        from harness.apachekafka import compose_cluster_client_settings, compose_worker_settings

        env.update(compose_worker_settings())
        if len(broker.cluster.members) == 3:  # docker-compose.cluster.yml's, on top
            env.update(compose_cluster_client_settings())
    else:
        env["BORDERMON_REBALANCE_TIMEOUT"] = "4"
    env.update({"KAFKA_BOOTSTRAP_SERVERS": broker.address, **extra})
    return env


class Service:
    """A server binary started on loopback for one test, stopped afterwards."""

    def __init__(self, args: list[str], ready_url: str, log_path: Path) -> None:
        self.log = open(log_path, "ab")  # noqa: SIM115
        self.log_path = log_path
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.ready_url = ready_url

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"{args[0]} exited: {log_path.read_text()[-2000:]}")
            with urllib.request.urlopen(ready_url, timeout=2) as r:
                return r.status == 200

        wait_until(ready, 30, f"{args[0]} to be ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def start_prometheus(tmp: Path, targets: list[str], rules: list[Path]) -> tuple[Service, str]:
    from shell.localmonitoring import prometheus_command

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = prometheus_command("prometheus", tmp, port, targets, rules, scrape_interval="1s")
    return Service(args, f"{url}/-/ready", tmp / "prometheus.log"), url


def start_alertmanager(tmp: Path, config_text: str) -> tuple[Service, str]:
    from shell.localmonitoring import alertmanager_command

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = alertmanager_command("prometheus-alertmanager", tmp, port, config_text)
    return Service(args, f"{url}/-/ready", tmp / "alertmanager.log"), url
