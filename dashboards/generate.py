"""Dashboards as code (grafana-foundation-sdk, Grafana Labs' own SDK), written to dashboards/*.json.

Run `python -m dashboards.generate` after a change; CI regenerates and fails on any diff.
Every panel queries the `datasource` variable, never a hard-coded uid.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

from grafana_foundation_sdk.builders import (
    bargauge,
    common,
    dashboard,
    geomap,
    prometheus,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import geomap as gm
from grafana_foundation_sdk.models import prometheus as pm

from bordermon import metrics as m
from bordermon.metrics import Metric
from bordermon.observability import job_selector
from monitoring.rules import CONSUMER_LAG_SUM, EVENTS_ACCEPTED_RATE, EVENTS_REJECTED_RATE
from streams.domain.surge import MIN_SURGE_PER_HOUR, SURGE_RATIO

OUT = Path(__file__).parent
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
CP = 'checkpoint=~"$checkpoint"'
LG = 'lane_group=~"$lane_group"'
RATE = "[$__rate_interval]"
CRITICAL = 'severity="critical"'
WARNING = 'severity="warning"'
ALERTING = 'severity=~"warning|critical"'


def window_is(window: str) -> str:
    return f'window="{window}"'


def sel(metric: Metric, *matchers: str) -> str:
    """A metric's series from the catalog, with label matchers."""
    return metric.series + ("{" + ", ".join(matchers) + "}" if matchers else "")


# Wait status per checkpoint: 2 critical firing, 1 warning firing, 0 ok.
STATUS = f"max by (checkpoint) (2 * {sel(m.ALERTS_FIRING, CRITICAL)} or {sel(m.ALERTS_FIRING, WARNING)})"
FORECAST_CRITICAL = sel(m.OVERLOAD_FORECAST, CRITICAL, LG)
QUEUE_LEGEND = "{{checkpoint}} {{direction}} {{lane_group}}"
DG = "{{direction}} {{lane_group}}"


def q(
    expr: str, legend: str = "", ref: str = "A", instant: bool = False, table_fmt: bool = False
) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DS)
    if legend:
        query = query.legend_format(legend)
    if instant:
        query = query.instant()
    if table_fmt:
        query = query.format(pm.PromQueryFormat.TABLE)
    return query


def steps(*pairs: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in pairs])
    )


STATUS_STEPS = steps((None, "green"), (1, "orange"), (2, "red"))
STATUS_MAP = [
    dm.ValueMap(
        options={
            "0": dm.ValueMappingResult(text="OK", color="green"),
            "1": dm.ValueMappingResult(text="WARNING", color="orange"),
            "2": dm.ValueMappingResult(text="CRITICAL", color="red"),
        },
    )
]
WAIT_STEPS = steps((None, "green"), (7200, "orange"), (21600, "red"))  # road defaults: 2 h / 6 h


def series(
    title: str, width: int, height: int, *queries: prometheus.Dataquery, unit: str, minimum: float | None = 0
) -> timeseries.Panel:
    """A time series panel: title, size, queries, unit, and a floor at `minimum` unless None."""
    panel = timeseries.Panel().title(title).span(width).height(height)
    for query in queries:
        panel = panel.with_target(query)
    panel = panel.unit(unit)
    return panel if minimum is None else panel.min(minimum)


def datasource_variable() -> dashboard.DatasourceVariable:
    return dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")


def label_variable(name: str, title: str, selector: str) -> dashboard.QueryVariable:
    """A variable over the values of label `name` on the series `selector` selects."""
    return (
        dashboard.QueryVariable(name)
        .label(title)
        .datasource(DS)
        .query(f"label_values({selector}, {name})")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )


def lane_group_variable(matcher: str = "") -> dashboard.QueryVariable:
    """Cars, trucks, people on foot (CONTRACT.md, "Lane groups"): the groups the queues have,
    several at once; `all` is the one group of a checkpoint without groups."""
    selector = m.LANES_OPEN.series + ("{" + matcher + "}" if matcher else "")
    return label_variable("lane_group", "Lane group", selector).multi(True).include_all(True).all_value(".*")


