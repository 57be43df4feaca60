"""The metric catalog (`bordermon.metrics`) is what a worker exports, and it keeps the contract."""

from __future__ import annotations

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bordermon import metrics as catalog
from bordermon.registry import parse_registry
from streams.domain.metrics import StateCollector, counter, gauge, histogram
from streams.domain.processor import Processor
from tests.fixtures.events import GOOD
from tests.fixtures.mixedlog import mixed_log
from tests.fixtures.registry import CHECKPOINTS, REGISTRY

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


def test_a_scrape_reuses_a_checkpoints_text_only_while_its_state_is_unchanged():
    """`render` keeps each checkpoint's text between scrapes; every change in between (events,
    re-routed events, lanes, partitions gained or lost, an idle checkpoint's first event) must
    show in the next scrape exactly as a fresh `generate_latest` has it."""
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
