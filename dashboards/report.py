"""`bordermon report`: one self-contained HTML page about an event log, for people without Grafana.

The log goes through the pipeline's own processor (`streams.history`), sampled at event time;
the charts are Plotly figures with plotly.js inlined once, so the page needs no network to view.
The map is a plain latitude/longitude plot: map tiles or country outlines would have to be
fetched when the page is opened.
"""

from __future__ import annotations

import html
import math
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from bordermon.events import DIRECTIONS, REJECT_REASONS, Rejected, decode_timed
from bordermon.registry import Registry
from streams.backtest import QueueSummary
from streams.history import sampled_run
from streams.processor import BatchResult, Processor

DAY = 86400.0
MAX_SAMPLES = 3000  # per series: enough for a smooth line, small enough for a light page
TOP_CHECKPOINTS = 8
TOP_CITIZENSHIPS = 5
COLOURS = {"warning": "#f0a500", "critical": "#d62728"}


def event_span(lines: Iterable[bytes]) -> tuple[float, float] | None:
    """(first, last) event time of the valid events, or None when there is none."""
    first = last = None
    now = time.time()
    for line in lines:
        decoded = decode_timed(line, now)
        if type(decoded) is not Rejected:
            t = decoded[1]  # type: ignore[index]
            first = t if first is None or t < first else first
            last = t if last is None or t > last else last
    return None if first is None or last is None else (first, last)


def report_step(span_seconds: float) -> float:
    """Sample step for a log spanning this long: a multiple of 5 minutes dividing a day."""
    for step in (300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400):
        if span_seconds / step <= MAX_SAMPLES:
            return float(step)
    return DAY


@dataclass
class Interval:
    checkpoint: str
    direction: str
    severity: str
    start: float
    end: float | None


@dataclass
class ReportData:
    times: list[float] = field(default_factory=list)
    waits: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    observed: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    days: list[float] = field(default_factory=list)
    # day start -> direction -> citizenship -> persons (cumulative at the day's start)
    cumulative: list[dict[str, dict[str, int]]] = field(default_factory=list)
    intervals: list[Interval] = field(default_factory=list)
    summaries: dict[tuple[str, str], QueueSummary] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    lines: int = 0
    first: float | None = None
    last: float | None = None


def collect(registry: Registry, lines: Iterable[bytes], step: float) -> ReportData:
    data = ReportData()
    open_intervals: dict[tuple[str, str, str], Interval] = {}
    counted = [0]

    def counting() -> Iterable[bytes]:
        for line in lines:
            counted[0] += 1
            yield line

    def on_batch(result: BatchResult) -> None:
        for event in result.alert_events:
            key = (event.checkpoint.id, event.direction, event.severity)
            summary = data.summaries.setdefault(key[:2], QueueSummary())
            summary.apply(event)
            tr = event.transition
            if tr.status == "firing":
                interval = Interval(*key, tr.fired_at, None)
                open_intervals[key] = interval
                data.intervals.append(interval)
            elif key in open_intervals:
                open_intervals.pop(key).end = tr.ends_at

    def on_sample(t: float, processor: Processor) -> None:
        state = processor.partition(0)
        data.times.append(t)
        for cid in registry.checkpoints:
            cs = state.checkpoints.get(cid)
            for d in DIRECTIONS:
                data.waits[(cid, d)].append(cs.wait_seconds(d) if cs is not None else 0.0)
                data.observed[(cid, d)].append(cs.dirs[d].observed_wait if cs is not None else 0.0)
        if t % DAY == 0:
            tally: dict[str, dict[str, int]] = {d: defaultdict(int) for d in DIRECTIONS}
            for cs in state.checkpoints.values():
                for d, per in cs.citizenship_persons.items():
                    for c, n in per.items():
                        tally[d][c] += n
            data.days.append(t)
            data.cumulative.append(tally)

    run = sampled_run(registry, counting(), step, on_sample, on_batch)
    state = run.processor.partition(0)
    data.lines = counted[0]
    data.rejected = dict(state.rejected)
    data.accepted = sum(sum(cs.accepted.values()) for cs in state.checkpoints.values())
    stamps = [cs.last_ts for cs in state.checkpoints.values() if cs.last_ts is not None]
    data.last = max(stamps) if stamps else None
    data.first = data.times[0] if data.times else None
    for (cid, _), summary in data.summaries.items():
        cs = state.checkpoints.get(cid)
        summary.finish(cs.last_ts if cs is not None else None)
    for interval in data.intervals:
        if interval.end is None:
            cs = state.checkpoints.get(interval.checkpoint)
            interval.end = cs.last_ts if cs is not None else interval.start
    return data


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _hours(values: list[float]) -> list[float | None]:
    return [None if math.isinf(v) else v / 3600 for v in values]


