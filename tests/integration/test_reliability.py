"""Issue 6: graceful SIGTERM with an exact resume point, broker outages, scale-out, fuzzing."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from bordermon.ports import free_port
from bordermon.registry import load_registry
from harness.metrics import consumed, parse_metrics
from harness.processes import BIN, AnyBroker, Broker, Worker, base_env, read_topic, run_cli, start_broker_of, wait_until
from tests.fixtures.mixedlog import mixed_log

pytestmark = pytest.mark.integration


def hour_of_events(n: int = 3600) -> list[bytes]:
    return [
        json.dumps(
            {
                "event_id": f"r{i}",
                "type": "arrival",
                "checkpoint_id": "syrym",
                "direction": "in",
                "ts": f"2022-09-21T06:{i // 60:02d}:{i % 60:02d}Z",
            }
        ).encode()
        for i in range(n)
    ]


def start(args: list[str], env: dict, out: Path) -> subprocess.Popen:
    return subprocess.Popen([BIN, *args], env=env, stdout=open(out, "w"), stderr=subprocess.STDOUT)


def resume_point(text: str) -> int:
    return int(text.rsplit("--resume ", 1)[1].split()[0].rstrip(")."))


@pytest.mark.brokers("tansu", "kafka")
def test_sigterm_stops_replay_and_simulate_cleanly_and_resume_loses_nothing(broker, tmp_path):
    env = base_env(broker)
    lines = hour_of_events(3600)
    log = tmp_path / "hour.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    proc = start(["replay", str(log), "--speed", "60", "-q"], env, tmp_path / "replay.out")
    wait_until(lambda: len(read_topic(broker.address, "border.events", limit=100)) >= 100, 30, "some published")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert time.monotonic() - started < 10
    out = (tmp_path / "replay.out").read_text()
    assert "stopped by SIGTERM" in out, out
    n = resume_point(out)
    assert 0 < n < len(lines)
    assert [r.value for r in read_topic(broker.address, "border.events")] != []
    resumed = subprocess.run([BIN, "replay", str(log), "--max-speed", "--resume", str(n), "-q"], env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    published = [r.value for r in read_topic(broker.address, "border.events")]
    assert Counter(published) == Counter(lines), "stop + resume must publish every line exactly once"

    second = start_broker_of(broker.kind, tmp_path / "second-broker")
    try:
        env2 = base_env(second)
        proc = start(["simulate", "--scenario", "baseline", "--days", "1", "--kafka", "--speed", "3600"], env2,
                     tmp_path / "sim.out")  # fmt: skip
        wait_until(lambda: len(read_topic(second.address, "border.events", limit=100)) >= 100, 60, "simulating")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        n = resume_point((tmp_path / "sim.out").read_text())
        rest = subprocess.run([BIN, "simulate", "--scenario", "baseline", "--days", "1", "--kafka", "--resume", str(n)],
                              env=env2, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert rest.returncode == 0, rest.stderr
        ids = Counter(json.loads(r.value)["event_id"] for r in read_topic(second.address, "border.events"))
        assert max(ids.values()) == 1
        full = tmp_path / "full.jsonl"
        subprocess.run([BIN, "simulate", "--scenario", "baseline", "--days", "1", "--out", str(full)], check=True,
                       capture_output=True)  # fmt: skip
        assert set(ids) == {json.loads(line)["event_id"] for line in full.read_text().splitlines()}
    finally:
        second.stop()


def test_broker_outage_replay_reports_where_to_resume(tmp_path):
    first = Broker()
    lines = hour_of_events(1200)
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    env = base_env(first, BORDERMON_DELIVERY_TIMEOUT="4")
    proc = start(["replay", str(log), "--speed", "300", "-q"], env, tmp_path / "replay.out")
    try:
        wait_until(lambda: len(read_topic(first.address, "border.events", limit=50)) >= 50, 30, "some published")
    finally:
        first.stop()  # the broker dies mid-replay (and, being in memory, forgets everything)
    assert proc.wait(30) != 0
    report = (tmp_path / "replay.out").read_text().strip().splitlines()
    assert report[0].startswith("bordermon: warning:") and "retrying for up to 4 s" in report[0], report
    assert len(report) == 2 and report[1].startswith("bordermon: error: publishing to"), report
    n = resume_point(report[1])
    assert 0 < n < len(lines)
    replacement = Broker()
    try:
        env = base_env(replacement)
        done = subprocess.run([BIN, "replay", str(log), "--max-speed", "--resume", str(n), "-q"], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        records = read_topic(replacement.address, "border.events")
        assert [r.value for r in sorted(records, key=lambda r: r.offset)] == lines[n:]
    finally:
        replacement.stop()


@pytest.mark.brokers("tansu", "kafka")
def test_long_running_commands_exit_zero_on_sigterm(broker, tmp_path):
    env = base_env(broker)
    worker = Worker(env, tmp_path / "worker.log")
    worker.wait_ready()
    procs = {
        "record": start(["record", "--out", str(tmp_path / "archive")], env, tmp_path / "record.out"),
        "webhook-log": start(["webhook-log", "--port", str(free_port())], env, tmp_path / "hook.out"),
        "status --watch": start(
            ["status", "--watch", "--url", f"http://127.0.0.1:{worker.port}/metrics"], env, tmp_path / "status.out"
        ),
    }
    time.sleep(3)  # let each reach its main loop; what is measured is the shutdown below
    for name, proc in procs.items():
        assert proc.poll() is None, f"{name} exited early"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, name
        assert time.monotonic() - started < 10
    started = time.monotonic()
    assert worker.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10


def fuzz_messages(seed: int, count: int) -> list[tuple[bytes | None, bytes | None]]:
    import random

    rng = random.Random(seed)
    good = {"event_id": "f", "type": "crossing", "checkpoint_id": "syrym", "direction": "in",
            "ts": "2022-09-21T06:15:00Z", "persons": 2, "citizenship": "RU"}  # fmt: skip
    out: list[tuple[bytes | None, bytes | None]] = []
    for i in range(count):
        kind = rng.randrange(9)
        if kind == 0:
            value = rng.randbytes(rng.randrange(200))
        elif kind == 1:
            value = json.dumps({**good, "event_id": f"f{i}"}).encode()[: rng.randrange(120)]
        elif kind == 2:
            value = json.dumps({**good, "event_id": f"f{i}", "note": "x" * 1_000_000}).encode()  # 1 MB
        elif kind == 3:
            value = b"[" * 50_000 + b"]" * 50_000
        elif kind == 4:
            value = json.dumps(
                {**good, "event_id": f"f{i}", "persons": rng.choice([0, 1.5, "3", None, 10**30])}
            ).encode()
        elif kind == 5:
            value = json.dumps({**good, "event_id": "".join(chr(rng.randrange(32, 0x10FFFF)) for _ in range(20))},
                               ensure_ascii=False).encode("utf-8", "surrogatepass")  # fmt: skip
        elif kind == 6:
            value = None  # a tombstone
        elif kind == 7:
            value = b'{"persons": NaN, "ts": Infinity}'
        else:
            value = json.dumps({**good, "event_id": f"f{i}", "ts": f"2022-09-21T06:{i % 60:02d}:00Z"}).encode()
        key = rng.choice([None, b"syrym", rng.randbytes(5)])
        out.append((key if value is not None else b"tombstone", value))
    return out


def test_fuzzed_messages_never_crash_the_worker_and_all_are_counted(broker, tmp_path):
    from kafka import KafkaProducer

    env = base_env(broker)
    worker = Worker(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        messages = fuzz_messages(seed=6, count=400)
        producer = KafkaProducer(bootstrap_servers=broker.address, max_request_size=4 * 1024 * 1024)
        for key, value in messages:
            producer.send("border.events", key=key, value=value)
        producer.flush()
        producer.close()

        def counted() -> float:
            from harness.metrics import consumed, parse_metrics

            return consumed(parse_metrics(worker.metrics()))

        wait_until(lambda: counted() == len(messages), 60, "every fuzzed message accounted for")
        assert worker.proc.poll() is None
        dead = read_topic(broker.address, "border.deadletter")
        assert dead and all(json.loads(r.value)["reason"] for r in dead)
        assert len({(json.loads(r.value)["partition"], json.loads(r.value)["offset"]) for r in dead}) == len(dead)
        log_lines = (tmp_path / "worker.log").read_bytes().splitlines()
        assert max(len(line) for line in log_lines) < 10_000, "logs must never echo a huge payload"
    finally:
        assert worker.stop() == 0


def two_halves(broker: AnyBroker, tmp_path: Path, good_count: int, seed: int) -> tuple[list, dict, Path, Path, dict]:
    """A mixed log over the fixture registry as two replayable halves: (lines, the oracle's
    expectation for all of them, first half, second half, the workers' environment)."""
    from tests.fixtures.mixedlog import write_log
    from tests.fixtures.oracle import run_oracle
    from tests.fixtures.registry import CHECKPOINTS, REGISTRY

    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY)
    lines = mixed_log(CHECKPOINTS, good_count=good_count, seed=seed)
    half = len(lines) // 2
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_log(str(first), lines[:half])
    write_log(str(second), lines[half:])
    expected = run_oracle(lines, REGISTRY, time.time())
    return lines, expected, first, second, base_env(broker, BORDERMON_CHECKPOINTS=str(registry))


