"""Property-based: no input crashes validation or the processor, and every message is counted."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bordermon.events import REJECT_REASONS, Rejected, decode_event
from bordermon.registry import load_registry
from streams.domain.processor import Processor
from tests.fixtures.events import GOOD

REGISTRY = load_registry()
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


def to_json(value: object) -> bytes:
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return repr(value).encode()  # NaN, huge ints: not JSON, which is the point


def check(raw: bytes | None) -> None:
    out = decode_event(raw)
    if isinstance(out, Rejected):
        assert out.reason in REJECT_REASONS and out.reason != "duplicate"
        assert "\n" not in out.error and len(out.error) < 10_000


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(raw):
    check(raw)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*GOOD, "mode", "age_band", "sex", "lanes_open"]), json_values))
@example(changes={"event_id": None, "type": "\n"})  # once echoed the newline into the error
def test_wrong_types_for_every_field(changes):
    check(to_json({**GOOD, **changes}))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(orjson.dumps(GOOD))))
def test_truncated_json(cut):
    check(orjson.dumps(GOOD)[:cut])


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=0, max_size=200))
def test_unicode_everywhere(text):
    for field in ("event_id", "checkpoint_id", "citizenship", "ts", "direction"):
        check(to_json({**GOOD, field: text}))


def test_huge_nan_and_deep_inputs():
    for raw in (
        orjson.dumps({**GOOD, "event_id": "x" * 1_000_000}),
        orjson.dumps({**GOOD, "note": "y" * 1_000_000}),
        b'{"persons": NaN}',
        b"[" * 200_000 + b"]" * 200_000,
        b'{"a":' * 200_000 + b"1" + b"}" * 200_000,
        orjson.dumps({**GOOD, "extra": None})[:-1] + b', "deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b"\x00" * 1_000_000,
    ):
        check(raw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.binary(max_size=80), json_values.map(to_json), st.just(orjson.dumps(GOOD))), max_size=60))
def test_processor_accounts_for_every_message(values):
    proc = Processor(REGISTRY, 1)
    result = proc.process_events(0, [(i, None, v, 0) for i, v in enumerate(values)])
    accepted = sum(sum(cs.accepted.values()) for cs in proc.partition(0).checkpoints.values())
    assert accepted + len(result.deadletters) == len(values) == result.processed
