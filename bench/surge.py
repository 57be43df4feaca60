"""ArrivalSurge on the 2022 scenario with five ordinary weeks before it (`make accuracy`, surge
section): how long after the surge began it fired at the busiest checkpoints, how far ahead of
their queues' first critical QueueOverload, and how often it fired on ordinary traffic.

The simulator's surge begins at 00:00 UTC on 21 September 2022 (its daily figures change at UTC
midnight), so delays count from there. The five busiest are the scenario's largest shares of the
surge's entries (`producers.scenarios.SURGE_IN_SHARES`).

    .venv/bin/python -m bench.surge            # simulate 17 Aug - 27 Sep 2022, backtest, score
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bordermon.observability import ARRIVAL_SURGE, QUEUE_OVERLOAD
from bordermon.timeutil import parse_rfc3339
from harness.console import say_as
from harness.processes import BIN
from producers.scenarios import SURGE_IN_SHARES, SURGE_START

ROOT = Path(__file__).resolve().parents[1]
HISTORY_START = "2022-08-17"  # five weeks before the surge
DAYS = 42
say = say_as("bench: surge")


def score(alerts: list[dict], checkpoints: int) -> dict:
    onset = datetime(SURGE_START.year, SURGE_START.month, SURGE_START.day, tzinfo=UTC).timestamp()
    first_critical: dict[tuple[str, str], float] = {}
    fired: list[dict] = []
    for a in alerts:
        if a["alertname"] == QUEUE_OVERLOAD and a["severity"] == "critical" and a["status"] == "firing":
            first_critical.setdefault((a["checkpoint_id"], a["direction"]), parse_rfc3339(a["fired_at"]))
        elif a["alertname"] == ARRIVAL_SURGE and a["status"] == "firing":
            fired.append(a)
    busiest = sorted(SURGE_IN_SHARES, key=lambda c: -SURGE_IN_SHARES[c])[:5]
    per_checkpoint = {}
    for cid in busiest:
        first = next((a for a in fired if a["checkpoint_id"] == cid and a["direction"] == "in"
                      and parse_rfc3339(a["fired_at"]) >= onset), None)  # fmt: skip
        at = parse_rfc3339(first["fired_at"]) if first else None
        critical = first_critical.get((cid, "in"))
        per_checkpoint[cid] = {
            "delay_minutes": None if at is None else round((at - onset) / 60),
            "lead_hours_over_first_critical": None
            if at is None or critical is None
            else round((critical - at) / 3600, 1),
        }
    before = [a for a in fired if parse_rfc3339(a["fired_at"]) < onset]
    ordinary_days = (onset - datetime.fromisoformat(HISTORY_START).replace(tzinfo=UTC).timestamp()) / 86400
    return {
        "busiest": per_checkpoint,
        "false_alarms_before_the_surge": len(before),
        "ordinary_checkpoint_days": round(ordinary_days * checkpoints),
        "false_alarms_per_100_checkpoint_days": round(100 * len(before) / (ordinary_days * checkpoints), 2),
        "firings_in_all": len(fired),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bordermon-surge-") as work:
        log, alerts_out = Path(work) / "mobilization.jsonl", Path(work) / "alerts.jsonl"
        say(f"simulating mobilization-2022 from {HISTORY_START} for {DAYS} days, seed {args.seed}")
        subprocess.run([BIN, "simulate", "--scenario", "mobilization-2022", "--start", HISTORY_START, "--days",
                        str(DAYS), "--seed", str(args.seed), "--out", str(log)], check=True)  # fmt: skip
        say("backtest")
        subprocess.run([BIN, "backtest", str(log), "--alerts-out", str(alerts_out)], check=True, capture_output=True)
        alerts = [json.loads(line) for line in alerts_out.read_text().splitlines()]
    from bordermon.registry import load_registry

    result = score(alerts, len(load_registry(None)))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