def assert_exact_together(workers: list[Worker], lines: int, expected: dict) -> None:
    """The running workers' metrics, summed, are the oracle's once they consumed every line and
    each checkpoint is exported by exactly one of them."""
    from harness.metrics import merge_workers
    from tests.fixtures.checks import assert_metrics_match
    from tests.fixtures.registry import CHECKPOINTS

    def merged() -> tuple[dict, list]:
        return merge_workers([w.metrics() for w in workers if w.proc.poll() is None])

    wait_until(lambda: consumed(merged()[0]) == lines, 120, "all lines consumed by the running workers")
    wait_until(lambda: not merged()[1], 60, "each checkpoint exported by exactly one worker")
    total, twice = merged()
    assert not twice, twice
    assert_metrics_match(total, expected, [*CHECKPOINTS, "idle"])


@pytest.mark.brokers("tansu", "kafka")
def test_scale_out_three_workers_then_one_leaves_gives_single_worker_results(broker, tmp_path):
    lines, expected, first, second, env = two_halves(broker, tmp_path, 12_000, seed=31)
    workers = [Worker(env, tmp_path / f"w{i}.log") for i in (1, 2)]
    try:
        for w in workers:
            w.wait_ready()
        assert subprocess.run([BIN, "replay", str(first), "--max-speed", "-q"], env=env).returncode == 0
        workers.append(Worker(env, tmp_path / "w3.log"))  # joins mid-stream
        workers[-1].wait_ready()
        assert subprocess.run([BIN, "replay", str(second), "--max-speed", "-q"], env=env).returncode == 0
        assert workers[0].stop(signal.SIGTERM) == 0  # leaves gracefully
        assert_exact_together(workers, len(lines), expected)
    finally:
        for w in workers:
            w.stop()


