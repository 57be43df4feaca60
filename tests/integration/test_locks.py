"""Locks on Apache Kafka (issue 24, item 2): SASL/SCRAM-SHA-512 over TLS with certificates made
here, ACLs from bordermon.locks, the broker settings of docker-compose.secure.yml. The worker,
replay and record log in with their own principals and work; every refusal is one line from the
bordermon command and leaves nothing half-written."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
from dataclasses import dataclass

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from bordermon.config import ALERTS_TOPIC, EVENTS_TOPIC, Settings
from bordermon.locks import PRINCIPALS, PRODUCER, RECORDER, WORKER, WORKER_TOPICS, Principal, apply
from bordermon.ports import free_port
from harness.metrics import consumed, parse_metrics
from harness.processes import BIN, KafkaBroker, Worker, base_env, run_cli, wait_until
from tests.fixtures.checks import assert_metrics_match
from tests.fixtures.crash import scenario
from tests.fixtures.registry import CHECKPOINTS
from tests.fixtures.tls import BrokerTLS, make_broker_tls

pytestmark = [pytest.mark.integration]
# A worker principal with every topic right of the worker but none on its consumer group.
GROUPLESS = Principal("bordermon-worker-without-group", "BORDERMON_GROUPLESS_PASSWORD", WORKER_TOPICS)
PASSWORDS = {p.password_env: f"{p.user}-test-password" for p in (*PRINCIPALS, GROUPLESS)}


@dataclass
class Locked:
    broker: KafkaBroker  # .address: the INTERNAL listener, the administrator's (ANONYMOUS super user)
    secure: str  # the SASL_SSL listener clients use
    tls: BrokerTLS

    def env(self, principal: Principal | None, **override: str) -> dict[str, str]:
        """A bordermon command's environment logging in as `principal` over TLS."""
        env = base_env(self.broker, KAFKA_BOOTSTRAP_SERVERS=self.secure, BORDERMON_KAFKA_SSL_CAFILE=str(self.tls.ca),
                       BORDERMON_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
                       BORDERMON_KAFKA_SASL_MECHANISM="SCRAM-SHA-512")  # fmt: skip
        if principal is not None:
            env.update(BORDERMON_KAFKA_SASL_USERNAME=principal.user,
                       BORDERMON_KAFKA_SASL_PASSWORD=PASSWORDS[principal.password_env])  # fmt: skip
        env.update(override)
        return env

    def end_offsets(self, topic: str) -> int:
        consumer = KafkaConsumer(bootstrap_servers=self.broker.address)
        try:
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            return sum(consumer.end_offsets(tps).values())
        finally:
            consumer.close()


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    root = tmp_path_factory.mktemp("locked")
    tls = make_broker_tls(root / "tls")
    broker = KafkaBroker(root / "kafka", secure=True, **{
        "ssl.keystore.location": str(tls.keystore), "ssl.keystore.password": tls.password,
        "ssl.key.password": tls.password})  # fmt: skip
    try:
        apply(Settings(bootstrap_servers=broker.address), (*PRINCIPALS, GROUPLESS), PASSWORDS)
        yield Locked(broker, broker.cluster.listener_address("SECURE"), tls)
    finally:
        broker.stop()


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """A refusal: exit 2, nothing on stdout, one line on stderr (returned)."""
    assert result.returncode == 2, (result.returncode, result.stdout[-500:], result.stderr[-2000:])
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr[-2000:]
    assert result.stderr.startswith("bordermon: error: "), result.stderr
    assert "-test-password" not in result.stderr, "a password in an error line"
    return result.stderr


