"""The public feed in CBP's shape, from the pipeline state: fields, lane types, statuses, schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson

from bordermon.registry import parse_registry
from streams.domain.processor import Processor
from streams.domain.waitsfeed import STALE_SECONDS, waits_feed
from tests.fixtures.mixedlog import mixed_log
from tests.fixtures.registry import CHECKPOINTS, GROUPED_REGISTRY, GROUPS

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs/api/waits.schema.json").read_text())
CBP_PORT_FIELDS = {"port_number", "border", "port_name", "crossing_name", "hours", "date", "port_status",
                   "commercial_vehicle_lanes", "passenger_vehicle_lanes", "pedestrian_lanes"}  # fmt: skip
CBP_LANE_FIELDS = {"update_time", "operational_status", "delay_minutes", "lanes_open"}
WALL = 2_000_000_000.0


def fed(lines: list[bytes]) -> tuple[Processor, list[dict]]:
    proc = Processor(parse_registry(GROUPED_REGISTRY, "test"), 1)
    proc.process_events(0, [(i, None, line, 0) for i, line in enumerate(lines)], now=WALL)
    checkpoints = list(proc.partition(0).checkpoints.values())
    return proc, waits_feed(checkpoints, WALL + 60)


def test_every_entry_has_cbps_fields_and_keeps_the_schema():
    _, feed = fed(mixed_log(CHECKPOINTS, good_count=3000, seed=5, lane_groups=GROUPS))
    jsonschema.validate(feed, SCHEMA)
    assert [e["port_number"] for e in feed] == [f"{c}/{d}" for c in sorted(CHECKPOINTS) for d in ("in", "out")]
    for entry in feed:
        assert set(entry) >= CBP_PORT_FIELDS
        for lane_type in ("commercial_vehicle_lanes", "passenger_vehicle_lanes", "pedestrian_lanes"):
            assert {"maximum_lanes", "standard_lanes"} <= set(entry[lane_type])
            assert set(entry[lane_type]["standard_lanes"]) == CBP_LANE_FIELDS


def test_lane_groups_map_to_cbps_three_types_and_carry_the_queue_figures():
    proc, feed = fed(mixed_log(CHECKPOINTS, good_count=3000, seed=5, lane_groups=GROUPS))
    by_port = {e["port_number"]: e for e in feed}
    syrym = proc.partition(0).checkpoints["syrym"]
    entry = by_port["syrym/in"]
    assert entry["passenger_vehicle_lanes"]["lane_groups"] == ["cars"]
    assert entry["commercial_vehicle_lanes"]["lane_groups"] == ["trucks"]
    assert entry["pedestrian_lanes"]["lane_groups"] == ["foot"]
    for lane_type, group in (("passenger_vehicle_lanes", "cars"), ("commercial_vehicle_lanes", "trucks"),
                             ("pedestrian_lanes", "foot")):  # fmt: skip
        q, shown = syrym.queue("in", group), entry[lane_type]["standard_lanes"]
        if q.lanes == 0:
            assert shown["operational_status"] == "Lanes Closed" and shown["delay_minutes"] == ""
            continue
        minutes = round(q.expected_wait_seconds(syrym.last_ts) / 60)
        assert shown["delay_minutes"] == str(minutes) and shown["lanes_open"] == str(q.lanes)
        assert shown["operational_status"] == ("no delay" if minutes <= 5 else "delay")
    # Two groups of one type (kairak's cars and buses are both passenger lanes): lanes summed,
    # the longest wait of those open.
    kairak, both = proc.partition(0).checkpoints["kairak"], by_port["kairak/out"]["passenger_vehicle_lanes"]
    assert both["lane_groups"] == ["cars", "buses"]
    queues = [kairak.queue("out", g) for g in ("cars", "buses")]
    assert both["maximum_lanes"] == "3"
    open_queues = [q for q in queues if q.lanes > 0]
    assert open_queues, "this log leaves a lane open"
    assert both["standard_lanes"]["lanes_open"] == str(sum(q.lanes for q in open_queues))
    want = round(max(q.expected_wait_seconds(kairak.last_ts) for q in open_queues) / 60)
    assert both["standard_lanes"]["delay_minutes"] == str(want)
    # Without groups: a road checkpoint's lanes are passenger lanes, an airport's pedestrian lanes.
    assert by_port["zhana-zhol/in"]["passenger_vehicle_lanes"]["lane_groups"] == ["all"]
    assert by_port["zhana-zhol/in"]["commercial_vehicle_lanes"]["maximum_lanes"] == "N/A"
    assert by_port["astana-airport/in"]["pedestrian_lanes"]["lane_groups"] == ["all"]
    assert by_port["astana-airport/in"]["border"] == "Airport"


def test_a_closed_group_a_stale_checkpoint_and_one_never_seen():
    arrival = {"type": "arrival", "checkpoint_id": "syrym", "direction": "out", "ts": "2022-09-21T06:15:00Z"}
    lines = [orjson.dumps({**arrival, "event_id": f"a{i}", "mode": "truck"}) for i in range(3)]
    proc, feed = fed(lines)
    trucks_out = next(e for e in feed if e["port_number"] == "syrym/out")["commercial_vehicle_lanes"]
    assert trucks_out["standard_lanes"] == {"update_time": "At 11:15 am UTC+5", "operational_status": "Lanes Closed",
                                           "delay_minutes": "", "lanes_open": "0"}  # fmt: skip
    entry = next(e for e in feed if e["port_number"] == "syrym/out")
    assert (entry["date"], entry["time"], entry["port_status"]) == ("9/21/2022", "11:15:00", "Open")
    later = waits_feed(proc.partition(0).checkpoints.values(), WALL + STALE_SECONDS + 1)
    pending = next(e for e in later if e["port_number"] == "syrym/out")["passenger_vehicle_lanes"]["standard_lanes"]
    assert pending == {"update_time": "", "operational_status": "Update Pending", "delay_minutes": "",
                       "lanes_open": ""}  # fmt: skip
    jsonschema.validate(later, SCHEMA)
