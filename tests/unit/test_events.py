import base64

import orjson
import pytest

from bordermon.events import Crossing, Rejected, decode_event
from streams.domain.processor import deadletter_value
from tests.fixtures.events import GOOD


def reason(raw: bytes) -> str:
    out = decode_event(raw)
    return out.reason if isinstance(out, Rejected) else "ok"


def test_good_crossing_with_extra_fields_and_offset():
    ev = decode_event(orjson.dumps({**GOOD, "unknown": [1, 2]}))
    assert isinstance(ev, Crossing)
    assert ev.ts.timestamp() == 1663722900.0


@pytest.mark.parametrize(
    "raw", [b"", b"nope", b"[1]", b'"s"', b"null", b"\xff\xfe", b'{"a": NaN}', b'{"a":1', b"1e999999"]
)
def test_malformed(raw):
    assert reason(raw) == "malformed"


@pytest.mark.parametrize(
    "change",
    [
        {"type": "departure"},
        {"direction": "up"},
        {"ts": "2022-09-21T06:15:00"},
        {"ts": "2099-01-01T00:00:00Z"},
        {"ts": 1663722900},
        {"event_id": ""},
        {"event_id": "x" * 129},
        {"persons": 0},
        {"persons": 101},
        {"persons": True},
        {"persons": 2.0},
        {"citizenship": "ZZ"},
        {"citizenship": "rus"},
        {"mode": "boat"},
        {"age_band": "30-40"},
        {"sex": "q"},
        {"checkpoint_id": 7},
    ],
)
def test_invalid(change):
    assert reason(orjson.dumps({**GOOD, **change})) == "invalid"


def test_missing_required_field_is_invalid():
    for field in ("event_id", "type", "checkpoint_id", "direction", "ts", "persons", "citizenship"):
        assert reason(orjson.dumps({k: v for k, v in GOOD.items() if k != field})) == "invalid", field


def test_lanes_and_arrival_rules():
    base = {k: GOOD[k] for k in ("event_id", "checkpoint_id", "direction", "ts")}
    assert reason(orjson.dumps({**base, "type": "lanes", "lanes_open": 0})) == "ok"
    assert reason(orjson.dumps({**base, "type": "lanes", "lanes_open": 101})) == "invalid"
    assert reason(orjson.dumps({**base, "type": "lanes"})) == "invalid"
    assert reason(orjson.dumps({**base, "type": "arrival"})) == "ok"


def test_near_future_is_accepted_but_more_than_five_minutes_is_not():
    now = 1663722900.0
    at = orjson.dumps({**GOOD, "ts": "2022-09-21T01:19:59Z"})  # +4m59s
    assert not isinstance(decode_event(at, now=now), Rejected)
    late = orjson.dumps({**GOOD, "ts": "2022-09-21T01:20:01Z"})
    assert decode_event(late, now=now).reason == "invalid"


def test_deadletter_keeps_text_or_base64():
    text = orjson.loads(deadletter_value("malformed", "x", b"caf\xc3\xa9", 1, 2))
    assert (text["raw"], text["raw_encoding"], text["partition"], text["offset"]) == ("café", "text", 1, 2)
    binary = orjson.loads(deadletter_value("malformed", "x", b"\xff\x00", 0, 0))
    assert base64.b64decode(binary["raw"]) == b"\xff\x00"
