"""Apache Kafka (KRaft) on this machine, from Maven Central's jars: one node or a cluster.

For tests, the bench and `scripts/kafka.sh`. The version is pinned once, in
`harness/apache-kafka/pom.xml`; the broker settings are docker-compose.yml's (the `kafka`
service, and with `docker-compose.cluster.yml` the three-node cluster), except the addresses,
which go on loopback ports that are free. So what the tests run is what compose deploys.

Cold start: Maven resolves the jars once into a cache (`~/.cache/bordermon/kafka/VERSION`, or
`$BORDERMON_KAFKA_CACHE`); each node's storage is formatted once there too (`kafka-storage
format`, one JVM start per node) and copied for every new node, so a start is one JVM per node.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bordermon.ports import free_port
from harness.console import say_as

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = Path(__file__).resolve().with_name("apache-kafka")
POM = RUNTIME / "pom.xml"
LOG_CONFIG = RUNTIME / "log4j2.properties"
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_CLUSTER = ROOT / "docker-compose.cluster.yml"
COMPOSE_SECURE = ROOT / "docker-compose.secure.yml"
# Listeners the harness does not open: HOST is compose's port for the Docker host.
UNUSED_LISTENERS = {"HOST"}
# Everything the nodes of one cluster share in their storage format; any fixed id will do, as
# each cluster runs alone on its own ports.
CLUSTER_ID = "Ym9yZGVybW9uLWthZmthMQ"
# Settings that name a node or an address: the harness sets these itself, on loopback.
NODE_SPECIFIC = {
    "node.id",
    "listeners",
    "advertised.listeners",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "log.dirs",
}
START_TIMEOUT = 60.0


class KafkaUnavailable(RuntimeError):
    """Apache Kafka cannot be started here (no jars and no way to fetch them, no Java)."""


def kafka_version() -> str:
    """The pinned version: `kafka.version` in the POM (its one home)."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if match is None:
        raise KafkaUnavailable(f"{POM} has no <kafka.version>")
    return match.group(1).strip()


def cache_root() -> Path:
    base = os.environ.get("BORDERMON_KAFKA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "bordermon", "kafka"
    )
    return Path(base) / kafka_version()


_say = say_as("apache-kafka")


