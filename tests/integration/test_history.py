"""History commands against the real thing: backtest equals a live worker's alerts; backfill,
read by a real Prometheus, equals the processor's state at the sampled event times; and what
Prometheus's retention does to 2022 blocks beside live data."""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from bordermon import metrics as catalog
from bordermon.ports import free_port
from bordermon.registry import parse_registry
from harness.metrics import consumed, parse_metrics
from harness.processes import BIN, Service, Worker, base_env, read_topic, run_cli, wait_until
from streams.domain.metrics import StateCollector
from streams.offline.history import sampled_run
from tests.fixtures.mixedlog import mixed_log, write_log
from tests.fixtures.oracle import run_oracle
from tests.fixtures.registry import CHECKPOINTS, REGISTRY

pytestmark = pytest.mark.integration


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(REGISTRY)
    return path


@pytest.mark.brokers("tansu", "kafka")
def test_backtest_transitions_equal_what_a_live_worker_emits(broker, tmp_path, registry_file):
    lines = mixed_log(CHECKPOINTS, good_count=20_000, seed=2022)
    log = tmp_path / "mixed.jsonl.gz"
    write_log(str(log), lines)
    env = base_env(broker, BORDERMON_CHECKPOINTS=str(registry_file))
    worker = Worker(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        assert run_cli(["replay", str(log), "--max-speed", "-q"], env).returncode == 0
        wait_until(lambda: consumed(parse_metrics(worker.metrics())) == len(lines), 90, "drained")
    finally:
        assert worker.stop() == 0
    live = [r.value for r in read_topic(broker.address, "border.alerts")]
    out = tmp_path / "alerts.jsonl"
    done = run_cli(["backtest", str(log), "--alerts-out", str(out)], env)
    assert done.returncode == 0, done.stderr
    backtested = out.read_bytes().splitlines()
    assert live and Counter(backtested) == Counter(live), "byte for byte the border.alerts messages"
    for key in {(a["checkpoint_id"], a["direction"], a["severity"]) for a in map(json.loads, live)}:
        mine = [
            m for m in backtested if tuple(json.loads(m)[k] for k in ("checkpoint_id", "direction", "severity")) == key
        ]
        theirs = [m for m in live if tuple(json.loads(m)[k] for k in ("checkpoint_id", "direction", "severity")) == key]
        assert mine == theirs, f"order differs for {key}"
    expected = run_oracle(lines, REGISTRY, time.time())
    summary = done.stdout.splitlines()[-1]
    assert f"accepted {sum(expected.accepted.values()):,}, rejected {sum(expected.rejected.values()):,}" in summary
    for cid in {a["checkpoint_id"] for a in map(json.loads, live)}:
        assert f"│ {cid}" in done.stdout


def test_backtest_compares_a_stricter_registry_side_by_side(tmp_path, registry_file):
    lines = mixed_log(CHECKPOINTS, good_count=6000, seed=3)
    log = tmp_path / "mixed.jsonl"
    write_log(str(log), lines)
    strict = tmp_path / "strict.yaml"
    strict.write_text(REGISTRY.replace("wait_warning_minutes: 60", "wait_warning_minutes: 20"))
    env = {"BORDERMON_CHECKPOINTS": str(registry_file), "PATH": "/usr/bin:/bin"}
    done = run_cli(["backtest", str(log), "--compare", str(strict)], env)
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if str(strict) in line)
    assert str(registry_file) in header
    syrym = next(line for line in done.stdout.splitlines() if line.startswith("│ syrym") and " in " in line)
    assert syrym.split("│")[3].strip() == "all", "a checkpoint without lane groups: one queue, all"
    shipped, stricter = (cell.split() for cell in syrym.split("│")[4:6])
    assert int(stricter[0]) >= int(shipped[0]), "a lower warning threshold warns at least as often"
    assert float(stricter[3]) > float(shipped[3]), "and for longer (hours firing at warning)"
    missing = run_cli(["backtest", str(tmp_path / "nope.jsonl")], env)
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0 and "no such file" in missing.stderr


def prometheus_on(directory: Path, tmp: Path, *flags: str) -> tuple[Service, str]:
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text("global: {scrape_interval: 15s}\n")
    args = ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={directory}",
            f"--web.listen-address=127.0.0.1:{port}", *flags]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    return Service(args, f"{url}/-/ready", tmp / f"prometheus-{port}.log"), url