def base(uid: str, title: str, description: str) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["bordermon"])
        .refresh("30s")
        .time("now-24h", "now")
        .timezone("utc")
        .with_variable(datasource_variable())
    )


def with_panels(d: dashboard.Dashboard, panels: Iterable[cogbuilder.Builder[dm.Panel]]) -> dashboard.Dashboard:
    """`d` with the panels added in order (Grafana lays them out left to right, top to bottom)."""
    for panel in panels:
        d = d.with_panel(panel)
    return d


def overview() -> dashboard.Dashboard:
    d = base(
        "bordermon-overview",
        "Border overview",
        "Every checkpoint at a glance: wait status on a map, net inflow, how many stayed, queues, alerts.",
    ).with_variable(lane_group_variable())
    return with_panels(d, [
        status_map(),
        *stayed_and_firing(),
        *net_inflow(),
        arrivals_against_baseline(),
        *queues_and_waits(),
        *congestion_tables(),
    ])  # fmt: skip


def status_map() -> geomap.Panel:
    """Every checkpoint on a map, coloured by its QueueOverload state."""
    return (
        geomap.Panel()
        .title("Checkpoints by wait status")
        .description("Colour: green no QueueOverload, orange warning firing, red critical firing.")
        .span(12)
        .height(12)
        .with_target(
            q(
                f"max by (checkpoint, name, lat, lon) "
                f"({m.CHECKPOINT_INFO.series} * on (checkpoint) group_left {STATUS})",
                instant=True,
                table_fmt=True,
            )
        )
        .view(geomap.MapViewConfig().id("coords").lat(50).lon(65).zoom(4))
        .tooltip(geomap.TooltipOptions().mode(gm.TooltipMode.DETAILS))
        .basemap(common.MapLayerOptions().type("default").name("Basemap"))
        .layers(
            [
                common.MapLayerOptions()
                .type("markers")
                .name("Checkpoints")
                .location(
                    common.FrameGeometrySource()
                    .mode(cm.FrameGeometrySourceMode.COORDS)
                    .latitude("lat")
                    .longitude("lon")
                )
                .config(
                    {
                        "showLegend": True,
                        "style": {
                            "size": {"fixed": 8},
                            "color": {"field": "Value"},
                            "text": {"field": "checkpoint", "mode": "field"},
                        },
                    }
                )
                .tooltip(True)
            ]
        )
        .unit("none")
        .thresholds(STATUS_STEPS)
        .mappings(STATUS_MAP)
    )


def stayed_and_firing() -> list[stat.Panel | bargauge.Panel]:
    """How many stayed (in all and by citizenship) and how many alerts fire."""
    return [
        stat.Panel()
        .title("Stayed: net entries since state began (all citizenships)")
        .span(6)
        .height(6)
        .with_target(q(f"sum({m.NET_FLOW_CUMULATIVE.series})", "stayed", instant=True))
        .unit("short")
        .thresholds(steps((None, "blue"))),
        stat.Panel()
        .title("QueueOverload alerts firing")
        .span(6)
        .height(6)
        .with_target(q(f"sum by (severity) ({sel(m.ALERTS_FIRING, ALERTING)})", "{{severity}}"))
        .unit("short")
        .thresholds(steps((None, "green"), (1, "red"))),
        bargauge.Panel()
        .title("Stayed by citizenship (in − out)")
        .span(12)
        .height(8)
        .with_target(
            q(f"sort_desc(sum by (citizenship) ({m.NET_FLOW_CUMULATIVE.series}))", "{{citizenship}}", instant=True)
        )
        .unit("short")
        .thresholds(steps((None, "blue"))),
    ]


def net_inflow() -> list[bargauge.Panel]:
    """Net inflow per checkpoint over the last hour and day of event time."""
    return [
        bargauge.Panel()
        .title(f"Net inflow per checkpoint, last {window} of event time")
        .span(12)
        .height(10)
        .with_target(
            q(
                f"sort_desc(sum by (checkpoint) ({sel(m.NET_FLOW, window_is(window))}))",
                "{{checkpoint}}",
                instant=True,
            )
        )
        .unit("short")
        .thresholds(steps((None, "red"), (0, "green")))
        for window in ("1h", "24h")
    ]


