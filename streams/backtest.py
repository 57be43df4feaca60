"""`bordermon backtest`: the pipeline's alert rules over history, per registry, side by side.

Each registry gets its own processor; all read the same lines in one pass. From the alert
transitions (the very messages a worker puts on `border.alerts`) it computes, per checkpoint and
direction: warnings and criticals fired, time in alert, pages, and the lead time from the
warning firing to the critical.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO

from bordermon.registry import Registry
from streams.local import BATCH, LocalRun
from streams.state import AlertEvent

# The pager route re-notifies while a critical alert fires (repeat_interval in
# monitoring/alertmanager/alertmanager.yml; a test keeps the two equal).
PAGE_REPEAT_SECONDS = 3600.0


@dataclass
class QueueSummary:
    """Alert history of one checkpoint and direction under one registry."""

    fired: dict[str, int] = field(default_factory=lambda: {"warning": 0, "critical": 0})
    seconds: dict[str, float] = field(default_factory=lambda: {"warning": 0.0, "critical": 0.0})
    pages: int = 0
    leads: list[float] = field(default_factory=list)  # warning fired -> critical fired, seconds
    firing_since: dict[str, float] = field(default_factory=dict)

    def apply(self, alert: AlertEvent) -> None:
        tr, severity = alert.transition, alert.severity
        if tr.status == "firing":
            self.fired[severity] += 1
            self.firing_since[severity] = tr.fired_at
            if severity == "critical":
                warned = self.firing_since.get("warning")
                self.leads.append(max(0.0, tr.fired_at - warned) if warned is not None else 0.0)
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

    @property
    def median_lead(self) -> float | None:
        return statistics.median(self.leads) if self.leads else None


@dataclass
class Backtest:
    """One registry's run over the logs."""

    name: str
    registry: Registry
    now: float | None = None
    queues: dict[tuple[str, str], QueueSummary] = field(default_factory=dict)
    alerts_out: IO[bytes] | None = None

    def __post_init__(self) -> None:
        self.run = LocalRun(self.registry, self.now)

    def feed(self, lines: Sequence[bytes]) -> None:
        for result in self.run.feed(lines, batch=len(lines) or 1):
            for event, output in zip(result.alert_events, result.alerts, strict=True):
                key = (event.checkpoint.id, event.direction)
                summary = self.queues.get(key)
                if summary is None:
                    summary = self.queues[key] = QueueSummary()
                summary.apply(event)
                if self.alerts_out is not None:
                    self.alerts_out.write(output.value + b"\n")

    def finish(self) -> None:
        state = self.run.processor.partition(0)
        for (cid, _), summary in self.queues.items():
            cs = state.checkpoints.get(cid)
            summary.finish(cs.last_ts if cs is not None else None)

    @property
    def accepted(self) -> int:
        return sum(sum(cs.accepted.values()) for cs in self.run.processor.partition(0).checkpoints.values())

    @property
    def rejected(self) -> int:
        return sum(self.run.processor.partition(0).rejected.values())


def run_backtests(lines: Iterable[bytes], backtests: Sequence[Backtest]) -> int:
    """Feed every backtest the same lines, in chunks; return the number of lines."""
    count = 0
    chunk: list[bytes] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= BATCH:
            for b in backtests:
                b.feed(chunk)
            count += len(chunk)
            chunk = []
    if chunk:
        for b in backtests:
            b.feed(chunk)
        count += len(chunk)
    for b in backtests:
        b.finish()
    return count