def instant(url: str, query: str, t: float) -> dict[tuple, float]:
    data = get_json(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": query, "time": t}))
    assert data["status"] == "success", data
    out = {}
    for item in data["data"]["result"]:
        labels = {k: v for k, v in item["metric"].items() if k != "__name__"}
        out[(item["metric"]["__name__"], tuple(sorted(labels.items())))] = float(item["value"][1])
    return out


def test_backfill_blocks_answer_with_the_processors_state_at_event_time(tmp_path, registry_file):
    lines = mixed_log(CHECKPOINTS, good_count=8000, seed=21)
    log = tmp_path / "mixed.jsonl.gz"
    write_log(str(log), lines)
    blocks = tmp_path / "blocks"
    step = 600
    done = run_cli(["backfill", str(log), "--out", str(blocks), "--step", str(step)],
                   {"BORDERMON_CHECKPOINTS": str(registry_file), "PATH": "/usr/bin:/bin"}, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert any(blocks.glob("*/meta.json")), "promtool wrote blocks"

    # The processor's own state at each sample time, computed here independently of the files.
    expected: dict[float, dict[tuple, float]] = {}

    def on_sample(t: float, processor) -> None:  # type: ignore[no-untyped-def]
        if len(expected) < 400:
            from prometheus_client import CollectorRegistry, generate_latest

            reg = CollectorRegistry()
            reg.register(StateCollector(processor, lambda: {0}))
            flat = {}
            for name, series in parse_metrics(generate_latest(reg).decode()).items():
                for labels, value in series.items():
                    flat[(name, labels)] = value
            expected[t] = flat

    sampled_run(parse_registry(REGISTRY, "test"), lines, step, on_sample)
    times = sorted(expected)
    assert len(times) > 100
    prom, url = prometheus_on(blocks, tmp_path)
    try:
        picks = [times[0], times[1], times[len(times) // 3], times[len(times) // 2], times[-2], times[-1]]
        for t in picks:
            got = instant(url, '{__name__=~"border_.+"}', t)
            want = expected[t]
            assert set(got) == set(want), (t, set(want) ^ set(got))
            for key, value in want.items():
                same = got[key] == value or (math.isinf(value) and math.isinf(got[key]))
                assert same, (t, key, got[key], value)
        # Between samples Prometheus holds the last sample: a query 30 s after a sample time
        # answers with that sample (within the 5 min lookback).
        mid = picks[2]
        assert instant(url, catalog.QUEUE_LENGTH.series, mid + 30) == {
            k: v for k, v in expected[mid].items() if k[0] == catalog.QUEUE_LENGTH.series
        }
    finally:
        prom.stop()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is installed by make install-system")
def test_retention_counts_from_the_newest_block_so_2022_needs_a_long_retention(tmp_path):
    """What the README tells analysts, measured: Prometheus deletes blocks older than the
    retention measured from the newest block. 2022 blocks alone survive the default; beside a
    2026 block they are deleted unless the retention reaches back to 2022."""

    def blocks_with(times: list[int], directory: Path) -> None:
        text = "# TYPE probe gauge\n" + "".join(f"probe 1 {t}\n" for t in times) + "# EOF\n"
        source = tmp_path / f"{directory.name}-{times[0]}.om"
        source.write_text(text)
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(directory)],
                       check=True, capture_output=True)  # fmt: skip

    t2022 = 1663718400  # 2022-09-21
    now = int(time.time()) - 3600
    for name, flags, survives in (
        ("default-2022-only", [], True),
        ("default-with-2026", [], False),
        ("long-retention-with-2026", ["--storage.tsdb.retention.time=10y"], True),
    ):
        directory = tmp_path / name
        blocks_with([t2022 + 60 * i for i in range(30)], directory)
        if "2026" in name:
            blocks_with([now + 60 * i for i in range(30)], directory)
        prom, url = prometheus_on(directory, tmp_path, *flags)
        try:
            found = instant(url, "probe", t2022 + 600)
            assert bool(found) == survives, (name, found)
        finally:
            prom.stop()


def children_of(pid: int) -> set[int]:
    try:
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def test_a_stopped_backtest_stops_its_shard_processes_and_says_so(tmp_path):
    """SIGTERM (and a closed terminal, which becomes SIGTERM) mid-run: exit 143 with one line,
    and the processes that ran the rules end with it (the default action left them running)."""
    log = tmp_path / "long.jsonl"
    with log.open("w") as out:  # long enough to be stopped in the middle
        for i in range(1_500_000):
            ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_663_718_400 + i // 20))
            out.write(f'{{"event_id":"e{i}","type":"arrival","checkpoint_id":"syrym","direction":"in","ts":"{ts}"}}\n')
    proc = subprocess.Popen([BIN, "backtest", str(log)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(children_of(proc.pid)) >= 2, 30, "the shard processes")
        shards = children_of(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "bordermon: error: stopped by SIGTERM"
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in shards), 10, "the shards to end")