def arrivals_against_baseline() -> timeseries.Panel:
    """ArrivalSurge's inputs: the arrival rate, its baseline and the level it fires at."""
    typical = f"sum by (checkpoint, direction) ({m.ARRIVALS_BASELINE.series})"
    return series(
        "Arrivals per hour against their baseline (ArrivalSurge)",
        24,
        9,
        q(f"sum by (checkpoint, direction) ({m.ARRIVALS_RATE.series}) > 0", "{{checkpoint}} {{direction}}"),
        q(typical, "{{checkpoint}} {{direction}} typical", ref="B"),
        q(
            f"clamp_min({SURGE_RATIO:g} * {typical}, {MIN_SURGE_PER_HOUR:g})",  # surge_level, streams/domain/surge.py
            "{{checkpoint}} {{direction}} surge level",
            ref="C",
        ),
        unit="short",
    ).description(
        "Parties that joined the queue in the last event-time hour, the typical rate for that hour at that "
        "checkpoint (median of the same hour over past weeks, or days), and the level ArrivalSurge fires at "
        "when held for 30 minutes. Absent baselines: less than three days of history."
    )


def queues_and_waits() -> list[timeseries.Panel | bargauge.Panel]:
    """Queue length, both wait figures and the hours until the critical threshold."""
    return [
        series(
            "Queue length (parties)",
            12,
            9,
            q(f"sum by (checkpoint, direction, lane_group) ({sel(m.QUEUE_LENGTH, LG)}) > 0", QUEUE_LEGEND),
            unit="short",
        ),
        timeseries.Panel()
        .title("Estimated wait")
        .description("queue / (lanes × capacity). Thresholds drawn for road checkpoints (2 h / 6 h).")
        .span(12)
        .height(9)
        .with_target(q(f"max by (checkpoint, direction, lane_group) ({sel(m.WAIT_ESTIMATE, LG)}) > 0", QUEUE_LEGEND))
        .unit("s")
        .min(0)
        .thresholds(WAIT_STEPS),
        timeseries.Panel()
        .title("Expected wait (measured clearance)")
        .description(
            "queue / (lanes × the clearance rate measured over the last hour while busy, longer for slow "
            "lanes): what a party joining now can expect. Near the nominal capacity while few crossings were seen."
        )
        .span(12)
        .height(9)
        .with_target(q(f"max by (checkpoint, direction, lane_group) ({sel(m.WAIT_EXPECTED, LG)}) > 0", QUEUE_LEGEND))
        .unit("s")
        .min(0)
        .thresholds(WAIT_STEPS),
        bargauge.Panel()
        .title("Hours until the critical threshold, at current rates (capped at 24 h)")
        .description("The forecast behind QueueOverloadForecast: shortest first. 24 means not growing.")
        .span(12)
        .height(9)
        .with_target(
            q(
                f"sort(min by (checkpoint, direction, lane_group) (clamp_max({FORECAST_CRITICAL}, 86400)) / 3600)",
                QUEUE_LEGEND,
                instant=True,
            )
        )
        .unit("h")
        .thresholds(steps((None, "red"), (1.5, "orange"), (6, "green"))),
    ]


def congestion_tables() -> list[table.Panel]:
    """The most congested checkpoints and the firing alerts, as tables."""
    return [
        table.Panel()
        .title("Most congested checkpoints")
        .span(12)
        .height(9)
        .with_target(
            q(
                f"topk(10, max by (checkpoint, direction, lane_group) ({sel(m.WAIT_ESTIMATE, LG)}))",
                instant=True,
                table_fmt=True,
            )
        )
        .unit("s")
        .thresholds(WAIT_STEPS),
        table.Panel()
        .title("Firing QueueOverload alerts")
        .description("Checkpoints and directions whose alert is firing now (1).")
        .span(12)
        .height(9)
        .with_target(
            q(
                f"max by (checkpoint, direction, lane_group, severity) ({sel(m.ALERTS_FIRING, LG)})",
                instant=True,
                table_fmt=True,
            )
        )
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="filterByValue",
                options={
                    "type": "include",
                    "match": "any",
                    "filters": [{"fieldName": "Value", "config": {"id": "greater", "options": {"value": 0}}}],
                },
            )
        )
        .unit("none")
        .thresholds(steps((None, "green"), (1, "red"))),
    ]


