"""Publishing to border.events: keyed, ordered, paced by event time, resumable.

Messages are packed into one record batch per partition with aiokafka's batch API: a
per-message `send()` costs tens of microseconds in Python, which capped replay near 24k lines/s;
a batch append costs about one. The public interface stays synchronous (replay and the
simulator are plain loops), so the producer runs on a private event loop that is driven
whenever batches are handed over, while pacing sleeps and at flush.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from bordermon.batches import BatchPacker
from bordermon.config import EVENTS_TOPIC, Settings
from bordermon.errors import BordermonError
from bordermon.kafka import broker_traits, check_reachable, ensure_topics
from bordermon.partitioning import Partitioner
from bordermon.security import client_options
from bordermon.stopping import StopFlag

T = TypeVar("T")
BATCH_BYTES = 1024 * 1024
MAX_ROUNDS_IN_FLIGHT = 4
STALL_NOTICE_SECONDS = 3.0


def to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Pacer:
    """Sleeps so that event time advances `speed` times faster than wall time; events before
    `fast_until` (event time) are not paced at all, so quiet hours pass at once."""

    def __init__(
        self, speed: float | None, clock: Callable[[], float] = time.monotonic, fast_until: float | None = None
    ) -> None:
        self.speed = speed
        self.clock = clock
        self.fast_until = fast_until
        self.origin: tuple[float, float] | None = None  # (event time, wall time)

    def delay(self, t: float | None) -> float:
        if self.speed is None or t is None:
            return 0.0
        if self.fast_until is not None and t < self.fast_until:
            return 0.0
        now = self.clock()
        if self.origin is None:
            self.origin = (t, now)
            return 0.0
        due = self.origin[1] + (t - self.origin[0]) / self.speed
        return max(0.0, due - now)


@dataclass
class Round:
    """Consecutive input positions `first`.. packed into one batch per partition, sent together."""

    first: int
    packer: BatchPacker
    count: int = 0
    delivered: asyncio.Future[Any] | None = None


class Publisher:
    """Publishes in order per partition and knows exactly where to resume.

    Input positions are cut into rounds; a round is acknowledged when every partition's batch
    of it is. Everything before the earliest round not acknowledged was delivered, so that
    round's first position is the resume point. Batches that cannot be delivered within the
    delivery timeout (retrying with back-off meanwhile) fail the run with that point. A later
    round may have reached the broker before an earlier one failed; re-sending it on resume
    gives duplicate event ids, which the pipeline rejects as `duplicate` rather than counting.
    """

    def __init__(
        self,
        settings: Settings,
        speed: float | None,
        stop: StopFlag | None = None,
        notice: Callable[[str], None] = to_stderr,
        fast_until: float | None = None,
    ) -> None:
        self.settings = settings
        self.notice = notice
        self.stalled = False
        # aiokafka logs every failed attempt with a traceback; this class reports a stall once
        # and a failure as one line with the resume point instead.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        ensure_topics(settings, (EVENTS_TOPIC,))
        check_reachable(settings)
        self.idempotent = broker_traits(settings).idempotent_producers
        self.loop = asyncio.new_event_loop()
        self.producer: AIOKafkaProducer
        try:
            partitions = self._run(self._start())
        except KafkaError as exc:
            self._close_quietly()
            raise BordermonError(f"cannot connect a producer to {settings.bootstrap_servers}: {exc}") from None
        self.partition = Partitioner(len(partitions))
        self.pacer = Pacer(speed, fast_until=fast_until)
        self.stop = stop or StopFlag()
        self.open = Round(first=0, packer=BatchPacker(self.producer.create_batch))
        self.in_flight: deque[Round] = deque()
        self.sent = 0
        self.next_position = 0

    async def _start(self) -> set[int]:
        # aiokafka binds to the running loop, so the producer is made inside it.
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_list,
            acks="all",
            # No duplicate or reordered batch when the broker took one whose acknowledgement was lost
            # (a leader change in a replicated cluster), where the broker can (`BrokerTraits`).
            enable_idempotence=self.idempotent,
            max_batch_size=BATCH_BYTES,
            max_request_size=4 * BATCH_BYTES,
            request_timeout_ms=int(self.settings.delivery_timeout * 1000),  # also how long a batch may wait
            retry_backoff_ms=200,
            **client_options(self.settings.security),
        )
        await self.producer.start()
        return await self.producer.partitions_for(EVENTS_TOPIC)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def send(self, key: bytes | None, value: bytes, event_time: float | None, position: int) -> None:
        """Publish one message; `position` is its index in the input, used for --resume."""
        wait = self.pacer.delay(event_time)
        if wait > 0:
            self._submit()  # what is due goes out before the wait
            self._run(self._sleep(wait))
        partition = self.partition(key)
        if not self.open.packer.append(partition, key, value):  # that partition's batch is full
            self._submit()
            self.open.packer.append(partition, key, value)
        if self.open.count == 0:
            self.open.first = position
        self.open.count += 1
        self.sent += 1
        self.next_position = position + 1

    async def _sleep(self, seconds: float) -> None:
        """Sleep with the producer running, waking within 0.1 s of a stop request."""
        deadline = time.monotonic() + seconds
        while self.stop.requested is None and (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.1))

    def _submit(self) -> None:
        current, self.open = self.open, Round(first=self.next_position, packer=BatchPacker(self.producer.create_batch))
        if current.count == 0:
            return
        self.in_flight.append(current)
        try:
            self._run(self._patiently(self._hand_over(current)))
        except KafkaError as exc:  # no room for the batch within the delivery timeout
            self._fail(exc)
        self._collect()
        while len(self.in_flight) > MAX_ROUNDS_IN_FLIGHT:
            self._run(self._patiently(asyncio.wait([self.in_flight[0].delivered])))  # type: ignore[list-item]
            self._collect()

    async def _patiently(self, awaitable: Awaitable[T]) -> T:
        """Await, saying once (one line) when the broker has not answered for a few seconds."""
        task = asyncio.ensure_future(awaitable)
        done, _ = await asyncio.wait([task], timeout=STALL_NOTICE_SECONDS)
        if not done and not self.stalled:
            self.stalled = True
            self.notice(
                f"bordermon: warning: {self.settings.bootstrap_servers} is not acknowledging; "
                f"retrying for up to {self.settings.delivery_timeout:.0f} s (BORDERMON_DELIVERY_TIMEOUT)"
            )
        return await task

    async def _hand_over(self, current: Round) -> None:
        futures = []
        try:
            for partition, batch in current.packer.take_all().items():
                futures.append(await self.producer.send_batch(batch, EVENTS_TOPIC, partition=partition))
        finally:
            current.delivered = asyncio.gather(*futures)
            # Failures are read by _collect; after a fatal one nobody will, so asyncio must not
            # print "exception was never retrieved" for the rest.
            current.delivered.add_done_callback(lambda f: f.cancelled() or f.exception())

    def _collect(self) -> None:
        """Drop acknowledged rounds from the front; fail on the first round that failed."""
        while self.in_flight and self.in_flight[0].delivered is not None and self.in_flight[0].delivered.done():
            exc = self.in_flight[0].delivered.exception()
            if exc is not None:
                self._fail(exc)
            self.in_flight.popleft()
        for later in self.in_flight:
            if later.delivered is not None and later.delivered.done() and later.delivered.exception() is not None:
                self._fail(later.delivered.exception())  # type: ignore[arg-type]

    def flush(self) -> None:
        self._submit()
        pending = [r.delivered for r in self.in_flight if r.delivered is not None]
        if pending:
            # Bounded: batches expire after the delivery timeout; this is a backstop.
            self._run(self._patiently(asyncio.wait(pending, timeout=self.settings.delivery_timeout + 5)))
        self._collect()
        if self.in_flight:
            self._fail(KafkaError("not acknowledged before the delivery timeout"))

    def close(self) -> None:
        self._close_quietly()

    def _close_quietly(self) -> None:
        producer = getattr(self, "producer", None)
        if self.loop.is_closed():
            return
        try:
            if producer is not None:
                self._run(asyncio.wait_for(producer.stop(), timeout=5))
        except (KafkaError, TimeoutError, OSError):
            pass  # closing after a failure: what was delivered is already reported
        finally:
            self.loop.close()

    def _fail(self, exc: BaseException) -> None:
        position = self.in_flight[0].first if self.in_flight else self.open.first
        raise BordermonError(
            f"publishing to {self.settings.bootstrap_servers} failed at message {position} ({exc}); "
            f"messages before it were delivered: re-run with --resume {position}"
        )