@pytest.mark.brokers("tansu", "kafka")
def test_two_static_members_started_together_form_one_generation_and_process(broker, tmp_path):
    """Static membership ids, as containers have. On the embedded broker with a 6 s session the
    member that joined a moment later was dropped right after each sync (the broker holds a
    static member's join and sync and does not count the sync as contact) and the two rejoined
    forever, processing nothing (2 runs in 3 looped); hence its longer static session and quicker
    heartbeats (bordermon/config.py). Apache Kafka counts a join as contact: there 6 s formed one
    generation too (3 runs of 3), and the static session is what a crashed member gets to come
    back before its partitions move."""
    lines = hour_of_events(2_000)
    log = tmp_path / "hour.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    env = base_env(broker)
    assert run_cli(["replay", str(log), "--max-speed", "-q"], env).returncode == 0
    workers = [Worker({**env, "BORDERMON_GROUP_INSTANCE_ID": f"member-{i}"}, tmp_path / f"w{i}.log") for i in (0, 1)]
    try:
        wait_until(lambda: sum(accepted_plus_rejected(w) for w in workers) == len(lines), 90, "every event counted")
        for i in (0, 1):
            log_lines = (tmp_path / f"w{i}.log").read_text().splitlines()
            generations = [line for line in log_lines if "generation id" in line]
            assert len(generations) <= 2, f"member {i} kept rejoining: {generations}"
    finally:
        for w in workers:
            w.stop()


@pytest.mark.brokers("kafka")
def test_one_of_two_static_members_killed_takes_its_own_partitions_back_and_counts_stay_exact(broker, tmp_path):
    """docker-compose.yml's deployment: two workers with static ids on Apache Kafka. A member
    killed with -9 and started again under its id gets back the partitions it had at once
    (KIP-345), the other keeps its own throughout, and the merged counts are exact. The embedded
    broker cannot do this: there the returning member's SyncGroup is held 8 s and answered
    REBALANCE_IN_PROGRESS, again and again, as the group's leader is never told to rejoin (Tansu
    0.6; docs/reliability.md); with several workers there, leave the ids unset."""
    lines, expected, first, second, env = two_halves(broker, tmp_path, 8_000, seed=47)
    members = [{**env, "BORDERMON_GROUP_INSTANCE_ID": f"member-{i}"} for i in (0, 1)]
    workers = [Worker(members[i], tmp_path / f"w{i}.log") for i in (0, 1)]

    def owned(worker: Worker) -> list[int]:
        return json.loads(worker.get("/healthz"))["partitions"]

    def split() -> list[list[int]] | None:
        # The first member to start owns every partition until the second joins.
        now = [owned(w) for w in workers]
        return now if all(now) and sorted(now[0] + now[1]) == list(range(8)) else None

    try:
        wait_until(split, 90, "each member owning partitions")
        before = split()
        assert before is not None
        assert subprocess.run([BIN, "replay", str(first), "--max-speed", "-q"], env=env).returncode == 0
        workers[1].stop(signal.SIGKILL)
        workers[1] = Worker(members[1], tmp_path / "w1-again.log")
        wait_until(lambda: owned(workers[1]) == before[1], 60, "the returning member's own partitions")
        assert owned(workers[0]) == before[0], "the other member kept its partitions"
        assert subprocess.run([BIN, "replay", str(second), "--max-speed", "-q"], env=env).returncode == 0
        assert_exact_together(workers, len(lines), expected)
    finally:
        for w in workers:
            w.stop()