def drilldown() -> dashboard.Dashboard:
    d = (
        base(
            "bordermon-checkpoint",
            "Checkpoint drill-down",
            "One checkpoint, both directions: lanes, queue, wait against its thresholds, flows, alerts.",
        )
        .with_variable(label_variable("checkpoint", "Checkpoint", m.CHECKPOINT_INFO.series))
        .with_variable(lane_group_variable(CP))
    )
    return with_panels(d, [
        wait_against_thresholds(),
        *arrivals_and_forecast(),
        *queue_lanes_and_persons(),
        net_flow_windows(),
        alert_timeline(),
        *latest_and_totals(),
    ])  # fmt: skip


def wait_against_thresholds() -> timeseries.Panel:
    """The three waits of one checkpoint's queues and the thresholds QueueOverload compares with."""
    return series(
        "Wait: estimated (nominal capacity) vs observed vs expected, against the thresholds",
        24,
        9,
        q(f"max by (direction, lane_group) ({sel(m.WAIT_ESTIMATE, CP, LG)})", "estimated " + DG),
        q(f"max by (direction, lane_group) ({sel(m.WAIT_OBSERVED, CP, LG)})", "observed " + DG, ref="C"),
        q(f"max by (direction, lane_group) ({sel(m.WAIT_EXPECTED, CP, LG)})", "expected " + DG, ref="D"),
        q(
            f"max by (lane_group, severity) ({sel(m.WAIT_THRESHOLD, CP, LG)})",
            "{{lane_group}} {{severity}} threshold",
            ref="B",
        ),
        unit="s",
    ).description(
        "estimated: the contract's queue / (lanes × nominal capacity), which QueueOverload uses; observed: "
        "what the last party cleared waited; expected: the queue over the measured clearance rate."
    )


def arrivals_and_forecast() -> list[timeseries.Panel]:
    """What drives the queue (arrivals against clearance) and where it is heading."""
    return [
        series(
            "Arrivals vs clearance per hour",
            12,
            8,
            q(f"sum by (direction) ({sel(m.ARRIVALS_RATE, CP)})", "arriving {{direction}}"),
            q(f"sum by (direction) ({sel(m.CLEARANCE_RATE, CP, LG)})", "cleared {{direction}}", ref="B"),
            unit="short",
        ).description("The queue grows while arrivals exceed clearance; their gap drives the forecast."),
        series(
            "Hours until the critical threshold (forecast, capped at 24 h)",
            12,
            8,
            q(
                f"min by (direction, lane_group) (clamp_max({sel(m.OVERLOAD_FORECAST, CRITICAL, CP, LG)}, 86400))"
                " / 3600",
                DG,
            ),
            unit="h",
        ).thresholds(steps((None, "red"), (1.5, "orange"), (6, "green"))),
    ]


def queue_lanes_and_persons() -> list[timeseries.Panel]:
    """The queue, the lanes serving it, and the persons they clear."""
    return [
        series(
            "Queue (parties)",
            8,
            8,
            q(f"sum by (direction, lane_group) ({sel(m.QUEUE_LENGTH, CP, LG)})", DG),
            unit="short",
        ),
        series(
            "Lanes open", 8, 8, q(f"sum by (direction, lane_group) ({sel(m.LANES_OPEN, CP, LG)})", DG), unit="short"
        ).thresholds(steps((None, "red"), (1, "green"))),
        series(
            "Persons cleared per hour",
            8,
            8,
            q(f"sum by (direction) (rate({sel(m.CROSSING_PERSONS, CP)}{RATE})) * 3600", "{{direction}}"),
            unit="short",
        ),
    ]


def net_flow_windows() -> timeseries.Panel:
    return series(
        "Net flow (in − out) over event-time windows",
        12,
        8,
        q(f"sum by (window) ({sel(m.NET_FLOW, CP)})", "{{window}}"),
        unit="short",
        minimum=None,
    )


