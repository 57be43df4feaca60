"""Batch processor: the whole pipeline semantics for a batch of consumed messages, with no Faust.

`process()` takes (partition, offset, key, value) tuples in consumption order and returns the
dead letters, alert messages and state writes the agent must emit. Offsets at or below a
partition's persisted `applied_offset` are skipped, so a batch re-delivered after a crash is
never counted twice.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from bordermon.events import INVALID, UNKNOWN_CHECKPOINT, Rejected, decode_event
from bordermon.partitioning import partition_for_key
from bordermon.registry import Registry
from bordermon.timeutil import finite_or_none, to_rfc3339
from streams.state import AlertEvent, CheckpointState, PartitionState

Message = tuple[int, int, bytes | None, bytes | None]  # partition, offset, key, value
Write = tuple[int, bytes, bytes | None]  # changelog partition, key, value (None = delete)
Getter = Callable[[bytes], bytes | None]

MAX_LIVE_DELTAS = 256
COMPACT_CHUNK = 5000


@lru_cache(maxsize=4096)
def canonical_partition(checkpoint_id: str, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner picks for this checkpoint's key."""
    return partition_for_key(checkpoint_id.encode(), partitions)


def record_key(partition: int) -> bytes:
    return b"p:%d" % partition


def delta_key(partition: int, seq: int) -> bytes:
    return b"d:%d:%d" % (partition, seq)


def deadletter_value(reason: str, error: str, raw: bytes | None, partition: int, offset: int) -> bytes:
    if raw is None:
        text, encoding = None, "none"
    else:
        try:
            text, encoding = raw.decode("utf-8"), "text"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    return orjson.dumps(
        {
            "reason": reason,
            "error": error,
            "raw": text,
            "raw_encoding": encoding,
            "partition": partition,
            "offset": offset,
        }
    )


def alert_value(a: AlertEvent) -> bytes:
    tr = a.transition
    starts_at = to_rfc3339(tr.starts_at)
    wait_min = finite_or_none(a.wait_seconds / 60.0)
    return orjson.dumps(
        {
            "alertname": "QueueOverload",
            "severity": a.severity,
            "status": tr.status,
            "checkpoint_id": a.checkpoint.id,
            "direction": a.direction,
            "starts_at": starts_at,
            "fired_at": to_rfc3339(tr.fired_at),
            "ends_at": None if tr.ends_at is None else to_rfc3339(tr.ends_at),
            "wait_minutes": wait_min,
            "threshold_minutes": a.checkpoint.threshold_seconds(a.severity) / 60.0,
            "queue_length": a.queue_length,
            "lanes_open": a.lanes_open,
            "arrivals_per_hour": a.arrivals_per_hour,
            # Extra lanes that bring the wait under the warning threshold within two hours.
            "lanes_needed": a.lanes_needed,
            # Same for every re-send of this transition: consumers de-duplicate on it.
            "transition_id": f"{a.checkpoint.id}/{a.direction}/{a.severity}/{starts_at}/{tr.status}",
        }
    )


@dataclass
class BatchResult:
    deadletters: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    alerts: list[tuple[bytes, bytes]] = field(default_factory=list)
    alert_events: list[AlertEvent] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    skipped: int = 0
    processed: int = 0


