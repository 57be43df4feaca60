"""`bordermon backfill`: Prometheus TSDB blocks of the pipeline's metrics at event time.

Every series the worker's collector exports (the contract's and the extra ones) is sampled every
step of event time (`streams.offline.history`) and written as OpenMetrics text with explicit
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
from streams.domain.metrics import StateCollector
from streams.domain.processor import Processor
from streams.offline.history import sampled_run

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
        raise BordermonError("promtool not found: install Debian's prometheus package (make install-system)")
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


class Backfiller:
    """Gathers one day of samples at a time and hands each finished day to promtool, which turns
    it into blocks while the next day is processed (two cores)."""

    def __init__(self, promtool: str, out_dir: Path, work: Path) -> None:
        self.promtool, self.out_dir, self.work = promtool, out_dir, work
        self.chunk = OpenMetricsChunk()
        self.chunk_start: float | None = None
        self.samples = self.times = self.chunks = 0
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.running: list[Future[None]] = []
        self.collectors: dict[int, StateCollector] = {}

    def on_sample(self, t: float, processor: Processor) -> None:
        collector = self.collectors.get(id(processor))
        if collector is None:
            collector = self.collectors[id(processor)] = StateCollector(processor, lambda: {0})
        if self.chunk_start is None or t >= self.chunk_start + CHUNK_SECONDS:
            self.ship()
            self.chunk_start = t - (t % CHUNK_SECONDS)
        before = self.chunk.samples
        self.chunk.add(t, collector)
        self.samples += self.chunk.samples - before
        self.times += 1

    def ship(self) -> None:
        if not self.chunk.samples:
            return
        path = self.work / f"chunk-{self.chunks:05d}.om"
        self.chunk.write(path)
        self.chunks += 1
        for done in [f for f in self.running if f.done()]:
            done.result()  # a failure stops the run at once
            self.running.remove(done)
        self.running.append(self.pool.submit(create_blocks, self.promtool, path, self.out_dir))
        self.chunk = OpenMetricsChunk()

    def finish(self) -> None:
        self.ship()
        for future in self.running:
            future.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def backfill(registry: Registry, lines: Iterable[bytes], out: str, step: float = 60.0) -> tuple[int, int, int]:
    """Write blocks under `out`; return (samples, sample times, days)."""
    promtool = promtool_path()
    out_dir = Path(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BordermonError(f"{out}: {exc.strerror or exc}") from None
    if not os.access(out_dir, os.W_OK):
        raise BordermonError(f"{out}: not writable")
    work = Path(tempfile.mkdtemp(prefix="bordermon-backfill-"))
    backfiller = Backfiller(promtool, out_dir, work)
    try:
        sampled_run(registry, lines, step, backfiller.on_sample)
        backfiller.finish()
    finally:
        backfiller.close()
        shutil.rmtree(work, ignore_errors=True)
    return backfiller.samples, backfiller.times, backfiller.chunks
