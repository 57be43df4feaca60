"""`bordermon record`: archive border.events into rotating gzip JSONL files that `replay` accepts.

Positions live in DIR/manifest.json, not in a consumer group, so that a file and the offsets it
covers are committed together:

1. lines go to `NAME.partial`; on rotation (size, hour of the broker timestamp, idle, shutdown)
   the gzip stream is closed and fsynced;
2. the manifest is replaced atomically with the new next-offsets and `"completing": NAME`;
3. the file is renamed to NAME.

After a crash, a `.partial` named by the manifest is finished (renamed); any other `.partial`
holds lines past the manifest's offsets and is deleted, because they will be consumed again.
Nothing is lost and nothing is written twice. Files sort by name in consumption order.
"""

from __future__ import annotations

import gzip
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition

from bordermon.config import EVENTS_TOPIC, Settings
from bordermon.errors import BordermonError
from bordermon.kafka import ensure_topics
from bordermon.security import client_options
from bordermon.stopping import STOP_SIGNALS

log = logging.getLogger("bordermon.record")
MANIFEST = "manifest.json"


def one_line(value: bytes | None) -> bytes:
    """A message value as one JSONL line. Values with raw newlines are re-encoded compactly
    when they are JSON (same meaning), else the newlines become spaces (still rejected the same way)."""
    if value is None:
        return b""
    if b"\n" not in value and b"\r" not in value:
        return value
    try:
        return orjson.dumps(orjson.loads(value))
    except orjson.JSONDecodeError:
        return value.replace(b"\r", b" ").replace(b"\n", b" ")


@dataclass
class Manifest:
    positions: dict[int, int] = field(default_factory=dict)
    next_seq: int = 0
    completing: str | None = None
    messages: int = 0

    @classmethod
    def load(cls, directory: str) -> Manifest:
        path = os.path.join(directory, MANIFEST)
        if not os.path.exists(path):
            return cls()
        try:
            with open(path, "rb") as handle:
                data = orjson.loads(handle.read())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise BordermonError(f"{path}: unreadable manifest ({exc}); move it away to start over") from None
        return cls({int(k): v for k, v in data["positions"].items()}, data["next_seq"], data.get("completing"),
                   data.get("messages", 0))  # fmt: skip

    def save(self, directory: str) -> None:
        path = os.path.join(directory, MANIFEST)
        tmp = path + ".tmp"
        payload = {"positions": {str(k): v for k, v in self.positions.items()}, "next_seq": self.next_seq,
                   "completing": self.completing, "messages": self.messages}  # fmt: skip
        with open(tmp, "wb") as handle:
            handle.write(orjson.dumps(payload))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover(directory: str, manifest: Manifest) -> None:
    for name in os.listdir(directory):
        if not name.endswith(".partial"):
            continue
        final = name[: -len(".partial")]
        if final == manifest.completing:
            os.replace(os.path.join(directory, name), os.path.join(directory, final))
            log.info("finished a file interrupted after its manifest", extra={"file": final})
        else:
            os.remove(os.path.join(directory, name))
            log.info("dropped an uncommitted partial file", extra={"file": name})


class Recorder:
    def __init__(self, settings: Settings, directory: str, max_bytes: int, idle_seconds: float) -> None:
        self.settings, self.directory = settings, directory
        self.max_bytes, self.idle_seconds = max_bytes, idle_seconds
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise BordermonError(f"{directory}: {exc.strerror or exc}") from None
        if not os.access(directory, os.W_OK):
            raise BordermonError(f"{directory}: not writable")
        self.manifest = Manifest.load(directory)
        recover(directory, self.manifest)
        self.handle: Any = None
        self.name: str | None = None
        self.hour: str | None = None
        self.written = 0
        self.pending: dict[int, int] = {}
        self._pending_count = 0
        self.stopping = False
        self.files = 0

    def _open(self, hour: str) -> None:
        self.name = f"border.events-{self.manifest.next_seq:06d}-{hour}.jsonl.gz"
        path = os.path.join(self.directory, self.name + ".partial")
        self.handle = gzip.open(path, "wb", compresslevel=6)  # noqa: SIM115 - closed by _close()
        self.hour, self.written = hour, 0

    def _close(self) -> None:
        if self.handle is None:
            return
        assert self.name is not None
        self.handle.close()  # writes the gzip trailer
        partial = os.path.join(self.directory, self.name + ".partial")
        with open(partial, "rb+") as raw:
            os.fsync(raw.fileno())
        self.manifest.positions.update(self.pending)
        self.manifest.messages += self._pending_count
        self.manifest.next_seq += 1
        self.manifest.completing = self.name
        self.manifest.save(self.directory)
        os.replace(partial, os.path.join(self.directory, self.name))
        _fsync_dir(self.directory)
        log.info("file closed", extra={"file": self.name, "bytes": self.written, "messages": self._pending_count})
        self.files += 1
        self.handle = None
        self.pending = {}
        self._pending_count = 0

    def run(self) -> str:
        partitions = ensure_topics(self.settings, (EVENTS_TOPIC,))
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_list,
            enable_auto_commit=False,
            client_id="bordermon-recorder",
            fetch_max_wait_ms=200,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            **client_options(self.settings.security),
        )
        tps = [TopicPartition(EVENTS_TOPIC, p) for p in range(partitions)]
        consumer.assign(tps)
        for tp in tps:
            position = self.manifest.positions.get(tp.partition)
            if position is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, position)
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._stop)
        started, recorded = time.monotonic(), 0
        last_data = time.monotonic()
        try:
            while not self.stopping:
                batch = consumer.poll(timeout_ms=250, max_records=10_000)
                if not batch:
                    if self.handle is not None and time.monotonic() - last_data >= self.idle_seconds:
                        self._close()
                    continue
                last_data = time.monotonic()
                records = sorted((r for rs in batch.values() for r in rs), key=lambda r: r.timestamp)
                for record in records:
                    hour = datetime.fromtimestamp(record.timestamp / 1000, UTC).strftime("%Y%m%dT%H")
                    if self.handle is not None and (hour != self.hour or self.written >= self.max_bytes):
                        self._close()
                    if self.handle is None:
                        self._open(hour)
                    line = one_line(record.value) + b"\n"
                    self.handle.write(line)
                    self.written += len(line)
                    self.pending[record.partition] = record.offset + 1
                    self._pending_count += 1
                    recorded += 1
        finally:
            self._close()
            consumer.close()
        return (
            f"recorded {recorded} messages into {self.files} file(s) in {self.directory} "
            f"in {time.monotonic() - started:.1f}s ({self.manifest.messages} in the archive)"
        )

    def _stop(self, signum: int, frame: Any) -> None:
        self.stopping = True