class Processor:
    """Owns the in-memory state of the partitions this worker has processed or recovered."""

    def __init__(self, registry: Registry, partitions: int, get: Getter | None = None) -> None:
        self.registry = registry
        self.partitions = partitions
        self.state: dict[int, PartitionState] = {}
        self._get = get or (lambda _key: None)

    # -- state lifecycle ---------------------------------------------------------------------

    def partition(self, partition: int) -> PartitionState:
        ps = self.state.get(partition)
        if ps is None:
            ps = self.state[partition] = self.load(partition)
        return ps

    def load(self, partition: int, get: Getter | None = None) -> PartitionState:
        """Rebuild a partition's state from its persisted record and deltas."""
        get = get or self._get
        ps = PartitionState(partition)
        raw = get(record_key(partition))
        if raw is None:
            return ps
        rec = orjson.loads(raw)
        ps.applied_offset = rec["applied_offset"]
        ps.rejected.update(rec["rejected"])
        ps.next_seq = rec["next_seq"]
        ps.live = {int(k): v for k, v in rec["live"].items()}
        for cid, head in rec["checkpoints"].items():
            if cid in self.registry:
                ps.checkpoints[cid] = CheckpointState.from_head(self.registry[cid], head)
        for seq in sorted(ps.live):
            delta_raw = get(delta_key(partition, seq))
            if delta_raw is None:
                continue
            for cid, delta in orjson.loads(delta_raw).items():
                cs = ps.checkpoints.get(cid)
                if cs is not None:
                    cs.load_delta(delta)
        for cs in ps.checkpoints.values():
            cs.prune()
        return ps

    def drop(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.state.pop(p, None)

    # -- processing --------------------------------------------------------------------------

    def process(self, messages: Sequence[Message], now: float | None = None) -> BatchResult:
        now = time.time() if now is None else now
        result = BatchResult()
        touched: dict[int, PartitionState] = {}
        registry = self.registry
        for partition, offset, key, value in messages:
            ps = touched.get(partition) or self.partition(partition)
            if offset <= ps.applied_offset:
                result.skipped += 1
                continue
            ps.applied_offset = offset
            touched[partition] = ps
            result.processed += 1
            event = decode_event(value, now)
            if type(event) is Rejected:
                self._reject(result, ps, key, value, offset, event.reason, event.error)
                continue
            cid = event.checkpoint_id
            if cid not in registry:
                self._reject(result, ps, key, value, offset, UNKNOWN_CHECKPOINT, f"unknown checkpoint {cid!r}")
                continue
            if self.partitions > 1 and canonical_partition(cid, self.partitions) != partition:
                error = (
                    f"checkpoint {cid!r} arrived on partition {partition}, expected "
                    f"{canonical_partition(cid, self.partitions)}: key messages by checkpoint id"
                )
                self._reject(result, ps, key, value, offset, INVALID, error)
                continue
            cs = ps.checkpoints.get(cid)
            if cs is None:
                cs = ps.checkpoints[cid] = CheckpointState(registry[cid])
            outcome = cs.apply(event, event.ts.timestamp())
            if type(outcome) is str:
                self._reject(result, ps, key, value, offset, outcome, f"event_id {event.event_id!r} already accepted")
                continue
            for alert in outcome:
                result.alert_events.append(alert)
                result.alerts.append((cid.encode(), alert_value(alert)))
        for ps in touched.values():
            result.writes.extend(self._flush(ps))
        return result

    @staticmethod
    def _reject(
        result: BatchResult,
        ps: PartitionState,
        key: bytes | None,
        value: bytes | None,
        offset: int,
        reason: str,
        error: str,
    ) -> None:
        ps.rejected[reason] += 1
        result.deadletters.append((key, deadletter_value(reason, error, value, ps.partition, offset)))

    def _flush(self, ps: PartitionState) -> list[Write]:
        """Writes that persist a partition: new deltas, then the record, then tombstones."""
        p = ps.partition
        writes: list[Write] = []
        delta: dict[str, Any] = {}
        newest: dict[str, float] = {}
        for cid, cs in ps.checkpoints.items():
            d = cs.take_delta()
            if d is not None:
                delta[cid] = d
                newest[cid] = max(ts for _, ts in d["ids"])
            cs.prune()
        if delta:
            writes.append((p, delta_key(p, ps.next_seq), orjson.dumps(delta)))
            ps.live[ps.next_seq] = newest
            ps.next_seq += 1
        dead = ps.expired_deltas()
        for seq in dead:
            del ps.live[seq]
        if len(ps.live) > MAX_LIVE_DELTAS:
            dead.extend(ps.live)
            ps.live.clear()
            writes.extend(self._compact(ps))
        writes.append((p, record_key(p), orjson.dumps(ps.record())))
        writes.extend((p, delta_key(p, seq), None) for seq in dead)
        return writes

    def _compact(self, ps: PartitionState) -> list[Write]:
        """Rewrite all live ids and crossings as a few bounded deltas (keeps recovery fast)."""
        writes: list[Write] = []
        chunk: dict[str, Any] = {}
        newest: dict[str, float] = {}
        size = 0

        def emit() -> None:
            nonlocal chunk, newest, size
            if chunk:
                writes.append((ps.partition, delta_key(ps.partition, ps.next_seq), orjson.dumps(chunk)))
                ps.live[ps.next_seq] = newest
                ps.next_seq += 1
            chunk, newest, size = {}, {}, 0

        for cid, cs in ps.checkpoints.items():
            data = cs.live_data()
            for i in range(0, max(len(data["ids"]), len(data["x"])), COMPACT_CHUNK):
                part = {"ids": data["ids"][i : i + COMPACT_CHUNK], "x": data["x"][i : i + COMPACT_CHUNK]}
                chunk[cid] = part
                newest[cid] = cs.last_ts if cs.last_ts is not None else 0.0
                size += len(part["ids"]) + len(part["x"])
                if size >= COMPACT_CHUNK:
                    emit()
        emit()
        return writes
