"""The offset bookkeeping of batch delivery: what may be committed, and when."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from types import SimpleNamespace

from faust.types import TP

from streams.batching import BatchConsumer

PART = TP("border.events", 3)


class Bookkeeping:
    """The consumer state BatchConsumer's acknowledgement methods read and write."""

    _ack_when_durable = BatchConsumer._ack_when_durable
    _ack_offsets = BatchConsumer._ack_offsets
    _unread = BatchConsumer._unread

    def __init__(self, committed: int | None = None) -> None:
        self.not_yet_durable: set = set()
        self.log = logging.getLogger("test")
        self._committed_offset = defaultdict(lambda: committed)
        self._acked_index: defaultdict = defaultdict(set)
        self._acked: defaultdict = defaultdict(list)
        self._n_acked = 0
        self._read_offset: defaultdict = defaultdict(lambda: None)


def test_offsets_are_acknowledged_only_once_their_state_is_durable():
    async def scenario() -> None:
        book = Bookkeeping()
        durable = asyncio.get_running_loop().create_future()
        book._ack_when_durable(PART, [10, 11, 12], durable)
        assert book._acked[PART] == [] and durable in book.not_yet_durable
        durable.set_result(None)
        await asyncio.sleep(0)
        assert book._acked[PART] == [10, 11, 12] and book._n_acked == 3 and not book.not_yet_durable

    asyncio.run(scenario())


def test_a_failed_state_write_leaves_its_offsets_uncommitted():
    async def scenario() -> None:
        book = Bookkeeping()
        failed = asyncio.get_running_loop().create_future()
        book._ack_when_durable(PART, [5, 6], failed)
        failed.set_exception(OSError("broker gone"))
        await asyncio.sleep(0)
        assert book._acked[PART] == [] and not book.not_yet_durable

    asyncio.run(scenario())


def test_batches_without_state_writes_are_acknowledged_at_once_and_never_twice():
    book = Bookkeeping(committed=7)
    book._ack_when_durable(PART, [6, 7, 8], None)  # 6 is before the committed offset
    book._ack_offsets(PART, [8, 9])
    assert book._acked[PART] == [7, 8, 9] and book._n_acked == 3


def test_records_before_the_read_offset_are_dropped_after_a_seek():
    book = Bookkeeping()
    records = [SimpleNamespace(offset=o) for o in (3, 4, 5, 6)]
    assert book._unread(PART, records) == records
    book._read_offset[PART] = 5
    assert [r.offset for r in book._unread(PART, records)] == [5, 6]
