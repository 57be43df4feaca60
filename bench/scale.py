"""`make bench`, scale section: how cost grows with checkpoints, live ids and workers.

One worker drains N events that all fall inside one day of event time (so every event id is live
for duplicate detection), on a registry of 2,400 checkpoints and again, the same events, on 24.
Per run: drain events/s, peak RSS, bytes per live id (peak RSS over an idle worker's, per id),
a `/metrics` scrape after the drain, every checkpoint changed since the one at its start
(time, bytes, series, the worker's page faults), and recovery after `kill -9` with that state (time
until the replacement is ready with its state rebuilt, and its RSS then). Growth: the same on
2,400 checkpoints at a quarter, half and all of N. Then two workers on the 2,400-checkpoint log
against one.

    make bench                                      # with the rest: "scale" in bench/results.json
    .venv/bin/python -m bench.scale                 # alone, N = 2,000,000, on both brokers
    .venv/bin/python -m bench.scale --events 200000 --brokers kafka   # quick, Apache Kafka only
    .venv/bin/python -m bench.scale --lane-groups   # the 2,400-checkpoint run, three lane groups each
    .venv/bin/python -m bench.scale --lane-groups --workers 2   # the same, split between two workers

The growth plot goes to bench/scale.png (bench/README.md shows it).
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bordermon.config import Settings
from bordermon.kafka import ensure_worker_topics
from bordermon.registry import parse_registry
from harness.console import say_as
from harness.processes import BIN, Worker, base_env, start_broker_of, wait_until
from streams.domain.processor import Inbound, Processor

ROOT = Path(__file__).resolve().parents[1]
DAY_START = datetime(2022, 9, 26, tzinfo=UTC).timestamp()
EVENT_TIME_SPAN = 23 * 3600.0  # inside one day: every id stays live for duplicate detection
WIDE, NARROW = 2400, 24
TARGETS = {
    "wide_ratio_to_narrow": 0.80,  # drain rate on 2,400 checkpoints / on 24
    "peak_rss_mb": 400.0,  # with N = 2M live ids, also after recovery
    "scrape_ms": 250.0,  # one /metrics at 2,400 checkpoints, every one changed since the last
    "recovery_seconds": 10.0,  # kill -9 to ready, with N = 2M live ids
}


say = say_as("bench: scale")


# Three lane groups per checkpoint (`--lane-groups`, `bench.cardinality`): cars and buses, trucks,
# people on foot; a log for them cycles through these modes.
GROUPS = """
    lane_groups: [{id: cars, modes: [car, bus], lanes: {in: 4, out: 4}, lane_capacity_per_hour: 40},
                  {id: trucks, modes: [truck], lanes: {in: 2, out: 2}, lane_capacity_per_hour: 6,
                   wait_warning_minutes: 720, wait_critical_minutes: 1440},
                  {id: foot, modes: [pedestrian], lanes: {in: 1, out: 1}, lane_capacity_per_hour: 90}]}"""
MODES = ("car", "truck", "pedestrian", "bus")


def grouped(text: str) -> str:
    """`registry_yaml`'s text with `GROUPS` on every checkpoint."""
    return text.replace("wait_critical_minutes: 360}", "wait_critical_minutes: 360," + GROUPS)


