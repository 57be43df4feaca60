"""The worker's processor over event logs in this process, with no broker (backtests, reports, tests).

One partition in file order: per checkpoint this is exactly what a worker fed by `bordermon
replay` computes (replay keeps file order per checkpoint, and a checkpoint's events are all
processed by its home partition in the order they arrive).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from bordermon.registry import Registry
from streams.processor import BatchResult, Processor

BATCH = 5000


class LocalRun:
    def __init__(self, registry: Registry, now: float | None = None) -> None:
        self.processor = Processor(registry, 1)
        self.now = now
        self.offset = 0

    def feed(self, lines: Iterable[bytes], batch: int = BATCH) -> Iterator[BatchResult]:
        """Process lines in order, `batch` at a time; yield each batch's result."""
        chunk: list[tuple[int, bytes | None, bytes | None, int]] = []
        for line in lines:
            chunk.append((self.offset, None, line, 0))
            self.offset += 1
            if len(chunk) >= batch:
                yield self._run(chunk)
                chunk = []
        if chunk:
            yield self._run(chunk)

    def _run(self, chunk: list[tuple[int, bytes | None, bytes | None, int]]) -> BatchResult:
        now = time.time() if self.now is None else self.now
        result = self.processor.process_events(0, chunk, now)
        self.processor.settle(0)
        return result
