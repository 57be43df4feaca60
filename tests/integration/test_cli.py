"""The CLI against real processes: replay fidelity and one-line errors."""

from __future__ import annotations

import gzip
import time

import pytest

from bordermon.ports import free_port
from harness.processes import BIN, base_env, read_topic, run_cli

pytestmark = pytest.mark.integration

LINES = [
    b'{"event_id":"a","type":"arrival","checkpoint_id":"syrym","direction":"in","ts":"2022-09-21T06:00:00Z"}',
    b"not json",
    b"",
    b"\xff\xfe binary",
    b'{"event_id":"b","type":"arrival","checkpoint_id":"syrym","direction":"in","ts":"2022-09-21T06:00:30Z"}',
    b'{"checkpoint_id":"nowhere","ts":"2099-01-01T00:00:00Z"}',
    b'{"event_id":"c","type":"arrival","checkpoint_id":"kairak","direction":"out","ts":"2022-09-21T06:01:00+05:00"}',
]


def test_replay_publishes_every_line_verbatim_in_order_with_keys(broker, tmp_path):
    plain, packed = tmp_path / "a.jsonl", tmp_path / "b.log"
    plain.write_bytes(b"\n".join(LINES[:4]) + b"\n")
    packed.write_bytes(gzip.compress(b"\n".join(LINES[4:]) + b"\n"))
    result = run_cli(["replay", str(plain), str(packed), "--max-speed"], base_env(broker))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("replayed 7 lines from 2 file(s)")
    records = read_topic(broker.address, "border.events")
    assert sorted(r.value for r in records) == sorted(LINES)
    by_value = {r.value: r for r in records}
    assert by_value[LINES[0]].key == b"syrym"
    assert by_value[LINES[5]].key == b"nowhere"
    assert by_value[LINES[1]].key is None
    syrym = [r.value for r in sorted(records, key=lambda r: r.offset) if r.key == b"syrym"]
    assert syrym == [LINES[0], LINES[4]]  # file order within a checkpoint


def test_replay_speed_paces_by_event_time(broker, tmp_path):
    # 120 s of event time at 60x = 2 s of wall time; the first line anchors the clock.
    lines = [
        f'{{"event_id":"e{i}","type":"arrival","checkpoint_id":"syrym","direction":"in",'
        f'"ts":"2022-09-21T06:{i // 60:02d}:{i % 60:02d}Z"}}'.encode()
        for i in range(0, 121, 5)
    ]
    log = tmp_path / "paced.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    started = time.monotonic()
    result = run_cli(["replay", str(log), "--speed", "60"], base_env(broker))
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert 2.0 <= elapsed < 5.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay", "/no/such/file.jsonl", "--max-speed"], "no such file"),
        (["replay", "x.jsonl", "--speed", "0"], "--speed"),
        (["replay", "x.jsonl", "--speed", "2", "--max-speed"], "mutually exclusive"),
        (["replay"], "Missing argument"),
        (["frobnicate"], "No such command"),
        (["broker", "--port", "99999"], "--port"),
    ],
)
def test_bad_arguments_are_one_line_errors(args, message, tmp_path):
    (tmp_path / "x.jsonl").write_text("{}\n")
    import subprocess

    result = subprocess.run([BIN, *args], capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert result.returncode != 0
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_unreachable_broker_is_a_one_line_error(tmp_path):
    log = tmp_path / "x.jsonl"
    log.write_text(LINES[0].decode() + "\n")
    env = {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}", "PATH": "/usr/bin:/bin"}
    for args in (["replay", str(log), "--max-speed"], ["worker"]):
        result = run_cli(args, env, timeout=30)
        assert result.returncode != 0
        assert "cannot reach Kafka" in result.stderr
        assert result.stderr.count("\n") == 1


def test_broker_port_in_use_and_bad_registry(broker, tmp_path):
    result = run_cli(["broker", "--port", str(broker.port)], base_env(broker))
    assert result.returncode != 0 and "in use" in result.stderr
    bad = tmp_path / "registry.yaml"
    bad.write_text("checkpoints: [{id: BAD}]\n")
    result = run_cli(["worker"], base_env(broker, BORDERMON_CHECKPOINTS=str(bad)))
    assert result.returncode != 0 and result.stderr.startswith("bordermon: error: checkpoint registry")
    assert result.stderr.count("\n") == 1
