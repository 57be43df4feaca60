"""The processor and commit protocol against the independent oracle, in process (no broker).

Messages are placed on partitions as real producers would (murmur2, CRC32, FNV-1a, random, no
key); the checkpoint's state lives on its home partition whatever partition a message arrived
on, and the results equal the oracle's, also across crashes at the worst moment.
"""

import itertools
import time
from collections import Counter

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from bordermon import metrics as catalog
from bordermon.config import ALERTS_TOPIC, DEADLETTER_TOPIC, EVENTS_TOPIC, REPARTITION_TOPIC
from bordermon.registry import parse_registry
from harness.metrics import parse_metrics
from streams.domain.metrics import StateCollector
from streams.domain.processor import Processor, home_partition
from streams.domain.stateformat import StateFormatError, record_key
from tests.fixtures.checks import assert_alerts_match, assert_metrics_match
from tests.fixtures.inprocess import InProcessWorker, MemoryBroker, crash_in_rounds, publish
from tests.fixtures.mixedlog import mixed_log
from tests.fixtures.oracle import run_oracle
from tests.fixtures.registry import ALL_CHECKPOINTS, CHECKPOINTS, GROUPED_REGISTRY, GROUPS, REGISTRY


def exported(proc):
    reg = CollectorRegistry()
    reg.register(StateCollector(proc, lambda: set(range(proc.partitions))))
    return parse_metrics(generate_latest(reg).decode())


@pytest.fixture(scope="module")
def log():
    return mixed_log(CHECKPOINTS, good_count=6000, seed=11)


@pytest.fixture(scope="module")
def expected(log):
    return run_oracle(log, REGISTRY, time.time())


@pytest.fixture(scope="module")
def grouped_log():
    """Modes mixed, `lanes` events naming groups (and now and then one their checkpoint lacks)."""
    return mixed_log(CHECKPOINTS, good_count=6000, seed=12, lane_groups=GROUPS)


@pytest.fixture(scope="module")
def grouped_expected(grouped_log):
    return run_oracle(grouped_log, GROUPED_REGISTRY, time.time())


def worker_for(log, partitions, partitioner, keyed=True, registry=REGISTRY, **options):
    broker = MemoryBroker()
    broker.create(EVENTS_TOPIC, partitions)
    publish(broker, log, partitioner, keyed=keyed)
    return InProcessWorker(parse_registry(registry, "test"), broker, **options)


def assert_exactly_once(worker, expected, lines):
    """Metrics, alerts and dead letters equal the oracle's; each output is on its topic once."""
    assert_metrics_match(exported(worker.processor), expected, ALL_CHECKPOINTS)
    alerts = worker.broker.values(ALERTS_TOPIC)
    assert_alerts_match(alerts, expected)
    assert len({orjson.loads(a)["transition_id"] for a in alerts}) == len(alerts), "an alert was sent twice"
    dead = [orjson.loads(v) for v in worker.broker.values(DEADLETTER_TOPIC)]
    assert len({(d["partition"], d["offset"]) for d in dead}) == len(dead), "a dead letter was written twice"
    assert Counter(d["reason"] for d in dead) == +expected.rejected
    assert sum(expected.accepted.values()) + len(dead) == len(lines)


@pytest.mark.parametrize("partitions", [1, 3, 4, 12])
@pytest.mark.parametrize("partitioner", ["murmur2", "crc32", "fnv1a"])
def test_any_consistent_partitioner_and_count_matches_oracle(log, expected, partitions, partitioner):
    worker = worker_for(log, partitions, partitioner)
    worker.run()
    assert_exactly_once(worker, expected, log)
    assert expected.transitions, "the log must exercise alerts"
    forwarded = len(worker.broker.values(REPARTITION_TOPIC))
    if partitions == 1 or partitioner == "murmur2":
        assert forwarded == 0, "messages on their home partition are processed in place"
    else:
        assert forwarded > 0


@pytest.mark.parametrize("placement", ["random", "no_key"])
def test_scattered_messages_are_all_counted(log, expected, placement):
    """A random or unkeyed placement keeps no order across partitions (no Kafka client could), so
    only what does not depend on order is compared: every message is accepted or rejected once,
    and the totals match."""
    worker = worker_for(log, 4, "random", keyed=placement != "no_key")
    worker.run()
    metrics = exported(worker.processor)
    for t in ("arrival", "crossing", "lanes"):
        assert metrics[catalog.EVENTS_ACCEPTED.series][(("type", t),)] == expected.accepted[t]
    for r in ("malformed", "invalid", "unknown_checkpoint", "duplicate"):
        assert metrics[catalog.EVENTS_REJECTED.series][(("reason", r),)] == expected.rejected[r]
    for (cid, d), persons in expected.persons.items():
        assert metrics[catalog.CROSSING_PERSONS.series][(("checkpoint", cid), ("direction", d))] == persons
    off = metrics[catalog.EVENTS_OFF_PARTITION.series]
    label = "no_key" if placement == "no_key" else "unknown"
    assert {dict(k)["partitioner"] for k in off} <= {label, "crc32", "fnv1a"}  # a random hit may look hashed
    assert sum(v for k, v in off.items() if dict(k)["partitioner"] == label) > 0


