"""Pushing QueueOverload to Alertmanager (`/api/v2/alerts`) as the operator contract says.

Transitions are queued by the agent and pushed within a second; every `repush_seconds` the
firing alerts of the partitions this worker owns are pushed again from state, so Alertmanager
never times them out and a replacement worker takes over after a crash. Push failures are
logged and retried; nothing blocks the stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import aiohttp

from bordermon.timeutil import finite_or_none, to_rfc3339
from streams.alerts import SEVERITIES
from streams.processor import Processor
from streams.state import AlertEvent, CheckpointState

log = logging.getLogger("bordermon.alertmanager")
RUNBOOK = "https://github.com/bordermon/bordermon/blob/main/docs/runbooks/QueueOverload.md"
MAX_QUEUED = 10_000


def am_alert(
    cs_name: str,
    checkpoint_id: str,
    direction: str,
    severity: str,
    starts_at: float,
    ends_at: float | None,
    wait_seconds: float,
    threshold_seconds: float,
    queue_length: int,
    lanes_open: int,
    generator_url: str,
    lanes_needed: int = 0,
) -> dict[str, Any]:
    wait_min = finite_or_none(wait_seconds / 60.0, 1)
    wait_text = "no lane open" if wait_min is None else f"{wait_min:.0f} min"
    alert: dict[str, Any] = {
        "labels": {
            "alertname": "QueueOverload",
            "severity": severity,
            "checkpoint": checkpoint_id,
            "direction": direction,
        },
        "annotations": {
            "summary": f"Queue overload at {cs_name} ({'entering' if direction == 'in' else 'leaving'} Kazakhstan)",
            "description": (
                f"Estimated wait {wait_text} against a {severity} threshold of {threshold_seconds / 60:.0f} min: "
                f"{queue_length} parties queued, {lanes_open} lanes open. "
                + (
                    f"Open {lanes_needed} more lane(s) to bring the wait under the warning threshold "
                    "within two hours at the current arrival rate."
                    if lanes_needed
                    else "The open lanes bring the wait under the warning threshold within two hours."
                )
            ),
            "runbook_url": RUNBOOK,
            "wait_minutes": "null" if wait_min is None else str(wait_min),
            "threshold_minutes": f"{threshold_seconds / 60:.0f}",
            "queue_length": str(queue_length),
            "lanes_open": str(lanes_open),
            "lanes_needed": str(lanes_needed),
        },
        "startsAt": to_rfc3339(starts_at),
        "generatorURL": generator_url,
    }
    if ends_at is not None:
        alert["endsAt"] = to_rfc3339(ends_at)
    return alert


class AlertmanagerPusher:
    def __init__(self, base_url: str, generator_url: str, repush_seconds: float = 60.0) -> None:
        self.endpoint = base_url.rstrip("/") + "/api/v2/alerts"
        self.generator_url = generator_url
        self.repush_seconds = repush_seconds
        self.queued: list[dict[str, Any]] = []
        self.last_repush = 0.0
        self.session: aiohttp.ClientSession | None = None
        self.pushed = 0
        self.failures = 0

    def enqueue(self, events: Iterable[AlertEvent]) -> None:
        for a in events:
            tr = a.transition
            self.queued.append(
                am_alert(
                    a.checkpoint.name,
                    a.checkpoint.id,
                    a.direction,
                    a.severity,
                    tr.starts_at,
                    tr.ends_at,
                    a.wait_seconds,
                    a.checkpoint.threshold_seconds(a.severity),
                    a.queue_length,
                    a.lanes_open,
                    self.generator_url,
                    a.lanes_needed,
                )
            )
        if len(self.queued) > MAX_QUEUED:
            dropped = len(self.queued) - MAX_QUEUED
            del self.queued[:dropped]
            log.warning("alertmanager queue full; dropped oldest transitions", extra={"dropped": dropped})

    def firing(self, processor: Processor, owned: set[int]) -> list[dict[str, Any]]:
        out = []
        for p in owned:
            ps = processor.state.get(p)
            if ps is None:
                continue
            for cs in ps.checkpoints.values():
                out.extend(self._firing_of(cs))
        return out

    def _firing_of(self, cs: CheckpointState) -> Iterable[dict[str, Any]]:
        for direction, ds in cs.dirs.items():
            for severity in SEVERITIES:
                alert = ds.alerts[severity]
                if alert.firing and alert.pending_since is not None:
                    yield am_alert(
                        cs.cp.name,
                        cs.cp.id,
                        direction,
                        severity,
                        alert.pending_since,
                        None,
                        cs.wait_seconds(direction),
                        cs.cp.threshold_seconds(severity),
                        ds.length,
                        ds.lanes,
                        self.generator_url,
                        cs.advice(direction)[1],
                    )

    async def tick(self, processor: Processor, owned: set[int]) -> None:
        """Push queued transitions; re-push firing alerts when due."""
        batch = self.queued
        now = time.monotonic()
        due = now - self.last_repush >= self.repush_seconds
        if due:
            batch = batch + self.firing(processor, owned)
        if not batch:
            return
        sent = len(self.queued)
        if await self._post(batch):
            del self.queued[:sent]  # transitions queued while posting stay for the next tick
            if due:
                self.last_repush = now

    async def _post(self, alerts: list[dict[str, Any]]) -> bool:
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        try:
            async with self.session.post(self.endpoint, json=alerts) as response:
                if response.status >= 300:
                    body = (await response.text())[:200]
                    raise aiohttp.ClientError(f"HTTP {response.status}: {body}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.failures += 1
            log.warning("alertmanager push failed; will retry", extra={"error": str(exc), "alerts": len(alerts)})
            return False
        self.pushed += len(alerts)
        return True

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
