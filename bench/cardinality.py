"""What lane groups cost a scrape: one worker's /metrics body at 2,400 checkpoints, every one
changed since the last scrape, without lane groups and with three per checkpoint (cars and buses,
trucks, people on foot), rendered in process by the worker's own collector (the HTTP hop and
Faust's handler excluded: the same for both).

    .venv/bin/python -m bench.cardinality
"""

from __future__ import annotations

import json
import statistics
import time

import orjson

from bench.scale import DAY_START, MODES, WIDE, grouped, registry_yaml
from bordermon.registry import parse_registry
from harness.console import say_as
from streams.domain.metrics import StateCollector
from streams.domain.processor import Processor

say = say_as("bench: cardinality")


def measure(registry_text: str, rounds: int = 7) -> dict[str, float]:
    registry = parse_registry(registry_text, "bench")
    processor = Processor(registry, 1)
    collector = StateCollector(processor, lambda: {0})
    ids = registry.ids()
    times, n = [], 0
    for r in range(rounds + 1):
        events = []
        for i, cid in enumerate(ids):  # every checkpoint, every group, changes before each scrape
            for mode in MODES:
                n += 1
                ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(DAY_START + r * 600 + i % 500))
                event = {"event_id": f"c{n}", "type": "arrival", "checkpoint_id": cid, "direction": "in",
                         "ts": ts, "mode": mode}  # fmt: skip
                events.append((n, None, orjson.dumps(event), 0))
        processor.process_events(0, events, now=DAY_START + 86400 * 2)
        processor.settle(0)
        started = time.perf_counter()
        body = collector.render()
        if r:  # the first scrape builds the caches
            times.append((time.perf_counter() - started) * 1000)
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return {"scrape_ms_median": round(statistics.median(times), 1), "bytes": len(body), "series": series}


def main() -> int:
    plain = registry_yaml(WIDE)
    results = {"checkpoints": WIDE, "without_groups": measure(plain), "three_groups": measure(grouped(plain))}
    say(json.dumps(results))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
