"""`bordermon demo`: the whole pipeline on this machine with a live terminal view.

Starts the embedded broker (or, with `--broker external`, uses the Kafka the settings name, say
one `scripts/kafka.sh start` runs, and leaves it running), one worker, Prometheus and
Alertmanager when installed, and the simulator; draws what the worker sees once a second;
Ctrl-C (or SIGTERM) stops every process it started, in reverse order, and removes its
temporary files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from bordermon.broker import start_broker
from bordermon.config import Settings, settings_env
from bordermon.errors import BordermonError
from bordermon.kafka import check_reachable
from bordermon.ports import port_or_free
from bordermon.stopping import StopFlag
from bordermon.timeutil import to_rfc3339
from shell.liveview import (
    checkpoint_table,
    citizenship_table,
    fetch_metrics,
    latest_event_time,
    parse_snapshot,
)
from shell.localmonitoring import alertmanager_command, prometheus_command

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Stack:
    workdir: Path
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def stop(self) -> list[str]:
        """Stop children newest first; return the names that needed SIGKILL."""
        killed = []
        for _, proc in reversed(self.procs):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for name, proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
                killed.append(name)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return killed


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the child's whole session (it may have children of its own); it may be gone already."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


def _wait_http(url: str, proc: subprocess.Popen[bytes], name: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-400:] if log.exists() else ""
            raise BordermonError(f"{name} exited during start-up: {tail.strip().splitlines()[-1:] or ''}")
        try:
            body = fetch_metrics(url, timeout=2)
            if '"partitions":[]' not in body:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise BordermonError(f"{name} did not become ready within {timeout:.0f}s (log: {log})")


def start_stack(
    stack: Stack,
    settings: Settings,
    console: Console,
    scenario: str,
    start: str,
    speed: float,
    days: int,
    fast_until: float,
    external_broker: bool = False,
) -> None:
    """Start every process into `stack` (which stops whatever did start if this fails)."""
    bin_dir = Path(sys.executable).parent
    web_port = port_or_free(6066)
    # The children resolve the demo's own settings (this command's flags included), on its ports.
    env = {**os.environ, **settings_env(settings)}
    env["BORDERMON_WEB_PORT"] = str(web_port)
    env.pop("BORDERMON_ALERTMANAGER_URL", None)
    if external_broker:
        check_reachable(settings)
        stack.urls["broker"] = f"{settings.bootstrap_servers} (external)"
    else:
        broker_port = port_or_free(9092)
        env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{broker_port}"
        stack.procs.append(("broker", start_broker("127.0.0.1", broker_port)))
        stack.urls["broker"] = f"127.0.0.1:{broker_port}"

    am_bin = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if am_bin:
        am_port = port_or_free(9093)
        am_config = {
            "route": {"receiver": "demo", "group_by": ["alertname", "checkpoint", "direction"]},
            "receivers": [{"name": "demo"}],
        }
        stack.spawn("alertmanager", alertmanager_command(am_bin, stack.workdir, am_port, yaml.safe_dump(am_config)))
        stack.urls["alertmanager"] = f"http://127.0.0.1:{am_port}"
        env["BORDERMON_ALERTMANAGER_URL"] = stack.urls["alertmanager"]
        env["BORDERMON_ALERTMANAGER_REPUSH_SECONDS"] = "30"

    worker = stack.spawn("worker", [str(bin_dir / "bordermon"), "worker"], env)
    stack.urls["metrics"] = f"http://127.0.0.1:{web_port}/metrics"

    prom_bin = shutil.which("prometheus")
    if prom_bin:
        prom_port = port_or_free(9090)
        rules = sorted((REPO / "monitoring/prometheus/rules").glob("*.yml"))
        targets = [f"127.0.0.1:{web_port}"]
        am_url = stack.urls.get("alertmanager")
        stack.spawn("prometheus", prometheus_command(prom_bin, stack.workdir, prom_port, targets, rules, "5s", am_url))
        stack.urls["prometheus"] = f"http://127.0.0.1:{prom_port}"

    with console.status("starting the worker (joining its consumer group takes a few seconds)..."):
        _wait_http(f"http://127.0.0.1:{web_port}/healthz", worker, "worker", stack.workdir / "worker.log")
    sim = [str(bin_dir / "bordermon"), "simulate", "--scenario", scenario, "--kafka"]
    sim += ["--speed", str(speed), "--start", start, "--days", str(days), "--fast-until", to_rfc3339(fast_until)]
    stack.spawn("simulator", sim, env)


def _header(stack: Stack, scenario: str, speed: float, clock: float | None, rate: float, fast_until: float) -> Panel:
    sim_time = datetime.fromtimestamp(clock, UTC).strftime("%a %d %b %Y %H:%M UTC") if clock else "waiting for events"
    text = Text()
    text.append(f"{scenario}", style="bold")
    if clock is None or clock < fast_until:
        until = datetime.fromtimestamp(fast_until, UTC).strftime("%a %d %b %H:%M")
        text.append(f" fast-forwarding the quiet hours to {until}, then {speed:,.0f}×", style="yellow")
        text.append("   simulated clock ")
    else:
        text.append(f" at {speed:,.0f}× event time   simulated clock ")
    text.append(sim_time, style="bold cyan")
    text.append(f"   {rate:,.0f} events/s\n")
    text.append("   ".join(f"{k}: {v}" for k, v in stack.urls.items()), style="dim")
    text.append("   Ctrl-C stops everything", style="dim")
    return Panel(text, title="bordermon demo", border_style="blue")


def run_demo(
    settings: Settings,
    scenario: str,
    start: str,
    speed: float,
    days: int,
    fast_until: float,
    console: Console | None = None,
    external_broker: bool = False,
) -> int:
    console = console or Console()

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Before anything starts: a hang-up (terminal closed, arriving as SIGTERM) or SIGTERM
    # during start-up must still stop what was started.
    signal.signal(signal.SIGTERM, on_term)
    stack = Stack(Path(tempfile.mkdtemp(prefix="bordermon-demo-")))
    last: tuple[float, float] | None = None
    try:
        start_stack(stack, settings, console, scenario, start, speed, days, fast_until, external_broker)
        # From here a stop signal only sets a flag the loop checks: raised as an exception it could
        # land inside rich's or urllib's code, between a lock taken and the block that frees it.
        stop = StopFlag().install()
        with Live(console=console, refresh_per_second=2, screen=False) as live:
            while stop.requested is None:
                try:
                    snap = parse_snapshot(fetch_metrics(stack.urls["metrics"]))
                except OSError as exc:
                    live.update(Text(f"worker metrics unavailable: {exc}", style="red"))
                    stop.sleep(1)
                    continue
                now = time.monotonic()
                rate = 0.0 if last is None else (snap.processed - last[1]) / max(1e-6, now - last[0])
                last = (now, snap.processed)
                live.update(
                    Group(
                        _header(stack, scenario, speed, latest_event_time(snap), rate, fast_until),
                        checkpoint_table(snap),
                        citizenship_table(snap),
                    )
                )
                stop.sleep(1)
    except (KeyboardInterrupt, OSError):  # OSError: the terminal is gone (hang-up)
        pass
    finally:
        own = "" if external_broker else ", broker"
        say(console, f"stopping: simulator, worker, monitoring{own} ...")
        killed = stack.stop()
        say(console, "stopped cleanly; nothing left running." if not killed else f"had to kill: {', '.join(killed)}")
    return 0


def say(console: Console, text: str) -> None:
    """Print if the terminal is still there; a closed one must not stop the clean-up."""
    with contextlib.suppress(OSError):
        console.print(text)
