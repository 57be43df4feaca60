"""Reading a worker's /metrics into a per-checkpoint snapshot, and drawing it with rich."""

from __future__ import annotations

import math
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families
from rich.table import Table

from bordermon import metrics as m
from bordermon.registry import DEFAULT_LANE_GROUP

# Series with a checkpoint label go into the per-checkpoint rows, keyed as `key` writes them.
CHECKPOINT_SERIES = frozenset(metric.series for metric in m.ALL if "checkpoint" in metric.labels)
ROW_LABELS = ("direction", "lane_group", "window", "severity", "partitioner")


def key(metric: m.Metric, *labels: str) -> str:
    """A row's key for a series and its label values, e.g. `border_queue_length:in:trucks`."""
    return ":".join((metric.series, *labels))


@dataclass
class Snapshot:
    accepted: dict[str, float] = field(default_factory=dict)
    rejected: dict[str, float] = field(default_factory=dict)
    cumulative: dict[str, float] = field(default_factory=dict)
    citizenship: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    processed: float = 0.0
    rows: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))


def key_of(series: str, labels: dict[str, str]) -> str:
    return ":".join((series, *(labels[k] for k in ROW_LABELS if k in labels)))


def fetch_metrics(url: str, timeout: float = 3.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def parse_snapshot(text: str) -> Snapshot:
    snap = Snapshot()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            lb = s.labels
            if s.name == m.EVENTS_ACCEPTED.series:
                snap.accepted[lb["type"]] = s.value
            elif s.name == m.EVENTS_REJECTED.series:
                snap.rejected[lb["reason"]] = s.value
            elif s.name == m.NET_FLOW_CUMULATIVE.series:
                snap.cumulative[lb["citizenship"]] = s.value
            elif s.name == m.CROSSING_PERSONS_BY_CITIZENSHIP.series:
                snap.citizenship[lb["citizenship"]][lb["direction"]] = s.value
            elif s.name == m.MESSAGES_PROCESSED.series:
                snap.processed = s.value
            elif s.name in CHECKPOINT_SERIES:
                snap.rows[lb["checkpoint"]][key_of(s.name, lb)] = s.value
    return snap


def _wait(seconds: float, warn: float, crit: float) -> str:
    if math.isinf(seconds):
        return "[bold red]no lanes[/]"
    text = f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"
    colour = "red" if seconds >= crit else "yellow" if seconds >= warn else "green"
    return f"[{colour}]{text}[/]"


def _short(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if math.isinf(seconds):
        return "∞"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def lane_groups(r: dict[str, float]) -> list[str]:
    """A checkpoint's lane groups, in the order the worker exports them (the registry's)."""
    prefix = key(m.LANES_OPEN, "in", "")
    return [k[len(prefix) :] for k in r if k.startswith(prefix)]


def _waits(r: dict[str, float], d: str, g: str, warn: float, crit: float) -> str:
    """estimated (the contract's, coloured by its thresholds) / observed / expected."""
    estimated = _wait(r.get(key(m.WAIT_ESTIMATE, d, g), 0), warn, crit)
    observed = _short(r.get(key(m.WAIT_OBSERVED, d, g)))
    expected = _short(r.get(key(m.WAIT_EXPECTED, d, g)))
    return f"{estimated} [dim]{observed} / {expected}[/]"


FORECAST_SHOWN_S = 24 * 3600.0  # a forecast further out than a day says little


def _critical_in(r: dict[str, float], g: str) -> str:
    """The nearest forecast of a critical overload that is not there yet."""
    soonest = None
    for d in ("in", "out"):
        left = r.get(key(m.OVERLOAD_FORECAST, d, g, "critical"))
        if left is not None and 0 < left < FORECAST_SHOWN_S and (soonest is None or left < soonest[0]):
            soonest = (left, d)
    return "" if soonest is None else f"{_short(soonest[0])} {soonest[1]}"


def checkpoint_table(snap: Snapshot, only_active: bool = True) -> Table:
    table = Table(
        title="Checkpoints (in = entering Kazakhstan; wait: estimated [dim]observed / expected[/])", expand=True
    )
    for col in (
        "checkpoint", "lanes in/out", "queue in/out", "wait in", "wait out", "critical in", "net 1h", "net 24h",
        "alerts", "advice",
    ):  # fmt: skip
        table.add_column(col, justify="left" if col in ("checkpoint", "alerts") else "right")

    def longest(r: dict[str, float]) -> float:
        return max((r.get(key(m.QUEUE_LENGTH, "in", g), 0) for g in lane_groups(r)), default=0)

    for cid, r in sorted(snap.rows.items(), key=lambda kv: -longest(kv[1])):
        if only_active and key(m.LAST_EVENT) not in r:
            continue
        groups = lane_groups(r)
        for i, g in enumerate(groups):
            # One row per lane group; the checkpoint's own figures (net flows) on its first.
            warn = r.get(key(m.WAIT_THRESHOLD, g, "warning"), math.inf)
            crit = r.get(key(m.WAIT_THRESHOLD, g, "critical"), math.inf)
            firing = [f for f in (_alert_state(r, d, g) for d in ("in", "out")) if f]
            if i == 0:  # ArrivalSurge is the checkpoint's, on its first row: the earliest warning first
                firing = [f"[magenta]SURGE {d}[/]" for d in ("in", "out") if r.get(key(m.SURGE_FIRING, d))] + firing
            table.add_row(
                cid if g == DEFAULT_LANE_GROUP else f"{cid if i == 0 else ''} · {g}",
                f"{r.get(key(m.LANES_OPEN, 'in', g), 0):.0f}/{r.get(key(m.LANES_OPEN, 'out', g), 0):.0f}",
                f"{r.get(key(m.QUEUE_LENGTH, 'in', g), 0):.0f}/{r.get(key(m.QUEUE_LENGTH, 'out', g), 0):.0f}",
                _waits(r, "in", g, warn, crit),
                _waits(r, "out", g, warn, crit),
                _critical_in(r, g),
                f"{r.get(key(m.NET_FLOW, '1h'), 0):+,.0f}" if i == 0 else "",
                f"{r.get(key(m.NET_FLOW, '24h'), 0):+,.0f}" if i == 0 else "",
                " ".join(firing[:3]),
                _advice(r, g) if firing else "",
            )
    return table


def _alert_state(r: dict[str, float], d: str, g: str) -> str:
    """The most severe alert of one queue: CRIT, WARN, or the forecast of a critical (FCST)."""
    if r.get(key(m.ALERTS_FIRING, d, g, "critical")):
        return f"[red]CRIT {d}[/]"
    forecast = "[cyan]+FCST[/]" if r.get(key(m.FORECAST_FIRING, d, g)) else ""
    if r.get(key(m.ALERTS_FIRING, d, g, "warning")):
        return f"[yellow]WARN {d}[/]{forecast}"
    return f"[cyan]FCST {d}[/]" if forecast else ""


def _advice(r: dict[str, float], g: str) -> str:
    parts = [f"+{r[key(m.LANES_NEEDED, d, g)]:.0f} lanes {d}" for d in ("in", "out")
             if r.get(key(m.LANES_NEEDED, d, g))]  # fmt: skip
    return ", ".join(parts)


def latest_event_time(snap: Snapshot) -> float | None:
    times = [r[key(m.LAST_EVENT)] for r in snap.rows.values()
             if key(m.LAST_EVENT) in r]  # fmt: skip
    return max(times) if times else None


def citizenship_table(snap: Snapshot, top: int = 6) -> Table:
    table = Table(title="Entered / left / stayed by citizenship", expand=True)
    for col in ("citizenship", "entered", "left", "stayed"):
        table.add_column(col, justify="left" if col == "citizenship" else "right")
    rows = sorted(snap.citizenship.items(), key=lambda kv: -kv[1].get("in", 0))
    total_in = total_out = 0.0
    for _, d in rows:
        total_in += d.get("in", 0)
        total_out += d.get("out", 0)
    for c, d in rows[:top]:
        entered, left = d.get("in", 0), d.get("out", 0)
        table.add_row(c, f"{entered:,.0f}", f"{left:,.0f}", f"{entered - left:+,.0f}")
    table.add_row("[bold]all[/]", f"{total_in:,.0f}", f"{total_out:,.0f}", f"[bold]{total_in - total_out:+,.0f}[/]")
    return table


def totals_table(snap: Snapshot) -> Table:
    table = Table(title="Pipeline and net flow by citizenship", expand=True)
    table.add_column("accepted")
    table.add_column("rejected")
    table.add_column("stayed (in − out) by citizenship")
    acc = " ".join(f"{k} {v:,.0f}" for k, v in sorted(snap.accepted.items()))
    rej = " ".join(f"{k} {v:,.0f}" for k, v in sorted(snap.rejected.items()) if v)
    top = sorted(snap.cumulative.items(), key=lambda kv: -abs(kv[1]))[:6]
    table.add_row(acc, rej or "none", "  ".join(f"{c} {n:+,.0f}" for c, n in top))
    return table


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else value


def _queue_json(r: dict[str, float], d: str, g: str) -> dict:
    wait = r.get(key(m.WAIT_ESTIMATE, d, g), 0.0)
    return {
        "lanes_open": r.get(key(m.LANES_OPEN, d, g)),
        "queue_length": r.get(key(m.QUEUE_LENGTH, d, g)),
        "wait_seconds": None if math.isinf(wait) else wait,
        "observed_wait_seconds": r.get(key(m.WAIT_OBSERVED, d, g)),
        "expected_wait_seconds": _finite(r.get(key(m.WAIT_EXPECTED, d, g))),
        "clearance_per_hour": r.get(key(m.CLEARANCE_RATE, d, g)),
        "critical_forecast_seconds": _finite(r.get(key(m.OVERLOAD_FORECAST, d, g, "critical"))),
        "forecast_firing": bool(r.get(key(m.FORECAST_FIRING, d, g))),
        "alerts_firing": [s for s in ("warning", "critical") if r.get(key(m.ALERTS_FIRING, d, g, s))],
    }


def snapshot_json(snap: Snapshot) -> dict:
    """A stable JSON shape for scripts (`bordermon status --json`)."""
    checkpoints = {}
    for cid, r in sorted(snap.rows.items()):
        entry: dict = {"last_event_ts": r.get(key(m.LAST_EVENT))}
        groups = lane_groups(r)
        for d in ("in", "out"):
            queues = {g: _queue_json(r, d, g) for g in groups}
            entry[d] = {
                # A checkpoint without lane groups keeps its queue's fields here, as before groups.
                **(queues[DEFAULT_LANE_GROUP] if groups == [DEFAULT_LANE_GROUP] else {}),
                "persons_total": r.get(key(m.CROSSING_PERSONS, d)),
                "arrivals_per_hour": r.get(key(m.ARRIVALS_RATE, d)),
                "arrivals_baseline_per_hour": r.get(key(m.ARRIVALS_BASELINE, d)),
                "arrival_surge": bool(r.get(key(m.SURGE_FIRING, d))),
                "lane_groups": queues,
            }
        entry["net_flow"] = {w: r.get(key(m.NET_FLOW, w)) for w in ("15m", "1h", "24h")}
        prefix = key(m.EVENTS_OFF_PARTITION, "")
        entry["off_partition"] = {k[len(prefix) :]: v for k, v in r.items() if k.startswith(prefix)}
        checkpoints[cid] = entry
    return {
        "accepted": snap.accepted,
        "rejected": snap.rejected,
        "net_by_citizenship": snap.cumulative,
        "checkpoints": checkpoints,
    }
