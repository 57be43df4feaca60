"""`bordermon backfill`: Prometheus TSDB blocks of the pipeline's metrics at event time.

Every series the worker's collector exports (the contract's and the extra ones) is sampled every
step of event time (`streams.history`) and written as OpenMetrics text with explicit
timestamps, one file per day of event time, which Prometheus's own
`promtool tsdb create-blocks-from openmetrics` turns into blocks. OpenMetrics wants each metric
family in one piece and each series in time order, so a day is gathered in memory first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from prometheus_client.utils import floatToGoString

from bordermon.errors import BordermonError
from bordermon.registry import Registry
from streams.history import sampled_run
from streams.metrics import StateCollector
from streams.processor import Processor

CHUNK_SECONDS = 86400.0

Series = tuple[str, tuple[tuple[str, str], ...]]  # sample name, labels


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _timestamp(t: float) -> str:
    return str(int(t)) if float(t).is_integer() else repr(t)


class Family:
    __slots__ = ("help", "kind", "series")

    def __init__(self, kind: str, help_text: str) -> None:
        self.kind, self.help = kind, help_text
        self.series: dict[Series, list[tuple[float, float]]] = {}


class OpenMetricsChunk:
    """The samples of one chunk of event time, grouped as OpenMetrics requires."""

    def __init__(self) -> None:
        self.families: dict[str, Family] = {}
        self.samples = 0

    def add(self, t: float, collector: StateCollector) -> None:
        for metric in collector.collect():
            family = self.families.get(metric.name)
            if family is None:
                family = self.families[metric.name] = Family(metric.type, metric.documentation)
            for s in metric.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                family.series.setdefault(key, []).append((t, s.value))
                self.samples += 1

    def write(self, path: Path) -> None:
        with open(path, "w", encoding="utf-8") as out:
            for name, family in self.families.items():
                out.write(f"# TYPE {name} {family.kind}\n# HELP {name} {_escape(family.help)}\n")
                for (sample, labels), points in family.series.items():
                    text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                    head = f"{sample}{{{text}}}" if text else sample
                    out.writelines(f"{head} {floatToGoString(v)} {_timestamp(t)}\n" for t, v in points)
            out.write("# EOF\n")


def promtool_path() -> str:
    path = shutil.which("promtool")
    if path is None:
        raise BordermonError("promtool not found: install Debian's prometheus package (make install-monitoring)")
    return path


def create_blocks(promtool: str, source: Path, out: Path) -> None:
    done = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(out)],
        capture_output=True,
        text=True,
    )
    source.unlink(missing_ok=True)
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise BordermonError(f"promtool could not create blocks: {reason[-1] if reason else done.returncode}")


def backfill(registry: Registry, lines: Iterable[bytes], out: str, step: float = 60.0) -> tuple[int, int, int]:
    """Write blocks under `out`; return (samples, sample times, chunks)."""
    promtool = promtool_path()
    out_dir = Path(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BordermonError(f"{out}: {exc.strerror or exc}") from None
    if not os.access(out_dir, os.W_OK):
        raise BordermonError(f"{out}: not writable")
    work = Path(tempfile.mkdtemp(prefix="bordermon-backfill-"))
    totals = {"samples": 0, "times": 0, "chunks": 0}
    state = {"chunk": OpenMetricsChunk(), "start": None}
    # promtool turns one day into blocks while the next day is processed (two cores).
    pool = ThreadPoolExecutor(max_workers=1)
    running: list[Future[None]] = []

    def ship() -> None:
        chunk: OpenMetricsChunk = state["chunk"]  # type: ignore[assignment]
        if not chunk.samples:
            return
        path = work / f"chunk-{totals['chunks']:05d}.om"
        chunk.write(path)
        totals["chunks"] += 1
        for done in [f for f in running if f.done()]:
            done.result()  # raise a failure at once
            running.remove(done)
        running.append(pool.submit(create_blocks, promtool, path, out_dir))
        state["chunk"] = OpenMetricsChunk()

    collectors: dict[int, StateCollector] = {}

    def on_sample(t: float, processor: Processor) -> None:
        collector = collectors.get(id(processor))
        if collector is None:
            collector = collectors[id(processor)] = StateCollector(processor, lambda: {0})
        start = state["start"]
        if start is None or t >= start + CHUNK_SECONDS:  # type: ignore[operator]
            ship()
            state["start"] = t - (t % CHUNK_SECONDS)
        chunk: OpenMetricsChunk = state["chunk"]  # type: ignore[assignment]
        before = chunk.samples
        chunk.add(t, collector)
        totals["samples"] += chunk.samples - before
        totals["times"] += 1

    try:
        sampled_run(registry, lines, step, on_sample)
        ship()
        for future in running:
            future.result()
    finally:
        pool.shutdown(wait=True)
        shutil.rmtree(work, ignore_errors=True)
    return totals["samples"], totals["times"], totals["chunks"]
