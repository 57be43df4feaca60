"""`bordermon backtest`: the pipeline's alert rules over history, per registry, side by side.

Each registry gets its own processor; all read the same lines in one pass. From the alert
transitions (the very messages a worker puts on `border.alerts`) it computes, per checkpoint,
direction and lane group: warnings and criticals fired, time in alert, pages, and the lead time from the
warning firing to the critical.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import statistics
import zlib
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress
from multiprocessing.connection import Connection

from bordermon.errors import BordermonError
from bordermon.events import peek_checkpoint
from bordermon.observability import QUEUE_OVERLOAD_FORECAST
from bordermon.registry import Registry
from streams.domain.state import AlertEvent
from streams.offline.local import BATCH, LocalRun

# The pager route re-notifies while a critical alert fires (repeat_interval in
# monitoring/alertmanager/alertmanager.yml; a test keeps the two equal).
PAGE_REPEAT_SECONDS = 3600.0


@dataclass
class QueueSummary:
    """Alert history of one queue (checkpoint, direction, lane group) under one registry: QueueOverload by severity,
    and how early QueueOverloadForecast warned of each critical."""

    fired: dict[str, int] = field(default_factory=lambda: {"warning": 0, "critical": 0})
    seconds: dict[str, float] = field(default_factory=lambda: {"warning": 0.0, "critical": 0.0})
    pages: int = 0
    leads: list[float] = field(default_factory=list)  # warning fired -> critical fired, seconds
    forecasts: int = 0
    forecast_leads: list[float] = field(default_factory=list)  # forecast fired -> critical fired, seconds
    firing_since: dict[str, float] = field(default_factory=dict)
    forecast_since: float | None = None

    def apply(self, alert: AlertEvent) -> None:
        tr, severity = alert.transition, alert.severity
        if alert.group is None:
            return  # ArrivalSurge: about arrivals, not this queue
        if alert.alertname == QUEUE_OVERLOAD_FORECAST:
            if tr.status == "firing":
                self.forecasts += 1
                self.forecast_since = tr.fired_at
            return  # it resolves when the critical is near or fired; the lead is taken from when it fired
        if tr.status == "firing":
            self.fired[severity] += 1
            self.firing_since[severity] = tr.fired_at
            if severity == "critical":
                warned = self.firing_since.get("warning")
                self.leads.append(max(0.0, tr.fired_at - warned) if warned is not None else 0.0)
                forecast, self.forecast_since = self.forecast_since, None
                self.forecast_leads.append(max(0.0, tr.fired_at - forecast) if forecast is not None else 0.0)
        else:
            self._close(severity, tr.ends_at if tr.ends_at is not None else tr.fired_at)

    def _close(self, severity: str, end: float) -> None:
        fired = self.firing_since.pop(severity, None)
        if fired is None:
            return
        self.seconds[severity] += end - fired
        if severity == "critical":
            self.pages += 1 + int((end - fired) // PAGE_REPEAT_SECONDS)

    def finish(self, end: float | None) -> None:
        """Alerts still firing at the end of the log count until the checkpoint's last event."""
        for severity in list(self.firing_since):
            self._close(severity, end if end is not None else self.firing_since[severity])

    def add(self, other: QueueSummary) -> None:
        """Sum another queue's history into this one (the table's total row)."""
        for severity in self.fired:
            self.fired[severity] += other.fired[severity]
            self.seconds[severity] += other.seconds[severity]
        self.pages += other.pages
        self.leads += other.leads
        self.forecasts += other.forecasts
        self.forecast_leads += other.forecast_leads

    @property
    def median_lead(self) -> float | None:
        return statistics.median(self.leads) if self.leads else None

    @property
    def median_forecast_lead(self) -> float | None:
        return statistics.median(self.forecast_leads) if self.forecast_leads else None


