"""Publishing to border.events: keyed, ordered, paced by event time, failing loudly."""

from __future__ import annotations

import time
from collections.abc import Callable

from kafka.errors import KafkaError

from bordermon.config import EVENTS_TOPIC, Settings
from bordermon.errors import BordermonError
from bordermon.kafka import ensure_topics, make_producer


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
    """A kafka-python producer that keeps order, paces, and surfaces async send errors."""

    def __init__(self, settings: Settings, speed: float | None) -> None:
        self.settings = settings
        ensure_topics(settings)
        self.producer = make_producer(settings)
        self.pacer = Pacer(speed)
        self.failures: list[Exception] = []
        self.sent = 0

    def send(self, key: bytes | None, value: bytes, event_time: float | None) -> None:
        wait = self.pacer.delay(event_time)
        if wait > 0:
            time.sleep(wait)
        self.producer.send(EVENTS_TOPIC, key=key, value=value).add_errback(self.failures.append)
        self.sent += 1
        if self.failures:
            self._fail(self.failures[0])

    def flush(self) -> None:
        try:
            self.producer.flush()
        except KafkaError as exc:
            self._fail(exc)
        if self.failures:
            self._fail(self.failures[0])

    def close(self) -> None:
        self.producer.close(timeout=5)

    def _fail(self, exc: Exception) -> None:
        raise BordermonError(
            f"publishing to {self.settings.bootstrap_servers} failed after {self.sent} messages: {exc}"
        )
