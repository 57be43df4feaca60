"""Issue 3 acceptance against the real broker: simulate -> Kafka -> record -> replay round trip,
recorder crash safety, pacing accuracy and replay filters."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.metrics import consumed, parse_metrics
from harness.processes import BIN, Worker, base_env, read_topic, run_cli, start_broker_of, wait_until

pytestmark = pytest.mark.integration


def border_series(text: str) -> dict:
    return {name: series for name, series in parse_metrics(text).items() if name.startswith("border_")}


def alerts_by_checkpoint(address: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in read_topic(address, "border.alerts"):
        a = json.loads(r.value)
        out.setdefault(a["checkpoint_id"], []).append(a)
    return out


def archive_lines(directory: Path) -> list[bytes]:
    lines: list[bytes] = []
    for path in sorted(directory.glob("*.jsonl.gz")):
        with gzip.open(path) as handle:
            lines.extend(line.rstrip(b"\n") for line in handle)
    return lines


def start_recorder(env: dict, out: Path, log: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [BIN, "record", "--out", str(out), "--idle-close", "0.5", *extra],
        env=env,
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
    )


def manifest_messages(out: Path) -> int:
    try:
        return json.loads((out / "manifest.json").read_text())["messages"]
    except (OSError, ValueError):
        return 0


@pytest.mark.brokers("tansu", "kafka")
def test_simulate_record_replay_round_trip_gives_same_metrics_and_alerts(broker, tmp_path):
    env_a = base_env(broker)
    worker_a = Worker(env_a, tmp_path / "worker-a.log")
    archive = tmp_path / "archive"
    recorder = start_recorder(env_a, archive, tmp_path / "recorder.log", "--max-bytes", "2000000")
    second = start_broker_of(broker.kind, tmp_path / "second-broker")
    worker_b = None
    try:
        worker_a.wait_ready()
        sim = run_cli(["simulate", "--scenario", "lane-failure", "--seed", "5", "--kafka"], env_a, timeout=300)
        assert sim.returncode == 0, sim.stderr
        total = int(sim.stdout.split(" events")[0].rsplit(" ", 1)[1].replace(",", ""))
        wait_until(lambda: consumed(parse_metrics(worker_a.metrics())) == total, 120, "worker A drained")
        wait_until(lambda: manifest_messages(archive) == total, 60, "recorder committed everything")
        recorder.send_signal(signal.SIGTERM)
        assert recorder.wait(15) == 0
        files = sorted(archive.glob("*.jsonl.gz"))
        assert len(files) > 1, "the archive must rotate"
        assert not list(archive.glob("*.partial"))

        env_b = base_env(second)
        worker_b = Worker(env_b, tmp_path / "worker-b.log")
        worker_b.wait_ready()
        replay = run_cli(["replay", *map(str, files), "--max-speed", "-q"], env_b, timeout=300)
        assert replay.returncode == 0, replay.stderr
        assert f"replayed {total} lines" in replay.stdout
        wait_until(lambda: consumed(parse_metrics(worker_b.metrics())) == total, 120, "worker B drained")

        assert border_series(worker_b.metrics()) == border_series(worker_a.metrics())
        alerts_a, alerts_b = alerts_by_checkpoint(broker.address), alerts_by_checkpoint(second.address)
        assert alerts_a == alerts_b
        assert any(a["status"] == "resolved" for a in alerts_a.get("zhana-zhol", []))
    finally:
        if recorder.poll() is None:
            recorder.kill()
        assert worker_a.stop() == 0, worker_a.tail()
        if worker_b is not None:
            assert worker_b.stop() == 0, worker_b.tail()
        second.stop()


@pytest.mark.brokers("tansu", "kafka")
def test_recorder_killed_and_restarted_loses_and_duplicates_nothing(broker, tmp_path):
    env = base_env(broker)
    sim = run_cli(["simulate", "--scenario", "baseline", "--days", "1", "--kafka"], env, timeout=300)
    assert sim.returncode == 0, sim.stderr
    published = [r.value for r in read_topic(broker.address, "border.events")]
    archive = tmp_path / "archive"
    recorder = start_recorder(env, archive, tmp_path / "rec1.log", "--max-bytes", "200000")
    wait_until(lambda: manifest_messages(archive) > len(published) // 4, 60, "some files committed")
    recorder.kill()  # SIGKILL: a .partial file may be left behind
    recorder.wait()
    recorder = start_recorder(env, archive, tmp_path / "rec2.log", "--max-bytes", "200000")
    wait_until(lambda: manifest_messages(archive) == len(published), 60, "restarted recorder caught up")
    recorder.send_signal(signal.SIGTERM)
    assert recorder.wait(15) == 0
    assert Counter(archive_lines(archive)) == Counter(published)
    # Its log is structured: one JSON object per line (the summary line aside), files closed named.
    logged = [json.loads(line) for line in (tmp_path / "rec2.log").read_text().splitlines() if line.startswith("{")]
    assert any(entry["msg"] == "file closed" and entry["file"] for entry in logged), logged[:3]


def test_replay_at_60x_keeps_time_within_two_percent_over_a_minute(broker, tmp_path):
    # One hour of event time, an event every 10 s, at 60x: 60 s of wall time.
    lines = [
        json.dumps(
            {
                "event_id": f"p{i}",
                "type": "arrival",
                "checkpoint_id": "syrym",
                "direction": "in",
                "ts": f"2022-09-21T06:{i // 6:02d}:{i % 6 * 10:02d}Z",
            }
        )
        for i in range(361)
    ]
    lines[-1] = lines[-1].replace("06:60:00", "07:00:00")
    log = tmp_path / "hour.jsonl"
    log.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    result = run_cli(["replay", str(log), "--speed", "60", "-q"], base_env(broker), timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    stamps = sorted(r.timestamp for r in read_topic(broker.address, "border.events"))
    span = (stamps[-1] - stamps[0]) / 1000
    print(f"\n3600 s of event time at 60x: broker span {span:.2f}s, command {elapsed:.2f}s")
    assert abs(span - 60.0) <= 1.2
    assert elapsed < 61.2 + 3  # plus process start-up


def test_replay_filters_and_per_checkpoint_summary(broker, tmp_path):
    log = tmp_path / "day.jsonl.gz"
    sim = run_cli(["simulate", "--scenario", "baseline", "--days", "1", "--out", str(log)], base_env(broker))
    assert sim.returncode == 0, sim.stderr
    args = ["replay", str(log), "--max-speed", "--from", "2022-08-01T06:00:00+05:00", "--to", "2022-08-01T12:00:00Z"]
    result = run_cli([*args, "--checkpoint", "syrym", "--checkpoint", "kairak"], base_env(broker))
    assert result.returncode == 0, result.stderr
    sent = [json.loads(r.value) for r in read_topic(broker.address, "border.events")]
    assert sent and {e["checkpoint_id"] for e in sent} == {"syrym", "kairak"}
    assert all("2022-08-01T01:00:00Z" <= e["ts"] < "2022-08-01T12:00:00Z" for e in sent)
    summary = Counter(e["checkpoint_id"] for e in sent)
    assert f"  {'syrym':<24} {summary['syrym']:>10,}" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "--scenario", "nope", "--out", "x.jsonl"], "unknown scenario"),
        (["simulate", "--scenario", "baseline"], "exactly one of"),
        (["simulate", "--scenario", "baseline", "--out", "/no/such/dir/x.jsonl"], "No such file"),
        (["simulate", "--scenario", "baseline", "--out", "x.jsonl", "--speed", "5"], "only applies"),
        (["replay", "x.jsonl", "--from", "2022-13-01T00:00:00Z"], "--from"),
        (["replay", "x.jsonl", "--to", "2022-09-21"], "--to"),
        (["record"], "--out"),
    ],
)
def test_producer_commands_reject_bad_input_in_one_line(args, message, tmp_path):
    (tmp_path / "x.jsonl").write_text("{}\n")
    result = subprocess.run([BIN, *args], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_producers_report_an_unreachable_broker(tmp_path):
    from bordermon.ports import free_port

    env = {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}", "PATH": "/usr/bin:/bin"}
    for args in (["simulate", "--scenario", "baseline", "--kafka"], ["record", "--out", str(tmp_path / "a")]):
        result = run_cli(args, env, timeout=30)
        assert result.returncode != 0 and "cannot reach Kafka" in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
