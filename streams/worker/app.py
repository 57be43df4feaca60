"""The Faust application: topics, the state table, the batch agent and the /metrics page.

The agent is thin: it hands each fetched batch of one partition to `Processor` and emits what
it returns (`streams.worker.faustadapter` delivers whole fetches instead of Faust's per-event streams).
Table writes are coalesced per batch and sent to the changelog partition of the source
partition, which is what lets state move with its partition between workers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import functools
import gc
import logging
import socket
import time
from collections.abc import Sequence
from typing import Any

from faust.types import TP
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)

from bordermon import metrics as catalog
from bordermon.config import (
    ALERTS_TOPIC,
    APP_ID,
    CHANGELOG_TOPIC,
    COMMIT_INTERVAL,
    DEADLETTER_TOPIC,
    EVENTS_TOPIC,
    FETCH_BYTES_PER_PARTITION,
    REPARTITION_TOPIC,
    STATE_TABLE,
    Settings,
    fetch_max_bytes_for,
    flush_interval_for,
    heartbeat_interval_for,
    session_timeout_for,
)
from bordermon.kafka import BrokerTraits, ensure_worker_topics, partition_count_changed, partition_counts
from bordermon.registry import Registry
from bordermon.security import faust_credentials
from bordermon.webconfig import WebConfig
from streams.domain.metrics import StateCollector, counter, gauge, histogram
from streams.domain.processor import Forward, Processor, parse_hop_header
from streams.domain.state import PartitionState, Write
from streams.domain.stateformat import StateFormatError
from streams.domain.waitsfeed import waits_feed
from streams.worker.alertmanager import AlertmanagerPusher
from streams.worker.changelog import LastRecord, PartitionReader
from streams.worker.commit import Committer, CommitterBase, read_back_delivered
from streams.worker.faustadapter import CHANGELOG_ONLY_STORE, BatchApp
from streams.worker.sender import BatchSender
from streams.worker.transactions import TransactionalCommitter, TransactionalSenders
from streams.worker.warmstart import Prefetched, hint_path, prefetch_in_background, previously_owned, remember_owned
from streams.worker.webaccess import access_guard, send_pieces

log = logging.getLogger("bordermon.worker")

RECONCILE_ATTEMPTS = 5
PARTITION_CHECK_SECONDS = 10.0
# A state write waits at most its flush interval (≤ 2 s) and a round trip: older means stalled.
WRITE_STALL_NOTICE_SECONDS = 5.0


SLOW_GC_SECONDS = 0.05
_gc_started: list[float] = []


def _time_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started[:] = [time.perf_counter()]
    elif _gc_started:
        took = time.perf_counter() - _gc_started[0]
        if took >= SLOW_GC_SECONDS:
            log.warning(
                "slow garbage collection",
                extra={
                    "seconds": round(took, 3),
                    "generation": info.get("generation"),
                    "collected": info.get("collected"),
                },
            )


def tune_gc() -> None:
    """Fewer cyclic garbage collections. The worker allocates a burst of short-lived objects per
    event but makes almost no reference cycles, while its state (ids seen in the last 24 h,
    windows) is large, so CPython's default thresholds ran a full collection every ~80k events.
    Measured on the 1M-event bench log in process: 246k -> 331k events/s. A collection that stalls
    the worker is logged (it shows as a latency outlier)."""
    gc.collect()
    gc.freeze()  # everything loaded so far is permanent: never scan it again
    gc.set_threshold(100_000, 50, 100)
    gc.callbacks.append(_time_gc)


def release_freed_memory() -> None:
    """Return freed heap to the operating system (glibc's `malloc_trim`). Recovery reads the
    whole changelog, parses it and drops it: without this the worker's RSS keeps that
    transient's high-water mark for the rest of its life. No-op off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)


def _not_recovered(key: bytes) -> bytes | None:
    """The worker loads every assigned partition from the changelog when it is assigned
    (`reconcile`); a partition met before that would count from nothing, so refuse loudly."""
    raise RuntimeError(f"state read before its partition was recovered ({key!r})")


def instance_id(template: str | None) -> str | None:
    """Static group membership id; `{hostname}` makes one per container that survives its restarts."""
    return template.replace("{hostname}", socket.gethostname()) if template else None


def build_app(
    settings: Settings, partitions: int, broker: BrokerTraits, web_config: WebConfig, transactional: bool
) -> BatchApp:
    """The Faust app with every setting bordermon relies on (its reasons: docs/reliability.md)."""
    return BatchApp(
        APP_ID,
        broker=[f"kafka://{s}" for s in settings.bootstrap_list],
        store="memory://",
        datadir=settings.worker_data_dir,
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        broker_rebalance_timeout=settings.rebalance_timeout,
        broker_session_timeout=session_timeout_for(settings, broker.joins_count_as_contact),
        broker_heartbeat_interval=heartbeat_interval_for(broker.joins_count_as_contact),
        broker_commit_every=10_000,
        broker_commit_interval=COMMIT_INTERVAL,
        stream_buffer_maxsize=20_000,
        broker_max_poll_records=settings.batch_max,
        consumer_max_fetch_size=FETCH_BYTES_PER_PARTITION,
        fetch_max_bytes=fetch_max_bytes_for(broker.partition_fetch_limit_honoured),
        producer_linger=0.005,
        producer_max_request_size=4 * 1024 * 1024,
        web_enabled=True,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_in_thread=False,
        web_ssl_context=web_config.ssl_context(),
        web_application_options={"middlewares": [access_guard(web_config)]} if web_config.users else None,
        fetch_max_wait=settings.fetch_max_wait,
        consumer_group_instance_id=instance_id(settings.group_instance_id),
        broker_credentials=faust_credentials(settings.security),
        transactional_topics=frozenset({EVENTS_TOPIC, REPARTITION_TOPIC}) if transactional else frozenset(),
        # bordermon.kafka.ensure_worker_topics creates every topic, before Faust starts. Faust's
        # own CreateTopics goes to the metadata's controller id (on KRaft any broker, maybe a
        # dead one: a worker started with one of three brokers down exited), and its leader
        # topic, unused here, would need CREATE rights on a locked cluster (bordermon.locks).
        topic_allow_declare=False,
        topic_disable_leader=True,
    )


class Pipeline:
    """Everything a worker runs, built from settings and a registry."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        partitions: int,
        broker: BrokerTraits,
        web_config: WebConfig | None = None,
    ) -> None:
        self.settings = settings
        self.partitions = partitions
        self.transactional = settings.exactly_once == "kafka-transactions"
        self.reader = PartitionReader(
            settings.bootstrap_list, settings.security, broker.exact_end_offsets, read_committed=self.transactional
        )
        self.app = build_app(settings, partitions, broker, web_config or WebConfig(), self.transactional)
        self._declare_topics()
        self.processor = Processor(registry, partitions, get=_not_recovered)
        self._build_committer(flush_interval_for(settings, len(registry.checkpoints), partitions), broker)
        self.owned: set[int] = set()
        self.misrouted_seen: set[tuple[bytes, bytes]] = set()  # (checkpoint key, partitioner code)
        self.recovered = False
        self.crashing: asyncio.Future[Any] | None = None
        self.processed = 0
        self.end_offsets: dict[int, int] = {}
        self.owned_note = hint_path(settings.worker_data_dir, instance_id(settings.group_instance_id))
        self.prefetch: concurrent.futures.Future[Prefetched] | None = None
        self._register_metrics()
        self._wire()

    def _declare_topics(self) -> None:
        app, partitions = self.app, self.partitions
        self.events = app.topic(EVENTS_TOPIC, key_serializer="raw", value_serializer="raw", partitions=partitions)
        # Co-partitioned with border.events (same count, same subscribers): Faust assigns
        # partition p of both, and of the table's changelog, to the same worker.
        self.repartition = app.topic(
            REPARTITION_TOPIC, key_serializer="raw", value_serializer="raw", partitions=partitions
        )
        self.table = app.Table(
            STATE_TABLE,
            partitions=partitions,
            key_type=bytes,
            value_type=bytes,
            default=None,
            store=CHANGELOG_ONLY_STORE,
        )
        if self.table.changelog_topic.get_topic_name() != CHANGELOG_TOPIC:  # Faust names it, not us
            raise RuntimeError(f"Faust names the state changelog {self.table.changelog_topic.get_topic_name()!r}")

    def _build_committer(self, persist_interval: float, broker: BrokerTraits) -> None:
        """The sender of outputs and the commit protocol chosen by `exactly_once`."""
        settings = self.settings
        # Idempotent where the broker can: a batch whose acknowledgement a leader change lost is
        # not written twice (a replicated cluster; Tansu 0.6 cannot start such a producer).
        # A write the brokers do not acknowledge (not enough in-sync replicas, none reachable) is
        # retried this long before the worker gives up and stops (exit 1, for its supervisor).
        patience = int(settings.delivery_timeout * 1000)
        self.sender = BatchSender(
            settings.bootstrap_list,
            settings.security,
            enable_idempotence=broker.idempotent_producers,
            request_timeout_ms=patience,
        )
        self.transactions: TransactionalSenders | None = None
        self.committer: CommitterBase
        if self.transactional:
            self.transactions = TransactionalSenders(settings.bootstrap_list, settings.security, patience)
            self.committer = TransactionalCommitter(
                self.processor,
                self.transactions,
                changelog=lambda: CHANGELOG_TOPIC,
                group=APP_ID,
                on_failure=self._delivery_failed,
                persist_interval=persist_interval,
            )
        else:
            self.committer = Committer(
                self.processor,
                self.sender,
                self._persist,
                on_failure=self._delivery_failed,
                persist_interval=persist_interval,
            )

    def _register_metrics(self) -> None:
        settings = self.settings
        # The state families are rendered by the collector itself (a scrape at thousands of
        # checkpoints); the registry holds the process metrics and the worker's own counters.
        self.state_metrics = StateCollector(self.processor, lambda: self.owned, self._highwater)
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.batch_seconds = histogram(catalog.BATCH_DURATION, self.registry)
        self.messages = counter(catalog.MESSAGES_PROCESSED, self.registry)
        self.forwarded = counter(catalog.MESSAGES_FORWARDED, self.registry)
        self.forwarded_in = counter(catalog.MESSAGES_FORWARDED_RECEIVED, self.registry)
        self.skipped = counter(catalog.MESSAGES_SKIPPED, self.registry)
        self.event_lag = histogram(catalog.INGEST_LATENCY, self.registry)
        self.write_age = gauge(catalog.UNACKNOWLEDGED_WRITE_AGE, self.registry)
        self.writes_stalled_since: float | None = None
        self.pusher: AlertmanagerPusher | None = None
        pushes = counter(catalog.ALERTMANAGER_PUSHES, self.registry)
        if settings.alertmanager_url:
            self.pusher = AlertmanagerPusher(
                settings.alertmanager_url,
                f"http://{settings.web_host}:{settings.web_port}/metrics",
                settings.alertmanager_repush_seconds,
                pushes,
            )

    def begin_warm_start(self) -> None:
        """Start rebuilding the state of the partitions this static member owned last, while it
        joins the group (`streams.worker.warmstart`); nothing for a dynamic member or a first start."""
        if self.owned_note is None:
            return
        partitions = previously_owned(self.owned_note)
        if partitions:
            self.prefetch = prefetch_in_background(functools.partial(self._prefetch, partitions))

    def _prefetch(self, partitions: list[int]) -> Prefetched:
        started = time.monotonic()
        topic = CHANGELOG_TOPIC
        if ensure_worker_topics(self.settings, topic) != self.processor.partitions:
            return Prefetched()  # the partition count changed: `reconcile` stops the worker
        states, last, _ = self._read_state(topic, partitions)
        log.info("state prefetched", extra={"partitions": partitions, "seconds": round(time.monotonic() - started, 3)})
        return Prefetched(states, last)

    async def _warm_states(self, assigned: set[int], topic: str) -> dict[int, PartitionState]:
        """The prefetched states of assigned partitions whose changelog nobody wrote to since."""
        if self.prefetch is None:
            return {}
        prefetched = await asyncio.wrap_future(self.prefetch)
        self.prefetch = None  # a guess for the first assignment only
        candidates = prefetched.candidates(assigned)
        if not candidates:
            return {}
        loop = asyncio.get_running_loop()
        try:
            unchanged = await loop.run_in_executor(None, self.reader.still_ending_with, topic, candidates)
        except Exception as exc:  # the normal read follows, with its retries
            log.warning("warm start check failed; reading state", extra={"error": repr(exc)})
            return {}
        if stale := sorted(candidates.keys() - unchanged):
            log.info("prefetched state was overtaken by later writes; reading it again", extra={"partitions": stale})
        return {p: prefetched.states[p] for p in unchanged}

    def _note_owned(self, partitions: set[int]) -> None:
        if self.owned_note is None:
            return
        try:
            remember_owned(self.owned_note, partitions)
        except OSError as exc:  # only the next start's warm start is lost
            log.warning("cannot note the owned partitions", extra={"path": str(self.owned_note), "error": repr(exc)})

    def _highwater(self, partition: int) -> int | None:
        return self.end_offsets.get(partition)

    async def shutdown(self) -> None:
        """Close the clients this pipeline opened itself (Faust closes its own)."""
        await self.sender.stop()
        if self.transactions is not None:
            await self.transactions.stop()
        if self.pusher is not None:
            await self.pusher.close()

    def watch_writes(self) -> None:
        """Say once when the brokers stop acknowledging state writes, and once when they resume.
        Meanwhile the input behind those writes stays unacknowledged (step 4 waits for them), so
        nothing is lost; the metric shows how long it has been."""
        age = self.committer.oldest_unsettled_seconds()
        self.write_age.set(age)
        if age >= WRITE_STALL_NOTICE_SECONDS and self.writes_stalled_since is None:
            self.writes_stalled_since = time.monotonic() - age
            log.error(
                "the brokers are not acknowledging writes (not enough in-sync replicas, or unreachable); "
                "input is not acknowledged meanwhile, so nothing is lost; retrying",
                extra={"seconds": round(age, 1), "gives_up_after_seconds": self.settings.delivery_timeout},
            )
        elif age < WRITE_STALL_NOTICE_SECONDS and self.writes_stalled_since is not None:
            stalled = time.monotonic() - self.writes_stalled_since
            self.writes_stalled_since = None
            log.warning("writes acknowledged again", extra={"stalled_seconds": round(stalled, 1)})

    async def _stop_for_partition_count(self, partitions: int) -> None:
        """border.events' partition count changed (an in-memory broker reset and auto-created it;
        an operator added partitions): Faust's table and the home partitions are sized at start,
        so only a restart can follow, and it must not pass unnoticed: exit 1, saying so."""
        message = partition_count_changed(partitions, self.processor.partitions)
        log.error(message, extra={"partitions": partitions})
        await self.app.crash(RuntimeError(message))

    async def check_partition_count(self) -> None:
        """Asked every few seconds: Faust's consumer notices added partitions only when its
        metadata is refreshed (every 5 minutes), and meanwhile would not read the new ones."""
        loop = asyncio.get_running_loop()
        try:
            counts = await loop.run_in_executor(None, partition_counts, self.settings, [EVENTS_TOPIC])
        except Exception as exc:  # the broker is away: the consumer says so; ask again later
            log.debug("partition count unavailable", extra={"error": repr(exc)})
            return
        if counts[EVENTS_TOPIC] != self.processor.partitions:
            await self._stop_for_partition_count(counts[EVENTS_TOPIC])

    async def refresh_end_offsets(self) -> None:
        """End offsets of owned partitions, for the lag metric (Tansu reports them low)."""
        owned = sorted(self.owned)
        if not owned:
            return
        try:
            ends = await self.app.consumer.highwaters(*[TP(EVENTS_TOPIC, p) for p in owned])
        except Exception as exc:  # a failed refresh keeps the previous figures
            log.debug("end offsets unavailable", extra={"error": repr(exc)})
            return
        self.end_offsets = {tp.partition: end for tp, end in ends.items() if isinstance(end, int) and end >= 0}

    def _delivery_failed(self, exc: BaseException) -> None:
        """A batch's messages or state could not be delivered: its offsets stay uncommitted, and the
        worker stops (exit 1) so that a restart processes them again from the committed state."""
        log.error("delivery failed; stopping", extra={"error": repr(exc)})
        self.crashing = asyncio.ensure_future(self.app.crash(exc))

    def counted(self) -> int:
        """Accepted + rejected messages in the state of the owned partitions (cheap: per checkpoint,
        not per event; /metrics says the same at the cost of a full scrape)."""
        total = 0
        for p in self.owned:
            ps = self.processor.state.get(p)
            if ps is not None:
                total += sum(ps.rejected.values()) + sum(sum(cs.accepted.values()) for cs in ps.checkpoints.values())
        return total

    async def _persist(self, partition: int, writes: list[Write]) -> list[asyncio.Future[Any]]:
        """A partition's changelog writes as record batches (the state itself lives parsed in
        the processor only). Faust's `send_changelog` costs a future, a buffer entry and a
        callback per write: with 2,400 checkpoints that was thousands of writes a second."""
        topic = CHANGELOG_TOPIC
        return await self.sender.send(topic, [(partition, key, value, [], None) for key, value in writes])

    def _wire(self) -> None:
        app, table = self.app, self.table

        @app.batch_agent(self.events)
        async def process(tp: TP, records: Sequence[Any]) -> asyncio.Future[Any] | None:
            return await self.handle_batch(tp, records)

        @app.batch_agent(self.repartition)
        async def process_forwarded(tp: TP, records: Sequence[Any]) -> asyncio.Future[Any] | None:
            return await self.handle_batch(tp, records)

        @table.on_recover
        async def recovered() -> None:
            await self.reconcile()

        # Faust's signal stubs declare a `signal` keyword and a None return; it calls these
        # with the sender and awaits them.
        @app.on_before_shutdown.connect  # type: ignore[arg-type]
        async def before_shutdown(sender: Any, **_: Any) -> None:
            await self.shutdown()

        @app.on_partitions_revoked.connect  # type: ignore[arg-type]
        async def revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
            lost = {tp.partition for tp in revoked if tp.topic == EVENTS_TOPIC}
            self.owned -= lost
            self.processor.drop(lost)
            self.committer.forget(lost)
            if self.transactions is not None:
                await self.transactions.release(lost)

        if self.pusher is not None:
            pusher = self.pusher

            @app.timer(interval=1.0)
            async def push_alerts() -> None:
                await pusher.tick(self.processor, self.owned)

        @app.timer(interval=5.0)
        async def end_offsets() -> None:
            await self.refresh_end_offsets()

        @app.timer(interval=1.0)
        async def writes() -> None:
            self.watch_writes()

        @app.timer(interval=PARTITION_CHECK_SECONDS)
        async def partition_count() -> None:
            await self.check_partition_count()

        @app.page("/metrics")
        async def metrics(web: Any, request: Any) -> Any:
            pieces = self.state_metrics.pieces()
            pieces.append(generate_latest(self.registry))
            return await send_pieces(request, pieces, CONTENT_TYPE_LATEST)

        @app.page("/api/v1/waits")
        async def waits(web: Any, request: Any) -> Any:
            # What this worker owns, as /metrics: the feeds of all workers together are the whole.
            return web.json(waits_feed(self.state_metrics.owned_checkpoints(self.owned), time.time()))

        @app.page("/readyz")
        async def readyz(web: Any, request: Any) -> Any:
            # Ready once it joined the group and rebuilt the state of what it was assigned (possibly
            # nothing, with more workers than partitions): a rolling update waits for this.
            status = 200 if self.recovered else 503
            return web.json({"ready": self.recovered, "partitions": sorted(self.owned)}, status=status)

        @app.page("/healthz")
        async def healthz(web: Any, request: Any) -> Any:
            # `processed` is cheap to read many times a second (the bench polls it; /metrics is heavier).
            return web.json(
                {
                    "status": "ok",
                    "partitions": sorted(self.owned),
                    "processed": self.processed,
                    "counted": self.counted(),
                    # State writes sent and not yet acknowledged: 0 once everything counted is durable.
                    "unsettled": self.committer.in_flight,
                }
            )

    async def reconcile(self) -> None:
        """After recovery: own exactly the assigned partitions, state rebuilt from the changelog.

        Faust keeps the stream paused until this returns; the reads run in a thread so
        heartbeats go on. The topics are ensured first: an in-memory broker that restarted has
        none. A state that cannot be read after a few attempts crashes the worker (exit 1, for
        its supervisor to restart it) rather than leaving it counting from a wrong state.
        """
        assigned = {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == EVENTS_TOPIC}
        self.processor.drop(p for p in list(self.processor.state) if p not in assigned)
        started = time.monotonic()
        if self.transactions is not None:
            # Fence the previous owners first: their open transactions are aborted, so a
            # read_committed read of the changelog reaches its end.
            await self.transactions.release(set(self.transactions.senders) - assigned)
            await self.transactions.claim(assigned)
        warm = await self._warm_states(assigned, CHANGELOG_TOPIC)
        loaded = await self._load_with_retries(sorted(assigned - warm.keys()), warm, started)
        if loaded is None:
            return  # the worker crashed, saying why
        partitions, states, phases = loaded
        if partitions != self.processor.partitions:
            await self._stop_for_partition_count(partitions)
            return
        self.processor.state.update(states)
        self.owned = assigned
        self.recovered = True
        self._note_owned(assigned)
        log.info(
            "partitions recovered",
            extra={
                "partitions": sorted(assigned),
                "prefetched": sorted(warm),
                "seconds": round(time.monotonic() - started, 3),
                **{f"{name}_seconds": round(value, 3) for name, value in phases.items()},
            },
        )

    async def _load_with_retries(
        self, rest: list[int], warm: dict[int, PartitionState], started: float
    ) -> tuple[int, dict[int, PartitionState], dict[str, float]] | None:
        """`_load`, tried again while the broker is away; None once the worker crashed (a state
        that cannot be parsed, or a broker away for every attempt)."""
        for attempt in range(1, RECONCILE_ATTEMPTS + 1):
            try:
                return await self._load(rest, warm, started)
            except StateFormatError as exc:  # retrying cannot help: stop with the reason
                log.error(str(exc))
                await self.app.crash(exc)
                return None
            except Exception as exc:  # the broker is away or was reset: try again, then give up loudly
                if attempt == RECONCILE_ATTEMPTS:
                    log.error("cannot read state from the changelog; stopping", extra={"error": repr(exc)})
                    await self.app.crash(exc)
                    return None
                log.warning("state read failed; retrying", extra={"attempt": attempt, "error": repr(exc)})
                await asyncio.sleep(min(2.0**attempt, 10.0))
        return None

    async def _load(
        self, rest: list[int], warm: dict[int, PartitionState], started: float
    ) -> tuple[int, dict[int, PartitionState], dict[str, float]]:
        """The partitions not prefetched (`rest`), read to the changelog's end and parsed, with the
        outputs a predecessor delivered read back (R1, R2): (border.events' partition count, the
        states, seconds per phase)."""
        topic, loop = CHANGELOG_TOPIC, asyncio.get_running_loop()
        checked = time.monotonic()
        partitions = await loop.run_in_executor(None, ensure_worker_topics, self.settings, topic)
        # In a thread: at 2M ids the parse takes seconds, and the event loop must stay free for
        # a rebalance callback (it waits for the loop: a member held here longer than the
        # rebalance timeout is dropped from the group) and for /readyz.
        loaded, _, read = await loop.run_in_executor(None, self._read_state, topic, rest)
        states = {**loaded, **warm}
        parsed = time.monotonic()
        if not self.transactional:  # R2: under transactions, what was not committed is aborted
            outputs = [ALERTS_TOPIC, DEADLETTER_TOPIC]
            counts = await loop.run_in_executor(None, partition_counts, self.settings, outputs)
            read_back = self.reader.read_ranges
            await loop.run_in_executor(None, read_back_delivered, read_back, list(states.values()), counts)
        release_freed_memory()
        phases = {
            "warm_check": checked - started,
            "read": read - checked,
            "parse": parsed - read,
            "read_back": time.monotonic() - parsed,
        }
        return partitions, states, phases

    def _read_state(
        self, topic: str, partitions: list[int]
    ) -> tuple[dict[int, PartitionState], dict[int, LastRecord], float]:
        """The partitions' states read from the changelog and parsed (blocking), with the last
        record read of each and when the read ended (monotonic). Read and parse share a thread,
        and each raw record is dropped as it is parsed: the raw changelog and the parsed state
        are never both whole in memory, and glibc reuses the freed bytes in that thread's arena
        for the parsed state (2M live ids: the recovery's peak RSS was above 400 MB)."""
        snapshot = self.reader.read_partitions(topic, partitions)
        read = time.monotonic()
        raw = snapshot.data

        def take(key: bytes) -> bytes | None:
            return raw.pop(key, None)

        return {p: self.processor.load(p, take) for p in partitions}, snapshot.last, read

    def _note_misrouted(self, partition: int, forwards: Sequence[Forward]) -> None:
        """Log once per checkpoint and likely producer partitioner: on-call's lead to the producer."""
        for key, header in {(f.key, f.header[-1:]) for f in forwards} - self.misrouted_seen:
            self.misrouted_seen.add((key, header))
            forward = next(f for f in forwards if f.key == key and f.header[-1:] == header)
            log.warning(
                "events arrive off their checkpoint's home partition; forwarding them (see README, "
                "Publishing events)",
                extra={"checkpoint": key.decode(), "partitioner": parse_hop_header(forward.header)[2],
                       "arrived_on": partition, "home": forward.partition},
            )  # fmt: skip

    async def handle_batch(self, tp: TP, records: Sequence[Any]) -> asyncio.Future[Any] | None:
        """One fetched batch of one partition, through the commit protocol (`streams.worker.commit`).

        Returns a future for the batch's state writes: its offsets may be committed only once
        they are durable (step 4, `streams.worker.faustadapter`)."""
        started = time.monotonic()
        if tp.topic == EVENTS_TOPIC:
            result, durable = await self.committer.commit_events(tp.partition, records)
        else:
            result, durable = await self.committer.commit_forwarded(tp.partition, records)
        if self.pusher is not None and result.alert_events:
            self.pusher.enqueue(result.alert_events)
        now = time.time()
        for r in records[:: max(1, len(records) // 20)]:  # a sample is enough for a latency histogram
            self.event_lag.observe(max(0.0, now - r.timestamp / 1000.0))
        if tp.topic == EVENTS_TOPIC:
            self.messages.inc(len(records))
            self.processed += len(records)
            if result.forwards:
                self.forwarded.inc(len(result.forwards))
                self._note_misrouted(tp.partition, result.forwards)
        else:
            self.forwarded_in.inc(len(records))
        if result.skipped:
            self.skipped.inc(result.skipped)
        self.batch_seconds.observe(time.monotonic() - started)
        return durable
