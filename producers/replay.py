"""`bordermon replay`: publish log lines verbatim, in order, paced by event time.

A line is never dropped: one that does not parse is published without a key, and the
pipeline decides what is bad. Pacing follows the first valid event: an event with time t is
sent at wall start + (t - t_first) / speed; other lines and late (out-of-order) events go at once.
Filters (--from/--to/--checkpoint) are the one exception: they select valid events only.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from bordermon.config import Settings
from bordermon.errors import BordermonError
from bordermon.events import Rejected, decode_event
from bordermon.logfiles import iter_lines, open_log
from bordermon.stopping import StopFlag
from producers.publisher import Publisher


@dataclass
class ReplaySummary:
    lines: int = 0
    keyed: int = 0
    unkeyed: int = 0
    filtered: int = 0
    files: int = 0
    next_position: int = 0
    stopped_by: str | None = None
    seconds: float = 0.0
    per_checkpoint: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        rate = self.lines / self.seconds if self.seconds > 0 else 0.0
        skipped = f", {self.filtered} filtered out" if self.filtered else ""
        stopped = (
            f"; stopped by {self.stopped_by}, everything sent was delivered: resume with --resume {self.next_position}"
            if self.stopped_by
            else ""
        )
        return (
            f"replayed {self.lines} lines from {self.files} file(s) in {self.seconds:.2f}s "
            f"({rate:,.0f} lines/s; {self.keyed} keyed by checkpoint, {self.unkeyed} unkeyed{skipped}){stopped}"
        )

    def per_checkpoint_lines(self) -> list[str]:
        return [f"  {cid:<24} {n:>10,}" for cid, n in self.per_checkpoint.most_common()]


@dataclass(frozen=True)
class Selection:
    """Optional filters; with any set, only valid events that match are sent."""

    start: float | None = None  # inclusive, event time
    end: float | None = None  # exclusive
    checkpoints: frozenset[str] | None = None

    @property
    def active(self) -> bool:
        return self.start is not None or self.end is not None or self.checkpoints is not None

    def keep(self, key: bytes | None, t: float | None) -> bool:
        if self.checkpoints is not None and (key is None or key.decode("utf-8", "replace") not in self.checkpoints):
            return False
        if self.start is not None or self.end is not None:
            if t is None:
                return False
            if self.start is not None and t < self.start:
                return False
            if self.end is not None and t >= self.end:
                return False
        return True


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


def replay(
    paths: Sequence[str],
    settings: Settings,
    speed: float | None,
    console: Console | None = None,
    selection: Selection | None = None,
    resume: int = 0,
    stop: StopFlag | None = None,
) -> ReplaySummary:
    for path in paths:
        if not os.path.exists(path):
            raise BordermonError(f"{path}: no such file")
    console = console or Console(stderr=True)
    stop = stop or StopFlag()
    publisher = Publisher(settings, speed, stop)
    summary = ReplaySummary()
    started = time.monotonic()
    progress = _progress_bar(console)
    try:
        with progress:
            task = progress.add_task("replay", total=sum(os.path.getsize(p) for p in paths), name="", lines=0)
            cursor = _Cursor(publisher, summary, selection, stop, resume)
            done_bytes = 0
            for path in paths:
                name = os.path.basename(path)

                def show(at: int, name: str = name, base: int = done_bytes) -> None:
                    progress.update(task, completed=base + at, name=name, lines=summary.lines)

                cursor.send_file(path, show)
                done_bytes += os.path.getsize(path)
                if stop.requested:
                    break
            publisher.flush()
            summary.next_position = cursor.position + 1 if not stop.requested else publisher.next_position
            summary.stopped_by = stop.requested
    finally:
        publisher.close()
    summary.seconds = time.monotonic() - started
    return summary


def _progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]replay[/] {task.fields[name]}"),
        BarColumn(),
        TextColumn("{task.fields[lines]:,} lines"),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


PROGRESS_EVERY = 2000  # lines between progress updates


@dataclass
class _Cursor:
    """Where a replay is in its files (a position counts lines across all of them), and what it
    sends from each line."""

    publisher: Publisher
    summary: ReplaySummary
    selection: Selection | None
    stop: StopFlag
    resume: int
    position: int = -1

    def send_file(self, path: str, show: Callable[[int], None]) -> None:
        """Every line of one file from the resume position on, until a stop is requested;
        `show(bytes read)` every `PROGRESS_EVERY` lines."""
        reader, raw = open_log(path)
        self.summary.files += 1
        with raw, reader:
            for n, line in enumerate(iter_lines(reader, path), 1):
                self.position += 1
                if self.position < self.resume:
                    continue
                if self.stop.requested:
                    return
                self.send(line)
                if n % PROGRESS_EVERY == 0:
                    show(raw.tell())

    def send(self, line: bytes) -> None:
        summary, selection = self.summary, self.selection
        key, t = key_and_time(line)
        if selection is not None and selection.active and not selection.keep(key, t):
            summary.filtered += 1
            return
        self.publisher.send(key, line, t, self.position)
        summary.lines += 1
        if key is None:
            summary.unkeyed += 1
        else:
            summary.keyed += 1
            summary.per_checkpoint[key.decode("utf-8", "replace")] += 1