@dataclass
class Backtest:
    """One registry's run over (a shard of) the logs."""

    name: str
    registry: Registry
    now: float | None = None
    keep_alerts: bool = False
    # (checkpoint, direction, lane group) -> its alert history
    queues: dict[tuple[str, str, str], QueueSummary] = field(default_factory=dict)
    alerts: list[tuple[int, bytes]] = field(default_factory=list)  # (line number, border.alerts message)
    accepted: int = 0
    rejected: int = 0

    def __post_init__(self) -> None:
        self.run = LocalRun(self.registry, self.now)

    def feed(self, numbers: list[int], lines: list[bytes]) -> None:
        result = self.run.feed_numbered(numbers, lines)
        for event, output in zip(result.alert_events, result.alerts, strict=True):
            if event.group is None:  # ArrivalSurge: not a queue's alert (its transitions are in --alerts-out)
                if self.keep_alerts:
                    self.alerts.append((output.offset, output.value))
                continue
            key = (event.checkpoint.id, event.direction, event.group.id)
            summary = self.queues.get(key)
            if summary is None:
                summary = self.queues[key] = QueueSummary()
            summary.apply(event)
            if self.keep_alerts:
                self.alerts.append((output.offset, output.value))

    def finish(self) -> Backtest:
        """Close alerts still firing; keep the results, drop the processor (results travel between processes)."""
        state = self.run.processor.partition(0)
        for (cid, _, _), summary in self.queues.items():
            cs = state.checkpoints.get(cid)
            summary.finish(cs.last_ts if cs is not None else None)
        self.accepted = sum(sum(cs.accepted.values()) for cs in state.checkpoints.values())
        self.rejected = sum(state.rejected.values())
        del self.run, self.registry
        return self

    def merge(self, other: Backtest) -> None:
        """Add another shard's results (shards hold disjoint checkpoints)."""
        self.queues.update(other.queues)
        self.alerts.extend(other.alerts)
        self.accepted += other.accepted
        self.rejected += other.rejected


def plan_shards(registry: Registry, shards: int) -> dict[str, int]:
    """Checkpoints to shards, balanced by nominal capacity (lanes x lane capacity), a fair proxy
    for traffic: hashing alone put 61% of the 2022 scenario's lines in one of two shards."""
    loads = [0.0] * shards
    plan = {}
    capacity = {
        cid: (cp.lanes_in + cp.lanes_out + 1) * cp.lane_capacity_per_hour for cid, cp in registry.checkpoints.items()
    }
    for cid in sorted(capacity, key=lambda c: (-capacity[c], c)):
        shard = loads.index(min(loads))
        plan[cid] = shard
        loads[shard] += capacity[cid]
    return plan


class Routes(dict[str | None, int]):
    """Checkpoint id -> shard, by the plan; a checkpoint the plan does not know (another
    registry's, or unknown and rejected wherever it goes) by a hash of its id, so each one
    still has a single shard; lines with no usable checkpoint id (rejected wherever they are
    processed) go to shard 0. Per checkpoint is what every rule needs: duplicates, queues,
    windows and alerts see all of a checkpoint's lines, in order."""

    def __init__(self, plan: dict[str, int], shards: int) -> None:
        super().__init__(plan.items())
        self[None] = 0
        self.shards = shards

    def __missing__(self, cid: str | None) -> int:
        return zlib.crc32(str(cid).encode("utf-8", "surrogatepass")) % self.shards

    def of(self, lines: list[bytes]) -> list[int]:
        """The shard of each line, a block at a time through `map` (a Python loop per line cost
        the reader a fifth of its time; a newline-delimited decode of the whole block instead
        of one partial decode per line measured no faster)."""
        return list(map(self.__getitem__, map(peek_checkpoint, lines)))


def _run_in_process(blocks: Iterable[list[bytes]], backtests: Sequence[Backtest]) -> tuple[int, list[Backtest]]:
    count = 0
    for lines in blocks:
        numbers = list(range(count, count + len(lines)))
        count += len(lines)
        for start in range(0, len(lines), BATCH):
            for b in backtests:
                b.feed(numbers[start : start + BATCH], lines[start : start + BATCH])
    return count, [b.finish() for b in backtests]