def registry_yaml(checkpoints: int) -> str:
    """A registry of `checkpoints` road checkpoints (the bundled one's thresholds and lanes)."""
    lines = ["alerting: {for_minutes: 10, resolve_ratio: 0.8}", "checkpoints:"]
    for i in range(checkpoints):
        lat, lon = 40.0 + (i % 60) * 0.2, 50.0 + (i // 60) * 0.5
        lines.append(
            f"  - {{id: sc-{i:04d}, name: 'Scale {i}', region: Scale, lat: {lat:.1f}, lon: {lon:.1f}, mode: road, "
            "lanes: {in: 4, out: 4}, lane_capacity_per_hour: 40, wait_warning_minutes: 120, "
            "wait_critical_minutes: 360}"
        )
    return "\n".join(lines) + "\n"


def write_log(events: int, checkpoints: int, path: Path, modes: tuple[str, ...] = ()) -> None:
    """`events` valid, unique events inside one day, spread round-robin over the checkpoints:
    per checkpoint a party arrives and then crosses, alternating direction, so queues stay short
    and the cost measured is the ids' and the checkpoints', not a growing queue's. With `modes`,
    every four rounds the parties take the next mode (a party's arrival and crossing share it)."""
    step = EVENT_TIME_SPAN / events
    stamps: dict[int, str] = {}
    with path.open("wb") as out:
        chunk: list[bytes] = []
        for i in range(events):
            cid = f"sc-{i % checkpoints:04d}"
            round_ = i // checkpoints
            second = int(DAY_START + i * step)
            ts = stamps.get(second)
            if ts is None:
                stamps.clear()
                ts = stamps[second] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            event: dict[str, object] = {
                "event_id": f"{cid}-{i}",
                "type": "arrival" if round_ % 2 == 0 else "crossing",
                "checkpoint_id": cid,
                "direction": "in" if (round_ // 2) % 2 == 0 else "out",
                "ts": ts,
            }
            if modes:
                event["mode"] = modes[(round_ // 4) % len(modes)]
            if event["type"] == "crossing":
                event.update(persons=1 + i % 3, citizenship=("RU", "KZ", "UZ", "KG")[i % 4])
            chunk.append(orjson.dumps(event))
            if len(chunk) == 50_000:
                out.write(b"\n".join(chunk) + b"\n")
                chunk = []
        if chunk:
            out.write(b"\n".join(chunk) + b"\n")


def health(worker: Worker) -> dict:
    try:
        return json.loads(worker.get("/healthz"))
    except (OSError, ValueError):
        return {}


def ready(worker: Worker) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/readyz", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def watch_until(
    done: Callable[[], bool], workers: list[Worker], timeout: float, what: str, interval: float = 0.05
) -> float:
    """Wait for `done` while the workers live; their peak RSS then (MB, summed: each one's
    kernel high-water mark, exact where sampling could miss a short peak)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: scale: timed out waiting for {what}")
        for w in workers:
            if w.proc.poll() is not None:
                raise SystemExit(f"bench: scale: a worker exited: {w.tail()}")
        time.sleep(interval)
    return sum(w.memory_mb("VmHWM") for w in workers)


# What a scrape is read into, reused as Prometheus reuses its scrape buffers: a fresh 20 MB
# body each time cost this client up to 140 ms of first-touched pages, which the worker waited
# on to send and the bench counted as the worker's (bench/README.md, 2026-12-07).
# Allocated (and zeroed, so touched) here, before anything is timed: 32 MB fits the 20.3 MB of
# 2,400 checkpoints with three lane groups.
READ_BUFFER = bytearray(32 << 20)


def scrape(worker: Worker, times: int = 5) -> dict:
    """`/metrics` as Prometheus fetches it. The first scrape here follows one at the start of the
    drain (`run`): every checkpoint changed since the last scrape, the worst case and the one
    the target is for; the next ones find nothing changed and reuse each checkpoint's text
    (their median). Each is timed to the whole body and to its headers, which the worker sends
    once its text is written (the rest is the transfer); `faults` are the worker's page faults
    during the first, pages it touched for the first time."""
    global READ_BUFFER
    seconds, headers, body = [], [], b""
    faults = 0
    for n in range(1 + times):
        started_faults = worker.page_faults()
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=30)
        try:
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            headers.append(time.perf_counter() - started)
            length = int(response.getheader("Content-Length") or 0)
            if len(READ_BUFFER) < length:
                READ_BUFFER = bytearray(2 * length)
            with memoryview(READ_BUFFER) as view:
                got = 0
                while got < length:
                    read = response.readinto(view[got:length])
                    if not read:
                        raise OSError(f"the body ended after {got} of {length} bytes")
                    got += read
        finally:
            connection.close()
        seconds.append(time.perf_counter() - started)
        if n == 0:
            faults = worker.page_faults() - started_faults
        body = bytes(READ_BUFFER[:length])
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    out: dict[str, object] = {"ms": round(seconds[0] * 1000, 1), "first_byte_ms": round(headers[0] * 1000, 1)}
    if times:
        out["unchanged_ms"] = round(sorted(seconds[1:])[times // 2] * 1000, 1)
    return {**out, "bytes": len(body), "series": series, "faults": faults}


def counted(worker: Worker) -> int:
    return int(health(worker).get("counted", 0))


def run(
    events: int, checkpoints: int, work: Path, kind: str, recover: bool = True, workers: int = 1, groups: bool = False
) -> dict:
    """One scale run on a fresh broker of `kind`; see the module docstring for what it measures.
    With `groups`, every checkpoint has three lane groups (`GROUPS`) and the log all four modes."""
    tag = f"{checkpoints}cp-{events}" + ("-groups" if groups else "")
    registry = work / f"registry-{tag}.yaml"
    registry.write_text(grouped(registry_yaml(checkpoints)) if groups else registry_yaml(checkpoints))
    log = work / f"log-{tag}.jsonl"
    if not log.exists():
        write_log(events, checkpoints, log, MODES if groups else ())
    broker = start_broker_of(kind, work / f"kafka-{tag}-{workers}")
    started: list[Worker] = []
    out: dict[str, object] = {"checkpoints": checkpoints, "live_ids": events, "workers": workers,
                              "lane_groups": 3 if groups else 0}  # fmt: skip
    try:
        env = {**base_env(broker), "BORDERMON_CHECKPOINTS": str(registry)}
        ensure_worker_topics(Settings(bootstrap_servers=broker.address))
        # Members keep one static id each (as containers do); the idle one is the first member.
        idle = Worker({**env, "BORDERMON_GROUP_INSTANCE_ID": "scale-0"}, work / f"idle-{tag}.log")
        idle.wait_ready()
        baseline = idle.memory_mb()
        idle.stop()
        subprocess.run([BIN, "replay", str(log), "--max-speed", "-q"], env=env, check=True, capture_output=True)
        for n in range(workers):
            member = {**env, "BORDERMON_GROUP_INSTANCE_ID": f"scale-{n}"}
            started.append(Worker(member, work / f"worker-{tag}-{n}.log"))
        wait_until(lambda: any(health(w).get("processed", 0) > 0 for w in started), 180, "first event", 0.01)
        if recover:
            # Prometheus scrapes a worker from its start: the scrape measured after the drain
            # is then one where every checkpoint changed since the last, as in a deployment, not
            # the first of the worker's life (whose text lands in pages never touched before).
            out["scrape_at_start"] = [scrape(w, times=0) for w in started]
        t0, n0 = time.perf_counter(), sum(counted(w) for w in started)
        # Every poll costs the worker a request and a walk over its checkpoints (2,400 here): a
        # quarter second keeps that out of the drain, and adds at most 0.6% to a 40 s drain.
        peak = watch_until(lambda: sum(counted(w) for w in started) >= events, started, 900, "the drain", 0.25)
        rate = (events - n0) / (time.perf_counter() - t0)
        out.update(
            drain_events_per_s=round(rate),
            baseline_rss_mb=round(baseline, 1),
            peak_rss_mb=round(peak, 1),
            bytes_per_live_id=round((peak - baseline * workers) * 2**20 / events),
        )
        say(f"{kind} {tag} x{workers}: {rate:,.0f} events/s, peak RSS {peak:.0f} MB, {out['bytes_per_live_id']} B/id")
        if not recover:
            return out
        for member in started:
            wait_until(lambda member=member: health(member).get("unsettled", 1) == 0, 120, "state durable", 0.05)
        if workers > 1:
            # Each exports the checkpoints of its partitions: Prometheus scrapes each on its own.
            out["scrapes"] = [scrape(member) for member in started]
            out["peak_rss_mb_each"] = [round(member.memory_mb("VmHWM"), 1) for member in started]
            say(f"{kind} {tag} x{workers}: scrapes {out['scrapes']}, peak RSS each {out['peak_rss_mb_each']} MB")
            return out
        worker = started[0]
        out["scrape"] = scrape(worker)
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait()
        killed = time.perf_counter()
        replacement = Worker({**env, "BORDERMON_GROUP_INSTANCE_ID": "scale-0"}, work / f"recovered-{tag}.log")
        started.append(replacement)
        peak_recovery = watch_until(lambda: ready(replacement), [replacement], 600, "recovery", 0.02)
        out["recovery_seconds"] = round(time.perf_counter() - killed, 2)
        out["recovered_rss_mb"] = round(peak_recovery, 1)
        out["recovered_exact"] = counted(replacement) == events
        say(f"{kind} {tag}: recovery {out['recovery_seconds']} s, RSS after {out['recovered_rss_mb']} MB")
        say(f"{kind} {tag}: scrape {out['scrape']}")
        return out
    finally:
        for w in started:
            if w.proc.poll() is None:
                w.stop()
        broker.stop()


def plot(growth: dict[str, list[dict]], path: Path) -> None:
    """Memory and recovery against live ids, one line per broker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (memory, recovery) = plt.subplots(1, 2, figsize=(10, 4))
    for kind, points in growth.items():
        ids = [g["live_ids"] / 1e6 for g in points]
        name = BROKER_NAMES.get(kind, kind)
        memory.plot(ids, [g["peak_rss_mb"] for g in points], "o-", label=f"{name}: draining")
        memory.plot(ids, [g["recovered_rss_mb"] for g in points], "s--", label=f"{name}: after kill -9 recovery")
        recovery.plot(ids, [g["recovery_seconds"] for g in points], "o-", label=name)
    memory.axhline(TARGETS["peak_rss_mb"], color="red", linewidth=0.8, label="target 400 MB")
    memory.set(xlabel="live event ids (millions)", ylabel="MB", title="Worker peak RSS, 2,400 checkpoints")
    memory.legend(fontsize=8)
    recovery.axhline(TARGETS["recovery_seconds"], color="red", linewidth=0.8, label="target 10 s")
    recovery.set(xlabel="live event ids (millions)", ylabel="seconds", title="kill -9 to ready")
    recovery.legend(fontsize=8)
    for axis in (memory, recovery):
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


BROKER_NAMES = {"tansu": "embedded (Tansu)", "kafka": "Apache Kafka"}


def scale(events: int, work: Path, kind: str) -> dict:
    """Every scale figure for N = `events` on a broker of `kind` (growth points N/4, N/2 and N)."""
    growth = [run(n, WIDE, work, kind) for n in (max(1, events // 4), events // 2, events)]
    wide = growth[-1]
    narrow = run(events, NARROW, work, kind, recover=False)
    try:
        two = run(events, WIDE, work, kind, workers=2)
    except (AssertionError, SystemExit) as exc:  # recorded, not fatal: the other figures stand
        two = {"workers": 2, "error": str(exc)}
        say(f"two workers: FAILED: {exc}")
    results = {
        "events": events,
        "state_bytes_per_live_id": state_bytes_per_id(events, WIDE, work),
        "state_bytes_per_live_id_24_checkpoints": state_bytes_per_id(events, NARROW, work),
        "wide": wide,
        "narrow": narrow,
        "wide_ratio_to_narrow": round(wide["drain_events_per_s"] / narrow["drain_events_per_s"], 3),
        "two_workers": two,
        "two_workers_ratio_to_one": (
            round(two["drain_events_per_s"] / wide["drain_events_per_s"], 3) if "error" not in two else None
        ),
        "growth": growth,
    }
    return results


def state_bytes_per_id(events: int, checkpoints: int, work: Path) -> int:
    """Bytes the processor's state holds per live id, traced in process (tracemalloc) after
    processing the scale log: what duplicate detection, windows and checkpoints cost, without
    the Kafka buffers and allocator slack that the RSS figure includes. Deterministic: the
    regression guard."""
    log = work / f"log-{checkpoints}cp-{events}.jsonl"
    if not log.exists():
        write_log(events, checkpoints, log)
    processor = Processor(parse_registry(registry_yaml(checkpoints), "scale"), 1)
    now = DAY_START + 2 * 86400.0
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with log.open("rb") as lines:
            batch: list[Inbound] = []
            for offset, line in enumerate(lines):
                batch.append((offset, None, line.rstrip(b"\n"), 0))
                if len(batch) == 5_000:
                    processor.process_events(0, batch, now=now)
                    processor.state[0].settle()  # what a persisted batch leaves: no pending writes
                    batch = []
            processor.process_events(0, batch, now=now)
            processor.state[0].settle()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    ids = sum(len(cs.seen) for cs in processor.state[0].checkpoints.values())
    return round(held / ids)


def paired_ratio(events: int, work: Path, kind: str, pairs: int, groups: bool = False) -> dict:
    """The drain on 2,400 checkpoints over the drain on 24, measured in turn (24, 2,400, 24, ...)
    so that each ratio is taken between neighbouring runs: the host's speed drifts by more than
    the difference between runs minutes apart (the median is the figure). With `groups`, both
    registries have three lane groups per checkpoint and the logs all four modes."""
    ratios, wides = [], []
    for i in range(pairs):
        fresh = work / f"{kind}-pair-{i}"  # a broker of its own: run() names its data folder by the log alone
        fresh.mkdir()
        narrow = run(events, NARROW, fresh, kind, recover=False, groups=groups)["drain_events_per_s"]
        wides.append(run(events, WIDE, fresh, kind, groups=groups))  # with the scrape and the recovery after kill -9
        wide = wides[-1]["drain_events_per_s"]
        ratios.append(round(wide / narrow, 3))
        say(f"{kind}: pair {len(ratios)}: {wide:,} / {narrow:,} events/s = {ratios[-1]}")
    return {"events": events, "pairs": ratios, "median": statistics.median(ratios), "wide_runs": wides}


def guard(events: int, work: Path, kind: str) -> dict:
    """The reduced bench's part (CI): the state's bytes per live id, and one drain on 2,400
    checkpoints for the RSS figure."""
    return {
        "events": events,
        "state_bytes_per_live_id": state_bytes_per_id(events, WIDE, work),
        "wide": run(events, WIDE, work, kind, recover=False),
    }


def met(results: dict) -> dict[str, bool]:
    wide = results["wide"]
    return {
        "wide_ratio_to_narrow": results["wide_ratio_to_narrow"] >= TARGETS["wide_ratio_to_narrow"],
        "peak_rss_mb": max(wide["peak_rss_mb"], wide["recovered_rss_mb"]) <= TARGETS["peak_rss_mb"],
        "scrape_ms": wide["scrape"]["ms"] <= TARGETS["scrape_ms"],
        "recovery_seconds": wide["recovery_seconds"] <= TARGETS["recovery_seconds"],
        "recovered_exact": wide["recovered_exact"],
    }


def table(results: dict) -> str:
    wide, narrow, two = results["wide"], results["narrow"], results["two_workers"]
    checks = met(results)

    def mark(name: str) -> str:
        return "  met" if checks[name] else "  NOT MET"

    first_scrape = (wide.get("scrape_at_start") or [{}])[0]
    rows = [
        f"scale: {results['events']:,} events in one day of event time, every id live",
        f"  drain, 24 checkpoints            {narrow['drain_events_per_s']:>10,} events/s",
        f"  drain, 2,400 checkpoints         {wide['drain_events_per_s']:>10,} events/s"
        f"  ratio {results['wide_ratio_to_narrow']}{mark('wide_ratio_to_narrow')}",
        f"  peak RSS, draining / recovered   {wide['peak_rss_mb']:>10} / {wide['recovered_rss_mb']} MB"
        f"{mark('peak_rss_mb')}",
        f"  bytes per live id, RSS           {wide['bytes_per_live_id']:>10}  (24 checkpoints: "
        f"{narrow['bytes_per_live_id']})",
        f"  bytes per live id, state traced  {results['state_bytes_per_live_id']:>10}  (24 checkpoints: "
        f"{results['state_bytes_per_live_id_24_checkpoints']})",
        f"  /metrics at 2,400 checkpoints    {wide['scrape']['ms']:>10} ms  {wide['scrape']['bytes']:,} bytes  "
        f"{wide['scrape']['series']:,} series{mark('scrape_ms')}",
        f"    its headers (text written)     {wide['scrape'].get('first_byte_ms', '-'):>10} ms  "
        f"({wide['scrape'].get('faults', '-')} page faults in the worker)",
        f"    the worker's first, mid-drain  {first_scrape.get('ms', '-'):>10} ms  "
        f"({first_scrape.get('faults', '-')} page faults: its text in pages never touched before)",
        f"    the same, nothing changed      {wide['scrape'].get('unchanged_ms', '-'):>10} ms  (each checkpoint's "
        "text reused)",
        f"  recovery after kill -9           {wide['recovery_seconds']:>10} s{mark('recovery_seconds')}"
        f"  exact: {wide['recovered_exact']}",
        (
            f"  two workers / one                {two['drain_events_per_s']:>10,} events/s  ratio "
            f"{results['two_workers_ratio_to_one']}"
            if "error" not in two
            else f"  two workers                      FAILED: {two['error']}"
        ),
    ]
    for g in results["growth"]:
        rows.append(
            f"  growth {g['live_ids']:>9,} ids    RSS {g['peak_rss_mb']:>6} MB, "
            f"recovered {g['recovered_rss_mb']:>6} MB, {g['bytes_per_live_id']} B/id, "
            f"recovery {g['recovery_seconds']} s"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--plot", type=Path, default=ROOT / "bench" / "scale.png")
    parser.add_argument("--brokers", default="tansu,kafka", help="comma-separated: tansu, kafka")
    parser.add_argument("--ratio-pairs", type=int, default=0, metavar="N",
                        help="only the 2,400 / 24 drain ratio, from N pairs of runs in turn")  # fmt: skip
    parser.add_argument("--lane-groups", action="store_true",
                        help="only the 2,400-checkpoint run, with three lane groups per checkpoint "
                             "(with --ratio-pairs: both sides of each pair)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="with --lane-groups: N workers share the partitions, each scraped on its own")  # fmt: skip
    args = parser.parse_args()
    # Each run writes gigabytes (logs, broker data): gone when it ends, whatever the outcome.
    with tempfile.TemporaryDirectory(prefix="bordermon-scale-") as tmp:
        return measured(args, Path(tmp))


def measured(args: argparse.Namespace, work: Path) -> int:
    if args.ratio_pairs:
        paired = {kind: paired_ratio(args.events, work, kind, args.ratio_pairs, args.lane_groups)
                  for kind in args.brokers.split(",")}  # fmt: skip
        if args.out is not None:
            args.out.write_text(json.dumps(paired, indent=2) + "\n")
        print(json.dumps(paired, indent=2))
        return 0 if all(p["median"] >= TARGETS["wide_ratio_to_narrow"] for p in paired.values()) else 1
    if args.lane_groups:
        runs = {kind: run(args.events, WIDE, work, kind, workers=args.workers, groups=True)
                for kind in args.brokers.split(",")}  # fmt: skip
        if args.out is not None:
            args.out.write_text(json.dumps(runs, indent=2) + "\n")
        print(json.dumps(runs, indent=2))
        return 0
    results = {kind: scale(args.events, work, kind) for kind in args.brokers.split(",")}
    plot({kind: r["growth"] for kind, r in results.items()}, args.plot)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    for kind, r in results.items():
        print(f"{BROKER_NAMES.get(kind, kind)}\n{table(r)}")
    return 0 if all(all(met(r).values()) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
