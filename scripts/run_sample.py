"""`make run`: embedded broker + one worker + a replay of the bundled sample log, with a live view.

Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel

from bordermon.broker import start_broker
from bordermon.metricsview import checkpoint_table, fetch_metrics, parse_snapshot, totals_table

BROKER_PORT = int(os.environ.get("BORDERMON_BROKER_PORT", "9092"))
WEB_PORT = int(os.environ.get("BORDERMON_WEB_PORT", "6066"))
SPEED = os.environ.get("BORDERMON_SAMPLE_SPEED", "3600")


def main() -> int:
    console = Console()
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{BROKER_PORT}", "BORDERMON_WEB_PORT": str(WEB_PORT)}
    sample = str(resources.files("producers").joinpath("samples/border-sample.jsonl.gz"))
    os.makedirs(".tmp", exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(start_broker("127.0.0.1", BROKER_PORT))
        console.print(f"broker  : 127.0.0.1:{BROKER_PORT} (embedded Tansu, in memory)")
        worker_log = open(".tmp/worker.log", "ab")  # noqa: SIM115
        procs.append(subprocess.Popen([bin_dir / "bordermon", "worker"], env=env, stdout=worker_log, stderr=worker_log))
        url = f"http://127.0.0.1:{WEB_PORT}/metrics"
        console.print(f"worker  : {url}  (logs in .tmp/worker.log)")
        with console.status("waiting for the worker to join its group..."):
            while True:
                if procs[-1].poll() is not None:
                    console.print("[red]worker exited; see .tmp/worker.log[/]")
                    return 1
                try:
                    if '"partitions":[]' not in fetch_metrics(url.replace("/metrics", "/healthz")):
                        break
                except OSError:
                    pass
                time.sleep(0.3)
        console.print(f"replay  : {sample} at {SPEED}x event time")
        replay = subprocess.Popen(
            [bin_dir / "bordermon", "replay", sample, "--speed", SPEED],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(replay)
        with Live(console=console, refresh_per_second=2) as live:
            while True:
                try:
                    snap = parse_snapshot(fetch_metrics(url))
                    state = "replaying" if replay.poll() is None else "replay finished; Ctrl-C to stop"
                    live.update(Panel(Group(checkpoint_table(snap), totals_table(snap)), title=f"bordermon — {state}"))
                except OSError as exc:
                    live.update(f"metrics unavailable: {exc}")
                time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