def test_worker_replay_and_record_log_in_with_their_own_principals_and_work(locked, tmp_path):
    run = scenario(tmp_path, good_count=4_000, seed=24)
    worker = Worker(locked.env(WORKER, BORDERMON_CHECKPOINTS=str(run.registry)), tmp_path / "worker.log")
    archive = tmp_path / "archive"
    recorder = subprocess.Popen([BIN, "record", "--out", str(archive), "--idle-close", "0.5"],
                                env=locked.env(RECORDER), stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        worker.wait_ready(120)
        replay = run_cli(["replay", str(run.log), "--max-speed", "-q"], locked.env(PRODUCER))
        assert replay.returncode == 0, replay.stderr
        wait_until(lambda: consumed(parse_metrics(worker.metrics())) == len(run.lines), 90, "all consumed")
        assert_metrics_match(parse_metrics(worker.metrics()), run.expected, [*CHECKPOINTS, "idle"])
        assert locked.end_offsets(ALERTS_TOPIC) > 0, "the worker wrote its alerts as bordermon-worker"

        def archived() -> list[bytes]:
            return [line for f in sorted(archive.glob("*.jsonl.gz")) for line in gzip.open(f).read().splitlines()]

        wait_until(lambda: len(archived()) == len(run.lines), 60, "record archived every line")
        assert sorted(archived()) == sorted(run.lines)
    finally:
        recorder.send_signal(signal.SIGTERM)
        assert recorder.wait(30) == 0, recorder.stderr.read() if recorder.stderr else ""
        assert worker.stop() == 0, worker.tail()


def refusals(locked: Locked) -> dict[str, tuple[dict[str, str], str]]:
    """Each refused login: the producer's settings it changes, and a word its one line must hold."""
    return {
        "unknown user": ({"BORDERMON_KAFKA_SASL_USERNAME": "mallory", "BORDERMON_KAFKA_SASL_PASSWORD": "guess"},
                         "refused the login of mallory"),
        "wrong password": ({"BORDERMON_KAFKA_SASL_PASSWORD": "not-the-password"},
                           f"refused the login of {PRODUCER.user}"),
        "plaintext on the TLS listener": ({"BORDERMON_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}, "is a TLS listener"),
        "a certificate the client does not trust": ({"BORDERMON_KAFKA_SSL_CAFILE": str(locked.tls.other_ca)},
                                                    "certificate is not trusted"),
    }  # fmt: skip


def test_each_refused_login_is_one_line_that_says_why_and_writes_nothing(locked, tmp_path):
    """All at once: each waits out kafka-python's 30 s bootstrap before it gives up."""
    log = tmp_path / "one.jsonl"
    log.write_bytes(b'{"event_id":"x-1","checkpoint_id":"syrym","direction":"in","type":"arrival",'
                    b'"ts":"2022-09-21T05:05:48+05:00","mode":"car"}\n')  # fmt: skip
    before = locked.end_offsets(EVENTS_TOPIC)
    cases = refusals(locked)
    replay = [BIN, "replay", str(log), "--max-speed", "-q"]
    running = {case: subprocess.Popen(replay, env=locked.env(PRODUCER, **override), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
               for case, (override, _) in cases.items()}  # fmt: skip
    for case, proc in running.items():
        out, err = proc.communicate(timeout=120)
        line = refused(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        assert cases[case][1] in line, (case, line)
    assert locked.end_offsets(EVENTS_TOPIC) == before, "nothing written"


def test_a_producer_may_not_write_the_worker_outputs(locked):
    before = locked.end_offsets(ALERTS_TOPIC)
    producer = KafkaProducer(bootstrap_servers=locked.secure, security_protocol="SASL_SSL",
                             sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=PRODUCER.user,
                             sasl_plain_password=PASSWORDS[PRODUCER.password_env], ssl_cafile=str(locked.tls.ca),
                             max_block_ms=10_000)  # fmt: skip
    try:
        with pytest.raises(KafkaError, match="TopicAuthorization"):
            producer.send(ALERTS_TOPIC, b'{"forged": true}').get(timeout=30)
    finally:
        producer.close()
    assert locked.end_offsets(ALERTS_TOPIC) == before


def test_a_worker_with_a_producer_principal_or_without_its_group_stops_with_one_line(locked, tmp_path):
    run = scenario(tmp_path, good_count=10, seed=1)
    for principal, says in ((PRODUCER, "border.alerts, border.deadletter"), (GROUPLESS, "consumer group")):
        env = locked.env(principal, BORDERMON_CHECKPOINTS=str(run.registry), BORDERMON_WEB_PORT=str(free_port()))
        result = subprocess.run([BIN, "worker"], env=env, capture_output=True, text=True, timeout=120)
        line = refused(result)
        assert says in line and principal.user in line, line
        last = [json.loads(x) for x in result.stderr.splitlines() if x.startswith("{")]
        assert not last, "a traceback or log lines besides the one line"
