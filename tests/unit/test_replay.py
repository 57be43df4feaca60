import gzip

import pytest

from bordermon.errors import BordermonError
from bordermon.logfiles import iter_lines, open_log
from producers.publisher import Pacer
from producers.replay import key_and_time

VALID = b'{"event_id":"a","type":"arrival","checkpoint_id":"syrym","direction":"in","ts":"2022-09-21T06:00:00Z"}'


def test_lines_are_verbatim_including_blank_and_crlf(tmp_path):
    raw = b'{"a":1}\r\n\nnot json\n\xff\xfe\nlast-without-newline'
    for name, data in (("plain.jsonl", raw), ("packed.bin", gzip.compress(raw))):
        path = tmp_path / name
        path.write_bytes(data)
        reader, handle = open_log(str(path))
        with handle, reader:
            assert list(iter_lines(reader, str(path))) == [
                b'{"a":1}',
                b"",
                b"not json",
                b"\xff\xfe",
                b"last-without-newline",
            ]


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda data: data[: len(data) // 2], "ended before the end-of-stream marker"),
        (lambda data: data[:20] + bytes(b ^ 0x5A for b in data[20:60]) + data[60:], ""),
        (lambda data: data[:-8] + b"\0" * 8, ""),  # CRC and length wrong
    ],
    ids=["truncated", "corrupt-deflate", "bad-trailer"],
)
def test_a_damaged_gzip_log_is_one_clear_error(tmp_path, damage, why):
    path = tmp_path / "damaged.jsonl.gz"
    path.write_bytes(damage(gzip.compress(VALID + b"\n" + bytes(range(256)) * 64)))
    reader, handle = open_log(str(path))
    with handle, reader, pytest.raises(BordermonError, match=f"damaged.jsonl.gz: cannot read: .*{why}"):
        list(iter_lines(reader, str(path)))


def test_key_comes_from_any_parsed_object_time_only_from_valid_events():
    assert key_and_time(VALID) == (b"syrym", 1663740000.0)
    future = VALID.replace(b"2022", b"2099")
    assert key_and_time(future) == (b"syrym", None)
    assert key_and_time(b'{"checkpoint_id":"nowhere"}') == (b"nowhere", None)
    assert key_and_time(b"[1]") == (None, None)
    assert key_and_time(b"garbage") == (None, None)


def test_pacer_follows_event_time_divided_by_speed():
    now = [100.0]
    pacer = Pacer(60.0, clock=lambda: now[0])
    assert pacer.delay(1000.0) == 0.0  # the first paced line sets the origin
    assert pacer.delay(1060.0) == 1.0  # one event minute = one wall second at 60x
    now[0] = 101.0
    assert pacer.delay(1060.0) == 0.0
    assert pacer.delay(1030.0) == 0.0  # late lines go at once
    assert pacer.delay(None) == 0.0
    assert pacer.delay(4600.0) == 60.0 - 1.0
    assert Pacer(None).delay(5000.0) == 0.0
