"""What `bordermon backtest` counts from a queue's alert transitions."""

from __future__ import annotations

from bordermon.observability import QUEUE_OVERLOAD, QUEUE_OVERLOAD_FORECAST
from bordermon.registry import parse_registry
from streams.alerts import Transition
from streams.backtest import PAGE_REPEAT_SECONDS, QueueSummary
from streams.state import AlertEvent
from tests.fixtures.registry import REGISTRY

CHECKPOINT = parse_registry(REGISTRY, "test")["syrym"]


def alert(alertname: str, severity: str, status: str, fired_at: float, ends_at: float | None = None) -> AlertEvent:
    transition = Transition(status, fired_at - 600.0, fired_at, ends_at)
    return AlertEvent(CHECKPOINT, "in", severity, transition, 0.0, 0, 1, alertname=alertname)


def test_the_forecast_shares_the_warning_severity_but_not_its_hours_or_counts():
    summary = QueueSummary()
    summary.apply(alert(QUEUE_OVERLOAD_FORECAST, "warning", "firing", 1_000.0))
    summary.apply(alert(QUEUE_OVERLOAD, "warning", "firing", 2_000.0))
    summary.apply(alert(QUEUE_OVERLOAD_FORECAST, "warning", "resolved", 1_000.0, 2_500.0))
    summary.apply(alert(QUEUE_OVERLOAD, "critical", "firing", 4_000.0))
    summary.apply(alert(QUEUE_OVERLOAD, "critical", "resolved", 4_000.0, 4_000.0 + 1.5 * PAGE_REPEAT_SECONDS))
    summary.apply(alert(QUEUE_OVERLOAD, "warning", "resolved", 2_000.0, 10_000.0))
    assert summary.fired == {"warning": 1, "critical": 1}
    assert summary.seconds == {"warning": 8_000.0, "critical": 1.5 * PAGE_REPEAT_SECONDS}
    assert summary.pages == 2, "the first page and one repeat"
    assert summary.leads == [2_000.0] and summary.forecast_leads == [3_000.0]
    assert summary.forecasts == 1


def test_a_critical_without_a_forecast_has_no_forecast_lead_and_open_alerts_close_at_the_end():
    summary = QueueSummary()
    summary.apply(alert(QUEUE_OVERLOAD_FORECAST, "warning", "firing", 0.0))
    summary.apply(alert(QUEUE_OVERLOAD, "critical", "firing", 600.0))
    summary.apply(alert(QUEUE_OVERLOAD, "critical", "resolved", 600.0, 1_200.0))
    summary.apply(alert(QUEUE_OVERLOAD, "critical", "firing", 5_000.0))
    summary.finish(6_000.0)
    assert summary.forecast_leads == [600.0, 0.0], "one forecast warns of one critical"
    assert summary.seconds["critical"] == 600.0 + 1_000.0
    total = QueueSummary()
    total.add(summary)
    total.add(summary)
    assert total.fired["critical"] == 4 and total.median_forecast_lead == 300.0