def ensure_jars(say: Callable[[str], None] = _say) -> Path:
    """The directory of the broker's jars, fetched with Maven on first use. Raises
    KafkaUnavailable with one line when neither the cache nor Maven Central has them."""
    libs = cache_root() / "libs"
    stamp = libs / ".complete"
    if stamp.exists() and stamp.read_text() == POM.read_text():
        return libs
    if shutil.which("java") is None:
        raise KafkaUnavailable("java not found: Apache Kafka needs Java 17 (make test installs it with apt-get)")
    if shutil.which("mvn") is None:
        raise KafkaUnavailable(f"mvn not found and no cached Kafka jars at {libs}; install Maven (make test does)")
    say(f"fetching Apache Kafka {kafka_version()} jars with Maven into {libs} (once)")
    started = time.monotonic()
    partial = libs.with_name("libs.partial")
    shutil.rmtree(partial, ignore_errors=True)
    result = subprocess.run(
        ["mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={partial}", "-DincludeScope=runtime"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        reason = _maven_reason(result.stdout + result.stderr)
        raise KafkaUnavailable(
            f"cannot fetch Apache Kafka {kafka_version()}'s jars (is Maven Central reachable?) and no cache "
            f"at {libs}; Maven said: {reason}"
        )
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
    stamp.write_text(POM.read_text())
    say(f"fetched {len(list(libs.glob('*.jar')))} jars in {time.monotonic() - started:.1f} s")
    return libs


def _maven_reason(output: str) -> str:
    for line in output.splitlines():
        if "[ERROR]" in line and line.strip() != "[ERROR]":
            return line.replace("[ERROR]", "").strip()[:300]
    return (output.strip().splitlines() or ["mvn failed"])[-1][:300]


def _java(libs: Path, main: str, *args: str, heap: str = "1g", **popen: Any) -> subprocess.Popen[bytes]:
    command = [
        "java", f"-Xmx{heap}", f"-Xms{min_heap(heap)}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG_CONFIG}", "-cp", f"{libs}/*", main, *args,
    ]  # fmt: skip
    return subprocess.Popen(command, **popen)


def min_heap(heap: str) -> str:
    return "256m" if heap.endswith("g") or int(heap.rstrip("m")) >= 256 else heap


# --- broker settings, from the compose files --------------------------------------------------------------


def _compose_env(path: Path, service: str) -> dict[str, str]:
    services = (yaml.safe_load(path.read_text()) or {}).get("services", {})
    environment = (services.get(service) or {}).get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {str(k): str(v) for k, v in environment.items()}


def compose_node_env(nodes: int, node: int, secure: bool = False) -> dict[str, str]:
    """The environment docker compose gives Kafka node `node` (1-based) of a `nodes`-node cluster:
    docker-compose.yml alone for one node, with docker-compose.cluster.yml on top for three
    (compose merges a service's environment key by key); `secure`: docker-compose.secure.yml on
    top of one node."""
    if secure:
        if nodes != 1:
            raise ValueError("docker-compose.secure.yml locks one node")
        return {**_compose_env(COMPOSE, "kafka"), **_compose_env(COMPOSE_SECURE, "kafka")}
    if nodes == 1:
        return _compose_env(COMPOSE, "kafka")
    if nodes != 3:
        raise ValueError("the compose files describe one node or three")
    service = "kafka" if node == 1 else f"kafka-{node}"
    env = _compose_env(COMPOSE, service)
    env.update(_compose_env(COMPOSE_CLUSTER, service))
    return env


def compose_worker_settings() -> dict[str, str]:
    """The bordermon settings compose gives its workers, but the broker address (`x-bordermon-env`
    and the worker service's own); the tests on Apache Kafka run workers with these."""
    services = (yaml.safe_load(COMPOSE.read_text()) or {}).get("services", {})
    env = {str(k): str(v) for k, v in (services["worker"].get("environment") or {}).items()}
    local = {"KAFKA_BOOTSTRAP_SERVERS", "BORDERMON_WEB_HOST", "BORDERMON_WEB_PORT", "BORDERMON_ALERTMANAGER_URL",
             "BORDERMON_GROUP_INSTANCE_ID"}  # fmt: skip  # addresses, and one id per container
    return {k: v for k, v in env.items() if k not in local}


def compose_cluster_client_settings() -> dict[str, str]:
    """What docker-compose.cluster.yml gives the workers and producers on top, but the addresses
    (replication 3 for the topics they create)."""
    services = (yaml.safe_load(COMPOSE_CLUSTER.read_text()) or {}).get("services", {})
    env = {str(k): str(v) for k, v in (services["worker"].get("environment") or {}).items()}
    return {k: v for k, v in env.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}


def properties_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """apache/kafka's image turns KAFKA_FOO_BAR into foo.bar (`___` -> `-`, `__` -> `_`)."""
    out = {}
    for key, value in env.items():
        if not key.startswith("KAFKA_") or key in {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JMX_OPTS"}:
            continue
        name = key[len("KAFKA_") :].lower().replace("___", "-").replace("__", "\0").replace("_", ".")
        out[name.replace("\0", "_")] = value
    return out


def compose_settings(nodes: int, node: int = 1, secure: bool = False) -> dict[str, str]:
    """Broker settings as compose deploys them, without those naming a node or an address."""
    props = properties_from_env(compose_node_env(nodes, node, secure))
    return {k: v for k, v in props.items() if k not in NODE_SPECIFIC}


def client_listeners(props: Mapping[str, str]) -> list[str]:
    """The listeners besides INTERNAL and CONTROLLER that the harness opens (SECURE when locked)."""
    names = [entry.split(":", 1)[0] for entry in props.get("listener.security.protocol.map", "").split(",") if entry]
    return [n for n in names if n not in {"INTERNAL", "CONTROLLER", *UNUSED_LISTENERS}]


# --- nodes and clusters -----------------------------------------------------------------------------------


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Node:
    node_id: int
    port: int  # clients and brokers (the compose INTERNAL listener)
    controller_port: int
    data: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    listener_ports: dict[str, int] = field(default_factory=dict)  # SECURE, when locked

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class KafkaCluster:
    """`nodes` combined broker+controller KRaft nodes on loopback, settings from compose.

    `extra` overrides or adds broker settings for one test; `secure` adds docker-compose.secure.yml
    (a SASL_SSL listener, ACLs), whose secrets (`${...}` in the file) `extra` must give."""

    nodes: int = 1
    root: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)
    secure: bool = False
    heap: str = "1g"
    first_port: int | None = None
    members: list[Node] = field(default_factory=list)
    _own_root: bool = False

    def __post_init__(self) -> None:
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="bordermon-kafka-"))
            self._own_root = True
        self.root.mkdir(parents=True, exist_ok=True)
        self.libs = ensure_jars()
        for i in range(1, self.nodes + 1):
            port = self.first_port + i - 1 if self.first_port else free_port()
            node = Node(i, port, free_port(), self.root / f"node-{i}", self.root / f"node-{i}.log")
            node.listener_ports = {name: free_port() for name in client_listeners(self.settings(i))}
            self.members.append(node)

    # Addresses ---------------------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        """Bootstrap servers: every node, so clients survive any one of them being down."""
        return ",".join(n.address for n in self.members)

    def node(self, node_id: int) -> Node:
        return self.members[node_id - 1]

    def voters(self) -> str:
        return ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.members)

    def listener_address(self, name: str) -> str:
        """Bootstrap servers of a client listener (`SECURE`)."""
        return ",".join(f"127.0.0.1:{n.listener_ports[name]}" for n in self.members)

    def settings(self, node_id: int) -> dict[str, str]:
        return {**compose_settings(self.nodes, node_id, self.secure), **self.extra}

    def properties(self, node: Node) -> dict[str, str]:
        props = self.settings(node.node_id)
        others = "".join(f",{name}://127.0.0.1:{port}" for name, port in node.listener_ports.items())
        props.update(
            {
                "node.id": str(node.node_id),
                "controller.quorum.voters": self.voters(),
                "listeners": f"INTERNAL://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}{others}",
                "advertised.listeners": f"INTERNAL://127.0.0.1:{node.port}{others}",
                "log.dirs": str(node.data),
            }
        )
        unset = sorted(k for k, v in props.items() if "${" in v)
        if unset:
            raise KafkaUnavailable(f"secrets the compose file takes from the environment, not given: {unset}")
        return props

    # Lifecycle ---------------------------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT) -> KafkaCluster:
        started = time.monotonic()
        try:
            for node in self.members:
                if not node.data.exists():
                    shutil.copytree(formatted_template(self.libs, self.nodes, node.node_id), node.data)
                self._launch(node)
            self.wait_ready(timeout)
        except BaseException:
            self.stop()  # no node outlives a failed start
            raise
        self.start_seconds = time.monotonic() - started
        return self

    def _launch(self, node: Node) -> None:
        config = self.root / f"node-{node.node_id}.properties"  # type: ignore[operator]
        config.write_text("".join(f"{k}={v}\n" for k, v in sorted(self.properties(node).items())))
        with open(node.log_path, "ab") as log:
            # Its own session: a Ctrl-C meant for the test runner must not kill it mid-test.
            node.proc = _java(
                self.libs, "kafka.Kafka", str(config), heap=self.heap,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout: float = START_TIMEOUT, nodes: list[int] | None = None) -> None:
        """Until every running node (or those named) is registered and answers metadata."""
        wanted = {n.node_id for n in self.members if n.running} if nodes is None else set(nodes)
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            for n in self.members:
                if n.node_id in wanted and not n.running:
                    raise KafkaUnavailable(f"Kafka node {n.node_id} exited: {self.tail(n.node_id)}")
            try:
                # A client made before the ports listen sits in its reconnect back-off for seconds.
                if all(_listening(self.node(i).port) for i in wanted) and wanted <= self.registered_brokers():
                    return
            except Exception as exc:  # not up yet
                last = exc
            time.sleep(0.05)
        raise KafkaUnavailable(f"Kafka did not become ready within {timeout:.0f} s ({last}): {self.tail(1)}")

    def registered_brokers(self) -> set[int]:
        from kafka import KafkaAdminClient

        running = [n.address for n in self.members if n.running]
        admin = KafkaAdminClient(bootstrap_servers=running, request_timeout_ms=3000, client_id="harness")
        try:
            return {int(b["broker_id"]) for b in admin.describe_cluster()["brokers"] if not b.get("is_fenced")}
        finally:
            admin.close()

    def kill(self, node_id: int) -> None:
        """kill -9 one node."""
        node = self.node(node_id)
        if node.proc is not None and node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait()

    def stop_node(self, node_id: int, timeout: float = 60) -> None:
        """A clean shutdown of one node (SIGTERM: controlled shutdown, leadership moved first)."""
        node = self.node(node_id)
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGTERM)
            try:
                node.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()

    def start_node(self, node_id: int, timeout: float = START_TIMEOUT) -> None:
        """Start a stopped node again, on its ports and with its data."""
        node = self.node(node_id)
        self._launch(node)
        self.wait_ready(timeout, nodes=[node_id])

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        """Every node killed and started again: Kafka keeps its logs (unlike the in-memory broker)."""
        for node in self.members:
            self.kill(node.node_id)
        for node in self.members:
            self._launch(node)
        self.wait_ready(timeout)

    def stop(self) -> None:
        for node in self.members:
            self.kill(node.node_id)
        if self._own_root and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    def tail(self, node_id: int, n: int = 2000) -> str:
        path = self.node(node_id).log_path
        return path.read_bytes()[-n:].decode(errors="replace") if path.exists() else ""

    def leader(self, topic: str, partition: int) -> int:
        """The node leading a partition now."""
        from kafka import KafkaAdminClient

        running = [n.address for n in self.members if n.running]
        admin = KafkaAdminClient(bootstrap_servers=running, request_timeout_ms=5000, client_id="harness")
        try:
            for entry in admin.describe_topics([topic]):
                for p in entry["partitions"]:
                    if p["partition_index"] == partition:
                        return int(p["leader_id"])
        finally:
            admin.close()
        raise KeyError(f"{topic}-{partition}")