def accepted_plus_rejected(worker: Worker) -> int:
    return int(consumed(parse_metrics(worker.metrics())))


def settled(worker: Worker) -> bool:
    """Every state write the worker sent is acknowledged."""
    return json.loads(worker.get("/healthz"))["unsettled"] == 0


@pytest.mark.parametrize("partitions", [8, 4], ids=["topics-recreated", "topics-auto-created-with-4"])
def test_worker_survives_an_in_memory_broker_restart_and_counts_what_follows(tmp_path, partitions):
    """The embedded broker keeps everything in memory: after a restart its topics, offsets and
    the state changelog are gone. The worker must rejoin, rebuild state from the (empty)
    changelog and count every later event exactly once. If the topics came back with another
    partition count (a client's metadata request makes the broker auto-create them with its
    default, 4), the worker must exit 1 saying so, and a restarted worker carries on.
    The worker is paused (SIGSTOP) while the broker restarts and the topics are recreated, so
    which of the two happens is decided by the test, not by a race."""
    ids = load_registry(None).ids()
    before, after = mixed_log(ids, 3000, seed=1), mixed_log(ids, 2000, seed=2)
    logs = {}
    for name, lines in (("before", before), ("after", after)):
        logs[name] = tmp_path / f"{name}.jsonl"
        logs[name].write_bytes(b"\n".join(lines) + b"\n")
    broker = Broker()
    workers: list[Worker] = []
    try:
        env = base_env(broker)
        assert run_cli(["replay", str(logs["before"]), "--max-speed", "-q"], env).returncode == 0
        worker = Worker(env, tmp_path / "worker.log")
        workers.append(worker)
        wait_until(lambda: accepted_plus_rejected(worker) == len(before), 60, "the first log counted")
        # Written to the broker before it restarts: a write still pending would land in the new
        # broker's changelog and bring the old state (and its applied offsets) back.
        wait_until(lambda: settled(worker), 30, "the first log's state durable")

        worker.proc.send_signal(signal.SIGSTOP)
        broker.restart()
        admin = KafkaAdminClient(bootstrap_servers=broker.address)
        names = ["border.events", "border.alerts", "border.deadletter", "bordermon-repartition",
                 "bordermon-state-changelog"]  # fmt: skip
        admin.create_topics([NewTopic(name, partitions, 1) for name in names])
        admin.close()
        worker.proc.send_signal(signal.SIGCONT)
        assert run_cli(["replay", str(logs["after"]), "--max-speed", "-q"], env).returncode == 0

        if partitions != 8:
            assert worker.proc.wait(60) != 0
            assert "bordermon: error: border.events has 4 partitions, this worker started with 8" in worker.tail()
            worker = Worker(env, tmp_path / "worker2.log")
            workers.append(worker)
        # State is rebuilt from the emptied broker: it counts what the broker holds now, once.
        worker.wait_until(lambda: accepted_plus_rejected(worker) == len(after), 90, "only the events after the restart")
        processed = lambda: json.loads(worker.get("/healthz"))["processed"]  # noqa: E731
        handled = len(after) + (len(before) if partitions == 8 else 0)
        wait_until(lambda: processed() == handled, 30, "every message handled once by this process")
        assert worker.proc.poll() is None, worker.tail()
        assert accepted_plus_rejected(worker) == len(after)
        assert json.loads(worker.get("/healthz"))["partitions"] == list(range(partitions))
    finally:
        for w in workers:
            if w.proc.poll() is None:
                assert w.stop() == 0
        broker.stop()