def congested(data: ReportData, registry: Registry) -> list[tuple[str, str, float]]:
    """(checkpoint, direction, worst finite wait in seconds), worst first."""
    worst = []
    for (cid, d), waits in data.waits.items():
        finite = [w for w in waits if not math.isinf(w)]
        peak = max(finite, default=0.0)
        if any(math.isinf(w) for w in waits):
            peak = max(peak, registry[cid].critical_seconds)  # no lane open counts as at least critical
        if peak > 0:
            worst.append((cid, d, peak))
    return sorted(worst, key=lambda row: -row[2])


def flows_figure(data: ReportData) -> go.Figure:
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=(
            "Persons entering (+) and leaving (−) per day, by citizenship",
            "Stayed: entered − left, cumulative",
        ),
    )
    if len(data.days) < 2:
        return fig
    days = [_dt(t) for t in data.days[:-1]]
    totals: dict[str, int] = defaultdict(int)
    for d in DIRECTIONS:
        for c, n in data.cumulative[-1][d].items():
            totals[c] += n
    top = [c for c, _ in sorted(totals.items(), key=lambda kv: -kv[1])[:TOP_CITIZENSHIPS]]

    def group(c: str) -> str:
        return c if c in top else "other"

    palette = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#7f7f7f"]
    colour = dict(zip([*top, "other"], palette, strict=False))
    for d, sign in (("in", 1), ("out", -1)):
        per_group: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
        for i in range(len(days)):
            before, after = data.cumulative[i][d], data.cumulative[i + 1][d]
            for c in set(before) | set(after):
                per_group[group(c)][i] += sign * (after.get(c, 0) - before.get(c, 0))
        for c in [*top, "other"]:
            if c in per_group:
                fig.add_trace(
                    go.Bar(
                        x=days,
                        y=per_group[c],
                        name=f"{c} {'entered' if d == 'in' else 'left'}",
                        legendgroup=c,
                        offsetgroup=d,
                        marker={"color": colour[c], "pattern": {"shape": "" if d == "in" else "/"}},
                        opacity=1.0 if d == "in" else 0.55,
                    ),
                    row=1,
                    col=1,
                )
    for c in top:
        stayed = [day["in"].get(c, 0) - day["out"].get(c, 0) for day in data.cumulative[1:]]
        fig.add_trace(
            go.Scatter(x=days, y=stayed, name=f"{c} stayed", mode="lines", legendgroup=c, line={"color": colour[c]}),
            row=2,
            col=1,
        )
    fig.update_layout(barmode="relative", height=720, legend={"orientation": "h", "y": -0.1})
    return fig


