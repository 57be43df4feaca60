"""The metric catalog (`bordermon.metrics`) is what a worker exports, and it keeps the contract."""

from __future__ import annotations

import tracemalloc
from datetime import timedelta

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bordermon import metrics as catalog
from bordermon.registry import parse_registry
from streams.domain import metrics
from streams.domain.alerts import SEVERITIES
from streams.domain.metrics import StateCollector, counter, gauge, histogram
from streams.domain.processor import Processor
from tests.fixtures.events import GOOD
from tests.fixtures.mixedlog import START, mixed_log
from tests.fixtures.registry import CHECKPOINTS, GROUPED_REGISTRY, GROUPS, REGISTRY

# CONTRACT.md, "Metrics (minimum set)" with "Lane groups", written out here as the specification the catalog must keep.
CONTRACT = {
    "border_events_accepted_total": ("type",),
    "border_events_rejected_total": ("reason",),
    "border_crossing_persons_total": ("checkpoint", "direction"),
    "border_net_flow_persons": ("checkpoint", "window"),
    "border_net_flow_cumulative_persons": ("citizenship",),
    "border_queue_length": ("checkpoint", "direction", "lane_group"),
    "border_queue_wait_estimate_seconds": ("checkpoint", "direction", "lane_group"),
    "border_lanes_open": ("checkpoint", "direction", "lane_group"),
    "border_alerts_firing": ("checkpoint", "direction", "lane_group", "severity"),
    "border_last_event_timestamp_seconds": ("checkpoint",),
    "border_queue_wait_observed_seconds": ("checkpoint", "direction", "lane_group"),
    # "Early warning": per checkpoint and direction, every lane group together.
    "border_arrivals_per_hour": ("checkpoint", "direction"),
    "border_arrivals_baseline_per_hour": ("checkpoint", "direction"),
}


@pytest.mark.parametrize("series", sorted(CONTRACT))
def test_the_catalog_keeps_every_contract_metric_with_its_labels(series):
    (metric,) = [m for m in catalog.ALL if m.series == series]
    assert metric.labels == CONTRACT[series]


def test_a_worker_exports_exactly_the_catalog():
    processor = Processor(parse_registry(REGISTRY, "test"), partitions=1)
    events = [{**GOOD, "event_id": f"e{i}", "persons": 1 + i % 3} for i in range(5)]
    records = [(i, b"syrym", orjson.dumps(e), 0) for i, e in enumerate(events)]
    processor.process_events(0, records)
    registry = CollectorRegistry()
    registry.register(StateCollector(processor, lambda: {0}, lambda _p: 10))
    for metric in catalog.PROCESS_METRICS:
        {"histogram": histogram, "counter": counter, "gauge": gauge}[metric.kind](metric, registry)
    exposition = text_string_to_metric_families(generate_latest(registry).decode())
    # prometheus_client's own `_created` timestamps are left aside: they are not ours to name.
    families = {f.name: f for f in exposition if not f.name.endswith("_created")}
    assert set(families) == {m.name for m in catalog.ALL}
    for metric in catalog.ALL:
        family = families[metric.name]
        assert (family.type, family.documentation) == (metric.kind, metric.help), metric.name
        for sample in family.samples:
            if sample.name == metric.series or metric.kind == "histogram":
                assert set(sample.labels) - {"le"} == set(metric.labels), (metric.name, sample.labels)
    assert any(s.value == 5 for s in families[catalog.CHECKPOINT_EVENTS.name].samples), "the events were counted"


def test_the_fast_exposition_is_byte_for_byte_what_prometheus_client_prints():
    """`/metrics` renders the state families itself (`StateCollector.render`); it must equal
    generate_latest over the same collector, with awkward label values and numbers included."""
    registry_text = REGISTRY.replace("name: S,", 'name: "Syrym \\"Mashtakovo\\" \\\\ – Ж",')
    processor = Processor(parse_registry(registry_text, "test"), partitions=2)
    lines = mixed_log(CHECKPOINTS, good_count=3000, seed=21)
    records = [(i, None, line, 0) for i, line in enumerate(lines)]
    for partition in (0, 1):
        processor.process_events(partition, records[partition::2])
    collector = StateCollector(processor, lambda: {0, 1}, lambda p: 5000 + p)
    registry = CollectorRegistry()
    registry.register(collector)
    assert collector.render() == generate_latest(registry)
    assert b'\\"Mashtakovo\\"' in collector.render(), "the awkward name was exported, escaped"
    assert b"+Inf" in collector.render() or b"e+" in collector.render(), "special numbers were exported"


