"""`make bench`: the pipeline's figures on this machine, in one process tree, one run.

ceiling   a bare aiokafka consumer reading the same log from the same broker and decoding JSON
replay    `bordermon replay --max-speed` into the broker
pipeline  one worker draining the whole log (events/s, and the ratio to the ceiling)
memory    the worker's peak RSS during the pipeline run
recovery  kill -9 the worker, start a replacement with messages waiting: time to its first one
latency   publish -> the metric changing on /metrics, at a steady rate (p50/p99/max)

Writes bench/results.json and prints a table. `BENCH_DAYS` sets the log size (23 ≈ 1M events).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.checks import parse_metrics, sample  # noqa: E402
from tests.integration.harness import BIN, Broker, Worker, base_env, wait_until  # noqa: E402


def processed(worker: Worker) -> float:
    try:
        return sample(parse_metrics(worker.metrics()), "bordermon_messages_processed_total") or 0.0
    except OSError:
        return 0.0


async def ceiling(address: str, expected: int) -> float:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=address, enable_auto_commit=False, max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic("border.events") or set()
        tps = [TopicPartition("border.events", p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen, started = 0, time.perf_counter()
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=500, max_records=50_000)
            for records in batch.values():
                for r in records:
                    orjson.loads(r.value)
                seen += len(records)
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def main() -> int:
    days = int(os.environ.get("BENCH_DAYS", "23"))
    work = Path(tempfile.mkdtemp(prefix="bordermon-bench-"))
    log = work / "log.jsonl.gz"
    sim = subprocess.run(
        [BIN, "simulate", "--scenario", "mobilization-2022", "--start", "2022-09-21", "--days", str(days),
         "--out", str(log)], capture_output=True, text=True, check=True,
    )  # fmt: skip
    events = int(sim.stdout.split(" events")[0].rsplit(" ", 1)[1].replace(",", ""))
    print(f"log: {events:,} events ({days} simulated days)", file=sys.stderr)
    broker = Broker()
    results: dict[str, object] = {"events": events, "machine_cores": os.cpu_count()}
    workers: list[Worker] = []
    try:
        env = base_env(broker)
        started = time.perf_counter()
        subprocess.run([BIN, "replay", str(log), "--max-speed", "-q"], env=env, check=True, capture_output=True)
        results["replay_events_per_s"] = round(events / (time.perf_counter() - started))
        results["ceiling_events_per_s"] = round(asyncio.run(ceiling(broker.address, events)))

        worker = Worker(env, work / "worker.log")
        workers.append(worker)
        worker.wait_ready(120)
        wait_until(lambda: processed(worker) > 0, 60, "first message processed")
        t0, n0, peak_rss = time.perf_counter(), processed(worker), 0.0
        while processed(worker) < events:
            rss = sample(parse_metrics(worker.metrics()), "process_resident_memory_bytes") or 0.0
            peak_rss = max(peak_rss, rss)
            time.sleep(0.5)
        rate = (events - n0) / (time.perf_counter() - t0)
        results["pipeline_events_per_s"] = round(rate)
        results["pipeline_ratio_to_ceiling"] = round(rate / results["ceiling_events_per_s"], 4)
        results["worker_peak_rss_mb"] = round(peak_rss / 2**20, 1)

        # Latency: probe lanes events on one checkpoint at a steady pace; time until /metrics shows each.
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=broker.address, linger_ms=0)
        latencies = []
        for i in range(40):
            value = (i % 50) + 50
            probe = {"event_id": f"probe-{i}", "type": "lanes", "checkpoint_id": "alimbet", "direction": "in",
                     "ts": "2022-10-30T00:00:00Z", "lanes_open": value}  # fmt: skip
            sent = time.perf_counter()
            producer.send("border.events", key=b"alimbet", value=orjson.dumps(probe)).get(10)
            key = (("checkpoint", "alimbet"), ("direction", "in"))
            while parse_metrics(worker.metrics())["border_lanes_open"].get(key) != value:
                time.sleep(0.002)
            latencies.append(time.perf_counter() - sent)
            time.sleep(0.05)
        producer.close()
        latencies.sort()
        results["metric_latency_ms"] = {
            "p50": round(statistics.median(latencies) * 1000, 1),
            "p99": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
            "max": round(latencies[-1] * 1000, 1),
        }

        # Recovery: kill -9, queue messages, start a replacement; time to its first processed message.
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait()
        subprocess.run([BIN, "replay", str(log), "--max-speed", "-q"], env=env, check=True, capture_output=True)
        started = time.perf_counter()
        replacement = Worker(env, work / "worker2.log")
        workers.append(replacement)
        wait_until(lambda: processed(replacement) > 0, 180, "replacement processing", interval=0.05)
        results["recovery_seconds"] = round(time.perf_counter() - started, 2)
    finally:
        for w in workers:
            w.stop()
        broker.stop()
    out = ROOT / "bench" / "results.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    width = max(map(len, results))
    for k, v in results.items():
        print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
