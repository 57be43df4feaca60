"""Lane groups in the state: routing by mode, the record that persists them, and the messages."""

from __future__ import annotations

import orjson

from bordermon.events import decode_timed
from bordermon.registry import parse_registry
from streams.domain.alertmessages import AlertMessage
from streams.domain.state import CheckpointState
from streams.domain.stateformat import CheckpointRecord, decode, encode
from tests.fixtures.registry import GROUPED_REGISTRY, REGISTRY

PLAIN = parse_registry(REGISTRY, "test")["syrym"]
GROUPED = parse_registry(GROUPED_REGISTRY, "test")["syrym"]


def event(n: int, kind: str = "arrival", **fields: object) -> tuple:
    raw = {"event_id": f"e{n}", "type": kind, "checkpoint_id": "syrym", "direction": "in",
           "ts": f"2022-09-21T{n // 60:02d}:{n % 60:02d}:00Z", **fields}  # fmt: skip
    decoded = decode_timed(orjson.dumps(raw), now=2e9)
    assert isinstance(decoded, tuple), decoded
    return decoded


def test_modes_queue_in_their_group_and_the_rest_in_the_first():
    cs = CheckpointState(GROUPED)
    for n, mode in enumerate(["car", "bus", "truck", "truck", "pedestrian", None, "rail"]):
        cs.apply(*event(n, **({"mode": mode} if mode else {})))
    assert {g: q.length for g, q in cs.queues["in"].items()} == {"cars": 4, "trucks": 2, "foot": 1}
    cs.apply(*event(10, "lanes", lanes_open=3, lane_group="trucks"))
    cs.apply(*event(11, "lanes", lanes_open=5))
    assert {g: q.lanes for g, q in cs.queues["in"].items()} == {"cars": 5, "trucks": 3, "foot": 1}


def test_the_trucks_wait_uses_their_own_capacity_and_thresholds():
    cs = CheckpointState(GROUPED)
    transitions = []
    for n in range(0, 60):  # one a minute: 6 an hour fill 6 hours of the one truck lane in 36 min
        transitions += cs.apply(*event(n, mode="truck"))
    trucks, cars = cs.queue("in", "trucks"), cs.queue("in", "cars")
    assert trucks.wait_seconds() == 60 / (1 * 6) * 3600 and cars.wait_seconds() == 0
    fired = [a for a in transitions if a.transition.status == "firing" and a.alertname == "QueueOverload"]
    assert {(a.group.id, a.severity) for a in fired} == {("trucks", "warning"), ("trucks", "critical")}
    message = orjson.loads(AlertMessage.of(fired[0]).border_alert())
    assert message["lane_group"] == "trucks" and message["threshold_minutes"] == 120
    assert message["transition_id"].startswith("syrym/in/trucks/warning/")
    labels = AlertMessage.of(fired[0]).alertmanager_alert("http://x")["labels"]
    assert labels["lane_group"] == "trucks"


def test_a_checkpoint_without_groups_keeps_its_record_and_alert_ids():
    cs = CheckpointState(PLAIN)
    transitions = []
    for n in range(0, 90):
        transitions += cs.apply(*event(n, mode="truck"))
    assert set(cs.to_record().queues) == {"in", "out"}, "records written before lane groups read as they are"
    message = orjson.loads(AlertMessage.of(transitions[0]).border_alert())
    assert message["lane_group"] == "all"
    assert message["transition_id"].startswith("syrym/in/warning/"), "the form consumers already de-duplicate on"


def test_state_of_a_checkpoint_that_gained_groups_goes_to_its_first_group():
    before = CheckpointState(PLAIN)
    for n in range(5):
        before.apply(*event(n))
    record = decode(CheckpointRecord, b"c:0:syrym:0", encode(before.to_record()))
    after = CheckpointState.from_record(GROUPED, record)
    assert after.queue("in", "cars").length == 5 and after.queue("in", "trucks").length == 0
    after.apply(*event(6, mode="car"))
    assert after.queue("in").length == 6, "the routing follows the loaded queues"
    again = CheckpointState.from_record(GROUPED, decode(CheckpointRecord, b"k", encode(after.to_record())))
    assert {g: q.length for g, q in again.queues["in"].items()} == {"cars": 6, "trucks": 0, "foot": 0}


def test_a_restored_lorry_queue_measures_its_clearance_as_before():
    """A slow group's longer measuring window is the registry's, not the record's: a queue read
    back from its record gives the same measured rate at every later step."""
    cs = CheckpointState(GROUPED)
    for n in range(0, 240, 4):  # a lorry every 4 minutes, one crossing every 12: the queue grows
        cs.apply(*event(n, mode="truck"))
        if n % 12 == 8:
            cs.apply(*event(n + 1, "crossing", mode="truck", persons=1, citizenship="RU"))
    restored = CheckpointState.from_record(GROUPED, decode(CheckpointRecord, b"k", encode(cs.to_record())))
    for state in (cs, restored):
        assert state.queue("in", "trucks").throughput.window > 3600, "lorries: longer than an hour"
    for n in range(240, 300, 4):
        for state in (cs, restored):
            state.apply(*event(n, "crossing", mode="truck", persons=1, citizenship="RU"))
        assert restored.queue("in", "trucks").clearance_per_lane(restored.last_ts) == cs.queue(
            "in", "trucks"
        ).clearance_per_lane(cs.last_ts)
    assert (
        cs.queue("in", "trucks").clearance_per_lane(cs.last_ts) != GROUPED.group_by_id["trucks"].lane_capacity_per_hour
    )