def waits_figure(data: ReportData, registry: Registry) -> go.Figure:
    # Queues that came within half of their warning threshold; flat lines say nothing.
    worst = [r for r in congested(data, registry) if r[2] >= registry[r[0]].warning_seconds / 2][:TOP_CHECKPOINTS]
    titles = [f"{registry[c].name} ({'entering' if d == 'in' else 'leaving'})" for c, d, _ in worst] or ["no queue"]
    fig = make_subplots(
        rows=max(1, len(worst)), cols=1, shared_xaxes=True, subplot_titles=titles, vertical_spacing=0.04
    )
    times = [_dt(t) for t in data.times]
    for row, (cid, d, _) in enumerate(worst, 1):
        cp = registry[cid]
        show = row == 1
        fig.add_trace(
            go.Scatter(
                x=times,
                y=_hours(data.waits[(cid, d)]),
                name="estimated wait (nominal capacity)",
                line={"color": "#1f77b4"},
                legendgroup="wait",
                showlegend=show,
            ),
            row=row,
            col=1,
        )
        closed = [cp.critical_seconds / 3600 if math.isinf(w) else None for w in data.waits[(cid, d)]]
        if any(v is not None for v in closed):
            fig.add_trace(
                go.Scatter(
                    x=times,
                    y=closed,
                    name="no lane open: wait unbounded (drawn at critical)",
                    mode="markers",
                    marker={"color": COLOURS["critical"], "symbol": "x", "size": 7},
                    legendgroup="closed",
                    showlegend=not any(t.legendgroup == "closed" for t in fig.data),
                ),
                row=row,
                col=1,
            )
        fig.add_trace(
            go.Scatter(
                x=times,
                y=_hours(data.observed[(cid, d)]),
                name="observed wait (last party cleared)",
                line={"color": "#2ca02c", "dash": "dot"},
                legendgroup="observed",
                showlegend=show,
            ),
            row=row,
            col=1,
        )
        for severity in ("warning", "critical"):
            level = cp.threshold_seconds(severity) / 3600
            fig.add_trace(
                go.Scatter(
                    x=[times[0], times[-1]],
                    y=[level, level],
                    name=f"{severity} threshold",
                    mode="lines",
                    line={"color": COLOURS[severity], "dash": "dash"},
                    legendgroup=severity,
                    showlegend=show,
                ),
                row=row,
                col=1,
            )
        fig.update_yaxes(title_text="hours", row=row, col=1, rangemode="tozero")
    fig.update_layout(height=max(320, 230 * len(worst)), legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"})
    return fig


def alerts_figure(data: ReportData, registry: Registry) -> go.Figure:
    fig = go.Figure()
    for severity in ("warning", "critical"):
        rows = [i for i in data.intervals if i.severity == severity]
        if not rows:
            continue
        fig.add_trace(
            go.Bar(
                y=[f"{i.checkpoint} {i.direction}" for i in rows],
                x=[((i.end or i.start) - i.start) * 1000 for i in rows],
                base=[_dt(i.start) for i in rows],
                orientation="h",
                name=f"QueueOverload {severity}",
                marker_color=COLOURS[severity],
                opacity=0.8 if severity == "critical" else 0.55,
                hovertext=[
                    f"{registry[i.checkpoint].name} {i.direction}: {severity} "
                    f"{_dt(i.start):%d %b %H:%M} – {_dt(i.end or i.start):%d %b %H:%M}"
                    for i in rows
                ],
            )
        )
    queues = sorted({f"{i.checkpoint} {i.direction}" for i in data.intervals})
    fig.update_layout(
        barmode="overlay",
        height=max(260, 60 + 34 * len(queues)),
        xaxis={"type": "date"},
        title="QueueOverload firing, by checkpoint and direction",
    )
    return fig


def congestion_table(data: ReportData, registry: Registry) -> go.Figure:
    rows = congested(data, registry)[:15]
    cells: list[list[str]] = [[], [], [], [], [], []]
    for cid, d, peak in rows:
        summary = data.summaries.get((cid, d), QueueSummary())
        cells[0].append(registry[cid].name)
        cells[1].append("entering" if d == "in" else "leaving")
        cells[2].append(f"{peak / 3600:.1f}")
        cells[3].append(f"{summary.seconds['warning'] / 3600:.1f}")
        cells[4].append(f"{summary.fired['critical']}")
        cells[5].append(f"{summary.pages}")
    header = ["checkpoint", "direction", "worst wait (h)", "hours at warning", "critical alerts", "pages"]
    fig = go.Figure(go.Table(header={"values": header, "align": "left"}, cells={"values": cells, "align": "left"}))
    fig.update_layout(title="Most congested checkpoints", height=120 + 28 * max(1, len(rows)))
    return fig


def rejects_figure(data: ReportData) -> go.Figure:
    counts = [data.rejected.get(r, 0) for r in REJECT_REASONS]
    fig = go.Figure(go.Bar(x=list(REJECT_REASONS), y=counts, text=counts, marker_color="#7f7f7f"))
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(title=f"Rejected lines by reason ({sum(counts):,} of {data.lines:,})", height=340)
    return fig


def map_figure(data: ReportData, registry: Registry) -> go.Figure:
    worst = {(cid, d): peak for cid, d, peak in congested(data, registry)}
    cps = list(registry.checkpoints.values())
    peaks = [max(worst.get((cp.id, "in"), 0.0), worst.get((cp.id, "out"), 0.0)) / 3600 for cp in cps]
    fig = go.Figure(
        go.Scatter(
            x=[cp.lon for cp in cps],
            y=[cp.lat for cp in cps],
            mode="markers+text",
            # Names of the checkpoints that reached their warning threshold; the rest on hover.
            text=[
                cp.name.split(" – ")[0] if p * 3600 >= cp.warning_seconds else ""
                for cp, p in zip(cps, peaks, strict=True)
            ],
            textposition="top center",
            hovertext=[f"{cp.name} ({cp.region}): worst wait {p:.1f} h" for cp, p in zip(cps, peaks, strict=True)],
            marker={
                "size": 14,
                "color": peaks,
                "colorscale": "YlOrRd",
                "cmin": 0,
                "showscale": True,
                "colorbar": {"title": "worst wait (h)"},
                "line": {"width": 1, "color": "#333"},
            },
        )
    )
    mean_lat = sum(cp.lat for cp in cps) / max(1, len(cps))
    fig.update_xaxes(title_text="longitude (°E)")
    fig.update_yaxes(title_text="latitude (°N)", scaleanchor="x", scaleratio=1 / math.cos(math.radians(mean_lat)))
    fig.update_layout(
        title="Checkpoints by worst wait (positions by latitude and longitude; no basemap, works offline)", height=560
    )
    return fig


def render(data: ReportData, registry: Registry, title: str) -> str:
    first = f"{_dt(data.first):%Y-%m-%d %H:%M}" if data.first is not None else "–"
    last = f"{_dt(data.last):%Y-%m-%d %H:%M}" if data.last is not None else "–"
    entered = sum(data.cumulative[-1]["in"].values()) if data.cumulative else 0
    left = sum(data.cumulative[-1]["out"].values()) if data.cumulative else 0
    figures = [
        ("Who entered, who left, who stayed", flows_figure(data)),
        ("Waits at the most congested checkpoints", waits_figure(data, registry)),
        ("Alert timeline", alerts_figure(data, registry)),
        ("Most congested checkpoints", congestion_table(data, registry)),
        ("Rejected input", rejects_figure(data)),
        ("Map", map_figure(data, registry)),
    ]
    sections = []
    for heading, fig in figures:
        fig.update_layout(template="plotly_white", margin={"l": 60, "r": 30, "t": 60, "b": 40})
        body = fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
        sections.append(f'<section><h2>{html.escape(heading)}</h2><div class="chart">{body}</div></section>')
    facts = (
        f"{data.lines:,} lines, {data.accepted:,} accepted, {sum(data.rejected.values()):,} rejected; "
        f"event time {first} – {last} UTC; persons entered {entered:,}, left {left:,}, stayed {entered - left:,}; "
        f"samples every {int((data.times[1] - data.times[0]) if len(data.times) > 1 else 0) // 60} min of event time."
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1280px; color: #222; }}
h1 {{ font-size: 1.6em; margin-bottom: 4px; }} h2 {{ font-size: 1.2em; margin: 28px 0 4px; }}
.facts {{ color: #555; }} section {{ border-top: 1px solid #ddd; }}
</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>{html.escape(title)}</h1>
<p class="facts">{html.escape(facts)}</p>
{"".join(sections)}
<p class="facts">Made by bordermon report from the pipeline's own processor: the same rules as the live workers.</p>
</body></html>
"""