def alert_timeline() -> statetimeline.Panel:
    """When QueueOverload (per severity) and its forecast fired, per queue."""
    return (
        statetimeline.Panel()
        .title("QueueOverload and its forecast")
        .span(12)
        .height(8)
        .with_target(
            q(f"max by (direction, lane_group, severity) ({sel(m.ALERTS_FIRING, CP, LG)})", DG + " {{severity}}")
        )
        .with_target(q(f"max by (direction, lane_group) ({sel(m.FORECAST_FIRING, CP, LG)})", DG + " forecast", ref="B"))
        .unit("none")
        .thresholds(steps((None, "green"), (1, "red")))
    )


def latest_and_totals() -> list[stat.Panel]:
    return [
        stat.Panel()
        .title("Latest event time")
        .span(12)
        .height(4)
        .with_target(q(f"max({sel(m.LAST_EVENT, CP)}) * 1000", "latest", instant=True))
        .unit("dateTimeAsIso"),
        stat.Panel()
        .title("Persons cleared in total")
        .span(12)
        .height(4)
        .with_target(q(f"sum by (direction) ({sel(m.CROSSING_PERSONS, CP)})", "{{direction}}", instant=True))
        .unit("short"),
    ]


def pipeline() -> dashboard.Dashboard:
    d = base(
        "bordermon-pipeline",
        "Pipeline health",
        "Is the pipeline keeping up? Throughput, rejects, lag, latency, workers, dead letters.",
    )
    # Live operations only, so the global rates and the lag read the recording rules; the other
    # dashboards read raw series because they also serve backfilled history, which has none.
    panels = [
        ("Events accepted per second by type (5 min)", EVENTS_ACCEPTED_RATE, "{{type}}", "ops"),
        ("Messages rejected per second by reason (5 min)", EVENTS_REJECTED_RATE, "{{reason}}", "ops"),
        ("Consumer lag (messages), all workers", CONSUMER_LAG_SUM, "lag", "short"),
        ("Consumer lag by worker and partition", f"sum by (instance, partition) ({m.CONSUMER_LAG.series})",
         "{{instance}} p{{partition}}", "short"),
        ("Ingest latency p99 (broker append to processed)",
         f"histogram_quantile(0.99, sum by (le) (rate({m.INGEST_LATENCY.bucket}{RATE})))", "p99", "s"),
        ("Batch processing time p99",
         f"histogram_quantile(0.99, sum by (le, instance) (rate({m.BATCH_DURATION.bucket}{RATE})))",
         "{{instance}}", "s"),
        ("Workers up", f"up{{{job_selector()}}}", "{{instance}}", "none"),
        ("Dead letters in the last hour", f"sum by (reason) (increase({m.EVENTS_REJECTED.series}[1h]))",
         "{{reason}}", "short"),
        ("Worker memory (RSS)", f"process_resident_memory_bytes{{{job_selector()}}}", "{{instance}}", "bytes"),
        ("Events off their checkpoint's home partition (forwarded; see README, Publishing events)",
         f"sum by (checkpoint, partitioner) (rate({m.EVENTS_OFF_PARTITION.series}{RATE}))",
         "{{checkpoint}} via {{partitioner}}", "ops"),
    ]  # fmt: skip
    for title, expr, legend, unit in panels:
        panel = series(title, 12, 8, q(expr, legend), unit=unit)
        if title == "Workers up":
            panel = panel.thresholds(steps((None, "red"), (1, "green"))).max(1)
        d = d.with_panel(panel)
    return d


DASHBOARDS = {"overview.json": overview, "checkpoint.json": drilldown, "pipeline.json": pipeline}


def build_model(name: str) -> dm.Dashboard:
    model = DASHBOARDS[name]().build()
    for panel in model.panels or []:
        panel.datasource = DS  # panel-level too, so Grafana never falls back to its default
    return model


def render() -> dict[str, str]:
    return {
        name: json.dumps(build_model(name), cls=JSONEncoder, indent=2, sort_keys=True) + "\n" for name in DASHBOARDS
    }


def main() -> int:
    check = "--check" in sys.argv
    stale = []
    for name, text in render().items():
        path = OUT / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"dashboards out of date: {', '.join(stale)}; run python -m dashboards.generate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
