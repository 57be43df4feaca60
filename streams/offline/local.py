"""The worker's processor over event logs in this process, with no broker (backtests, reports, tests).

One partition in file order: per checkpoint this is exactly what a worker fed by `bordermon
replay` computes (replay keeps file order per checkpoint, and a checkpoint's events are all
processed by its home partition in the order they arrive).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from itertools import repeat

from bordermon.registry import Registry
from streams.domain.processor import BatchResult, Processor
from streams.domain.recentids import PlainIds

BATCH = 5000
PRUNE_EVERY = 10


class LocalRun:
    def __init__(self, registry: Registry, now: float | None = None) -> None:
        self.processor = Processor(registry, 1, ids=PlainIds)  # a run over a log: speed over memory
        self.now = now
        self.offset = 0
        self.batches = 0

    def feed(self, lines: Iterable[bytes], batch: int = BATCH) -> Iterator[BatchResult]:
        """Process lines in order, `batch` at a time; yield each batch's result."""
        chunk: list[bytes] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= batch:
                yield self._run(chunk)
                chunk = []
        if chunk:
            yield self._run(chunk)

    def feed_numbered(self, offsets: list[int], lines: list[bytes]) -> BatchResult:
        """Lines with their own increasing numbers (a shard of a log keeps the log's line numbers)."""
        return self._run(lines, offsets)

    def _run(self, lines: list[bytes], offsets: Iterable[int] | None = None) -> BatchResult:
        now = time.time() if self.now is None else self.now
        if offsets is None:
            offsets = range(self.offset, self.offset + len(lines))
            self.offset += len(lines)
        records = zip(offsets, repeat(None), lines, repeat(0), strict=False)
        result = self.processor.process_events(0, list(records), now)
        # Nothing is persisted here; pruning (memory only: no result depends on when it ran)
        # every few batches is enough.
        self.batches += 1
        if self.batches % PRUNE_EVERY == 0:
            self.processor.settle(0)
        else:
            self.processor.partition(0).discard_pending()
        return result
