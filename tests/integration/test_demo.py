"""Issue 7 acceptance: `bordermon demo` in a real terminal (tmux) for 60 s, and `status --json`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from bordermon import metrics as catalog
from harness.metrics import consumed, parse_metrics
from harness.processes import BIN, KafkaBroker, Worker, base_env, run_cli, wait_until
from tests.fixtures.mixedlog import mixed_log, write_log
from tests.fixtures.registry import GROUPED_REGISTRY, GROUPS

pytestmark = pytest.mark.integration
PATTERN = re.compile(r"tansu broker|bordermon (worker|simulate)|prometheus-alertmanager|prometheus --config")


SESSION_VAR = "BORDERMON_DEMO_TEST_SESSION"


def started_by(pid: str, session: str) -> bool:
    """Whether the process inherited this test's session marker: the demo's children do; a
    `bordermon simulate` someone else runs on the machine meanwhile does not."""
    try:
        return f"{SESSION_VAR}={session}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # gone meanwhile
        return False


def leftovers(session: str) -> set[str]:
    """The demo's live processes (broker, worker, simulator, monitoring) started in `session`."""
    # -ww: with COLUMNS exported (CI shells do) ps cuts each line to that width, and a long venv
    # path hides "bordermon worker" from the pattern.
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,stat=,args="], capture_output=True, text=True).stdout
    return {line.split(None, 2)[0] for line in out.splitlines()
            if PATTERN.search(line) and not line.split()[1].startswith("Z")
            and started_by(line.split(None, 2)[0], session)}  # fmt: skip


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def start_demo(tmp_path, args: str = "", global_args: str = "") -> tuple[str, object]:
    """`bordermon demo` in a 170x60 tmux window; (session, exit-code marker file)."""
    assert shutil.which("tmux"), "tmux is installed by scripts/install-system.sh"
    session = f"demo-{time.monotonic_ns()}"
    marker = tmp_path / "exit-code"
    # rich sizes itself from COLUMNS/LINES when set (a CI shell may export 80x24): pin them too.
    command = (
        f"env COLUMNS=170 LINES=60 {SESSION_VAR}={session} {BIN} {global_args} demo {args}; "
        f"echo $? > {marker}; sleep 30"
    )
    tmux("new-session", "-d", "-s", session, "-x", "170", "-y", "60", command)
    # A tmux server that already runs may impose its own default size: force a wide window.
    tmux("set-option", "-t", session, "window-size", "manual")
    tmux("resize-window", "-t", session, "-x", "170", "-y", "60")
    return session, marker


def screen_of(session: str) -> str:
    return tmux("capture-pane", "-t", session, "-p")


def matching(session: str, pattern: str) -> str:
    """The screen when it matches the pattern, else empty (for wait_until)."""
    screen = screen_of(session)
    return screen if re.search(pattern, screen) else ""


def test_make_run_shows_the_first_overload_within_90_s_and_ctrl_c_stops_everything(tmp_path):
    """`make run` is `bordermon demo` with its defaults: the board must tell its story at once."""
    session, marker = start_demo(tmp_path)
    try:
        board = wait_until(lambda: "simulated clock" in screen_of(session), 120, "the live board", interval=0.5)
        appeared = time.monotonic()
        assert board
        assert "fast-forwarding the quiet hours" in screen_of(session) or "1,440× event time" in screen_of(session)
        screen = wait_until(lambda: matching(session, r"\b(WARN|CRIT)\b"), 90, "a QueueOverload", interval=0.5)
        first_alert = time.monotonic() - appeared
        print(f"\nfirst QueueOverload on the board {first_alert:.1f} s after the board appeared")
        assert first_alert <= 90
        assert "1,440× event time" in screen, "after the quiet hours the clock runs at the stated speed"
        assert re.search(r"[1-9][\d,]* events/s", screen), "traffic: " + screen
        queues = [int(m.group(1)) for m in re.finditer(r"│\s+(\d+)/\d+\s+│", screen)]
        assert queues and max(queues) > 0, "a queue: " + screen
        screen = wait_until(lambda: matching(session, r"\+\d+ lanes (in|out)"), 60, "capacity advice", interval=0.5)
        assert "stayed" in screen and "RU" in screen
        tmux("send-keys", "-t", session, "C-c")
        wait_until(marker.exists, 20, "the demo to exit after Ctrl-C")
        assert marker.read_text().strip() == "0"
        assert "stopped cleanly; nothing left running." in screen_of(session)
        wait_until(lambda: not leftovers(session), 10, "no process left behind")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_the_demo_runs_on_apache_kafka_and_leaves_it_running(tmp_path):
    """`bordermon demo --broker external` on the Kafka `scripts/kafka.sh start` runs: the same
    story on the board; Ctrl-C stops what the demo started and leaves the broker it was given."""
    kafka = KafkaBroker(tmp_path / "kafka")
    session, marker = start_demo(tmp_path, "--broker external", f"--bootstrap-servers {kafka.address}")
    try:
        screen = wait_until(lambda: matching(session, r"\b(WARN|CRIT)\b"), 240, "a QueueOverload", interval=0.5)
        assert f"broker: {kafka.address} (external)" in screen
        assert re.search(r"[1-9][\d,]* events/s", screen), "traffic: " + screen
        tmux("send-keys", "-t", session, "C-c")
        wait_until(marker.exists, 20, "the demo to exit after Ctrl-C")
        assert marker.read_text().strip() == "0"
        assert "stopping: simulator, worker, monitoring ..." in screen_of(session)
        assert "stopped cleanly; nothing left running." in screen_of(session)
        wait_until(lambda: not leftovers(session), 10, "no process of the demo left behind")
        assert kafka.cluster.registered_brokers() == {1}, "the broker the demo was given still runs"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        kafka.stop()


