"""Bad input a real feed carries, for testing a pipeline: every kind the operator contract names.

`bad_lines` yields one line of each kind per call (not JSON, invalid against the schema, unknown
checkpoint), built from recent good events so they look plausible. The test suite's mixed log
and the bench's log are made with it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import orjson


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
