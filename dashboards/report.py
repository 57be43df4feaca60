"""`bordermon report`: one self-contained HTML page about an event log, for people without Grafana.

The log goes through the pipeline's own processor (`streams.offline.history`), sampled at event time;
the charts are Plotly figures with plotly.js inlined once, so the page needs no network to view.
The map is a plain latitude/longitude plot: map tiles or country outlines would have to be
fetched when the page is opened.
"""

from __future__ import annotations

import html
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from bordermon.events import DIRECTIONS, REJECT_REASONS, Crossing, Rejected, decode_timed
from bordermon.observability import ARRIVAL_SURGE, QUEUE_OVERLOAD, QUEUE_OVERLOAD_FORECAST
from bordermon.registry import LaneGroup, Registry
from streams.domain.processor import BatchResult, Processor
from streams.domain.state import parse_queue_name, queue_name
from streams.offline.backtest import QueueSummary
from streams.offline.history import sampled_run

DAY = 86400.0
MAX_SAMPLES = 3000  # per series: enough for a smooth line, small enough for a light page
TOP_CHECKPOINTS = 8
TOP_CITIZENSHIPS = 5
CONGESTED_ROWS = 15
COLOURS = {"warning": "#f0a500", "critical": "#d62728"}  # thresholds, as QueueOverload's bars


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
    """One alert from firing to resolved (or to its checkpoint's last event, still firing)."""

    alertname: str
    checkpoint: str
    direction: str  # the queue: `in`, or `in/trucks` for a lane group (`streams.domain.state.queue_name`)
    severity: str
    start: float
    end: float | None


