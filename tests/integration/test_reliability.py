"""Issue 6: graceful SIGTERM with an exact resume point, broker outages, scale-out, fuzzing."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.harness import BIN, Broker, Worker, base_env, free_port, read_topic, wait_until

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

    second = Broker()
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
    out = (tmp_path / "replay.out").read_text().strip()
    assert out.startswith("bordermon: error: publishing to") and out.count("\n") == 0, out
    n = resume_point(out)
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