@pytest.mark.parametrize("block", [1, 2, metrics.BLOCK_CHECKPOINTS])
def test_a_scrape_reuses_a_checkpoints_text_only_while_its_state_is_unchanged(block: int, monkeypatch):
    """`render` keeps each block of checkpoints' text between scrapes; every change in between
    (events, re-routed events, lanes, partitions gained or lost, an idle checkpoint's first
    event) must show in the next scrape exactly as a fresh `generate_latest` has it, whichever
    checkpoints share a block."""
    monkeypatch.setattr(metrics, "BLOCK_CHECKPOINTS", block)
    processor = Processor(parse_registry(REGISTRY, "test"), partitions=2)
    owned = {0, 1}
    collector = StateCollector(processor, lambda: set(owned), lambda p: 9000 + p)
    registry = CollectorRegistry()
    registry.register(collector)
    lines = mixed_log(CHECKPOINTS, good_count=4000, seed=3)
    records = [(i, None, line, 0) for i, line in enumerate(lines)]
    scrapes = []

    def scrape() -> bytes:
        body = collector.render()
        assert body == generate_latest(registry), f"scrape {len(scrapes)} differs from a fresh one"
        scrapes.append(body)
        return body

    scrape()  # nothing yet: every checkpoint idle
    processor.process_events(0, records[:1000:2])
    scrape()
    assert scrape() == scrapes[-1], "nothing changed: the same text"
    processor.process_events(1, records[1:3000:2])  # other checkpoints, first events included
    scrape()
    forwards = processor.process_events(0, records[1000:3000:2]).forwards
    assert forwards, "the keyless records include some off their home partition"
    for i, f in enumerate(forwards):
        processor.process_forwarded(f.partition, [(i, f.key, f.value, 0, f.header)])
    body = scrape()
    assert b"border_events_off_partition_total{" in body
    # The same event sent again off its home: counted as re-routed, rejected there as a duplicate.
    again = processor.process_events(0, [(10**6, None, forwards[0].value, 0)]).forwards[0]
    rejected = processor.process_forwarded(again.partition, [(len(forwards), again.key, again.value, 0, again.header)])
    assert rejected.deadletters, "a duplicate: nothing accepted, only the re-routed count moved"
    scrape()
    owned.discard(1)  # partition 1 revoked
    assert b'checkpoint="kairak"' not in scrape() or processor.home("kairak") == 0
    owned.add(1)
    scrape()
    lanes = {"event_id": "lanes-x", "type": "lanes", "checkpoint_id": "syrym", "direction": "in",
             "ts": "2022-09-25T00:00:00Z", "lanes_open": 9}  # fmt: skip
    processor.process_events(processor.home("syrym"), [(10**6, None, orjson.dumps(lanes), 0)])
    assert b'border_lanes_open{checkpoint="syrym",direction="in",lane_group="all"} 9.0' in scrape()
    assert len(set(scrapes)) >= 6, "the scrapes saw the state change"


def test_a_scrape_that_rewrites_every_checkpoint_holds_one_text_not_two(monkeypatch):
    """Each block's old text is let go before its new one is written, so the scrape after every
    checkpoint changed reuses the memory of the one before: at 2,400 checkpoints with lane
    groups, 20 MB of pages not touched again (bench/README.md: ~10,000 page faults a scrape)."""
    monkeypatch.setattr(metrics, "BLOCK_CHECKPOINTS", 4)
    ids = [f"cp-{i:02d}" for i in range(64)]
    registry = "checkpoints:\n" + "".join(
        f"  - {{id: {cid}, name: N, region: R, lat: 0, lon: 0, mode: road, lanes: {{in: 1, out: 1}},"
        " lane_capacity_per_hour: 30, wait_warning_minutes: 60, wait_critical_minutes: 180, lane_groups: ["
        "{id: cars, modes: [car, bus], lanes: {in: 1, out: 1}, lane_capacity_per_hour: 30},"
        "{id: trucks, modes: [truck], lanes: {in: 1, out: 1}, lane_capacity_per_hour: 6}]}\n"
        for cid in ids
    )
    processor = Processor(parse_registry(registry, "test"), partitions=1)
    collector = StateCollector(processor, lambda: {0})
    tracemalloc.start()
    try:
        for round_ in range(2):  # every checkpoint changes before each scrape
            events = [{**GOOD, "event_id": f"{cid}-{round_}", "checkpoint_id": cid} for cid in ids]
            offset = len(ids) * round_
            processor.process_events(0, [(offset + i, None, orjson.dumps(e), 0) for i, e in enumerate(events)])
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            text = sum(map(len, collector.pieces()))
            grew = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert text > 200_000
    assert grew < text / 4, f"the scrape grew memory by {grew} bytes for a text of {text}: both texts were held"


