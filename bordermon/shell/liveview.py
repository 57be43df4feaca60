"""Reading a worker's /metrics into a per-checkpoint snapshot, and drawing it with rich."""

from __future__ import annotations

import math
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families
from rich.table import Table


@dataclass
class Snapshot:
    accepted: dict[str, float] = field(default_factory=dict)
    rejected: dict[str, float] = field(default_factory=dict)
    cumulative: dict[str, float] = field(default_factory=dict)
    citizenship: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    processed: float = 0.0
    rows: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))


def fetch_metrics(url: str, timeout: float = 3.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def parse_snapshot(text: str) -> Snapshot:
    snap = Snapshot()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            lb = s.labels
            if s.name == "border_events_accepted_total":
                snap.accepted[lb["type"]] = s.value
            elif s.name == "border_events_rejected_total":
                snap.rejected[lb["reason"]] = s.value
            elif s.name == "border_net_flow_cumulative_persons":
                snap.cumulative[lb["citizenship"]] = s.value
            elif s.name == "border_crossing_persons_by_citizenship_total":
                snap.citizenship[lb["citizenship"]][lb["direction"]] = s.value
            elif s.name == "bordermon_messages_processed_total":
                snap.processed = s.value
            elif "checkpoint" in lb and s.name.startswith("border_"):
                suffix = "".join(f":{lb[k]}" for k in ("direction", "window", "severity", "partitioner") if k in lb)
                snap.rows[lb["checkpoint"]][s.name + suffix] = s.value
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


def _waits(r: dict[str, float], d: str, warn: float, crit: float) -> str:
    """estimated (the contract's, coloured by its thresholds) / observed / expected."""
    estimated = _wait(r.get(f"border_queue_wait_estimate_seconds:{d}", 0), warn, crit)
    observed = _short(r.get(f"border_queue_wait_observed_seconds:{d}"))
    expected = _short(r.get(f"border_queue_wait_expected_seconds:{d}"))
    return f"{estimated} [dim]{observed} / {expected}[/]"


FORECAST_SHOWN_S = 24 * 3600.0  # a forecast further out than a day says little


def _critical_in(r: dict[str, float]) -> str:
    """The nearest forecast of a critical overload that is not there yet."""
    soonest = None
    for d in ("in", "out"):
        left = r.get(f"border_queue_overload_forecast_seconds:{d}:critical")
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
    rows = sorted(snap.rows.items(), key=lambda kv: -max(kv[1].get("border_queue_length:in", 0), 0))
    for cid, r in rows:
        if only_active and "border_last_event_timestamp_seconds" not in r:
            continue
        warn = r.get("border_wait_threshold_seconds:warning", math.inf)
        crit = r.get("border_wait_threshold_seconds:critical", math.inf)
        firing = [_alert_state(r, d) for d in ("in", "out")]
        firing = [f for f in firing if f]
        table.add_row(
            cid,
            f"{r.get('border_lanes_open:in', 0):.0f}/{r.get('border_lanes_open:out', 0):.0f}",
            f"{r.get('border_queue_length:in', 0):.0f}/{r.get('border_queue_length:out', 0):.0f}",
            _waits(r, "in", warn, crit),
            _waits(r, "out", warn, crit),
            _critical_in(r),
            f"{r.get('border_net_flow_persons:1h', 0):+,.0f}",
            f"{r.get('border_net_flow_persons:24h', 0):+,.0f}",
            " ".join(firing[:3]),
            _advice(r) if firing else "",
        )
    return table


def _alert_state(r: dict[str, float], d: str) -> str:
    """The most severe alert of one direction: CRIT, WARN, or the forecast of a critical (FCST)."""
    if r.get(f"border_alerts_firing:{d}:critical"):
        return f"[red]CRIT {d}[/]"
    forecast = "[cyan]+FCST[/]" if r.get(f"border_forecast_alerts_firing:{d}") else ""
    if r.get(f"border_alerts_firing:{d}:warning"):
        return f"[yellow]WARN {d}[/]{forecast}"
    return f"[cyan]FCST {d}[/]" if forecast else ""


def _advice(r: dict[str, float]) -> str:
    parts = [f"+{r[f'border_lanes_needed:{d}']:.0f} lanes {d}" for d in ("in", "out")
             if r.get(f"border_lanes_needed:{d}")]  # fmt: skip
    return ", ".join(parts)


def latest_event_time(snap: Snapshot) -> float | None:
    times = [r["border_last_event_timestamp_seconds"] for r in snap.rows.values()
             if "border_last_event_timestamp_seconds" in r]  # fmt: skip
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


def snapshot_json(snap: Snapshot) -> dict:
    """A stable JSON shape for scripts (`bordermon status --json`)."""
    checkpoints = {}
    for cid, r in sorted(snap.rows.items()):
        entry: dict = {"last_event_ts": r.get("border_last_event_timestamp_seconds")}
        for d in ("in", "out"):
            wait = r.get(f"border_queue_wait_estimate_seconds:{d}", 0.0)
            entry[d] = {
                "lanes_open": r.get(f"border_lanes_open:{d}"),
                "queue_length": r.get(f"border_queue_length:{d}"),
                "wait_seconds": None if math.isinf(wait) else wait,
                "observed_wait_seconds": r.get(f"border_queue_wait_observed_seconds:{d}"),
                "expected_wait_seconds": _finite(r.get(f"border_queue_wait_expected_seconds:{d}")),
                "clearance_per_hour": r.get(f"border_queue_clearance_rate_per_hour:{d}"),
                "critical_forecast_seconds": _finite(r.get(f"border_queue_overload_forecast_seconds:{d}:critical")),
                "forecast_firing": bool(r.get(f"border_forecast_alerts_firing:{d}")),
                "persons_total": r.get(f"border_crossing_persons_total:{d}"),
                "alerts_firing": [s for s in ("warning", "critical") if r.get(f"border_alerts_firing:{d}:{s}")],
            }
        entry["net_flow"] = {w: r.get(f"border_net_flow_persons:{w}") for w in ("15m", "1h", "24h")}
        prefix = "border_events_off_partition_total:"
        entry["off_partition"] = {k[len(prefix) :]: v for k, v in r.items() if k.startswith(prefix)}
        checkpoints[cid] = entry
    return {
        "accepted": snap.accepted,
        "rejected": snap.rejected,
        "net_by_citizenship": snap.cumulative,
        "checkpoints": checkpoints,
    }