def formatted_template(libs: Path, nodes: int, node_id: int) -> Path:
    """Node `node_id`'s storage as `kafka-storage format` leaves it (meta.properties and the
    bootstrap checkpoint: no address is recorded there), formatted once per version and copied
    for every node after: formatting costs a JVM start (~3.5 s on 2 cores)."""
    template = cache_root() / "formatted" / f"{nodes}-nodes" / f"node-{node_id}"
    if (template / "meta.properties").exists():
        return template
    shutil.rmtree(template, ignore_errors=True)
    template.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="format-", dir=template.parent))
    props = compose_settings(nodes, node_id)
    voters = ",".join(f"{i}@127.0.0.1:{9093 + i}" for i in range(1, nodes + 1))  # not recorded by format
    props.update({"node.id": str(node_id), "controller.quorum.voters": voters, "log.dirs": str(work / "data"),
                  "listeners": f"INTERNAL://127.0.0.1:1,CONTROLLER://127.0.0.1:{9093 + node_id}"})  # fmt: skip
    config = work / "format.properties"
    config.write_text("".join(f"{k}={v}\n" for k, v in sorted(props.items())))
    proc = _java(libs, "kafka.tools.StorageTool", "format", "-t", CLUSTER_ID, "-c", str(config),
                 "--ignore-formatted", heap="256m", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    output, _ = proc.communicate(timeout=120)
    if proc.returncode != 0:
        raise KafkaUnavailable(f"kafka-storage format failed: {output.decode(errors='replace').strip()[-300:]}")
    (work / "data").rename(template)
    shutil.rmtree(work, ignore_errors=True)
    return template


# --- a command for people: scripts/kafka.sh ---------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.apachekafka",
        description="Run Apache Kafka (KRaft) from Maven Central's jars in the foreground until Ctrl-C.",
    )
    parser.add_argument("--nodes", type=int, choices=(1, 3), default=1)
    parser.add_argument("--port", type=int, default=9092, help="client port of node 1 (node n: port + n - 1)")
    parser.add_argument("--data", type=Path, help="data directory (default: a temporary one, deleted at exit)")
    parser.add_argument("--fetch-only", action="store_true",
                        help="fetch the jars and format storage for one and three nodes, then exit")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        libs = ensure_jars()
        if args.fetch_only:
            for nodes in (1, 3):
                for node in range(1, nodes + 1):
                    formatted_template(libs, nodes, node)
            _say(f"Apache Kafka {kafka_version()} ready in {libs.parent}")
            return 0
        cluster = KafkaCluster(nodes=args.nodes, root=args.data, first_port=args.port)
        stop = {"signal": 0}

        def on_signal(signum: int, _: Any) -> None:
            stop["signal"] = signum

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, on_signal)
        cluster.start()
    except KafkaUnavailable as exc:
        print(f"apache-kafka: error: {exc}", file=sys.stderr)
        return 2
    _say(f"Apache Kafka {kafka_version()} ({args.nodes} node(s)) at {cluster.address} in "
         f"{cluster.start_seconds:.1f} s; logs in {cluster.root}; Ctrl-C stops it")  # fmt: skip
    try:
        while not stop["signal"] and all(n.running for n in cluster.members):
            time.sleep(0.2)
    finally:
        for node in cluster.members:
            cluster.stop_node(node.node_id, timeout=20)
        if args.data is None:
            cluster.stop()
    _say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