@pytest.mark.parametrize("registry_text", [REGISTRY, GROUPED_REGISTRY], ids=["one group", "lane groups"])
def test_each_exported_sample_is_what_the_state_says(registry_text: str):
    """A scrape writes a queue's samples from one `QueueState.samples` call and a checkpoint's
    from one walk; each value must still be what the state's own methods give (the ones
    `status --json`, the alerts and the waits feed use), and a series absent exactly when its
    value is unknown."""
    processor = Processor(parse_registry(registry_text, "test"), partitions=2)
    days = 5  # the arrivals baseline needs the same hours of earlier days
    lines = [
        line
        for day in range(days)
        for line in mixed_log(CHECKPOINTS, 1500, seed=day, start=START + timedelta(days=day), lane_groups=GROUPS)
    ]
    records = [(i, None, line, 0) for i, line in enumerate(lines)]
    for partition in (0, 1):
        processor.process_events(partition, records[partition::2])
    collector = StateCollector(processor, lambda: {0, 1})
    exported = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(collector.render().decode())
        for s in family.samples
    }
    expected: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def want(metric: catalog.Metric, value: float | None, **labels: str) -> None:
        if value is not None:
            expected[(metric.series, tuple(sorted(labels.items())))] = float(value)

    for cs in collector.owned_checkpoints({0, 1}):
        cid, now = cs.cp.id, cs.last_ts
        for d, surge in cs.surges.items():
            want(catalog.CROSSING_PERSONS, cs.persons[d], checkpoint=cid, direction=d)
            want(catalog.ARRIVALS_RATE, cs.arrivals_per_hour(d), checkpoint=cid, direction=d)
            want(catalog.ARRIVALS_BASELINE, surge.baseline(now) if now else None, checkpoint=cid, direction=d)
            want(catalog.SURGE_FIRING, surge.alert.firing, checkpoint=cid, direction=d)
        for d, q in cs.each_queue():
            at = {"checkpoint": cid, "direction": d, "lane_group": q.group.id}
            want(catalog.QUEUE_LENGTH, q.length, **at)
            want(catalog.WAIT_ESTIMATE, q.wait_seconds(), **at)
            want(catalog.WAIT_OBSERVED, q.observed_wait, **at)
            want(catalog.WAIT_EXPECTED, q.expected_wait_seconds(now), **at)
            want(catalog.CLEARANCE_RATE, q.clearance_per_lane(now) * q.lanes, **at)
            want(catalog.FORECAST_FIRING, q.forecast.firing, **at)
            want(catalog.LANES_OPEN, q.lanes, **at)
            want(catalog.LANES_NEEDED, q.advice(now)[1], **at)
            for severity, alert in q.alerts.items():
                want(catalog.ALERTS_FIRING, alert.firing, **at, severity=severity)
                want(catalog.OVERLOAD_FORECAST, q.forecast_seconds(severity, now), **at, severity=severity)
        for window, net in cs.net_flows().items():
            want(catalog.NET_FLOW, net, checkpoint=cid, window=window)
        want(catalog.LAST_EVENT, now, checkpoint=cid)
        want(catalog.CHECKPOINT_EVENTS, sum(cs.accepted.values()), checkpoint=cid)
        for g in cs.cp.lane_groups:
            for sev in SEVERITIES:
                want(catalog.WAIT_THRESHOLD, g.threshold_seconds(sev), checkpoint=cid, lane_group=g.id, severity=sev)
    per_checkpoint = {m.series for m in catalog.STATE_METRICS if "checkpoint" in m.labels}
    per_checkpoint -= {catalog.EVENTS_OFF_PARTITION.series, catalog.CHECKPOINT_INFO.series}  # not the state's
    assert {k: v for k, v in exported.items() if k[0] in per_checkpoint} == expected
    assert len(expected) > 150, "queues of every checkpoint were compared"
    assert any(k[0] == catalog.ARRIVALS_BASELINE.series for k in expected), "a baseline was compared"