# A shard is stopped only by its reader (`terminate`, SIGTERM). The handlers it inherits from the
# reader would raise `Stopped` in it, and one landing outside its `try` printed a traceback after
# the reader's one-line "stopped by SIGTERM" (seen once in CI); Ctrl-C reaches the whole process
# group, and the reader alone must act on it. The reader blocks these signals while it forks, so
# none lands before the shard has set its own.
_SHARD_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _shard_worker(inbox: Connection, backtests: Sequence[Backtest], outbox: Connection) -> None:
    """A shard's process: feed the backtests the batches the reader sends (line numbers, then the
    lines joined by newlines; an empty message ends), then send the results back."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SHARD_SIGNALS)
    try:
        while numbers := inbox.recv_bytes():
            lines = inbox.recv_bytes().split(b"\n")
            offsets = array("q", numbers).tolist()
            for b in backtests:
                b.feed(offsets, lines)
        outbox.send([b.finish() for b in backtests])
    except BaseException as exc:  # the reader reports it; a shard must not die silently
        with contextlib.suppress(OSError):  # unless the reader is gone (stopped): nobody to tell
            outbox.send(exc)
    finally:
        outbox.close()


class _Outbox:
    """The lines bound for one shard's process, sent a batch at a time (a line never holds a
    newline: the reader split on them, so joining with newlines is lossless)."""

    __slots__ = ("conn", "lines", "numbers")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.numbers = array("q")
        self.lines: list[bytes] = []

    def send(self) -> None:
        self.conn.send_bytes(self.numbers.tobytes())
        self.conn.send_bytes(b"\n".join(self.lines))
        self.numbers = array("q")
        self.lines = []

    def close(self) -> None:
        if self.lines:
            self.send()
        self.conn.send_bytes(b"")
        self.conn.close()


def _answer(from_shard: Connection) -> list[Backtest] | BaseException:
    try:
        return from_shard.recv()
    except EOFError:
        return BordermonError("a backtest process ended without an answer (killed, or out of memory?)")


def run_backtests(
    read: Callable[[bool], Iterable[list[bytes]]], backtests: Sequence[Backtest], shards: int = 1
) -> tuple[int, list[Backtest]]:
    """Run every backtest over the lines `read(progress)` yields, a block of lines at a time;
    return (lines, results).

    With `shards` > 1 this process reads the logs once (with the progress bar) and routes each
    line by checkpoint to one of `shards` forked processes that run the backtests: reading and
    routing a line costs a tenth of processing it, so the reader fits beside the shards (each
    shard reading the whole log itself cost a quarter of the time). The results, and the order
    of the alerts by line number, are those of one process."""
    if shards <= 1:
        return _run_in_process(read(True), backtests)
    context = multiprocessing.get_context("fork")
    routes = Routes(plan_shards(backtests[0].registry, shards), shards)
    outboxes: list[_Outbox] = []
    children = []
    try:
        for _ in range(shards):
            inbox, to_shard = context.Pipe(duplex=False)
            from_shard, outbox = context.Pipe(duplex=False)
            child = context.Process(target=_shard_worker, args=(inbox, backtests, outbox), daemon=True)
            unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SHARD_SIGNALS)
            try:
                child.start()
            finally:  # a stop signal that came meanwhile is delivered here, to the reader
                signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
            inbox.close()
            outbox.close()
            outboxes.append(_Outbox(to_shard))
            children.append((child, from_shard))
        count = 0
        try:
            for lines in read(True):
                targets = routes.of(lines)
                numbers = range(count, count + len(lines))
                count += len(lines)
                for shard, box in enumerate(outboxes):
                    selected = list(map(shard.__eq__, targets))
                    box.lines += compress(lines, selected)
                    box.numbers.extend(compress(numbers, selected))
                    if len(box.lines) >= BATCH:
                        box.send()
            for box in outboxes:
                box.close()
        except (BrokenPipeError, ConnectionResetError):
            for box in outboxes:  # a shard failed (its answer says why); the others end early
                with contextlib.suppress(OSError):
                    box.conn.send_bytes(b"")
        answers = [_answer(from_shard) for _, from_shard in children]
        failures = [a for a in answers if isinstance(a, BaseException)]
        if failures:  # a healthy shard answers with results, even after the reader stopped early
            raise failures[0]
        merged: list[Backtest] = answers[0]  # type: ignore[assignment]
        for answer in answers[1:]:
            for mine, theirs in zip(merged, answer, strict=True):  # type: ignore[arg-type]
                mine.merge(theirs)
        for child, _ in children:
            child.join()
    finally:
        for child, _ in children:
            if child.is_alive():
                child.terminate()
    for b in merged:
        b.alerts.sort(key=lambda pair: pair[0])  # stable: one line's transitions keep their order
    return count, merged
