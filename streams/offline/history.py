"""Event logs through the pipeline's own processor, sampled at event time (backfill, report).

The processor runs in file order on one partition (`streams.offline.local`), exactly as a worker fed by
`bordermon replay` would per checkpoint. The log's *event clock* is the latest `ts` of a valid
event read so far; the state at event time T is the state just before the first valid event
with a `ts` later than T is processed, which is what a live worker showed when its traffic
reached T. Samples are taken at every multiple of `step` from the first event's time (rounded
down) to one step past the last event.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

from bordermon.events import Rejected, decode_event
from bordermon.registry import Registry
from streams.domain.processor import BatchResult, Processor
from streams.offline.local import BATCH, LocalRun

OnSample = Callable[[float, Processor], None]
# A batch's result, its lines and the offset of the first (a dead letter's offset names its line).
OnBatch = Callable[[BatchResult, list[bytes], int], None]


def sampled_run(
    registry: Registry,
    lines: Iterable[bytes],
    step: float,
    on_sample: OnSample,
    on_batch: OnBatch | None = None,
    now: float | None = None,
) -> LocalRun:
    """Process the lines; call `on_sample(T, processor)` at each sample time T, in order."""
    now = time.time() if now is None else now
    run = LocalRun(registry, now)
    pending: list[bytes] = []
    next_sample: float | None = None
    last: float | None = None

    def flush() -> None:
        first = run.offset
        for result in run.feed(pending):  # one batch: `pending` never holds more than BATCH lines
            if on_batch is not None:
                on_batch(result, pending, first)
        pending.clear()

    for line in lines:
        event = decode_event(line, now)
        if type(event) is not Rejected:
            t = event.ts.timestamp()  # type: ignore[union-attr]
            if next_sample is None:
                next_sample = math.floor(t / step) * step
            if t > next_sample:
                flush()
                while t > next_sample:
                    on_sample(next_sample, run.processor)
                    next_sample += step
            last = t if last is None or t > last else last
        pending.append(line)
        if len(pending) >= BATCH:
            flush()
    flush()
    if next_sample is not None and last is not None:
        while next_sample <= last + step:
            on_sample(next_sample, run.processor)
            next_sample += step
    return run