def test_closing_the_terminal_stops_everything(tmp_path):
    """Closing the window sends SIGHUP: broker, worker, simulator, Prometheus and Alertmanager
    must all stop, as with Ctrl-C."""
    session, _ = start_demo(tmp_path, "--start 2022-09-23 --speed 7200")
    try:
        wait_until(lambda: re.search(r"[1-9][\d,]* events/s", screen_of(session)), 120, "traffic on the board")
        started = leftovers(session)
        assert len(started) >= 4, f"broker, worker, simulator and monitoring run: {started}"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)  # the terminal closes
    wait_until(lambda: not leftovers(session), 30, "every process the demo started to stop")


@pytest.mark.brokers("tansu", "kafka")
def test_status_json_reflects_the_worker(broker, tmp_path):
    """With lane groups: one entry per group under each direction; a checkpoint without groups
    keeps its queue's fields where they were before groups."""
    registry = tmp_path / "grouped.yaml"
    registry.write_text(GROUPED_REGISTRY)
    env = {**base_env(broker), "BORDERMON_CHECKPOINTS": str(registry)}
    worker = Worker(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        log = tmp_path / "log.jsonl"
        write_log(str(log), mixed_log(["syrym", "kairak", "zhana-zhol"], good_count=2000, seed=9, lane_groups=GROUPS))
        replay = run_cli(["replay", str(log), "--max-speed", "-q"], env)
        total = int(replay.stdout.split()[1])
        wait_until(lambda: consumed(parse_metrics(worker.metrics())) == total, 60, "drained")
        status = run_cli(["status", "--json", "--url", f"http://127.0.0.1:{worker.port}/metrics"], env)
        assert status.returncode == 0, status.stderr
        data = json.loads(status.stdout)
        metrics = parse_metrics(worker.metrics())
        syrym, zhana_zhol = data["checkpoints"]["syrym"], data["checkpoints"]["zhana-zhol"]
        assert set(syrym["in"]["lane_groups"]) == set(GROUPS["syrym"])
        for cid, group, shown in [("syrym", g, syrym["in"]["lane_groups"][g]) for g in GROUPS["syrym"]] + [
            ("zhana-zhol", "all", zhana_zhol["in"]),
            ("zhana-zhol", "all", zhana_zhol["in"]["lane_groups"]["all"]),
        ]:
            key = (("checkpoint", cid), ("direction", "in"), ("lane_group", group))
            assert shown["queue_length"] == metrics[catalog.QUEUE_LENGTH.series][key], (cid, group)
            assert shown["lanes_open"] == metrics[catalog.LANES_OPEN.series][key], (cid, group)
        assert "queue_length" not in syrym["in"], "a grouped checkpoint has no one queue to show"
        assert sum(data["accepted"].values()) + sum(data["rejected"].values()) == total
        assert set(syrym["net_flow"]) == {"15m", "1h", "24h"}
        # A wide terminal: at 80 columns rich shortens the group names.
        human = run_cli(["status", "--url", f"http://127.0.0.1:{worker.port}/metrics"], {**env, "COLUMNS": "200"})
        assert human.returncode == 0 and "syrym" in human.stdout and "trucks" in human.stdout, human.stdout
        down = run_cli(["status", "--url", "http://127.0.0.1:9/metrics"], env)
        assert down.returncode != 0 and down.stderr.count("\n") == 1 and "is a worker running" in down.stderr
    finally:
        worker.stop()
