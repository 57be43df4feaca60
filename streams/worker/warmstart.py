"""Warm start: a static member rebuilds its previous partitions' state while it joins the group.

A worker with a static membership id (`BORDERMON_GROUP_INSTANCE_ID`) gets its previous
partitions back when it restarts within the session timeout: that is what static membership is
for. Yet the group join itself is slow on the embedded broker (Tansu 0.6 holds a static member's
JoinGroup and SyncGroup, 8 s with the 10 s session, see bordermon/config.py), and only after it did
the worker read and parse its state (4.7 s at 2M live ids). So each worker notes the partitions
it owns in its data directory, and on start reads and parses their changelog in a thread while
the join runs.

What was read before the assignment is only a guess. When the assignment arrives, a partition's
prefetched state is used only if its changelog still ends with the record the prefetch read
last (`streams.worker.changelog.still_ending_with`): a previous owner that wrote more in between (a
rolling update), or a reset broker, sends it the normal way, a full read after the assignment.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from streams.domain.state import PartitionState
from streams.worker.changelog import LastRecord

log = logging.getLogger("bordermon.worker")


@dataclass
class Prefetched:
    """Partition states rebuilt before the assignment, and the changelog record each one ends with."""

    states: dict[int, PartitionState] = field(default_factory=dict)
    last: dict[int, LastRecord] = field(default_factory=dict)

    def candidates(self, assigned: Iterable[int]) -> dict[int, LastRecord]:
        """The assigned partitions a prefetch covers: the ones worth checking for a later write."""
        return {p: self.last[p] for p in assigned if p in self.states and p in self.last}


def hint_path(data_dir: str, instance: str | None) -> Path | None:
    """Where a static member notes its partitions (none for a dynamic member: a restarted one is
    a new member, with no claim to any partition)."""
    if not instance:
        return None
    return Path(data_dir) / f"owned-{re.sub(r'[^A-Za-z0-9._-]', '_', instance)}.json"


def remember_owned(path: Path, partitions: Iterable[int]) -> None:
    """Note the partitions this member owns (atomically: a crash mid-write leaves the old note)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"partitions": sorted(partitions)}))
    os.replace(temporary, path)


def previously_owned(path: Path) -> list[int]:
    """The partitions noted last, or none when there is no readable note (it is only a hint)."""
    try:
        partitions = json.loads(path.read_text())["partitions"]
        return sorted({int(p) for p in partitions})
    except (OSError, ValueError, KeyError, TypeError):
        return []


def prefetch_in_background(load: Callable[[], Prefetched]) -> Future[Prefetched]:
    """Run `load` in a daemon thread (it must not hold up a worker that is told to stop)."""
    future: Future[Prefetched] = Future()

    def run() -> None:
        try:
            future.set_result(load())
        except BaseException as exc:  # a failed guess costs nothing: the normal read follows
            log.warning("warm start failed; reading state after the assignment", extra={"error": repr(exc)})
            future.set_result(Prefetched())

    threading.Thread(target=run, name="bordermon-warm-start", daemon=True).start()
    return future
