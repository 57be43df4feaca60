"""The public wait-times feed, in the shape of US CBP's Border Wait Times feed.

Traveller apps, scrapers and newsrooms already read CBP's `bwtnew` JSON: an array of ports, each
with `passenger_vehicle_lanes`, `commercial_vehicle_lanes` and `pedestrian_lanes`, each with a
`standard_lanes` object of strings (`lanes_open`, `delay_minutes`, `operational_status`,
`update_time`). A worker serves the same shape at `GET /api/v1/waits`, one entry per checkpoint
and direction it owns; the schema is `docs/api/waits.schema.json`. What each field holds and why
is in the README ("The public wait-times feed").
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from bordermon.events import DIRECTIONS
from bordermon.registry import Checkpoint, LaneGroup
from streams.domain.state import CheckpointState, QueueState

PASSENGER: Final = "passenger_vehicle_lanes"
COMMERCIAL: Final = "commercial_vehicle_lanes"
PEDESTRIAN: Final = "pedestrian_lanes"
LANE_TYPES: Final = (COMMERCIAL, PASSENGER, PEDESTRIAN)  # CBP's order
# CBP's lane types by the mode of a group's first listed mode. Air travellers queue on foot at
# passport booths; a train is the vehicle its passengers are checked in.
LANE_TYPE_OF_MODE: Final = {"car": PASSENGER, "bus": PASSENGER, "rail": PASSENGER, "truck": COMMERCIAL,
                            "pedestrian": PEDESTRIAN, "air": PEDESTRIAN}  # fmt: skip
# ... and of a group that lists no modes (`all`), by the checkpoint's mode.
LANE_TYPE_OF_CHECKPOINT: Final = {"road": PASSENGER, "rail": PASSENGER, "air": PEDESTRIAN, "pedestrian": PEDESTRIAN}

# CBP's words.
NO_DELAY: Final = "no delay"
DELAY: Final = "delay"
LANES_CLOSED: Final = "Lanes Closed"
UPDATE_PENDING: Final = "Update Pending"
NOT_APPLICABLE: Final = "N/A"
# CBP's own feed says "no delay" up to 5 minutes and "delay" from 10 (its published samples).
NO_DELAY_MINUTES: Final = 5
# CBP updates hourly; a checkpoint with no event for longer has no current figure.
STALE_SECONDS: Final = 3600.0
# Kazakhstan has one time zone, UTC+5, since 1 March 2024; the feed's dates and times are local.
LOCAL: Final = timezone(timedelta(hours=5), "UTC+5")


def lane_type(cp: Checkpoint, group: LaneGroup) -> str:
    """The CBP lane type a lane group is reported under."""
    return LANE_TYPE_OF_MODE[group.modes[0]] if group.modes else LANE_TYPE_OF_CHECKPOINT[cp.mode]


def _local(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC).astimezone(LOCAL)


def _clock(t: float) -> str:
    """CBP's `update_time`: "At 1:17 pm UTC+5"."""
    local = _local(t)
    return f"At {local.hour % 12 or 12}:{local.minute:02d} {'am' if local.hour < 12 else 'pm'} UTC+5"


def _standard(update_time: str, status: str, delay_minutes: str, lanes_open: str) -> dict[str, str]:
    return {
        "update_time": update_time,
        "operational_status": status,
        "delay_minutes": delay_minutes,
        "lanes_open": lanes_open,
    }


def _not_applicable() -> dict[str, Any]:
    """A lane type the checkpoint does not have, as CBP writes it."""
    return {
        "maximum_lanes": NOT_APPLICABLE,
        "standard_lanes": _standard("", NOT_APPLICABLE, "", ""),
        "lane_groups": [],
    }


def _lane_type_entry(queues: list[QueueState], direction: str, last_ts: float | None, fresh: bool) -> dict[str, Any]:
    """One lane type of one direction: its groups' lanes summed, the longest expected wait of
    those with a lane open (a traveller is told the worst queue of the type)."""
    maximum = sum(q.group.initial_lanes(direction) for q in queues)
    entry: dict[str, Any] = {"maximum_lanes": str(maximum), "lane_groups": [q.group.id for q in queues]}
    if not fresh or last_ts is None:
        standard = _standard("", UPDATE_PENDING, "", "")
    else:
        open_queues = [q for q in queues if q.lanes > 0]
        if not open_queues:
            standard = _standard(_clock(last_ts), LANES_CLOSED, "", "0")
        else:
            minutes = round(max(q.expected_wait_seconds(last_ts) for q in open_queues) / 60.0)
            status = NO_DELAY if minutes <= NO_DELAY_MINUTES else DELAY
            standard = _standard(_clock(last_ts), status, str(minutes), str(sum(q.lanes for q in open_queues)))
    entry["standard_lanes"] = standard
    return entry


def port_entries(cs: CheckpointState, wall_now: float) -> list[dict[str, Any]]:
    """The feed's entries of one checkpoint: one per direction, as CBP lists one per crossing."""
    cp, last_ts = cs.cp, cs.last_ts
    fresh = cs.arrived_at is not None and wall_now - cs.arrived_at <= STALE_SECONDS
    entries = []
    for direction in DIRECTIONS:
        by_type: dict[str, list[QueueState]] = {}
        for q in cs.queues[direction].values():
            by_type.setdefault(lane_type(cp, q.group), []).append(q)
        lanes = {
            t: _lane_type_entry(by_type[t], direction, last_ts, fresh) if t in by_type else _not_applicable()
            for t in LANE_TYPES
        }
        status = "Open" if any(lanes[t]["standard_lanes"]["operational_status"] != LANES_CLOSED
                               for t in by_type) else "Closed"  # fmt: skip
        as_of = _local(last_ts) if last_ts is not None else None
        entries.append(
            {
                "port_number": f"{cp.id}/{direction}",
                "border": "Airport" if cp.mode == "air" else "Land Border",
                "port_name": cp.name,
                "crossing_name": "entering Kazakhstan" if direction == "in" else "leaving Kazakhstan",
                "hours": "24 hrs/day",
                "date": f"{as_of.month}/{as_of.day}/{as_of.year}" if as_of else "",
                "time": as_of.strftime("%H:%M:%S") if as_of else "",
                "port_status": status,
                **lanes,
                "checkpoint_id": cp.id,
                "direction": direction,
            }
        )
    return entries


def waits_feed(checkpoints: Iterable[CheckpointState], wall_now: float) -> list[dict[str, Any]]:
    """The feed of the checkpoints given (a worker's own), by checkpoint id."""
    return [entry for cs in sorted(checkpoints, key=lambda cs: cs.cp.id) for entry in port_entries(cs, wall_now)]
