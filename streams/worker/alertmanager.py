"""Pushing QueueOverload (and QueueOverloadForecast) to Alertmanager (`/api/v2/alerts`) as the
operator contract says.

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
from prometheus_client import Counter

from streams.domain.alertmessages import AlertMessage
from streams.domain.processor import Processor
from streams.domain.state import AlertEvent, CheckpointState

log = logging.getLogger("bordermon.alertmanager")
MAX_QUEUED = 10_000


class AlertmanagerPusher:
    def __init__(self, base_url: str, generator_url: str, repush_seconds: float, pushes: Counter) -> None:
        self.endpoint = base_url.rstrip("/") + "/api/v2/alerts"
        self.generator_url = generator_url
        self.repush_seconds = repush_seconds
        self.queued: list[dict[str, Any]] = []
        self.last_repush = 0.0
        self.session: aiohttp.ClientSession | None = None
        self.pushes = pushes  # ALERTMANAGER_PUSHES, by outcome

    def enqueue(self, events: Iterable[AlertEvent]) -> None:
        for a in events:
            self.queued.append(AlertMessage.of(a).alertmanager_alert(self.generator_url))
        if len(self.queued) > MAX_QUEUED:
            dropped = len(self.queued) - MAX_QUEUED
            del self.queued[:dropped]
            log.warning("alertmanager queue full; dropped oldest transitions", extra={"dropped": dropped})

    def firing(self, processor: Processor, owned: set[int]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for p in owned:
            ps = processor.state.get(p)
            if ps is None:
                continue
            for cs in ps.checkpoints.values():
                out.extend(self._firing_of(cs))
        return out

    def _firing_of(self, cs: CheckpointState) -> Iterable[dict[str, Any]]:
        for event in cs.firing_alerts():
            yield AlertMessage.of(event).alertmanager_alert(self.generator_url)

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
            self.pushes.labels(outcome="failed").inc(len(alerts))
            log.warning("alertmanager push failed; will retry", extra={"error": str(exc), "alerts": len(alerts)})
            return False
        self.pushes.labels(outcome="ok").inc(len(alerts))
        return True

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
