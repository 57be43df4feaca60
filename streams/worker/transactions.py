"""Kafka's own exactly-once, an option on Apache Kafka (`BORDERMON_EXACTLY_ONCE=kafka-transactions`).

What Kafka users mean by "exactly once": a transactional producer per source partition p, with
the id `bordermon-<p>` on every worker, so that whoever owns p next fences the previous owner and
aborts what it left open (its first InitProducerId does both). One transaction per state write of
p (`streams.worker.commit`'s step 3) holds everything the batches joined to that write produced (forwards,
dead letters, alerts), the changelog records of the state they left, and their input offsets
(border.events p and bordermon-repartition p) committed for the consumer group: all visible
together, or none. Readers use read_committed: the worker's own consumer (forwards of an aborted
transaction never arrive) and state reader, and any consumer of border.alerts that wants each
alert once (read_uncommitted also shows the outputs of aborted transactions).

So none of `streams.worker.commit`'s recovery steps is needed: after a crash the committed state, the
committed offsets and the visible outputs agree, and the replacement simply goes on. What it
costs, and what it gives, measured against bordermon's own protocol: docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import TopicPartition

from bordermon.config import APP_ID
from bordermon.security import KafkaSecurity
from streams.domain.processor import BatchResult, Processor
from streams.domain.state import Write
from streams.worker.commit import CommitterBase, _Persist
from streams.worker.sender import BatchSender

# Longer than a write interval plus its commit; a worker that stalls beyond it is aborted by the
# coordinator (the new owner aborts a dead one's at once, when it fences it).
TRANSACTION_TIMEOUT_MS = 30_000


def transactional_id(partition: int) -> str:
    return f"{APP_ID}-{partition}"


class TransactionalSenders:
    """One transactional producer per owned source partition."""

    def __init__(self, bootstrap: list[str], security: KafkaSecurity, request_timeout_ms: int = 40_000) -> None:
        self.bootstrap = bootstrap
        self.security = security
        self.request_timeout_ms = request_timeout_ms
        self.senders: dict[int, BatchSender] = {}
        self.open: set[int] = set()  # partitions with a transaction begun and not yet ended

    async def claim(self, partitions: Iterable[int]) -> None:
        """Register the producers of newly owned partitions. Each fences the previous owner's and
        aborts its open transaction (a read_committed reader then sees the partition's end), so
        this comes before the state is read."""
        for p in sorted(set(partitions) - self.senders.keys()):
            sender = BatchSender(
                self.bootstrap, self.security,
                transactional_id=transactional_id(p),
                transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
                request_timeout_ms=self.request_timeout_ms,
            )  # fmt: skip
            await sender.started()
            self.senders[p] = sender

    async def release(self, partitions: Iterable[int]) -> None:
        """Partitions this worker lost: what their open transactions hold is aborted (the next
        owner processes those batches again from the committed offsets)."""
        for p in list(partitions):
            sender = self.senders.pop(p, None)
            if sender is None:
                continue
            if p in self.open:
                self.open.discard(p)
                with contextlib.suppress(Exception):  # fenced already: the new owner aborted it
                    await (await sender.started()).abort_transaction()
            await sender.stop()

    async def begun(self, p: int) -> BatchSender:
        """p's producer, inside a transaction."""
        sender = self.senders[p]
        if p not in self.open:
            await (await sender.started()).begin_transaction()
            self.open.add(p)
        return sender

    async def commit(self, p: int, offsets: dict[TopicPartition, int], group: str) -> None:
        producer = await self.senders[p].started()
        await producer.send_offsets_to_transaction(offsets, group)
        await producer.commit_transaction()
        self.open.discard(p)

    async def stop(self) -> None:
        await self.release(list(self.senders))


class TransactionalCommitter(CommitterBase):
    """Each state write of a partition a Kafka transaction (see above).

    The handler only processes and notes: a batch's outputs wait in its partition's coming write
    and go out inside that write's transaction, with the state and the offsets. So the handler
    never waits for the broker, and a batch's outputs, state and offsets cannot fall into two
    transactions. A partition's transactions follow one another (one producer each): a write
    closes to new batches only once the previous one ended, so when commits are slow the
    transactions grow instead of queueing. Tried first and measured on the reduced bench: outputs
    sent from the handler into the open transaction, later batches waiting for its commit (every
    batch of every partition queued behind commits: p99 to a metric 0.86 s, to an alert 1.2 s);
    then writes closed before the previous commit ended (they queued without bound: alert p99
    2.6 s and growing).

    A batch with an alert does not wait out the interval: its write starts as soon as the
    partition's previous transaction ended. Its readers see an alert only once the transaction
    commits, and waiting for later batches to join put the interval on every alert's latency
    (under the bench's 2,000 events/s, 500 probe alerts: p50 107-111 ms, p99 258-295 ms; with
    this, 30-43 and 180-256 ms); alerts are transitions, rare next to the batches, so the
    transactions they start add little."""

    def __init__(
        self,
        processor: Processor,
        senders: TransactionalSenders,
        changelog: Callable[[], str],
        group: str,
        on_failure: Callable[[BaseException], None] | None = None,
        persist_interval: float = 0.0,
    ) -> None:
        super().__init__(processor, on_failure, persist_interval)
        self.senders = senders
        self.changelog = changelog
        self.group = group
        self.ended: dict[int, asyncio.Future[None]] = {}  # per partition: its last transaction ended

    def forget(self, partitions: Iterable[int]) -> None:
        partitions = list(partitions)
        super().forget(partitions)
        for p in partitions:
            self.ended.pop(p, None)

    async def _deliver_and_persist(self, result: BatchResult, source: str, last: int) -> asyncio.Future[Any] | None:
        job = self._join(result.partition, source, last)  # the offsets move even if nothing else did
        job.unsent.append((result, self._writer_tag(result.partition)))
        if result.alerts:
            self.hurry(job)
        return job.durable

    async def _persist_when_delivered(self, p: int, job: _Persist) -> None:
        ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        previous, self.ended[p] = self.ended.get(p), ended
        try:
            await self._interval(job)  # cut short by a batch with an alert
            if previous is not None:
                # One transaction of a partition at a time (or this one fails too); batches keep
                # joining this write meanwhile, so when commits are slow, transactions grow
                # instead of queueing up behind each other.
                await previous
            job.started = True
            writes: list[Write] = self.processor.changelog_writes(p)  # the state as they left it
            if p not in self.senders.senders:  # revoked meanwhile: the next owner redoes these batches
                job.durable.cancel()
                ended.set_result(None)
                return
            sender = await self.senders.begun(p)
            for result, tag in job.unsent:
                await self._send_outputs(sender, result, tag)
            if writes:
                await sender.send(self.changelog(), [(p, key, value, [], None) for key, value in writes])
            offsets = {TopicPartition(topic, p): offset for topic, offset in job.offsets.items()}
            await self.senders.commit(p, offsets, self.group)  # waits for every record sent in it
            ended.set_result(None)
        except BaseException as exc:
            if not ended.done():
                ended.set_exception(exc)
            job.durable.set_exception(exc)
            raise
        job.durable.set_result(None)
