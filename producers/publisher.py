"""Publishing to border.events: keyed, ordered, paced by event time, resumable."""

from __future__ import annotations

import time
from collections.abc import Callable

from kafka.errors import KafkaError

from bordermon.config import EVENTS_TOPIC, Settings
from bordermon.errors import BordermonError
from bordermon.kafka import ensure_topics, make_producer
from bordermon.stopping import StopFlag


class Pacer:
    """Sleeps so that event time advances `speed` times faster than wall time."""

    def __init__(self, speed: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.speed = speed
        self.clock = clock
        self.origin: tuple[float, float] | None = None  # (event time, wall time)

    def delay(self, t: float | None) -> float:
        if self.speed is None or t is None:
            return 0.0
        now = self.clock()
        if self.origin is None:
            self.origin = (t, now)
            return 0.0
        due = self.origin[1] + (t - self.origin[0]) / self.speed
        return max(0.0, due - now)


class Publisher:
    """A kafka-python producer that keeps order, paces, and knows exactly where to resume.

    kafka-python retries with back-off until `delivery_timeout_ms` (120 s): a broker that comes
    back within that loses nothing. Otherwise the first failed message's position is reported,
    and because one request is in flight per connection nothing after it was written either.
    """

    def __init__(self, settings: Settings, speed: float | None, stop: StopFlag | None = None) -> None:
        self.settings = settings
        ensure_topics(settings)
        self.producer = make_producer(settings)
        self.pacer = Pacer(speed)
        self.stop = stop or StopFlag()
        self.failure: tuple[int, Exception] | None = None
        self.sent = 0
        self.next_position = 0
        self.acked_through = -1  # every message sent up to this position is acknowledged

    def send(self, key: bytes | None, value: bytes, event_time: float | None, position: int) -> None:
        """Publish one message; `position` is its index in the input, used for --resume."""
        if self.sent == 0:
            self.acked_through = position - 1
        wait = self.pacer.delay(event_time)
        if wait > 0:
            self.stop.sleep(wait)
        try:
            future = self.producer.send(EVENTS_TOPIC, key=key, value=value)
        except KafkaError as exc:  # e.g. no metadata within max_block_ms: the broker is gone
            self._failed(position, exc)
            self._fail()
        future.add_errback(self._failed, position)
        future.add_callback(self._acked, position)
        self.sent += 1
        self.next_position = position + 1
        if self.failure is not None:
            self._fail()

    def _failed(self, position: int, exc: Exception) -> None:
        if self.failure is None or position < self.failure[0]:
            self.failure = (position, exc)

    def flush(self) -> None:
        try:
            # Bounded: while the broker is away kafka-python may keep batches alive past their
            # delivery timeout, and an unbounded flush would hang instead of reporting.
            self.producer.flush(timeout=self.settings.delivery_timeout + 5)
        except KafkaError as exc:
            self._failed(self.next_position, exc)
            self._first_unacked_as_failure()
        if self.failure is not None:
            self._fail()

    def _first_unacked_as_failure(self) -> None:
        """After a timed-out flush the earliest message not acknowledged is where to resume."""
        if self.acked_through + 1 < self.next_position:
            self._failed(self.acked_through + 1, KafkaError("not acknowledged before the delivery timeout"))

    def _acked(self, position: int, _metadata: object) -> None:
        # One request in flight per connection: acknowledgements arrive in send order.
        self.acked_through = max(self.acked_through, position)

    def close(self) -> None:
        self.producer.close(timeout=5)

    def _fail(self) -> None:
        assert self.failure is not None
        position, exc = self.failure
        raise BordermonError(
            f"publishing to {self.settings.bootstrap_servers} failed at message {position} ({exc}); "
            f"messages before it were delivered: re-run with --resume {position}"
        )
