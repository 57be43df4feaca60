"""The changelog's state format: typed, versioned, and refused when not understood.

This is the longest-lived format in the system (a changelog outlives every worker that wrote
it), so it is declared here once, as msgspec Structs encoded with MessagePack (`array_like`
keeps it as compact as the positional lists of format 1 were). Every value starts with a
4-byte magic `BMS` + version byte; a reader meets one of three cases:

- this version: decoded strictly (a missing or mistyped field is an error, not a default);
- format 1 (JSON written by bordermon before 2026-11-29) or an unknown version: refused with a
  one-line `StateFormatError`, so a worker stops instead of counting from a misread state.

Keys, per changelog partition p (= the border.events partition whose state it is):

    p:{p}                     PartitionRecord: offsets applied, hop and output bookkeeping, the
                              committed slot of every checkpoint head. Written last in a batch:
                              it is the commit point; nothing it does not reference is read.
    c:{p}:{checkpoint}:{slot} CheckpointRecord in one of two slots, written alternately, so an
                              uncommitted write never overwrites the committed head.
    d:{p}:{checkpoint}:{seq}  DeltaRecord: event ids (duplicate detection) and crossings (net
                              flow windows) accepted in one batch; dropped after 24 h of event time.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Final, TypeVar

import msgspec

from bordermon.errors import BordermonError

VERSION: Final = 2
MAGIC: Final = b"BMS"
_PREFIX: Final = MAGIC + bytes([VERSION])


class StateFormatError(BordermonError):
    """The changelog holds state this worker cannot read exactly."""


class AlertRecord(msgspec.Struct, array_like=True, frozen=True):
    pending_since: float | None
    fired_at: float | None


class QueueRecord(msgspec.Struct, array_like=True, frozen=True):
    lanes: int
    queue: bytes  # arrival times of the parties waiting, head first: packed float64
    observed_wait: float
    alerts: dict[str, AlertRecord]
    arrivals: bytes  # arrival times within the rate window: packed float64
    cleared: bytes  # times of crossings that cleared a non-empty queue, within the window: packed float64
    busy: list[tuple[float, float, int]]  # closed busy spans within the window: (start, end, lanes)
    busy_since: float | None
    busy_lanes: int
    forecast: AlertRecord  # QueueOverloadForecast


class SurgeRecord(msgspec.Struct, array_like=True, frozen=True):
    counts: bytes  # hourly arrival counts, oldest first, packed uint16 (native order, as the queue's times)
    end: int  # the hour (since the epoch) of the last count
    start: int  # the first hour known
    alert: AlertRecord


class CheckpointRecord(msgspec.Struct, array_like=True, frozen=True):
    last_ts: float | None
    # One per direction and lane group: "in" for group `all`, "in/trucks" for others
    # (`streams.domain.state.queue_name`); array-like, so records from before lane groups read as is.
    queues: dict[str, QueueRecord]
    accepted: dict[str, int]
    persons: dict[str, int]
    citizenship_persons: dict[str, dict[str, int]]  # direction -> citizenship -> persons
    off_partition: dict[str, int]  # likely producer partitioner -> messages forwarded
    next_seq: int
    deltas: dict[int, float]  # live delta seq -> newest event time in it
    # Added 2026-12-03 (ArrivalSurge); a default, so heads written before read as having none.
    surges: dict[str, SurgeRecord] = {}  # direction -> hourly arrival counts and the alert


class DeltaRecord(msgspec.Struct, array_like=True, frozen=True):
    ids: list[tuple[str, float]]
    crossings: list[tuple[float, int]]


class PartitionRecord(msgspec.Struct, array_like=True, frozen=True):
    applied: int  # last border.events offset applied
    hop_applied: int  # last offset of the repartition topic applied
    hop_sources: dict[int, int]  # source partition -> last source offset applied through the hop
    out_marks: dict[str, int]  # output topic -> base offset of this partition's last acknowledged batch
    rejected: dict[str, int]
    heads: dict[str, int]  # checkpoint id -> slot of its committed head


T = TypeVar("T", PartitionRecord, CheckpointRecord, DeltaRecord)
_encoder: Final = msgspec.msgpack.Encoder()
_decoders: Final = {kind: msgspec.msgpack.Decoder(kind) for kind in (PartitionRecord, CheckpointRecord, DeltaRecord)}


def encode(record: PartitionRecord | CheckpointRecord | DeltaRecord) -> bytes:
    return _PREFIX + _encoder.encode(record)


def decode(kind: type[T], key: bytes, raw: bytes) -> T:
    """Decode one changelog value, or raise StateFormatError naming the key and the problem."""
    name = key.decode(errors="replace")
    if raw[:1] == b"{":
        raise StateFormatError(
            f"state {name} is in format 1 (bordermon before 2026-11-29); this worker reads format {VERSION}: "
            "see docs/reliability.md, 'Upgrading the state format'"
        )
    if raw[:3] != MAGIC or len(raw) < 4:
        raise StateFormatError(f"state {name} is not bordermon state (no format marker)")
    if raw[3] != VERSION:
        raise StateFormatError(
            f"state {name} is in format {raw[3]}, this worker reads format {VERSION}: run a bordermon that knows it"
        )
    try:
        return _decoders[kind].decode(raw[4:])  # type: ignore[return-value]
    except msgspec.DecodeError as exc:
        raise StateFormatError(f"state {name} does not match format {VERSION}: {exc}") from None


def pack_times(times: Iterable[float]) -> bytes:
    return array("d", times).tobytes()


def unpack_times(raw: bytes) -> array[float]:
    times = array("d")
    times.frombytes(raw)
    return times


def record_key(partition: int) -> bytes:
    return b"p:%d" % partition


def head_key(partition: int, checkpoint_id: str, slot: int) -> bytes:
    return b"c:%d:%s:%d" % (partition, checkpoint_id.encode(), slot)


def delta_key(partition: int, checkpoint_id: str, seq: int) -> bytes:
    return b"d:%d:%s:%d" % (partition, checkpoint_id.encode(), seq)
