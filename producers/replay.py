"""`bordermon replay`: publish log lines verbatim, in order, paced by event time.

A line is never dropped: one that does not parse is published without a key, and the
pipeline decides what is bad. Pacing follows the first valid event: an event with time t is
sent at wall start + (t - t_first) / speed; other lines and late (out-of-order) events go at once.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson
from kafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from bordermon.config import EVENTS_TOPIC, Settings
from bordermon.errors import BordermonError
from bordermon.events import Rejected, decode_event
from bordermon.kafka import ensure_topics, make_producer
from producers.jsonl import iter_lines, open_log


@dataclass
class ReplaySummary:
    lines: int = 0
    keyed: int = 0
    unkeyed: int = 0
    files: int = 0
    seconds: float = 0.0
    per_checkpoint: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        rate = self.lines / self.seconds if self.seconds > 0 else 0.0
        return (
            f"replayed {self.lines} lines from {self.files} file(s) in {self.seconds:.2f}s "
            f"({rate:,.0f} lines/s; {self.keyed} keyed by checkpoint, {self.unkeyed} unkeyed)"
        )


def key_and_time(line: bytes) -> tuple[bytes | None, float | None]:
    """The checkpoint key of a line that parses, and its event time if it is a valid event.

    Only valid events pace the replay: the ts of a line the pipeline will reject (a typo'd year,
    2099) must not stall it.
    """
    event = decode_event(line)
    if not isinstance(event, Rejected):
        return event.checkpoint_id.encode(), event.ts.timestamp()
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None, None
    cid = obj.get("checkpoint_id") if isinstance(obj, dict) else None
    return (cid.encode("utf-8", "surrogatepass") if isinstance(cid, str) and cid else None), None


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


def replay(
    paths: Sequence[str],
    settings: Settings,
    speed: float | None,
    console: Console | None = None,
) -> ReplaySummary:
    for path in paths:
        if not os.path.exists(path):
            raise BordermonError(f"{path}: no such file")
    console = console or Console(stderr=True)
    ensure_topics(settings)
    producer = make_producer(settings)
    summary = ReplaySummary()
    pacer = Pacer(speed)
    started = time.monotonic()
    total_bytes = sum(os.path.getsize(p) for p in paths)
    failures: list[Exception] = []

    def on_error(exc: Exception) -> None:
        failures.append(exc)

    progress = Progress(
        TextColumn("[bold]replay[/] {task.fields[name]}"),
        BarColumn(),
        TextColumn("{task.fields[lines]:,} lines"),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    send = producer.send
    try:
        with progress:
            task = progress.add_task("replay", total=total_bytes, name="", lines=0)
            done_bytes = 0
            for path in paths:
                reader, raw = open_log(path)
                summary.files += 1
                with raw, reader:
                    for n, line in enumerate(iter_lines(reader, path), 1):
                        key, t = key_and_time(line)
                        wait = pacer.delay(t)
                        if wait > 0:
                            time.sleep(wait)
                        send(EVENTS_TOPIC, key=key, value=line).add_errback(on_error)
                        summary.lines += 1
                        if key is None:
                            summary.unkeyed += 1
                        else:
                            summary.keyed += 1
                            summary.per_checkpoint[key.decode("utf-8", "replace")] += 1
                        if n % 2000 == 0:
                            if failures:
                                raise failures[0]
                            progress.update(
                                task,
                                completed=done_bytes + raw.tell(),
                                name=os.path.basename(path),
                                lines=summary.lines,
                            )
                done_bytes += os.path.getsize(path)
            producer.flush()
            if failures:
                raise failures[0]
    except KafkaError as exc:
        raise BordermonError(
            f"publishing to {settings.bootstrap_servers} failed after {summary.lines} lines: {exc}"
        ) from None
    finally:
        producer.close(timeout=5)
    summary.seconds = time.monotonic() - started
    return summary
