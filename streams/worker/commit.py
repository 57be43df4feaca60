"""The commit protocol: how one processed batch becomes durable, and how a replacement recovers.

For a batch of one partition p (of border.events, or of the repartition topic), in this order:

1. Process. The processor computes the batch's forwards, dead letters, alerts and state change.
   Nothing has left the process yet.
2. Forward and emit, and wait until the broker acknowledged every message:
   - forwarded events go to the repartition topic, partition = their checkpoint's home, with a
     header naming their source partition and offset;
   - dead letters and alerts go to border.deadletter / border.alerts, partition p mod (their
     partition count), with a header naming the writer p and the state positions after this batch.
3. Persist the state: deltas, checkpoint heads, then the partition record, the commit point, which
   also notes where step 2's outputs landed (out marks).
4. Acknowledge the batch's offsets once step 3 is durable; Faust commits acknowledged offsets.

Why the order is safe (a worker may die between any two steps, or inside one):
- Dies before 3 is durable: the replacement starts from the previous committed state and
  processes the batch again, producing the same messages. Forwards are sent again and the home
  partition skips them (a source offset at or below the last it applied from that source).
  Dead letters and alerts that did reach the broker are read back (R2) and not sent again.
- Dies between 3 and 4: the state is ahead of the committed offsets; the re-delivered messages
  sit at or below the applied offsets, are skipped and produce nothing.
- The reverse orders are the unsafe ones: state persisted before its outputs are acknowledged
  would lose those outputs (the state says they were handled), and offsets committed before the
  state would lose the events themselves (the replacement starts after them).

Recovery, when partitions are assigned (after Faust's own table recovery):
R1. Read the changelog of the assigned partitions to its real end (`streams.worker.changelog`) and
    rebuild each partition's state from it.
R2. Read back border.deadletter and border.alerts from each partition's out marks. Outputs the
    partition wrote after its last committed state are remembered by identity (source partition
    and offset of a dead letter; transition id of an alert) and dropped when re-processing
    regenerates them, so each is on its topic once.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from bordermon.batches import Headers
from bordermon.config import ALERTS_TOPIC, DEADLETTER_TOPIC, EVENTS_TOPIC, REPARTITION_TOPIC
from streams.domain.processor import HOP_HEADER, BatchResult, Processor, alert_identity, deadletter_identity
from streams.domain.state import PartitionState, Write
from streams.worker.sender import OutRecord

WRITER_HEADER = "bordermon-writer"  # on dead letters and alerts: partition, applied, hop applied
OUTPUT_TOPICS = (DEADLETTER_TOPIC, ALERTS_TOPIC)

# Persist a partition's changelog writes, in order: (partition, [(key, value or None)]) ->
# futures for their delivery (queued when it returns, so the next call's writes follow them).
Persist = Callable[[int, list[Write]], Awaitable[list["asyncio.Future[Any]"]]]


def acknowledge_when_durable(
    durable: asyncio.Future[Any] | None,
    acknowledge: Callable[[], None],
    on_failure: Callable[[BaseException | None], None],
) -> None:
    """Step 4: acknowledge a batch's offsets only once its state is durable. A commit must never
    pass state that is not in the changelog yet: the replacement would start after those events.
    A failed write leaves the offsets unacknowledged, so commits stop before them and a restart
    processes them again."""
    if durable is None:
        acknowledge()
        return

    def done(future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            on_failure(None if future.cancelled() else future.exception())
        else:
            acknowledge()

    durable.add_done_callback(done)


def writer_header(ps: PartitionState) -> bytes:
    return b"%d:%d:%d" % (ps.partition, ps.applied, ps.hop_applied)


def parse_writer_header(raw: bytes) -> tuple[int, int, int]:
    partition, applied, hop_applied = raw.split(b":")
    return int(partition), int(applied), int(hop_applied)


def hop_of(headers: Sequence[tuple[str, bytes]] | None) -> bytes | None:
    """The hop header of a forwarded record (its only header: checked first, on every one)."""
    if headers and headers[0][0] == HOP_HEADER:
        return headers[0][1]
    return header(headers, HOP_HEADER)


def header(headers: Iterable[tuple[str, bytes]] | None, name: str) -> bytes | None:
    for key, value in headers or ():
        if key == name:
            return value
    return None


class Sender(Protocol):
    """What the protocol needs of a producer (`streams.worker.sender.BatchSender` against Kafka)."""

    async def partitions(self, topic: str) -> int: ...

    async def send(self, topic: str, records: Iterable[OutRecord]) -> list[asyncio.Future[Any]]: ...


def _done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass(eq=False)
class _Persist:
    """One coming state write of a partition, covering every batch attached before it starts."""

    durable: asyncio.Future[None]
    since: float = field(default_factory=time.monotonic)  # when its first batch joined
    # Done when the write may start: its interval is over, or `CommitterBase.hurry` was called.
    hurry: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    sent: list[asyncio.Future[Any]] = field(default_factory=list)
    marks: list[dict[str, asyncio.Future[Any]]] = field(default_factory=list)
    started: bool = False
    # Per source topic of partition p, the offset after the last record joined to this write.
    offsets: dict[str, int] = field(default_factory=dict)
    # Batches whose outputs are still to be sent, with their writer tags (transactions send them
    # in the write's own transaction: `streams.worker.transactions`).
    unsent: list[tuple[BatchResult, Headers]] = field(default_factory=list)


class CommitterBase:
    """What both ways of making a batch durable share: each batch's outputs are sent, and the
    batch joins its partition's coming state write, which starts at most `persist_interval`
    seconds after a batch changed the partition and covers every batch processed until then;
    the batches' offsets are acknowledged when that write is durable (step 4). Subclasses:
    `Committer` (bordermon's protocol, below) and `streams.worker.transactions.TransactionalCommitter`
    (each write a Kafka transaction)."""

    def __init__(
        self,
        processor: Processor,
        on_failure: Callable[[BaseException], None] | None = None,
        persist_interval: float = 0.0,
    ) -> None:
        self.processor = processor
        self.on_failure = on_failure
        self.persist_interval = persist_interval
        self.coming: dict[int, _Persist] = {}  # per partition: the write that batches still join
        self.unsettled: set[_Persist] = set()  # state writes started and not yet durable (or failed)

    @property
    def in_flight(self) -> int:
        return len(self.unsettled)

    def oldest_unsettled_seconds(self) -> float:
        """How long the oldest state write not yet durable has waited (0 when none)."""
        return max((time.monotonic() - job.since for job in self.unsettled), default=0.0)

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions this worker lost: a later owner starts their chain afresh."""
        for p in partitions:
            self.coming.pop(p, None)

    async def commit_events(self, partition: int, records: Sequence[Any]) -> tuple[BatchResult, Any]:
        """Steps 1-3 for border.events records (aiokafka ConsumerRecords of one partition); returns
        the result and a future that completes when the state is durable (step 4 waits for it)."""
        inbound = [(r.offset, r.key, r.value, r.timestamp) for r in records]
        result = self.processor.process_events(partition, inbound)
        return result, await self._deliver_and_persist(result, EVENTS_TOPIC, records[-1].offset)

    async def commit_forwarded(self, partition: int, records: Sequence[Any]) -> tuple[BatchResult, Any]:
        """The same for repartition-topic records."""
        forwarded = [(r.offset, r.key, r.value, r.timestamp, hop_of(r.headers)) for r in records]
        result = self.processor.process_forwarded(partition, forwarded)
        return result, await self._deliver_and_persist(result, REPARTITION_TOPIC, records[-1].offset)

    async def _deliver_and_persist(self, result: BatchResult, source: str, last: int) -> asyncio.Future[Any] | None:
        """Step 2, and the batch joined to its partition's coming state write (step 3)."""
        raise NotImplementedError

    async def _persist_when_delivered(self, p: int, job: _Persist) -> None:
        """Step 3 for every batch joined to `job`; sets `job.durable`."""
        raise NotImplementedError

    def _changed(self, p: int) -> bool:
        ps = self.processor.partition(p)
        return bool(ps.dirty or ps.touched)

    def _writer_tag(self, p: int) -> Headers:
        """The header every dead letter and alert of a batch carries: the state positions after it."""
        return [(WRITER_HEADER, writer_header(self.processor.partition(p)))]

    async def _send_outputs(
        self, sender: Sender, result: BatchResult, tag: Headers
    ) -> tuple[list[asyncio.Future[Any]], dict[str, asyncio.Future[Any]]]:
        """Forwards, dead letters and alerts of a batch: their delivery futures, and per output
        topic the first batch's (where reading back finds them all)."""
        p = result.partition
        sent: list[asyncio.Future[Any]] = []
        marks: dict[str, asyncio.Future[Any]] = {}
        if result.forwards:
            hop: list[OutRecord] = [
                (f.partition, f.key, f.value, [(HOP_HEADER, f.header)], f.timestamp_ms) for f in result.forwards
            ]
            sent += await sender.send(REPARTITION_TOPIC, hop)
        for topic, outputs in ((DEADLETTER_TOPIC, result.deadletters), (ALERTS_TOPIC, result.alerts)):
            if outputs:
                target = p % await sender.partitions(topic)
                batches = await sender.send(topic, [(target, o.key, o.value, tag, None) for o in outputs])
                marks[topic] = batches[0]
                sent += batches
        return sent, marks

    def _join(self, p: int, source: str, last: int) -> _Persist:
        """The batch joins partition p's coming state write (a new one if the last has started)."""
        job = self.coming.get(p)
        if job is None or job.started:
            job = self.coming[p] = _Persist(asyncio.get_running_loop().create_future())
            self.unsettled.add(job)
            job.durable.add_done_callback(functools.partial(self._settled, job))
            task = asyncio.ensure_future(self._persist_when_delivered(p, job))
            if self.on_failure is not None:
                task.add_done_callback(self._check)
        job.offsets[source] = last + 1
        return job

    async def _interval(self, job: _Persist) -> None:
        """Wait until `job` may start: later batches of the partition join it meanwhile."""
        waking = asyncio.get_running_loop().call_later(self.persist_interval, _done, job.hurry)
        await job.hurry
        waking.cancel()

    @staticmethod
    def hurry(job: _Persist) -> None:
        """Start `job` without waiting out the rest of its interval."""
        _done(job.hurry)

    def _settled(self, job: _Persist, _: asyncio.Future[None]) -> None:
        self.unsettled.discard(job)

    def _check(self, task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and task.exception() is not None and self.on_failure is not None:
            self.on_failure(task.exception())  # type: ignore[arg-type]


class Committer(CommitterBase):
    """Runs steps 1-3 for each batch and hands step 4 its future; the worker's agent calls it.

    The handler does not wait for the broker. A partition's state is written by a task that
    starts at most `persist_interval` seconds after a batch changed it and covers every batch
    processed until then: it snapshots the state, waits until those batches' messages are
    acknowledged and the partition's previous write was sent, then sends its writes (so
    changelog writes keep batch order); their batches' offsets are acknowledged when it is
    durable. Waiting in the handler cost a broker round trip per batch (it halved the throughput
    of forwarded traffic); writing the state of every small batch of live traffic wrote its
    whole heads tens of times a second and stalled Faust's commits for seconds."""

    def __init__(
        self,
        processor: Processor,
        sender: Sender,
        persist: Persist,
        on_failure: Callable[[BaseException], None] | None = None,
        persist_interval: float = 0.0,
    ) -> None:
        super().__init__(processor, on_failure, persist_interval)
        self.sender = sender
        self.persist = persist
        self.issued: dict[int, asyncio.Future[None]] = {}  # per partition: its last write was sent

    def forget(self, partitions: Iterable[int]) -> None:
        partitions = list(partitions)
        super().forget(partitions)
        for p in partitions:
            self.issued.pop(p, None)

    async def _deliver_and_persist(self, result: BatchResult, source: str, last: int) -> asyncio.Future[Any] | None:
        p = result.partition
        sent, marks = await self._send_outputs(self.sender, result, self._writer_tag(p))
        if not sent and not self._changed(p):
            return None
        job = self._join(p, source, last)
        job.sent += sent
        job.marks.append(marks)
        return job.durable

    async def _persist_when_delivered(self, p: int, job: _Persist) -> None:
        issued: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            await self._interval(job)
            job.started = True
            writes = self.processor.changelog_writes(p)  # the state as every joined batch left it
            previous, self.issued[p] = self.issued.get(p), issued
            if job.sent:
                await asyncio.gather(*job.sent)  # step 2 acknowledged
            if previous is not None:
                await previous  # the partition's previous write was sent (or failed: so does this)
            # Where these batches' outputs landed: the scan start of a later record's read-back.
            for marks in job.marks:
                self.processor.note_out_marks(p, {topic: f.result().offset for topic, f in marks.items()})
            durable = await self.persist(p, writes) if writes else []  # step 3, in batch order
            issued.set_result(None)
            if durable:
                await asyncio.gather(*durable)
        except BaseException as exc:
            if not issued.done():
                issued.set_exception(exc)
            job.durable.set_exception(exc)
            raise
        job.durable.set_result(None)


def output_identity(topic: str, value: bytes) -> tuple[Any, ...] | None:
    try:
        message = orjson.loads(value)
        if topic == DEADLETTER_TOPIC:
            return deadletter_identity(int(message["partition"]), int(message["offset"]))
        return alert_identity(str(message["transition_id"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # not one of ours (another alertname sharing the topic, say)


# Read (topic, partition) -> start offset, to the end: `streams.worker.changelog.read_ranges` against Kafka.
RangeReader = Callable[[dict[tuple[str, int], int]], dict[tuple[str, int], list[Any]]]


def read_back_delivered(read: RangeReader, states: Sequence[PartitionState], counts: dict[str, int]) -> None:
    """R2: remember, per partition, the outputs it delivered after its committed state. Blocking."""
    starts: dict[tuple[str, int], int] = {}
    for ps in states:
        for topic in OUTPUT_TOPICS:
            starts[(topic, ps.partition % counts[topic])] = min(
                starts.get((topic, ps.partition % counts[topic]), 1 << 62), ps.out_marks.get(topic, 0)
            )
    found = read(starts)
    by_partition = {ps.partition: ps for ps in states}
    for (topic, _), records in found.items():
        for record in records:
            raw = header(record.headers, WRITER_HEADER)
            if raw is None:
                continue
            writer, applied, hop_applied = parse_writer_header(raw)
            owner = by_partition.get(writer)
            if owner is None or (applied <= owner.applied and hop_applied <= owner.hop_applied):
                continue  # written by another partition, or covered by the committed state
            identity = output_identity(topic, record.value)
            if identity is not None:
                owner.delivered.add(identity)
                until = owner.delivered_until
                owner.delivered_until = (max(until[0], applied), max(until[1], hop_applied))