def test_worker_rides_out_an_apache_kafka_restart_mid_stream_and_ends_exact(tmp_path):
    """Apache Kafka keeps its logs (unlike the in-memory broker above, which comes back empty):
    killed with SIGKILL while a replay publishes and the worker drains, and started again on
    the same data, the broker loses nothing, and the worker, which never stops, ends with the
    oracle's figures and each alert and dead letter once. The replay that was cut off resumes
    from the point it printed."""
    from harness.processes import KafkaBroker
    from tests.fixtures.checks import assert_metrics_match
    from tests.fixtures.crash import scenario
    from tests.fixtures.oracle import run_oracle
    from tests.fixtures.registry import CHECKPOINTS, REGISTRY
    from tests.integration.test_real_clients import assert_outputs_exactly_once

    run = scenario(tmp_path, good_count=20_000, seed=23)
    kafka = KafkaBroker(tmp_path / "kafka")
    env = base_env(kafka, BORDERMON_CHECKPOINTS=str(run.registry), BORDERMON_DELIVERY_TIMEOUT="3")
    worker = Worker(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        proc = start(["replay", str(run.log), "--speed", "20000", "-q"], env, tmp_path / "replay.out")
        wait_until(lambda: accepted_plus_rejected(worker) > len(run.lines) * 0.2, 60, "a fifth counted")
        kafka.cluster.kill(1)
        assert proc.wait(60) != 0, "the replay cannot publish while the broker is down"
        resume = resume_point((tmp_path / "replay.out").read_text())
        kafka.cluster.start_node(1)
        rest = run_cli(["replay", str(run.log), "--max-speed", "--resume", str(resume), "-q"], env)
        assert rest.returncode == 0, rest.stderr
        # What the topic holds: the log, and the few lines the broker took just before it died
        # that the resumed replay sent again. Each partition in offset order is each
        # checkpoint's order, which is all the oracle depends on.
        records = sorted(read_topic(kafka.address, "border.events"), key=lambda r: (r.partition, r.offset))
        on_topic = [r.value for r in records]
        assert not Counter(run.lines) - Counter(on_topic), "nothing lost"
        assert Counter(on_topic) - Counter(run.lines) <= Counter(run.lines[resume:]), "only unacknowledged lines twice"
        wait_until(lambda: accepted_plus_rejected(worker) == len(on_topic), 120, "every message on the topic counted")
        assert worker.proc.poll() is None, worker.tail()
        expected = run_oracle(on_topic, REGISTRY, time.time())
        assert_metrics_match(parse_metrics(worker.metrics()), expected, [*CHECKPOINTS, "idle"])
        assert_outputs_exactly_once(kafka.address, expected, on_topic)
    finally:
        assert worker.stop() == 0, worker.tail()
        kafka.stop()


def test_partitions_added_to_border_events_on_kafka_stop_the_worker_with_one_line(tmp_path):
    """On Apache Kafka topics do not vanish (the in-memory case above), but an operator can add
    partitions to border.events (`kafka-topics.sh --alter --partitions`). The state is laid out
    by partition, so a worker must not go on: within seconds (not at Faust's next metadata
    refresh, 5 minutes later) it says what happened in one line and exits non-zero, and a
    restarted worker refuses with what to do."""
    from kafka.admin import NewPartitions

    from bordermon.kafka import partition_count_changed
    from harness.processes import KafkaBroker

    kafka = KafkaBroker(tmp_path / "kafka")
    try:
        env = base_env(kafka)
        worker = Worker(env, tmp_path / "worker.log")
        worker.wait_ready()
        lines = hour_of_events(600)
        log = tmp_path / "hour.jsonl"
        log.write_bytes(b"\n".join(lines) + b"\n")
        assert run_cli(["replay", str(log), "--max-speed", "-q"], env).returncode == 0
        wait_until(lambda: accepted_plus_rejected(worker) == len(lines), 60, "the log counted")
        wait_until(lambda: settled(worker), 30, "its state written")
        admin = KafkaAdminClient(bootstrap_servers=kafka.address)
        admin.create_partitions({"border.events": NewPartitions(total_count=12)})
        admin.close()
        assert worker.proc.wait(60) != 0, worker.tail()
        errors = [line for line in worker.tail(20_000).splitlines() if line.startswith("bordermon: error:")]
        assert errors == [f"bordermon: error: {partition_count_changed(12, 8)}"], worker.tail()
        # A restart refuses too, with what to do: the state's topics no longer line up.
        again = run_cli(["worker"], {**env, "BORDERMON_WEB_PORT": str(worker.port)}, timeout=60)
        assert again.returncode != 0
        assert again.stderr.strip().splitlines() == [
            "bordermon: error: bordermon-state-changelog has 8 partitions but border.events has 12: they must "
            "match; delete bordermon-state-changelog (internal to bordermon) once no worker runs, and start the "
            "workers again"
        ], again.stderr
    finally:
        kafka.stop()