def test_off_partition_counter_names_the_producer_partitioner(log):
    worker = worker_for(log, 8, "crc32")
    worker.run()
    off = exported(worker.processor)[catalog.EVENTS_OFF_PARTITION.series]
    by_partitioner = Counter()
    for labels, n in off.items():
        by_partitioner[dict(labels)["partitioner"]] += n
    assert set(by_partitioner) == {"crc32"}
    assert by_partitioner["crc32"] == len(worker.broker.values(REPARTITION_TOPIC))


@pytest.mark.parametrize("topic", [EVENTS_TOPIC, REPARTITION_TOPIC])
@pytest.mark.parametrize("at_batch", [5, 17, 40])
def test_crash_after_outputs_before_state_neither_loses_nor_repeats(log, expected, topic, at_batch):
    """The worst moment: a batch's forwards, dead letters and alerts reached the broker, its state
    did not, and the committed offsets lag further behind. The replacement re-processes; every
    output stays on its topic exactly once and the state equals the oracle's."""
    worker = worker_for(log, 4, "crc32", batch=200, commit_every=4)
    worker.run(max_batches=at_batch)
    partition = next(p for p in range(4) if worker.positions[(topic, p)] < len(worker.broker.topics[topic][p]))
    worker.crash(topic, partition)
    worker.restart()
    worker.run()
    assert_exactly_once(worker, expected, log)


def test_repeated_crashes_while_forwarding(log, expected):
    worker = worker_for(log, 3, "fnv1a", batch=150, commit_every=5)
    crash_in_rounds(worker, 6, lambda round_: 7 + round_)
    assert_exactly_once(worker, expected, log)


@pytest.mark.parametrize(("partitions", "partitioner"), [(1, "murmur2"), (4, "crc32")])
def test_lane_groups_queue_apart_and_match_the_oracle(grouped_log, grouped_expected, partitions, partitioner):
    """Each lane group is a queue of its own: lengths, lanes, waits and alerts per group equal the
    oracle's, and a `lanes` event naming a group its checkpoint lacks is rejected as invalid."""
    worker = worker_for(grouped_log, partitions, partitioner, registry=GROUPED_REGISTRY)
    worker.run()
    assert_exactly_once(worker, grouped_expected, grouped_log)
    groups_alerted = {(t[0], t[2]) for t in grouped_expected.transitions}
    assert {("syrym", "trucks"), ("syrym", "foot"), ("kairak", "buses")} <= groups_alerted
    dead = [orjson.loads(v) for v in worker.broker.values(DEADLETTER_TOPIC)]
    named = [d for d in dead if "lane_group 'no-such-group' is not a lane group of checkpoint" in d["error"]]
    assert named and all(d["reason"] == "invalid" for d in named)


def test_lane_groups_survive_crashes_at_the_worst_moment(grouped_log, grouped_expected):
    worker = worker_for(grouped_log, 3, "fnv1a", registry=GROUPED_REGISTRY, batch=150, commit_every=5)
    crash_in_rounds(worker, 4, lambda round_: 9 + round_)
    assert_exactly_once(worker, grouped_expected, grouped_log)


def test_message_on_wrong_partition_is_applied_at_home_not_rejected():
    registry = parse_registry(REGISTRY, "test")
    proc = Processor(registry, 4)
    good = b'{"event_id":"a","type":"arrival","checkpoint_id":"syrym","direction":"in","ts":"2022-09-21T00:00:00Z"}'
    home = home_partition("syrym", 4)
    away = (home + 1) % 4
    result = proc.process_events(away, [(0, b"wrong-key", good, 0)])
    assert not result.deadletters
    [forward] = result.forwards
    assert forward.partition == home and forward.key == b"syrym" and forward.value == good
    rerouted = proc.process_forwarded(home, [(0, forward.key, forward.value, 0, forward.header)])
    assert rerouted.processed == 1
    cs = proc.state[home].checkpoints["syrym"]
    assert cs.queue("in").length == 1 and cs.off_partition == {"other_key": 1}
    again = proc.process_forwarded(home, [(1, forward.key, forward.value, 0, forward.header)])
    assert again.skipped == 1 and cs.queue("in").length == 1, "a re-forwarded copy is not counted again"


