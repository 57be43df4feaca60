"""`make accuracy`: how close each wait figure is to what parties really waited, and how early
and how rightly QueueOverloadForecast warns.

The simulator's `mobilization-2022` (seed 1) gives every crossing its party's true wait
(`true_wait_s`). The pipeline's own processor runs over the log in event order; at each arrival it
records the three figures a traveller joining that queue then would have been shown: the
contract's nominal estimate, the observed wait and the expected wait. Each party that waited at
least 15 minutes is scored on the figures shown when it joined (its arrival time is its crossing
time minus its true wait). Infinite figures (no lane open) are left out and counted.

Forecast: each critical QueueOverload firing is *forecast* when a QueueOverloadForecast for the
same queue fired at least 30 minutes before it and had not resolved more than 2 hours before it;
a forecast alert is a *false alarm* when no critical firing of its queue follows within 2 hours
(and none was firing when it fired).

Writes bench/accuracy.json and prints a table; exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import math
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import orjson

from bordermon.observability import QUEUE_OVERLOAD, QUEUE_OVERLOAD_FORECAST
from bordermon.registry import DEFAULT_LANE_GROUP, load_registry
from harness.console import say_as
from streams.domain.processor import Processor
from streams.domain.recentids import PlainIds

ROOT = Path(__file__).resolve().parents[1]

BIN = str(Path(sys.executable).with_name("bordermon"))
MIN_WAIT_S = 900.0
LEAD_S = 1800.0
FOLLOW_S = 7200.0
TARGETS = {"expected_over_nominal_mae": 0.5, "forecast_share": 0.8, "false_alarm_share": 0.25}


say = say_as("accuracy")


def simulate(out: Path, seed: int) -> None:
    cmd = [BIN, "simulate", "--scenario", "mobilization-2022", "--seed", str(seed), "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)


def run(log: Path) -> tuple[dict, list[dict]]:
    """Figures shown at each arrival, per queue, and every alert transition, from one pass."""
    registry = load_registry(None)
    processor = Processor(registry, 1, ids=PlainIds)  # in process: speed over memory
    Queue = tuple[str, str, str]  # checkpoint, direction, lane group
    shown: dict[Queue, tuple[list[float], list[tuple[float, float, float]]]] = defaultdict(lambda: ([], []))
    transitions: list[dict] = []
    crossings: list[tuple[str, str, str, float, float]] = []
    now = time.time()
    with gzip.open(log) as handle:
        for offset, line in enumerate(handle):
            result = processor.process_events(0, [(offset, None, line, 0)], now)
            transitions.extend(orjson.loads(o.value) for o in result.alerts)
            event = orjson.loads(line)
            # Each party is scored against the figures of its own queue (its lane group's).
            group = registry[event["checkpoint_id"]].group_of(event.get("mode")).id
            key = (event["checkpoint_id"], event["direction"], group)
            cs = processor.partition(0).checkpoints[event["checkpoint_id"]]
            t = cs.last_ts or 0.0
            if event["type"] == "arrival":
                q = cs.queue(event["direction"], group)
                times, figures = shown[key]
                times.append(_ts(event["ts"]))
                figures.append((q.wait_seconds(), q.observed_wait, q.expected_wait_seconds(cs.last_ts)))
            elif event["type"] == "crossing":
                crossings.append((*key, _ts(event["ts"]), float(event["true_wait_s"])))
            if offset % 20_000 == 0:
                processor.settle(0)
                if offset % 500_000 == 0:
                    say(f"{offset:,} lines, event time {t:.0f}")
    return _score(shown, crossings), transitions


def _ts(text: str) -> float:
    from bordermon.timeutil import parse_rfc3339

    return parse_rfc3339(text)


def _score(shown: dict, crossings: list[tuple[str, str, str, float, float]]) -> dict:
    names = ("nominal", "observed", "expected")
    errors: dict[str, dict[str, list[float]]] = defaultdict(lambda: {n: [] for n in names})
    infinite: dict[str, int] = defaultdict(int)
    for cid, d, group, crossed, true_wait in crossings:
        if true_wait < MIN_WAIT_S:
            continue
        times, figures = shown.get((cid, d, group), ([], []))
        joined = crossed - true_wait
        i = bisect.bisect_left(times, joined)
        if i >= len(times) or times[i] != joined:
            continue
        grouped = group != DEFAULT_LANE_GROUP
        scopes = (f"{cid} {group}", f"every {group} queue", "all") if grouped else (cid, "all")
        for name, figure in zip(names, figures[i], strict=True):
            if math.isinf(figure):
                infinite[name] += 1
                continue
            for scope in scopes:
                errors[scope][name].append(abs(figure - true_wait))
    table = {}
    for scope, by_name in errors.items():
        table[scope] = {"parties": len(by_name["expected"])} | {
            f"mae_{n}_min": round(sum(v) / len(v) / 60, 1) if v else None for n, v in by_name.items()
        }
    table["all"]["infinite_left_out"] = dict(infinite)
    return table


def _table_order(row: tuple[str, dict]) -> tuple[bool, bool, int]:
    """Queues by size, then each lane group's total, then every party."""
    scope, figures = row
    return scope == "all", scope.startswith("every "), -figures["parties"]


