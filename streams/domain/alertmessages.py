"""One model of an alert transition, rendered for each place it goes.

`AlertMessage` holds the values once (rounded once); `border_alert()` renders the
`border.alerts` message of the operator contract and `alertmanager_alert()` the payload pushed to
Alertmanager's `/api/v2/alerts`, so the two can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from bordermon.observability import ARRIVAL_SURGE, QUEUE_OVERLOAD, QUEUE_OVERLOAD_FORECAST, runbook_url
from bordermon.registry import DEFAULT_LANE_GROUP
from bordermon.timeutil import finite_or_none, to_rfc3339
from streams.domain.state import AlertEvent


@dataclass(frozen=True, slots=True)
class AlertMessage:
    alertname: str
    severity: str
    status: str
    checkpoint_id: str
    checkpoint_name: str
    direction: str
    lane_group: str
    starts_at: str
    fired_at: str
    ends_at: str | None
    wait_minutes: float | None  # null when no lane is open (JSON has no infinity)
    threshold_minutes: float
    queue_length: int
    lanes_open: int
    arrivals_per_hour: float
    lanes_needed: int
    forecast_minutes: float | None  # QueueOverloadForecast only
    baseline_per_hour: float | None  # ArrivalSurge only
    transition_id: str

    @classmethod
    def of(cls, a: AlertEvent) -> AlertMessage:
        tr, cp, group = a.transition, a.checkpoint, a.group or a.checkpoint.default_group
        threshold = (
            group.critical_seconds if a.alertname == QUEUE_OVERLOAD_FORECAST else group.threshold_seconds(a.severity)
        )
        starts_at = to_rfc3339(tr.starts_at)
        # Same for every re-send of a transition: consumers de-duplicate on it. (QueueOverload's
        # form predates the forecast and is kept.)
        prefix = "" if a.alertname == QUEUE_OVERLOAD else f"{a.alertname}/"

        return cls(
            alertname=a.alertname,
            severity=a.severity,
            status=tr.status,
            checkpoint_id=cp.id,
            checkpoint_name=cp.name,
            direction=a.direction,
            lane_group=group.id if a.group is not None else "",
            starts_at=starts_at,
            fired_at=to_rfc3339(tr.fired_at),
            ends_at=None if tr.ends_at is None else to_rfc3339(tr.ends_at),
            wait_minutes=finite_or_none(a.wait_seconds / 60.0, 1),
            threshold_minutes=round(threshold / 60.0, 1),
            queue_length=a.queue_length,
            lanes_open=a.lanes_open,
            arrivals_per_hour=round(a.arrivals_per_hour, 1),
            lanes_needed=a.lanes_needed,
            forecast_minutes=None if a.forecast_seconds is None else finite_or_none(a.forecast_seconds / 60.0, 1),
            baseline_per_hour=None if a.baseline_per_hour is None else round(a.baseline_per_hour, 1),
            # The queue: the direction alone without lane groups (the form from before them).
            transition_id=f"{prefix}{cp.id}/{a.queue}/{a.severity}/{starts_at}/{tr.status}",
        )

    def border_alert(self) -> bytes:
        """The `border.alerts` message (the contract's fields, and a few more)."""
        if self.alertname == ARRIVAL_SURGE:
            return orjson.dumps(self._surge_message())
        message: dict[str, Any] = {
            "alertname": self.alertname,
            "severity": self.severity,
            "status": self.status,
            "checkpoint_id": self.checkpoint_id,
            "direction": self.direction,
            "lane_group": self.lane_group,
            "starts_at": self.starts_at,
            "fired_at": self.fired_at,
            "ends_at": self.ends_at,
            "wait_minutes": self.wait_minutes,
            "threshold_minutes": self.threshold_minutes,
            "queue_length": self.queue_length,
            "lanes_open": self.lanes_open,
            "arrivals_per_hour": self.arrivals_per_hour,
            # Extra lanes that bring the wait under the warning threshold within two hours.
            "lanes_needed": self.lanes_needed,
            "transition_id": self.transition_id,
        }
        if self.alertname == QUEUE_OVERLOAD_FORECAST:
            message["forecast_minutes"] = self.forecast_minutes
        return orjson.dumps(message)

    def _surge_message(self) -> dict[str, Any]:
        """ArrivalSurge's message (CONTRACT.md, "Early warning"): per checkpoint and direction."""
        return {
            "alertname": self.alertname,
            "severity": self.severity,
            "status": self.status,
            "checkpoint_id": self.checkpoint_id,
            "direction": self.direction,
            "starts_at": self.starts_at,
            "fired_at": self.fired_at,
            "ends_at": self.ends_at,
            "arrivals_per_hour": self.arrivals_per_hour,
            "baseline_per_hour": self.baseline_per_hour,
            "queue_length": self.queue_length,
            "transition_id": self.transition_id,
        }

    def alertmanager_alert(self, generator_url: str) -> dict[str, Any]:
        """The Alertmanager payload: labels alertname, severity, checkpoint, direction, lane_group
        (the contract's), annotations for people, `endsAt` once resolved."""
        way = "entering" if self.direction == "in" else "leaving"
        if self.alertname == ARRIVAL_SURGE:
            return self._surge_alertmanager_alert(way, generator_url)
        if self.lane_group != DEFAULT_LANE_GROUP:
            way = f"{self.lane_group}, {way}"
        wait = "no lane open" if self.wait_minutes is None else f"{self.wait_minutes:.0f} min"
        advice = (
            f"Open {self.lanes_needed} more lane(s) to bring the wait under the warning threshold within two "
            "hours at the current arrival rate."
            if self.lanes_needed
            else "The open lanes bring the wait under the warning threshold within two hours."
        )
        if self.alertname == QUEUE_OVERLOAD_FORECAST:
            eta = "now" if not self.forecast_minutes else f"in {self.forecast_minutes:.0f} min"
            summary = f"Queue overload forecast at {self.checkpoint_name} ({way} Kazakhstan)"
            description = (
                f"At the current arrival and clearance rates the wait reaches the critical threshold of "
                f"{self.threshold_minutes:.0f} min {eta}: {self.queue_length} parties queued, {self.lanes_open} "
                f"lanes open, estimated wait {wait}. {advice}"
            )
        else:
            summary = f"Queue overload at {self.checkpoint_name} ({way} Kazakhstan)"
            description = (
                f"Estimated wait {wait} against a {self.severity} threshold of {self.threshold_minutes:.0f} min: "
                f"{self.queue_length} parties queued, {self.lanes_open} lanes open. {advice}"
            )
        annotations = {
            "summary": summary,
            "description": description,
            "runbook_url": runbook_url(self.alertname),
            "wait_minutes": "null" if self.wait_minutes is None else str(self.wait_minutes),
            "threshold_minutes": f"{self.threshold_minutes:g}",
            "queue_length": str(self.queue_length),
            "lanes_open": str(self.lanes_open),
            "lanes_needed": str(self.lanes_needed),
        }
        if self.forecast_minutes is not None or self.alertname == QUEUE_OVERLOAD_FORECAST:
            annotations["forecast_minutes"] = "null" if self.forecast_minutes is None else str(self.forecast_minutes)
        return self._pushed({"lane_group": self.lane_group}, annotations, generator_url)

    def _pushed(self, labels: dict[str, str], annotations: dict[str, str], generator_url: str) -> dict[str, Any]:
        """The payload around the labels every alert has (alertname, severity, checkpoint, direction)."""
        alert: dict[str, Any] = {
            "labels": {
                "alertname": self.alertname,
                "severity": self.severity,
                "checkpoint": self.checkpoint_id,
                "direction": self.direction,
                **labels,
            },
            "annotations": annotations,
            "startsAt": self.starts_at,
            "generatorURL": generator_url,
        }
        if self.ends_at is not None:
            alert["endsAt"] = self.ends_at
        return alert

    def _surge_alertmanager_alert(self, way: str, generator_url: str) -> dict[str, Any]:
        """ArrivalSurge pushed as QueueOverload is, per checkpoint and direction (no lane group)."""
        annotations = {
            "summary": f"Arrival surge at {self.checkpoint_name} ({way} Kazakhstan)",
            "description": (
                f"{self.arrivals_per_hour:.0f} parties joined the queue in the last hour against a typical "
                f"{self.baseline_per_hour or 0:.0f} for this time: queues may overflow within hours. "
                f"{self.queue_length} parties queued now."
            ),
            "runbook_url": runbook_url(self.alertname),
            "arrivals_per_hour": str(self.arrivals_per_hour),
            "baseline_per_hour": str(self.baseline_per_hour),
        }
        return self._pushed({}, annotations, generator_url)
