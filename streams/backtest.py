"""`bordermon backtest`: the pipeline's alert rules over history, per registry, side by side.

Each registry gets its own processor; all read the same lines in one pass. From the alert
transitions (the very messages a worker puts on `border.alerts`) it computes, per checkpoint and
direction: warnings and criticals fired, time in alert, pages, and the lead time from the
warning firing to the critical.
"""

from __future__ import annotations

import multiprocessing
import statistics
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bordermon.events import peek_checkpoint
from bordermon.observability import QUEUE_OVERLOAD_FORECAST
from bordermon.registry import Registry
from streams.local import BATCH, LocalRun
from streams.state import AlertEvent

# The pager route re-notifies while a critical alert fires (repeat_interval in
# monitoring/alertmanager/alertmanager.yml; a test keeps the two equal).
PAGE_REPEAT_SECONDS = 3600.0


@dataclass
class QueueSummary:
    """Alert history of one checkpoint and direction under one registry: QueueOverload by severity,
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
    queues: dict[tuple[str, str], QueueSummary] = field(default_factory=dict)
    alerts: list[tuple[int, bytes]] = field(default_factory=list)  # (line number, border.alerts message)
    accepted: int = 0
    rejected: int = 0

    def __post_init__(self) -> None:
        self.run = LocalRun(self.registry, self.now)

    def feed(self, numbers: list[int], lines: list[bytes]) -> None:
        result = self.run.feed_numbered(numbers, lines)
        for event, output in zip(result.alert_events, result.alerts, strict=True):
            key = (event.checkpoint.id, event.direction)
            summary = self.queues.get(key)
            if summary is None:
                summary = self.queues[key] = QueueSummary()
            summary.apply(event)
            if self.keep_alerts:
                self.alerts.append((output.offset, output.value))

    def finish(self) -> Backtest:
        """Close alerts still firing; keep the results, drop the processor (results travel between processes)."""
        state = self.run.processor.partition(0)
        for (cid, _), summary in self.queues.items():
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


def shard_of(line: bytes, shards: int, plan: dict[str, int]) -> int:
    """Which shard a line belongs to: by its checkpoint id, so every rule that is per checkpoint
    (duplicates, queues, windows, alerts) sees all of a checkpoint's lines in order; lines with
    no usable checkpoint id (rejected wherever they are processed) go to shard 0."""
    cid = peek_checkpoint(line)
    if cid is None:
        return 0
    shard = plan.get(cid)
    return zlib.crc32(cid.encode("utf-8", "surrogatepass")) % shards if shard is None else shard


def _run_shard(
    lines: Iterable[bytes], backtests: Sequence[Backtest], shard: int, shards: int
) -> tuple[int, list[Backtest]]:
    plan = plan_shards(backtests[0].registry, shards)
    count = 0
    numbers: list[int] = []
    chunk: list[bytes] = []
    for number, line in enumerate(lines):
        count = number + 1
        if shards > 1 and shard_of(line, shards, plan) != shard:
            continue
        numbers.append(number)
        chunk.append(line)
        if len(chunk) >= BATCH:
            for b in backtests:
                b.feed(numbers, chunk)
            numbers, chunk = [], []
    if chunk:
        for b in backtests:
            b.feed(numbers, chunk)
    return count, [b.finish() for b in backtests]


def _child(
    read: Callable[[bool], Iterable[bytes]], backtests: Sequence[Backtest], shard: int, shards: int, out: Any
) -> None:
    try:
        out.send(_run_shard(read(False), backtests, shard, shards))
    except BaseException as exc:  # the parent reports it; a child must not die silently
        out.send(exc)
    finally:
        out.close()


def run_backtests(
    read: Callable[[bool], Iterable[bytes]], backtests: Sequence[Backtest], shards: int = 1
) -> tuple[int, list[Backtest]]:
    """Run every backtest over the lines `read(progress)` yields; return (lines, results).

    With `shards` > 1 the checkpoints are split between that many processes (forked: each reads
    the logs itself; this one shows the progress). The results, and the order of the alerts by
    line number, are those of one process."""
    if shards <= 1:
        return _run_shard(read(True), backtests, 0, 1)
    context = multiprocessing.get_context("fork")
    children = []
    for shard in range(1, shards):
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(read, backtests, shard, shards, send), daemon=True)
        child.start()
        send.close()
        children.append((child, receive))
    try:
        count, merged = _run_shard(read(True), backtests, 0, shards)
        for child, receive in children:
            answer = receive.recv()
            if isinstance(answer, BaseException):
                raise answer
            for mine, theirs in zip(merged, answer[1], strict=True):
                mine.merge(theirs)
            child.join()
    finally:
        for child, _ in children:
            if child.is_alive():
                child.terminate()
    for b in merged:
        b.alerts.sort(key=lambda pair: pair[0])  # stable: one line's transitions keep their order
    return count, merged