def test_state_in_the_previous_format_is_refused_not_misread():
    """Format 1 (JSON) records, as bordermon wrote them before format 2: refused with one line."""
    v1 = b'{"v":1,"applied_offset":41,"rejected":{},"next_seq":0,"live":{},"checkpoints":{}}'
    proc = Processor(parse_registry(REGISTRY, "test"), 4, get={record_key(2): v1}.get)
    with pytest.raises(StateFormatError) as caught:
        proc.partition(2)
    assert "format 1" in str(caught.value) and "\n" not in str(caught.value)


def test_state_of_an_unknown_version_is_refused():
    proc = Processor(parse_registry(REGISTRY, "test"), 4, get={record_key(0): b"BMS\x07whatever"}.get)
    with pytest.raises(StateFormatError, match="format 7, this worker reads format 2"):
        proc.partition(0)


def test_compaction_keeps_state_and_bounds_live_deltas(monkeypatch, log, expected):
    import streams.domain.state as mod

    monkeypatch.setattr(mod, "MAX_LIVE_DELTAS", 5)
    monkeypatch.setattr(mod, "COMPACT_CHUNK", 300)
    worker = worker_for(log, 1, "murmur2", batch=50)
    worker.run()
    for cs in worker.processor.state[0].checkpoints.values():
        assert len(cs.deltas) <= 5 + 1 + 40
    restored = Processor(worker.registry, 1, get=worker.store.get)
    restored.partition(0)
    assert_metrics_match(exported(restored), expected, ALL_CHECKPOINTS)
    live = sum(len(cs.deltas) for cs in restored.state[0].checkpoints.values())
    assert len([k for k in worker.store if k.startswith(b"d:")]) == live


def test_recovered_state_keeps_rates_and_observed_waits(log, expected):
    """Capacity advice and the observed wait survive a restart (arrival times are persisted)."""
    worker = worker_for(log, 4, "murmur2")
    worker.run()
    before = exported(worker.processor)
    restored = Processor(worker.registry, 4, get=worker.store.get)
    for p in range(4):
        restored.partition(p)
    after = exported(restored)
    names = (catalog.ARRIVALS_RATE.series, catalog.LANES_NEEDED.series, catalog.WAIT_OBSERVED.series,
             catalog.WAIT_EXPECTED.series, catalog.CLEARANCE_RATE.series,
             catalog.OVERLOAD_FORECAST.series, catalog.FORECAST_FIRING.series)  # fmt: skip
    for name in names:
        assert after[name] == before[name], name
    assert any(v > 0 for v in before[catalog.ARRIVALS_RATE.series].values())


@pytest.mark.parametrize("registry, lines", [(REGISTRY, "log"), (GROUPED_REGISTRY, "grouped_log")])
def test_a_batch_gives_what_its_events_give_one_at_a_time(request, registry, lines):
    """A batch applies its checkpoints one after another (for the CPU cache): its outputs and the
    state it persists are still those of its events applied one by one in offset order."""
    log = request.getfixturevalue(lines)
    records = [(offset, None, line, 0) for offset, line in enumerate(log)]
    now = time.time()

    def run(batch: int):
        proc = Processor(parse_registry(registry, "test"), 1)
        outputs = {"alerts": [], "deadletters": [], "alert_events": []}
        for start in range(0, len(records), batch):
            result = proc.process_events(0, records[start : start + batch], now)
            outputs["alerts"] += [(o.offset, o.key, o.value) for o in result.alerts]
            outputs["deadletters"] += [(o.offset, o.value) for o in result.deadletters]
            outputs["alert_events"] += result.alert_events
        outputs["state"] = proc.changelog_writes(0)
        return outputs

    one_by_one, batched = run(1), run(500)
    assert batched == one_by_one
    assert len(one_by_one["state"]) > 2 * len(CHECKPOINTS)  # deltas and heads of every checkpoint

    # The regrouping had something to reorder: alerts of different checkpoints interleave in a
    # batch, and dead letters come from both validation and application (duplicates).
    def interleaved(keys: list[bytes]) -> bool:  # some checkpoint's alerts are not contiguous
        return len(list(itertools.groupby(keys))) > len(set(keys))

    batches: dict[int, list[bytes]] = {}
    for offset, key, _ in one_by_one["alerts"]:
        batches.setdefault(offset // 500, []).append(key)
    assert any(map(interleaved, batches.values()))
    assert b'"duplicate"' in b"".join(value for _, value in one_by_one["deadletters"])
