"""The batch processor against the independent oracle, in process (no broker)."""

import time

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from bordermon.registry import parse_registry
from producers.mixedlog import mixed_log
from streams.metrics import StateCollector
from streams.processor import Processor, canonical_partition
from tests.checks import assert_alerts_match, assert_metrics_match, parse_metrics
from tests.oracle import run_oracle

CHECKPOINTS = ["syrym", "kairak", "zhana-zhol", "astana-airport"]
REGISTRY = """
alerting: {for_minutes: 10, resolve_ratio: 0.8}
checkpoints:
  - {id: syrym, name: S, region: R, lat: 0, lon: 0, mode: road, lanes: {in: 1, out: 1},
     lane_capacity_per_hour: 30, wait_warning_minutes: 60, wait_critical_minutes: 180}
  - {id: kairak, name: K, region: R, lat: 0, lon: 0, mode: road, lanes: {in: 2, out: 2},
     lane_capacity_per_hour: 30, wait_warning_minutes: 30, wait_critical_minutes: 120,
     alerting: {for_minutes: 0, resolve_ratio: 0.5}}
  - {id: zhana-zhol, name: Z, region: R, lat: 0, lon: 0, mode: road, lanes: {in: 2, out: 2},
     lane_capacity_per_hour: 40, wait_warning_minutes: 45, wait_critical_minutes: 240}
  - {id: astana-airport, name: A, region: R, lat: 0, lon: 0, mode: air, lanes: {in: 3, out: 3},
     lane_capacity_per_hour: 40, wait_warning_minutes: 20, wait_critical_minutes: 60}
  - {id: idle, name: I, region: R, lat: 0, lon: 0, mode: road, lanes: {in: 2, out: 1},
     lane_capacity_per_hour: 40, wait_warning_minutes: 20, wait_critical_minutes: 60}
"""


def partitioned(lines, partitions):
    """Assign offsets per partition the way the replayer's keyed producer would."""
    offsets = [0] * partitions
    out = []
    for i, line in enumerate(lines):
        try:
            cid = orjson.loads(line).get("checkpoint_id")
        except (orjson.JSONDecodeError, AttributeError):
            cid = None
        p = canonical_partition(cid, partitions) if isinstance(cid, str) else i % partitions
        out.append((p, offsets[p], cid.encode() if isinstance(cid, str) else None, line))
        offsets[p] += 1
    return out


def exported(proc):
    reg = CollectorRegistry()
    reg.register(StateCollector(proc, lambda: set(range(proc.partitions))))
    return parse_metrics(generate_latest(reg).decode())


@pytest.fixture(scope="module")
def log():
    return mixed_log(CHECKPOINTS, good_count=8000, seed=11)


@pytest.fixture(scope="module")
def expected(log):
    return run_oracle(log, REGISTRY, time.time())


@pytest.mark.parametrize("partitions", [1, 4])
def test_processor_matches_oracle(log, expected, partitions):
    registry = parse_registry(REGISTRY, "test")
    proc = Processor(registry, partitions)
    messages = partitioned(log, partitions)
    alerts, deadletters = [], []
    for i in range(0, len(messages), 997):
        result = proc.process(messages[i : i + 997])
        alerts += [v for _, v in result.alerts]
        deadletters += [orjson.loads(v) for _, v in result.deadletters]
    assert_metrics_match(exported(proc), expected, [*CHECKPOINTS, "idle"])
    assert_alerts_match(alerts, expected)
    assert expected.transitions, "the log must exercise alerts"
    assert len(deadletters) == sum(expected.rejected.values())
    assert len({(d["partition"], d["offset"]) for d in deadletters}) == len(deadletters)


def test_restart_from_persisted_writes_redelivery_is_not_double_counted(log, expected):
    registry = parse_registry(REGISTRY, "test")
    messages = partitioned(log, 4)
    store: dict[bytes, bytes] = {}

    def persist(result):
        for _, k, v in result.writes:
            if v is None:
                store.pop(k, None)
            else:
                store[k] = v

    first = Processor(registry, 4, get=store.get)
    alerts = []
    for i in range(0, 5000, 500):
        r = first.process(messages[i : i + 500])
        persist(r)
        alerts += [v for _, v in r.alerts]
    # A "crash": the next batch is processed but its writes never reach the changelog.
    lost = first.process(messages[5000:5500])
    assert lost.processed == 500
    second = Processor(registry, 4, get=store.get)
    # Faust redelivers from the last committed offset, which may be far behind the state.
    skipped = 0
    for i in range(3000, len(messages), 700):
        r = second.process(messages[i : i + 700])
        persist(r)
        skipped += r.skipped
        alerts += [v for _, v in r.alerts]
    assert skipped == 2000
    assert_metrics_match(exported(second), expected, [*CHECKPOINTS, "idle"])
    assert_alerts_match(alerts, expected)


def test_wrong_partition_is_rejected_as_invalid():
    registry = parse_registry(REGISTRY, "test")
    proc = Processor(registry, 4)
    good = b'{"event_id":"a","type":"arrival","checkpoint_id":"syrym","direction":"in","ts":"2022-09-21T00:00:00Z"}'
    right = canonical_partition("syrym", 4)
    result = proc.process([((right + 1) % 4, 0, None, good), (right, 0, b"syrym", good)])
    assert [orjson.loads(v)["reason"] for _, v in result.deadletters] == ["invalid"]
    assert proc.state[right].checkpoints["syrym"].dirs["in"].queue == 1


def test_compaction_keeps_state_and_bounds_live_deltas(monkeypatch, log, expected):
    import streams.processor as mod

    monkeypatch.setattr(mod, "MAX_LIVE_DELTAS", 5)
    monkeypatch.setattr(mod, "COMPACT_CHUNK", 300)
    registry = parse_registry(REGISTRY, "test")
    store: dict[bytes, bytes] = {}
    proc = Processor(registry, 1, get=store.get)
    for i in range(0, len(log), 50):
        r = proc.process(partitioned(log, 1)[i : i + 50])
        for _, k, v in r.writes:
            store.pop(k, None) if v is None else store.__setitem__(k, v)
        assert len(proc.state[0].live) <= 5 + 1 + 40
    restored = Processor(registry, 1, get=store.get)
    restored.partition(0)
    assert_metrics_match(exported(restored), expected, [*CHECKPOINTS, "idle"])
    assert len([k for k in store if k.startswith(b"d:")]) == len(restored.state[0].live)