def forecast_scores(transitions: list[dict]) -> dict:
    from bordermon.timeutil import parse_rfc3339

    by_queue: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for a in transitions:
        if a["alertname"] in (QUEUE_OVERLOAD, QUEUE_OVERLOAD_FORECAST):  # the alerts of one queue
            by_queue[(a["checkpoint_id"], a["direction"], a.get("lane_group", DEFAULT_LANE_GROUP))].append(a)
    criticals = forecast_hits = forecasts = false_alarms = 0
    leads: list[float] = []
    for alerts in by_queue.values():
        fired = [(parse_rfc3339(a["fired_at"]), a) for a in alerts if a["status"] == "firing"]
        crit = [t for t, a in fired if a["alertname"] == QUEUE_OVERLOAD and a["severity"] == "critical"]
        ended = [a for a in alerts if a["alertname"] == QUEUE_OVERLOAD and a["status"] == "resolved"]
        crit_end = [parse_rfc3339(a["ends_at"]) for a in ended if a["severity"] == "critical"]
        fc = [(t, a) for t, a in fired if a["alertname"] == QUEUE_OVERLOAD_FORECAST]
        fc_end = {a["starts_at"]: parse_rfc3339(a["ends_at"]) for a in alerts
                  if a["alertname"] == QUEUE_OVERLOAD_FORECAST and a["status"] == "resolved"}  # fmt: skip
        for tc in crit:
            criticals += 1
            early = [tf for tf, a in fc if tf <= tc - LEAD_S and fc_end.get(a["starts_at"], math.inf) >= tc - FOLLOW_S]
            if early:
                forecast_hits += 1
                leads.append(tc - max(early))
        for tf, _ in fc:
            forecasts += 1
            followed = any(tf <= tc <= tf + FOLLOW_S for tc in crit)
            already = any(tc <= tf and (i >= len(crit_end) or crit_end[i] >= tf) for i, tc in enumerate(crit))
            if not followed and not already:
                false_alarms += 1
    return {
        "critical_firings": criticals,
        "forecast_at_least_30_min_ahead": forecast_hits,
        "forecast_share": round(forecast_hits / criticals, 3) if criticals else None,
        "median_lead_min": round(sorted(leads)[len(leads) // 2] / 60) if leads else None,
        "forecast_alerts": forecasts,
        "false_alarms": false_alarms,
        "false_alarm_share": round(false_alarms / forecasts, 3) if forecasts else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log", type=Path, default=None, help="an existing simulated log (else simulated here)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "accuracy.json")
    args = parser.parse_args()
    log = args.log
    if log is None:
        log = Path(tempfile.mkdtemp(prefix="bordermon-accuracy-")) / "mobilization-2022.jsonl.gz"
        say(f"simulating mobilization-2022, seed {args.seed}")
        simulate(log, args.seed)
    started = time.perf_counter()
    waits, transitions = run(log)
    forecast = forecast_scores(transitions)
    overall = waits["all"]
    ratio = overall["mae_expected_min"] / overall["mae_nominal_min"]
    results = {
        "seed": args.seed,
        "waits": waits,
        "forecast": forecast,
        "expected_over_nominal_mae": round(ratio, 3),
        "seconds": round(time.perf_counter() - started),
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'queue':<24}{'parties':>9}{'nominal':>10}{'observed':>10}{'expected':>10}   (MAE, minutes)")
    for scope, row in sorted(waits.items(), key=_table_order):
        print(f"{scope:<24}{row['parties']:>9,}{row['mae_nominal_min']!s:>10}{row['mae_observed_min']!s:>10}"
              f"{row['mae_expected_min']!s:>10}")  # fmt: skip
    print(f"expected / nominal MAE: {ratio:.2f} (target <= {TARGETS['expected_over_nominal_mae']})")
    print(f"forecast: {json.dumps(forecast)}")
    met = (
        ratio <= TARGETS["expected_over_nominal_mae"]
        and (forecast["forecast_share"] or 0) >= TARGETS["forecast_share"]
        and (forecast["false_alarm_share"] if forecast["false_alarm_share"] is not None else 1)
        <= TARGETS["false_alarm_share"]
    )
    print("targets met" if met else "targets NOT met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