@dataclass
class ReportData:
    """Every figure the page shows. Persons come from each accepted crossing at its own event time
    (exact on any log: out of order, starting and ending at any hour); waits are the processor's
    state sampled at event time (`streams.offline.history`)."""

    times: list[float] = field(default_factory=list)
    # Keyed (checkpoint, queue name): `in`, or `in/trucks` for a lane group (`streams.domain.state.queue_name`).
    waits: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    observed: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    # UTC day (its midnight) -> direction -> citizenship -> persons of the crossings that day
    daily: dict[float, dict[str, Counter[str]]] = field(default_factory=dict)
    # sample grid point (a multiple of the step) -> citizenship -> persons in - out of the
    # crossings after the previous grid point and at or before this one
    stayed_steps: dict[float, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    intervals: list[Interval] = field(default_factory=list)
    summaries: dict[tuple[str, str], QueueSummary] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    lines: int = 0
    step: float = 0.0
    first: float | None = None
    last: float | None = None

    def totals(self, direction: str) -> Counter[str]:
        """Persons by citizenship over the whole log, one direction."""
        out: Counter[str] = Counter()
        for day in self.daily.values():
            out.update(day[direction])
        return out

    def stayed(self) -> dict[str, list[int]]:
        """At each sample time T, persons in - out by citizenship of the crossings at or before T."""
        grid = sorted(self.stayed_steps)
        running: Counter[str] = Counter()
        out: dict[str, list[int]] = defaultdict(lambda: [0] * len(self.times))
        at = 0
        for i, t in enumerate(self.times):
            while at < len(grid) and grid[at] <= t:
                running.update(self.stayed_steps[grid[at]])
                at += 1
            for c, n in running.items():
                out[c][i] = n
        return dict(out)


def day_of(t: float) -> float:
    """The UTC midnight starting the day of event time t."""
    return math.floor(t / DAY) * DAY


def collect(registry: Registry, lines: Iterable[bytes], step: float, now: float | None = None) -> ReportData:
    now = time.time() if now is None else now
    data = ReportData(step=step)
    open_intervals: dict[tuple[str, str, str, str], Interval] = {}
    counted = [0]

    def counting() -> Iterable[bytes]:
        for line in lines:
            counted[0] += 1
            yield line

    def on_batch(result: BatchResult, batch: list[bytes], first: int) -> None:
        for event in result.alert_events:
            key = (event.alertname, event.checkpoint.id, event.queue, event.severity)
            if event.group is not None:  # a queue's alert (ArrivalSurge is drawn, not tallied)
                data.summaries.setdefault(key[1:3], QueueSummary()).apply(event)
            tr = event.transition
            if tr.status == "firing":
                interval = Interval(*key, tr.fired_at, None)
                open_intervals[key] = interval
                data.intervals.append(interval)
            elif key in open_intervals:
                open_intervals.pop(key).end = tr.ends_at
        rejected = {letter.offset for letter in result.deadletters}
        for i, line in enumerate(batch):
            if first + i in rejected or b'"crossing"' not in line:
                continue
            decoded = decode_timed(line, now)
            if type(decoded) is Rejected or type(decoded[0]) is not Crossing:  # type: ignore[index]
                continue
            crossing, t = decoded  # type: ignore[misc]
            day = data.daily.setdefault(day_of(t), {d: Counter() for d in DIRECTIONS})
            day[crossing.direction][crossing.citizenship] += crossing.persons
            sign = 1 if crossing.direction == "in" else -1
            data.stayed_steps[math.ceil(t / step) * step][crossing.citizenship] += sign * crossing.persons

    def on_sample(t: float, processor: Processor) -> None:
        state = processor.partition(0)
        data.times.append(t)
        for cid, cp in registry.checkpoints.items():
            cs = state.checkpoints.get(cid)
            for d in DIRECTIONS:
                for g in cp.lane_groups:
                    key = (cid, queue_name(d, g.id))
                    q = cs.queues[d][g.id] if cs is not None else None
                    data.waits[key].append(q.wait_seconds() if q is not None else 0.0)
                    data.observed[key].append(q.observed_wait if q is not None else 0.0)

    run = sampled_run(registry, counting(), step, on_sample, on_batch, now=now)
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


def group_of(registry: Registry, cid: str, queue: str) -> LaneGroup:
    """The lane group of a queue named by `streams.domain.state.queue_name`."""
    found = parse_queue_name(queue, registry[cid])
    assert found is not None, (cid, queue)
    return found[1]


def way(queue: str) -> str:
    """`entering`, `leaving`, or with the lane group: `entering, trucks`."""
    direction, _, group = queue.partition("/")
    said = "entering" if direction == "in" else "leaving"
    return f"{said}, {group}" if group else said


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
            peak = max(peak, group_of(registry, cid, d).critical_seconds)  # no lane open: at least critical
        if peak > 0:
            worst.append((cid, d, peak))
    return sorted(worst, key=lambda row: -row[2])


def top_citizenships(data: ReportData) -> list[str]:
    """The citizenships with the most crossings, both directions (ties by code)."""
    both = data.totals("in") + data.totals("out")
    return [c for c, _ in sorted(both.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_CITIZENSHIPS]]


def flows_figure(data: ReportData) -> go.Figure:
    # Not a shared x axis: the bars span whole days, the curve only the log's own hours (a log of
    # six hours would otherwise draw its curve in a corner of two days).
    fig = make_subplots(
        rows=2,
        cols=1,
        vertical_spacing=0.1,
        subplot_titles=(
            "Persons entering (+) and leaving (−) per day (UTC), by citizenship",
            "Stayed: entered − left since the log began, by citizenship",
        ),
    )
    if not data.daily and not data.times:
        return fig
    top = top_citizenships(data)

    def group(c: str) -> str:
        return c if c in top else "other"

    palette = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#7f7f7f"]
    colour = dict(zip([*top, "other"], palette, strict=False))
    days = sorted(data.daily)
    if days:  # every day from the first to the last, quiet ones too
        days = [days[0] + i * DAY for i in range(int((days[-1] - days[0]) / DAY) + 1)]
    for d, sign in (("in", 1), ("out", -1)):
        per_group: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
        for i, day in enumerate(days):
            for c, n in data.daily.get(day, {d: Counter()})[d].items():
                per_group[group(c)][i] += sign * n
        for c in [*top, "other"]:
            if c in per_group:
                fig.add_trace(
                    go.Bar(
                        x=[_dt(day) for day in days],
                        y=per_group[c],
                        name=f"{c} {'entered' if d == 'in' else 'left'}",
                        legendgroup=c,
                        offsetgroup=d,
                        xperiod=DAY * 1000,
                        xperiodalignment="middle",  # each bar spans its day
                        marker={"color": colour[c], "pattern": {"shape": "" if d == "in" else "/"}},
                        opacity=1.0 if d == "in" else 0.55,
                    ),
                    row=1,
                    col=1,
                )
    stayed = data.stayed()
    times = [_dt(t) for t in data.times]
    everyone = [sum(values) for values in zip(*stayed.values(), strict=True)] if stayed else [0] * len(times)
    fig.add_trace(
        go.Scatter(x=times, y=everyone, name="all stayed", mode="lines", line={"color": "#222", "width": 3}),
        row=2,
        col=1,
    )
    for c in top:
        fig.add_trace(
            go.Scatter(
                x=times,
                y=stayed.get(c, [0] * len(times)),
                name=f"{c} stayed",
                mode="lines",
                legendgroup=c,
                line={"color": colour[c]},
            ),
            row=2,
            col=1,
        )
    fig.update_xaxes(type="date")
    fig.update_layout(barmode="relative", height=720, legend={"orientation": "h", "y": -0.1})
    return fig


def plotted_queues(data: ReportData, registry: Registry) -> list[tuple[str, str, float]]:
    """Queues that came within half of their warning threshold, worst first; flat lines say nothing."""
    return [r for r in congested(data, registry) if r[2] >= group_of(registry, r[0], r[1]).warning_seconds / 2][
        :TOP_CHECKPOINTS
    ]


def waits_figure(data: ReportData, registry: Registry) -> go.Figure:
    worst = plotted_queues(data, registry)
    titles = [f"{registry[c].name} ({way(d)})" for c, d, _ in worst] or ["no queue"]
    fig = make_subplots(
        rows=max(1, len(worst)), cols=1, shared_xaxes=True, subplot_titles=titles, vertical_spacing=0.04
    )
    times = [_dt(t) for t in data.times]
    for row, (cid, d, _) in enumerate(worst, 1):
        group = group_of(registry, cid, d)
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
        closed = [group.critical_seconds / 3600 if math.isinf(w) else None for w in data.waits[(cid, d)]]
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
            level = group.threshold_seconds(severity) / 3600
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


# Each alertname and severity its own colour, and each alertname its own rows of the timeline.
TIMELINE = {
    (QUEUE_OVERLOAD, "warning"): ("#f0a500", 0.55),
    (QUEUE_OVERLOAD, "critical"): ("#d62728", 0.8),
    (QUEUE_OVERLOAD_FORECAST, "warning"): ("#8e44ad", 0.6),
    (ARRIVAL_SURGE, "warning"): ("#17becf", 0.7),
}
# A surge is per checkpoint and direction (every lane group together): its row names no group.
ROW_SUFFIX = {QUEUE_OVERLOAD: "", QUEUE_OVERLOAD_FORECAST: " · forecast", ARRIVAL_SURGE: " · surge"}


def timeline_row(interval: Interval) -> str:
    return f"{interval.checkpoint} {interval.direction}{ROW_SUFFIX.get(interval.alertname, ' · ' + interval.alertname)}"


def alerts_figure(data: ReportData, registry: Registry) -> go.Figure:
    fig = go.Figure()
    kinds = sorted({(i.alertname, i.severity) for i in data.intervals}, key=lambda k: (k[0], k[1] != "warning"))
    for alertname, severity in kinds:
        rows = [i for i in data.intervals if (i.alertname, i.severity) == (alertname, severity)]
        colour, opacity = TIMELINE.get((alertname, severity), ("#1f77b4", 0.6))
        fig.add_trace(
            go.Bar(
                y=[timeline_row(i) for i in rows],
                x=[((i.end or i.start) - i.start) * 1000 for i in rows],
                base=[_dt(i.start) for i in rows],
                orientation="h",
                name=f"{alertname} {severity}",
                marker_color=colour,
                opacity=opacity,
                hovertext=[
                    f"{registry[i.checkpoint].name} {i.direction}: {alertname} {severity} "
                    f"{_dt(i.start):%d %b %H:%M} – {_dt(i.end or i.start):%d %b %H:%M}"
                    for i in rows
                ],
            )
        )
    rows = sorted({timeline_row(i) for i in data.intervals})
    fig.update_layout(
        barmode="overlay",
        height=max(260, 60 + 34 * len(rows)),
        xaxis={"type": "date"},
        yaxis={"categoryorder": "category descending"},
        title="Alerts firing, by checkpoint and direction (forecasts and arrival surges on their own rows)",
    )
    return fig


def congestion_table(data: ReportData, registry: Registry) -> go.Figure:
    rows = congested(data, registry)[:CONGESTED_ROWS]
    cells: list[list[str]] = [[], [], [], [], [], []]
    for cid, d, peak in rows:
        summary = data.summaries.get((cid, d), QueueSummary())
        cells[0].append(registry[cid].name)
        cells[1].append(way(d))
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
    worst: dict[str, float] = {}
    for cid, _, peak in congested(data, registry):
        worst[cid] = max(worst.get(cid, 0.0), peak)
    cps = list(registry.checkpoints.values())
    peaks = [worst.get(cp.id, 0.0) / 3600 for cp in cps]
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


def interval_order(i: Interval) -> tuple[float, str, str, str, str]:
    return (i.start, i.alertname, i.checkpoint, i.direction, i.severity)


def interval_numbers(i: Interval) -> dict[str, str]:
    end = i.end if i.end is not None else i.start
    return {"alertname": i.alertname, "checkpoint": i.checkpoint, "direction": i.direction,
            "severity": i.severity, "start": _iso(i.start), "end": _iso(end)}  # fmt: skip


def _iso(t: float) -> str:
    return _dt(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(value: float) -> float | None:
    return None if math.isinf(value) else value


def report_numbers(data: ReportData, registry: Registry) -> dict[str, object]:
    """Every number the page shows, as data: embedded in it as JSON (`id="bordermon-report"`),
    for scripts and for checking the page against an independent computation."""
    entered, left = data.totals("in"), data.totals("out")
    days = sorted(data.daily)
    return {
        "lines": data.lines,
        "accepted": data.accepted,
        "rejected": {r: data.rejected.get(r, 0) for r in REJECT_REASONS},
        "first_sample": _iso(data.first) if data.first is not None else None,
        "last_event": _iso(data.last) if data.last is not None else None,
        "step_seconds": data.step,
        "persons": {
            "entered": sum(entered.values()),
            "left": sum(left.values()),
            "stayed": sum(entered.values()) - sum(left.values()),
        },
        "daily": [
            {"day": _dt(day).strftime("%Y-%m-%d"), **{d: dict(sorted(data.daily[day][d].items())) for d in DIRECTIONS}}
            for day in days
        ],
        "sample_times": [_iso(t) for t in data.times],
        "stayed": {c: values for c, values in sorted(data.stayed().items())},
        "waits": {
            f"{cid}/{d}": {
                "estimated_seconds": [_seconds(w) for w in data.waits[(cid, d)]],
                "observed_seconds": data.observed[(cid, d)],
            }
            for cid, d, _ in plotted_queues(data, registry)
        },
        "alerts": [interval_numbers(i) for i in sorted(data.intervals, key=interval_order)],
        "congested": [
            {
                "checkpoint": cid,
                "direction": d,
                "worst_wait_seconds": peak,
                "warning_seconds_firing": data.summaries.get((cid, d), QueueSummary()).seconds["warning"],
                "critical_fired": data.summaries.get((cid, d), QueueSummary()).fired["critical"],
                "pages": data.summaries.get((cid, d), QueueSummary()).pages,
            }
            for cid, d, peak in congested(data, registry)[:CONGESTED_ROWS]
        ],
    }


def render(data: ReportData, registry: Registry, title: str) -> str:
    first = f"{_dt(data.first):%Y-%m-%d %H:%M}" if data.first is not None else "–"
    last = f"{_dt(data.last):%Y-%m-%d %H:%M}" if data.last is not None else "–"
    numbers = report_numbers(data, registry)
    persons: dict[str, int] = numbers["persons"]  # type: ignore[assignment]
    entered, left = persons["entered"], persons["left"]
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
        f"samples every {int(data.step) // 60} min of event time."
    )
    # `</` cannot end the script early: JSON allows `\/` for `/`.
    embedded = json.dumps(numbers, separators=(",", ":")).replace("</", "<\\/")
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
<script type="application/json" id="bordermon-report">{embedded}</script>
{"".join(sections)}
<p class="facts">Made by bordermon report from the pipeline's own processor: the same rules as the live workers.</p>
</body></html>
"""
