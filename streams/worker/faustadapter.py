"""The one place that touches Faust's (and aiokafka's) private internals: batch delivery.

Pinned: faust-streaming 0.15.3, aiokafka 0.14.0 (pyproject.toml). Every override below names
what it relies on; `tests/integration/test_faust_adapter.py` runs this adapter with the real
pinned Faust consumer against the embedded broker, so an upgrade that changes them fails there.

A topic's fetched records go to one handler per fetch, not per event.

Faust delivers each message to its stream through a channel, which measured about four asyncio
tasks and three event-loop turns per message (bench/README.md); `take_events` only regroups
them afterwards. For a topic that is processed in batches anyway, `BatchConsumer` hands the
handler every record a fetch returned for one partition and then acknowledges those offsets
the way Faust's own path does, so commits, rebalances, flow control and table recovery keep
working. Every other topic (table changelogs during recovery) still goes through Faust's
per-message path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

import faust
from faust.assignor import PartitionAssignor
from faust.assignor.client_assignment import ClientMetadata
from faust.stores import STORES
from faust.stores.memory import Store as MemoryStore
from faust.tables import TableManager
from faust.transport.consumer import ConsumerT, ensure_TP
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP
from faust.types.tuples import ack_lock
from faust.web.drivers import DRIVERS as WEB_DRIVERS
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from streams.worker.commit import acknowledge_when_durable

# A handler may return a future that completes when the batch's results are durable (its state
# written to the changelog); its offsets are acknowledged, and so committed, only then.
BatchHandler = Callable[[TP, Sequence[Any]], Awaitable["asyncio.Future[Any] | None"]]


class TunedConsumerThread(AIOKafkaConsumerThread):
    """Faust hard-codes aiokafka's fetch_max_wait_ms=1500 (no setting): an idle fetch then holds a
    new event back up to that long. Set it on the consumer before it starts, so it applies from
    the first fetch on; and fetch_max_bytes (no Faust setting either), where the broker needs it
    (`bordermon.config.fetch_max_bytes_for`)."""

    # Faust 0.15.3 `AIOKafkaConsumerThread._create_worker_consumer` builds the aiokafka consumer;
    # aiokafka 0.14.0 keeps the setting in the private `_fetch_max_wait_ms` its Fetcher reads.
    # Likewise `_isolation_level`, which Faust sets to read_committed only for its own
    # transactions (processing_guarantee), when bordermon's (`streams.worker.transactions`) need it too.
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait_ms = getattr(self.consumer, "fetch_max_wait_ms", None)
        if wait_ms is not None:
            consumer._fetch_max_wait_ms = wait_ms
        max_bytes = getattr(self.consumer, "fetch_max_bytes", None)
        if max_bytes is not None:  # `_fetch_max_bytes`, read by the Fetcher as the wait is
            consumer._fetch_max_bytes = max_bytes
        if getattr(self.consumer, "transactional_topics", None):
            consumer._isolation_level = "read_committed"
        return consumer


class BatchConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer with whole-batch delivery for the topics in `handlers`."""

    handlers: dict[str, BatchHandler]

    def __init__(
        self,
        *args: Any,
        handlers: dict[str, BatchHandler],
        fetch_max_wait_ms: int | None = None,
        fetch_max_bytes: int | None = None,
        transactional_topics: frozenset[str] = frozenset(),
        **kwargs: Any,
    ) -> None:
        self.handlers = handlers
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.fetch_max_bytes = fetch_max_bytes
        # Topics whose offsets are committed in the worker's Kafka transactions, not by Faust.
        self.transactional_topics = transactional_topics
        # Held while a batch is being handled: a rebalance or shutdown waits for it (wait_empty),
        # as Faust waits for unacknowledged messages on its own path.
        self.batch_lock = asyncio.Lock()
        self.not_yet_durable: set[asyncio.Future[Any]] = set()
        super().__init__(*args, **kwargs)

    # Faust 0.15.3 `Consumer._new_consumer_thread`: the only hook to use our consumer thread.
    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return TunedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    # Faust 0.15.3 `Consumer.wait_empty` (public, called before commits on rebalance and stop):
    # it waits for unacknowledged per-message events; batches in flight and state not yet
    # durable must be waited for too.
    async def wait_empty(self) -> None:
        async with self.batch_lock:
            pass
        if self.not_yet_durable:
            await asyncio.wait(list(self.not_yet_durable), timeout=self.app.conf.broker_commit_livelock_soft_timeout)
        await super().wait_empty()

    # Faust 0.15.3 `Consumer._drain_messages`: the loop its Fetcher service runs. Reproduced with
    # the per-message dispatch replaced by `_deliver`; it reads the private `_stopped`,
    # `_wait_next_records`, `should_stop` and `consumer_stopped_errors` as the original does.
    async def _drain_messages(self, fetcher: Any) -> None:
        try:
            while not (self._stopped.is_set() or fetcher._stopped.is_set()):
                records, active = await self._wait_next_records(timeout=1.0)
                await self.sleep(0)  # as Faust does: a busy fetch loop must still yield
                if records and not self.should_stop:
                    await self._deliver(records, active)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise

    async def _deliver(self, records: Mapping[TP, list[Any]], active: set[TP] | None) -> None:
        generation = self.app.consumer_generation_id
        for tp, batch in records.items():
            if not self.flow_active or self.app.consumer_generation_id != generation:
                return  # a rebalance started: Faust seeks back to the committed offsets
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            fresh = self._unread(tp, batch)
            if not fresh:
                continue
            handler = self.handlers.get(tp.topic)
            if handler is None:
                await self._deliver_each(tp, fresh)
                continue
            async with self.batch_lock:
                durable = await handler(tp, fresh)
                await self._note_gaps(tp, fresh)
                self._ack_when_durable(tp, [r.offset for r in fresh], durable)
                self._read_offset[tp] = fresh[-1].offset

    # Faust 0.15.3 `Consumer._commit` (the broker call of its commits): offsets of topics whose
    # offsets go into Kafka transactions are already committed (with the transaction that made
    # their batches durable); committing them again outside would only race it.
    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        rest = {tp: offset for tp, offset in offsets.items() if tp.topic not in self.transactional_topics}
        return await super()._commit(rest) if rest else True

    # Faust 0.15.3 `Consumer.perform_seek` (public, called when partitions are assigned), redone.
    # Two gaps in it lost messages of partitions without a committed offset:
    # - it updates the read offsets only of partitions that have one, so a partition without one
    #   (the broker lost its offsets: an in-memory broker restarted, a topic recreated) kept its
    #   old read offset, and every new message below it was dropped as already read;
    # - aiokafka's `seek_to_committed` does not move such a partition (nor one committed at 0), so
    #   records fetched and then dropped while the assignment changed (`_deliver` stops mid-fetch)
    #   were behind its fetch position and never read again. Seen on Apache Kafka: a
    #   partition of six messages, fetched during the rebalance a leaving worker starts at once.
    # After the seek the committed offsets are the only truth: the read offsets start from them
    # alone, and a partition without one is read from its beginning (what the restored state
    # already applied is skipped by offset, `streams.domain.processor`).
    async def perform_seek(self) -> None:
        committed = await self.seek_to_committed()
        self._read_offset.clear()
        self._read_offset.update({tp: offset for tp, offset in committed.items() if offset})
        known = {ensure_TP(tp): offset or None for tp, offset in committed.items() if offset is not None}
        self._committed_offset.update(known)
        never = [tp for tp, offset in committed.items() if not offset and tp.topic in self.handlers]
        if never:
            await self._thread.seek_to_beginning(*never)

    # Faust 0.15.3 `_read_offset` (the last offset delivered per partition) and
    # `_buffered_partitions`: the drain's own bookkeeping, kept the same way.
    def _unread(self, tp: TP, batch: list[Any]) -> list[Any]:
        """Drop records before the read offset (re-fetched after a seek), as Faust's drain does."""
        read = self._read_offset[tp]
        if read is None or batch[0].offset >= read:
            return batch
        return [r for r in batch if r.offset >= read]

    # Faust 0.15.3 `Consumer._add_gap`: offsets that will never be delivered may be committed past.
    async def _note_gaps(self, tp: TP, batch: Sequence[Any]) -> None:
        """Offsets that will never arrive (compaction, transaction markers) must not hold commits back."""
        previous = self._read_offset[tp]
        for record in batch:
            if previous is not None and record.offset - previous > 1:
                await self._add_gap(tp, previous + 1, record.offset)
            previous = record.offset

    def _ack_when_durable(self, tp: TP, offsets: list[int], durable: asyncio.Future[Any] | None) -> None:
        """Step 4 of the commit protocol (`streams.worker.commit`), on Faust's acknowledgement bookkeeping."""
        if durable is not None:
            self.not_yet_durable.add(durable)
            durable.add_done_callback(self.not_yet_durable.discard)

        def failed(exc: BaseException | None) -> None:
            self.log.warning(
                "state write failed (%r); %s offsets %s-%s stay uncommitted", exc, tp, offsets[0], offsets[-1]
            )

        acknowledge_when_durable(durable, lambda: self._ack_offsets(tp, offsets), failed)

    # Faust 0.15.3 `Consumer.ack` per message updates `_committed_offset`, `_acked_index`,
    # `_acked` and `_n_acked` under `ack_lock`; its commit reads exactly these. This is that, for a
    # whole batch at once.
    def _ack_offsets(self, tp: TP, offsets: list[int]) -> None:
        """`Consumer.ack` for a whole batch, on the same bookkeeping its commits read."""
        with ack_lock:
            committed = self._committed_offset[tp]
            index = self._acked_index[tp]
            new = [o for o in offsets if (committed is None or o >= committed) and o not in index]
            index.update(new)
            self._acked[tp].extend(new)
            self._n_acked += len(new)

    # Faust 0.15.3 `_to_message`, `callback` and `suspend_flow`: the per-message path, for topics
    # without a batch handler (table changelogs during recovery).
    async def _deliver_each(self, tp: TP, batch: list[Any]) -> None:
        for record in batch:
            message = self._to_message(tp, record)
            await self.wait_first(self.callback(message), self.suspend_flow.wait())
            self._read_offset[tp] = record.offset


