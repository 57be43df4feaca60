"""How `bordermon backtest` prints its result: one table, one column group per registry."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from streams.backtest import Backtest, QueueSummary


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f}" if seconds else "–"


def _lead(summary: QueueSummary | None) -> str:
    lead = None if summary is None else summary.median_lead
    return "–" if lead is None else f"{lead / 60:.0f}"


def _cell(summary: QueueSummary | None) -> str:
    if summary is None or not (summary.fired["warning"] or summary.fired["critical"]):
        return "–"
    return (
        f"{summary.fired['warning']} / {summary.fired['critical']}  "
        f"{_hours(summary.seconds['warning'])} / {_hours(summary.seconds['critical'])} h  "
        f"{summary.pages} pages  lead {_lead(summary)}"
    )


def backtest_table(backtests: Sequence[Backtest]) -> Table:
    table = Table(
        title="QueueOverload over the log: warnings / criticals fired, hours firing (warning / critical), "
        "pages, median minutes from warning to critical",
        title_justify="left",
    )
    table.add_column("checkpoint")
    table.add_column("dir")
    for b in backtests:
        table.add_column(b.name, justify="right")
    keys = sorted({k for b in backtests for k in b.queues if any(b.queues[k].fired.values())})
    for cid, direction in keys:
        table.add_row(cid, direction, *(_cell(b.queues.get((cid, direction))) for b in backtests))
    totals = []
    for b in backtests:
        total = QueueSummary()
        for s in b.queues.values():
            for severity in ("warning", "critical"):
                total.fired[severity] += s.fired[severity]
                total.seconds[severity] += s.seconds[severity]
            total.pages += s.pages
            total.leads += s.leads
        totals.append(_cell(total))
    table.add_section()
    table.add_row("all", "", *totals, style="bold")
    return table
