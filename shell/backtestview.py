"""How `bordermon backtest` prints its result: one table, one column group per registry."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from streams.offline.backtest import Backtest, QueueSummary


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f}" if seconds else "–"


def _minutes(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 60:.0f}"


def _cell(summary: QueueSummary | None) -> str:
    if summary is None or not (summary.fired["warning"] or summary.fired["critical"] or summary.forecasts):
        return "–"
    return (
        f"{summary.fired['warning']} / {summary.fired['critical']}  "
        f"{_hours(summary.seconds['warning'])} / {_hours(summary.seconds['critical'])} h  "
        f"{summary.pages} pages  lead {_minutes(summary.median_lead)}  "
        f"forecast {summary.forecasts} lead {_minutes(summary.median_forecast_lead)}"
    )


def backtest_table(backtests: Sequence[Backtest]) -> Table:
    table = Table(
        title="QueueOverload over the log: warnings / criticals fired, hours firing (warning / critical), "
        "pages, median minutes from warning to critical; QueueOverloadForecast fired, median minutes "
        "from it to the critical",
        title_justify="left",
    )
    table.add_column("checkpoint")
    table.add_column("dir")
    table.add_column("lanes")
    for b in backtests:
        table.add_column(b.name, justify="right")
    keys = sorted({k for b in backtests for k, q in b.queues.items() if any(q.fired.values()) or q.forecasts})
    for key in keys:
        table.add_row(*key, *(_cell(b.queues.get(key)) for b in backtests))
    totals = []
    for b in backtests:
        total = QueueSummary()
        for summary in b.queues.values():
            total.add(summary)
        totals.append(_cell(total))
    table.add_section()
    table.add_row("all", "", "", *totals, style="bold")
    return table
