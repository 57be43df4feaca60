"""What `bordermon backtest` counts from a queue's alert transitions."""

from __future__ import annotations

import pytest

from bordermon.observability import QUEUE_OVERLOAD, QUEUE_OVERLOAD_FORECAST
from bordermon.registry import parse_registry
from streams.domain.alerts import Transition
from streams.domain.state import AlertEvent
from streams.offline.backtest import PAGE_REPEAT_SECONDS, Backtest, QueueSummary, run_backtests
from tests.fixtures.mixedlog import mixed_log
from tests.fixtures.registry import CHECKPOINTS, REGISTRY

CHECKPOINT = parse_registry(REGISTRY, "test")["syrym"]


def alert(alertname: str, severity: str, status: str, fired_at: float, ends_at: float | None = None) -> AlertEvent:
    transition = Transition(status, fired_at - 600.0, fired_at, ends_at)
    return AlertEvent(CHECKPOINT, "in", CHECKPOINT.default_group, severity, transition, 0.0, 0, 1, alertname=alertname)


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


NOW = 1_700_000_000.0  # the wall clock the runs validate against (no event is in its future)


def backtests(cls: type[Backtest] = Backtest) -> list[Backtest]:
    return [cls("shipped", parse_registry(REGISTRY, "test"), now=NOW, keep_alerts=True)]


def blocks(lines: list[bytes], size: int) -> list[list[bytes]]:
    return [lines[i : i + size] for i in range(0, len(lines), size)]


def test_shards_give_the_results_of_one_process():
    lines = b"\n".join(mixed_log(CHECKPOINTS, good_count=20_000, seed=7)).split(b"\n")  # as a log reads
    count, (one,) = run_backtests(lambda _progress: blocks(lines, 5_000), backtests(), shards=1)
    assert count == len(lines) and one.alerts and one.rejected, "the log pages and has bad lines"
    # Blocks of 37 lines: some with a bad line (routed line by line), most without (in one decode).
    for shards in (2, 3):
        count, (sharded,) = run_backtests(lambda _progress: blocks(lines, 37), backtests(), shards=shards)
        assert count == len(lines)
        assert sharded.alerts == one.alerts, f"{shards} shards: the same transitions in the same order"
        assert sharded.queues == one.queues
        assert (sharded.accepted, sharded.rejected) == (one.accepted, one.rejected)


class FailingBacktest(Backtest):
    def feed(self, numbers: list[int], lines: list[bytes]) -> None:
        if b"syrym" in b"".join(lines):
            raise ValueError("boom in a shard")
        super().feed(numbers, lines)


@pytest.mark.timeout(60)
def test_a_failing_shard_fails_the_run_with_its_error_and_nothing_hangs():
    lines = mixed_log(CHECKPOINTS, good_count=60_000, seed=7)  # more than the pipes hold
    with pytest.raises(ValueError, match="boom in a shard"):
        run_backtests(lambda _progress: blocks(lines, 1_000), backtests(FailingBacktest), shards=2)