class ChangelogOnlyStore(MemoryStore):
    """A table store that keeps nothing: the worker reads its state from the changelog itself
    (`streams.worker.commit`, R1) and holds it parsed, once.

    Faust's memory store would keep a second copy of every changelog value (every live event
    id among them) and, after a restart, first replay the whole changelog into it: measured
    with 2,400 checkpoints, about half the resident memory and half the recovery time. So this
    store tells Faust's recovery that it is already at the end of each changelog partition (the
    partition's end offset, read when partitions are assigned) and drops anything applied.
    """

    ends: dict[TP, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ends = {}

    # Faust 0.15.3 `TableManager.on_rebalance` awaits each table's (so its store's) on_rebalance
    # before `Recovery.on_rebalance` asks `persisted_offset` for every assigned changelog
    # partition; recovery replays from there to the end offset - 1 ("offset - 1 logic").
    async def on_rebalance(self, assigned: Any, revoked: Any, newly_assigned: Any, generation_id: int = 0) -> None:
        topic = self.table.changelog_topic.get_topic_name()
        mine = {tp for tp in self.app.assignor.assigned_actives() if tp.topic == topic}
        highwaters = await self.app.consumer.highwaters(*mine) if mine else {}
        self.ends = {tp: offset for tp, offset in highwaters.items() if offset is not None}

    def persisted_offset(self, tp: TP) -> int | None:
        end = self.ends.get(tp)
        return None if end is None else end - 1

    def apply_changelog_batch(self, batch: Any, to_key: Any, to_value: Any) -> None:
        return None


STORES.aliases["bordermon-changelog"] = f"{__name__}:ChangelogOnlyStore"
# A host part is needed: Faust tests the URL's truth, and a yarl URL of only a scheme is false.
CHANGELOG_ONLY_STORE = "bordermon-changelog://local"


class PromptTableManager(TableManager):
    """Faust's table manager without its start-up pause.

    Faust 0.15.3 `TableManager.on_start` sleeps 1 s before it finalizes the tables and lets the
    consumer subscribe, so that tables defined while the app starts still make it. This app
    defines its one table before it starts (`streams.worker.app.Pipeline`), so the pause only delayed
    every worker's group join, and so every recovery, by a second (measured in the worker log:
    "Waiting for tables to be registered" to the table's start, 1.00 s)."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class StaticMemberAssignor(PartitionAssignor):
    """Faust's assignor, accepting an assignment made for this member under another web address.

    Apache Kafka hands a static member that comes back (same group instance id) the assignment
    the group leader made for it before, without a rebalance (KIP-345); Faust 0.15.3
    `PartitionAssignor.on_assignment` then asserts that the web URL encoded in it is this
    process's, and a member restarted on another port (`BORDERMON_WEB_PORT`, or any test or bench
    replacement) failed that assert inside aiokafka's coordinator routine, which stops for good:
    the worker joined, owned nothing and processed nothing (seen on Kafka 4.4 with the kill -9
    bench). The URL feeds only Faust's router, which bordermon does not use; the partitions are
    checked as Faust checks them."""

    def on_assignment(self, assignment: Any) -> None:
        metadata = ClientMetadata.loads(self._decompress(assignment.user_data))
        self._assignment = metadata.assignment
        self._topic_groups = dict(metadata.topic_groups)
        self._active_tps = self._assignment.active_tps
        self._standby_tps = self._assignment.standby_tps
        self.changelog_distribution = metadata.changelog_distribution
        self.external_topic_distribution = metadata.external_topic_distribution
        given = sorted(assignment.assignment)
        decoded = sorted(self._assignment.kafka_protocol_assignment(self._table_manager))
        if given != decoded:
            raise RuntimeError(f"assignment does not match its own metadata: {given!r} != {decoded!r}")


class DocumentedOnlyWeb(AiohttpWeb):
    """Faust's aiohttp server without Faust's own views: only the pages the app registers.

    Faust 0.15.3 `faust.web.base.Web` mounts built-in blueprints from these four lists: `/router/`
    (host names and partition assignments), `/table/` and `/table/state/<key>/` (table look-ups;
    `/router/bordermon-state/` answered a 500 with a traceback in the log), the stats or the
    production index at `/`, `/graph`, `/performance`. The worker documents `/metrics`, `/healthz`,
    `/readyz` and `/api/v1/waits`; anything else must be a plain 404."""

    default_blueprints: ClassVar[list[Any]] = []
    production_blueprints: ClassVar[list[Any]] = []
    debug_blueprints: ClassVar[list[Any]] = []
    optional_blueprints: ClassVar[list[Any]] = []


WEB_DRIVERS.aliases["bordermon-web"] = f"{__name__}:DocumentedOnlyWeb"
DOCUMENTED_ONLY_WEB = "bordermon-web://"


class BatchApp(faust.App):
    """A Faust app whose batch agents receive each fetched batch of their topic in one call."""

    def __init__(
        self,
        *args: Any,
        fetch_max_wait: float | None = None,
        fetch_max_bytes: int | None = None,
        transactional_topics: frozenset[str] = frozenset(),
        **kwargs: Any,
    ) -> None:
        self.batch_handlers: dict[str, BatchHandler] = {}
        self.fetch_max_wait = fetch_max_wait
        self.fetch_max_bytes = fetch_max_bytes
        self.transactional_topics = transactional_topics
        kwargs.setdefault("TableManager", PromptTableManager)
        kwargs.setdefault("web", DOCUMENTED_ONLY_WEB)
        kwargs.setdefault("PartitionAssignor", StaticMemberAssignor)
        super().__init__(*args, **kwargs)

    def batch_agent(self, topic: faust.TopicT) -> Callable[[BatchHandler], BatchHandler]:
        """Register `handler(tp, records)` for every batch fetched from `topic`, and subscribe to it."""

        def register(handler: BatchHandler) -> BatchHandler:
            for name in topic.topics:
                self.batch_handlers[name] = handler
            self.topics.add(topic)
            return handler

        return register

    # Faust 0.15.3 `App._new_consumer`: where the app builds its consumer.
    def _new_consumer(self) -> ConsumerT:
        return BatchConsumer(
            self.transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=self.transport.loop,
            handlers=self.batch_handlers,
            fetch_max_wait_ms=None if self.fetch_max_wait is None else int(self.fetch_max_wait * 1000),
            fetch_max_bytes=self.fetch_max_bytes,
            transactional_topics=self.transactional_topics,
        )
