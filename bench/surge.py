"""ArrivalSurge scored on labelled logs (`make accuracy`, surge section), beside a z-score anchor.

Three simulated logs, each with the simulator's sidecar of labelled surges (`<log>.surges.json`:
onset and end per checkpoint and direction):
- `mobilization-2022` from 17 August: five ordinary weeks (weekends, Constitution Day) before the
  2022 surge;
- `holiday`: four ordinary weeks, then Nauryz 2023, a large ordinary peak that is no surge;
- `lane-failure` from 4 July: four ordinary weeks, then Zhana Zhol loses every lane for two hours,
  so its queue overflows with no surge of arrivals.

Each is backtested (`bordermon backtest --alerts-out`); ArrivalSurge's firings are the detections.
The anchor is what GitLab's Prometheus rules do, run on the same arrivals: the arrivals of the last
hour, sampled each minute, against the mean and standard deviation of those samples over the week
before; a detection when z > 3 has held for 5 minutes.

Per detector: for each labelled onset the delay (event-time minutes) and the lead over that queue's
first critical QueueOverload; false alarms per 100 checkpoint-days of ordinary and holiday traffic
(the mobilization log before its first onset, the whole holiday log); firings on lane-failure; and
a NAB-style score (standard profile: true positive 1, false negative -1, false positive -0.11; per
log, windows of 10% of its length divided by its number of surges, starting at each onset: a
detection before a surge starts is a false alarm, not an early one; the first detection in a window
scores 2/(1+e^(5y))-1 at relative position y in [-1, 0], so earlier is worth more; a false alarm
after a window costs less the closer it follows it; normalised so that never firing scores 0 and
detecting every onset at once scores 100).

    .venv/bin/python -m bench.surge            # simulate, backtest, score: bench/surge.json
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson

from bordermon.observability import ARRIVAL_SURGE, QUEUE_OVERLOAD
from bordermon.registry import load_registry
from bordermon.timeutil import parse_rfc3339
from harness.console import say_as
from harness.processes import BIN
from producers.scenarios import SURGE_IN_SHARES
from producers.simulate import labels_path

ROOT = Path(__file__).resolve().parents[1]
say = say_as("bench: surge")

# (name, scenario, start, days): each with four ordinary weeks or more before what it tests.
LOGS = (
    ("mobilization", "mobilization-2022", "2022-08-17", 42),
    ("holiday", "holiday", None, None),
    ("lane-failure", "lane-failure", "2022-07-04", 31),
)
TARGETS = {
    "busiest_delay_minutes": 90,  # every labelled onset of the five busiest 2022 checkpoints...
    "busiest_lead_hours": 12.0,  # ...detected this long before that queue's first critical
    "false_alarms_per_100_checkpoint_days": 1.0,
    "lane_failure_firings": 0,
}
NAB_TP, NAB_FN, NAB_FP = 1.0, -1.0, -0.11
NAB_WINDOW_SHARE = 0.10
Z_LEVEL, Z_FOR_MINUTES, Z_HISTORY_MINUTES = 3.0, 5, 7 * 1440

Stream = tuple[str, str]  # (checkpoint id, direction)


@dataclass
class Log:
    name: str
    start: float
    end: float
    labels: list[dict]  # the sidecar's surges
    alerts: list[dict]  # every transition the backtest emitted
    arrivals: dict[Stream, np.ndarray]  # event times of accepted-looking arrivals, sorted


def make_log(work: Path, name: str, scenario: str, start: str | None, days: int | None, seed: int) -> Log:
    path, alerts_out = work / f"{name}.jsonl", work / f"{name}-alerts.jsonl"
    cmd = [BIN, "simulate", "--scenario", scenario, "--seed", str(seed), "--out", str(path)]
    cmd += ["--start", start] if start else []
    cmd += ["--days", str(days)] if days else []
    say(f"simulating {' '.join(cmd[2:])}")
    subprocess.run(cmd, check=True, capture_output=True)
    say(f"backtest {name}")
    subprocess.run([BIN, "backtest", str(path), "--alerts-out", str(alerts_out)], check=True, capture_output=True)
    sidecar = json.loads(Path(labels_path(str(path))).read_text())
    times: dict[Stream, list[float]] = defaultdict(list)
    with path.open("rb") as lines:
        for line in lines:
            if b'"arrival"' in line:
                e = orjson.loads(line)
                times[(e["checkpoint_id"], e["direction"])].append(parse_rfc3339(e["ts"]))
    run_start = parse_rfc3339(sidecar["start"])
    return Log(
        name,
        run_start,
        run_start + sidecar["days"] * 86400.0,
        sidecar["surges"],
        [json.loads(a) for a in alerts_out.read_text().splitlines()],
        {s: np.sort(np.array(t)) for s, t in times.items()},
    )


def bordermon_detections(log: Log) -> dict[Stream, list[float]]:
    out: dict[Stream, list[float]] = defaultdict(list)
    for a in log.alerts:
        if a["alertname"] == ARRIVAL_SURGE and a["status"] == "firing":
            out[(a["checkpoint_id"], a["direction"])].append(parse_rfc3339(a["fired_at"]))
    return out


def zscore_detections(log: Log) -> dict[Stream, list[float]]:
    """GitLab-style: each minute, arrivals of the last hour against the mean and standard
    deviation of that figure over the week before; fires when z > 3 has held for 5 minutes,
    resolves when it no longer holds."""
    minutes = int((log.end - log.start) // 60)
    out: dict[Stream, list[float]] = {}
    for stream, ts in log.arrivals.items():
        per_minute = np.bincount(((ts - log.start) // 60).astype(np.int64), minlength=minutes)[:minutes]
        cumulative = np.concatenate(([0], np.cumsum(per_minute)))
        rate = (cumulative[60:] - cumulative[:-60]).astype(float)  # rate[i]: the hour ending at minute i + 60
        s1, s2 = np.concatenate(([0.0], np.cumsum(rate))), np.concatenate(([0.0], np.cumsum(rate * rate)))
        n = Z_HISTORY_MINUTES
        if len(rate) <= n:
            out[stream] = []
            continue
        mean = (s1[n:-1] - s1[: -n - 1]) / n  # over the n samples before sample i (i >= n)
        var = np.maximum((s2[n:-1] - s2[: -n - 1]) / n - mean * mean, 0.0)
        std = np.sqrt(var)
        current = rate[n:]
        with np.errstate(divide="ignore", invalid="ignore"):  # a flat week: any rise is infinitely many sigmas
            z = np.where(std > 0, (current - mean) / std, np.where(current > mean, np.inf, 0.0))
        high = z > Z_LEVEL
        fired, run = [], 0
        for i, h in enumerate(high):
            run = run + 1 if h else 0
            if run == Z_FOR_MINUTES:
                fired.append(log.start + (i + n + 60) * 60.0)
        out[stream] = fired
    return out


def first_criticals(log: Log) -> dict[Stream, list[float]]:
    out: dict[Stream, list[float]] = defaultdict(list)
    for a in log.alerts:
        if a["alertname"] == QUEUE_OVERLOAD and a["severity"] == "critical" and a["status"] == "firing":
            out[(a["checkpoint_id"], a["direction"])].append(parse_rfc3339(a["fired_at"]))
    return out


def sigmoid(y: float) -> float:
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def nab(log: Log, detections: dict[Stream, list[float]]) -> tuple[float, int]:
    """(raw NAB-style score of this log, its number of windows)."""
    if not log.labels:
        return NAB_FP * sum(len(v) for v in detections.values()), 0
    width = NAB_WINDOW_SHARE * (log.end - log.start) / len(log.labels)
    windows: dict[Stream, list[tuple[float, float]]] = defaultdict(list)
    for label in log.labels:
        onset = parse_rfc3339(label["onset"])
        windows[(label["checkpoint_id"], label["direction"])].append((onset, onset + width))
    raw = 0.0
    for stream in windows.keys() | detections.keys():
        spans = sorted(windows.get(stream, []))
        hit = [False] * len(spans)
        for t in sorted(detections.get(stream, [])):
            inside = next((k for k, (a, b) in enumerate(spans) if a <= t <= b), None)
            if inside is not None:
                if not hit[inside]:
                    hit[inside] = True
                    raw += NAB_TP * sigmoid((t - spans[inside][1]) / width)
                continue
            before = [b for a, b in spans if b < t]
            raw += NAB_FP * (1.0 if not before else -sigmoid((t - max(before)) / width))
        raw += NAB_FN * hit.count(False)
    return raw, len(log.labels)


def score(logs: dict[str, Log], detect: dict[str, dict[Stream, list[float]]], checkpoints: int) -> dict:
    mob = logs["mobilization"]
    criticals = first_criticals(mob)
    onsets = []
    for label in mob.labels:
        stream = (label["checkpoint_id"], label["direction"])
        onset, end = parse_rfc3339(label["onset"]), parse_rfc3339(label["end"])
        at = next((t for t in sorted(detect["mobilization"].get(stream, [])) if onset <= t <= end), None)
        critical = next((c for c in sorted(criticals.get(stream, [])) if c >= onset), None)
        lead = None if at is None or critical is None else round((critical - at) / 3600, 1)
        onsets.append({
            "checkpoint_id": stream[0], "direction": stream[1], "onset": label["onset"],
            "delay_minutes": None if at is None else round((at - onset) / 60), "lead_hours_over_first_critical": lead,
        })  # fmt: skip
    first_onset = min(parse_rfc3339(label["onset"]) for label in mob.labels)
    ordinary = [t for ts in detect["mobilization"].values() for t in ts if t < first_onset]
    ordinary += [t for ts in detect["holiday"].values() for t in ts]
    ordinary_days = ((first_onset - mob.start) + (logs["holiday"].end - logs["holiday"].start)) / 86400 * checkpoints
    raw, windows = 0.0, 0
    for name, log in logs.items():
        r, w = nab(log, detect[name])
        raw, windows = raw + r, windows + w
    best = windows * sigmoid(-1.0)
    return {
        "onsets": onsets,
        "false_alarms": len(ordinary),
        "ordinary_and_holiday_checkpoint_days": round(ordinary_days),
        "false_alarms_per_100_checkpoint_days": round(100 * len(ordinary) / ordinary_days, 2),
        "holiday_firings": sum(len(ts) for ts in detect["holiday"].values()),
        "lane_failure_firings": sum(len(ts) for ts in detect["lane-failure"].values()),
        "nab_raw": round(raw, 3),
        "nab_windows": windows,
        "nab_score": round(100 * (raw + windows) / (best + windows), 1) if windows else None,
    }


def busiest() -> list[str]:
    return sorted(SURGE_IN_SHARES, key=lambda c: -SURGE_IN_SHARES[c])[:5]


def met(ours: dict, anchor: dict) -> dict[str, bool]:
    top = [o for o in ours["onsets"] if o["checkpoint_id"] in busiest() and o["direction"] == "in"]
    return {
        "busiest_delay_minutes": bool(top)
        and all(o["delay_minutes"] is not None and o["delay_minutes"] <= TARGETS["busiest_delay_minutes"] for o in top),
        "busiest_lead_hours": all(
            o["lead_hours_over_first_critical"] is None  # that queue never reached critical
            or o["lead_hours_over_first_critical"] >= TARGETS["busiest_lead_hours"]
            for o in top
        ),
        "false_alarms_per_100_checkpoint_days": ours["false_alarms_per_100_checkpoint_days"]
        <= TARGETS["false_alarms_per_100_checkpoint_days"],
        "lane_failure_firings": ours["lane_failure_firings"] <= TARGETS["lane_failure_firings"],
        "nab_above_zscore": (ours["nab_score"] or 0) > (anchor["nab_score"] or 0),
    }


def table(ours: dict, anchor: dict) -> str:
    rows = ["| labelled onset | ArrivalSurge: delay, lead | z-score: delay, lead |", "|---|---|---|"]
    theirs = {(o["checkpoint_id"], o["direction"]): o for o in anchor["onsets"]}

    def cell(o: dict) -> str:
        if o["delay_minutes"] is None:
            return "missed"
        lead = o["lead_hours_over_first_critical"]
        return f"{o['delay_minutes']} min, " + ("no critical" if lead is None else f"{lead} h")

    for o in ours["onsets"]:
        z = theirs[(o["checkpoint_id"], o["direction"])]
        rows.append(f"| {o['checkpoint_id']} {o['direction']} {o['onset'][:10]} | {cell(o)} | {cell(z)} |")
    for key in ("false_alarms_per_100_checkpoint_days", "holiday_firings", "lane_failure_firings", "nab_score"):
        rows.append(f"| {key.replace('_', ' ')} | {ours[key]} | {anchor[key]} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "surge.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bordermon-surge-") as work:
        logs = {name: make_log(Path(work), name, sc, start, days, args.seed) for name, sc, start, days in LOGS}
    checkpoints = len(load_registry(None))
    ours = score(logs, {n: bordermon_detections(log) for n, log in logs.items()}, checkpoints)
    anchor = score(logs, {n: zscore_detections(log) for n, log in logs.items()}, checkpoints)
    verdict = met(ours, anchor)
    result = {
        "seed": args.seed,
        "measured": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "targets": TARGETS,
        "arrival_surge": ours,
        "zscore_baseline": anchor,
        "met": verdict,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(ours, anchor))
    print(json.dumps(verdict, indent=2))
    return 0 if all(verdict.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
