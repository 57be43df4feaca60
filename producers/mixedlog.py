"""A deterministic mixed event log: queue surges that overload checkpoints, plus every kind of
bad input the contract names (malformed, invalid, unknown checkpoint, duplicates).

Used by the integration tests and as the sample log of `make run`. The realistic traffic
model is `bordermon simulate`; this one exists to exercise every rule of the pipeline.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone

import orjson

START = datetime(2022, 9, 21, 0, 0, tzinfo=UTC)
CITIZENSHIPS = ("RU", "RU", "RU", "RU", "KZ", "KZ", "BY", "UZ", "KG", "AM")
AGE_BANDS = ("18-28", "18-28", "29-39", "40-59", "0-17", "60+")
PLUS5 = timezone(timedelta(hours=5))


def _ts(dt: datetime, rng: random.Random) -> str:
    # Mix UTC "Z" and Kazakhstan "+05:00" offsets for the same instants.
    if rng.random() < 0.25:
        return dt.astimezone(PLUS5).isoformat()
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def good_events(checkpoints: Sequence[str], count: int, seed: int) -> list[dict]:
    """Interleaved per-checkpoint traffic with surges (arrivals above capacity) and lane changes."""
    rng = random.Random(seed)
    clocks = {c: START + timedelta(seconds=rng.randint(0, 600)) for c in checkpoints}
    surge = dict.fromkeys(checkpoints, False)
    queue = {(c, d): 0 for c in checkpoints for d in ("in", "out")}
    events: list[dict] = []
    n = 0
    while len(events) < count:
        cp = rng.choice(checkpoints)
        if rng.random() < 0.01:
            surge[cp] = not surge[cp]
        clocks[cp] += timedelta(seconds=rng.randint(5, 90))
        t = clocks[cp]
        if rng.random() < 0.03:
            t -= timedelta(seconds=rng.randint(1, 120))  # out-of-order by up to two minutes
        direction = "in" if rng.random() < (0.8 if surge[cp] else 0.55) else "out"
        n += 1
        base = {"event_id": f"{cp}-{n}", "checkpoint_id": cp, "direction": direction}
        r = rng.random()
        arrival_p = 0.75 if surge[cp] else 0.45
        if r < 0.02:
            lanes = rng.choice((0, 0, 1, 2, 3, 4, 6))
            events.append({**base, "type": "lanes", "ts": _ts(t, rng), "lanes_open": lanes})
        elif r < 0.02 + arrival_p or queue[(cp, direction)] == 0:
            queue[(cp, direction)] += 1
            ev = {**base, "type": "arrival", "ts": _ts(t, rng)}
            if rng.random() < 0.5:
                ev["mode"] = rng.choice(("car", "bus", "truck", "pedestrian"))
            events.append(ev)
        else:
            queue[(cp, direction)] -= 1
            ev = {
                **base,
                "type": "crossing",
                "ts": _ts(t, rng),
                "persons": rng.choice((1, 1, 2, 2, 3, 4, 5, 12, 40)),
                "citizenship": rng.choice(CITIZENSHIPS),
            }
            if rng.random() < 0.7:
                ev.update(
                    mode=rng.choice(("car", "bus", "truck")),
                    age_band=rng.choice(AGE_BANDS),
                    sex=rng.choice(("m", "m", "m", "f", "x")),
                )
            if rng.random() < 0.05:
                ev["extra_field"] = {"ignored": True}
            events.append(ev)
    return events


def bad_lines(recent: Sequence[dict], seed: int) -> Iterator[bytes]:
    """One of each kind of bad input per round, built from recent events so they look plausible."""
    rng = random.Random(seed)
    ev = dict(rng.choice(recent))
    ev["event_id"] = f"bad-{rng.getrandbits(40)}"
    yield rng.choice(
        [
            b"not json at all",
            b"",
            b"[1, 2, 3]",
            b'"a string"',
            b'{"truncated": ',
            b"\xff\xfe\x00garbage",
            b"null",
        ]
    )
    variants: list[dict] = [
        {k: v for k, v in ev.items() if k != "ts"},
        {**ev, "type": "departure"},
        {**ev, "direction": "sideways"},
        {**ev, "ts": "2022-09-21T06:15:00"},  # no offset
        {**ev, "ts": "yesterday"},
        {**ev, "ts": "2099-01-01T00:00:00Z"},  # far ahead of the wall clock
        {**ev, "event_id": ""},
        {**ev, "event_id": "x" * 129},
        {**ev, "type": "crossing", "persons": 0, "citizenship": "RU"},
        {**ev, "type": "crossing", "persons": 101, "citizenship": "RU"},
        {**ev, "type": "crossing", "persons": "3", "citizenship": "RU"},
        {**ev, "type": "crossing", "persons": 2, "citizenship": "ZZ"},
        {**ev, "type": "crossing", "persons": 2, "citizenship": "RU", "sex": "q"},
        {**ev, "type": "lanes", "lanes_open": -1},
        {**ev, "type": "lanes", "lanes_open": 2.5},
    ]
    yield orjson.dumps(rng.choice(variants))
    yield orjson.dumps({**ev, "checkpoint_id": rng.choice(("nowhere", "mashtakovo", "SYRYM"))})


def mixed_log(checkpoints: Sequence[str], good_count: int = 20_000, seed: int = 2022) -> list[bytes]:
    """Good events in order, with bad lines and duplicates (near and 25 h later) mixed in."""
    rng = random.Random(seed)
    good = good_events(checkpoints, good_count, seed)
    first = datetime.fromisoformat(good[0]["ts"])
    reuse_at = next(
        (i for i, ev in enumerate(good) if datetime.fromisoformat(ev["ts"]) - first > timedelta(hours=25)), -1
    )
    lines: list[bytes] = []
    recent: list[dict] = []
    for i, ev in enumerate(good):
        line = orjson.dumps(ev)
        lines.append(line)
        recent.append(ev)
        if len(recent) > 50:
            recent.pop(0)
        if rng.random() < 0.04:
            lines.extend(bad_lines(recent, rng.getrandbits(32)))
        if rng.random() < 0.03:
            lines.append(orjson.dumps(rng.choice(recent)))  # a re-sent event
        if i == reuse_at:
            # The first event id used again more than 24 h of event time later: not a duplicate.
            lines.append(orjson.dumps({**good[0], "ts": ev["ts"]}))
    return lines


def write_log(path: str, lines: Sequence[bytes]) -> None:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as handle:
        for line in lines:
            handle.write(line + b"\n")
