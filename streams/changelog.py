"""Read state changelog partitions to their real end.

Tansu 0.6 (the embedded broker) answers ListOffsets(latest) with the base offset of the last
record batch + 1, so when the last batch holds several records the high watermark is too low
and Faust's own table recovery (which stops at the high watermark) misses the newest writes.
Fetches do return every record, so this reader stops only when the broker has nothing more.
Against Apache Kafka it is simply a second, cheap read of a compacted topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from bordermon.security import client_options, from_env

EMPTY_POLLS_TO_STOP = 2


def read_partitions(bootstrap: list[str], topic: str, partitions: Iterable[int]) -> dict[bytes, bytes]:
    """Latest value per key across the given changelog partitions (tombstones delete).

    Blocking (it runs its own event loop): call it from a thread. aiokafka parses record
    batches in C; kafka-python took 3.3 s for the 36 MB changelog of the 1M-event bench, this 0.3 s.
    """
    return asyncio.run(_read(bootstrap, topic, sorted(partitions)))


async def _read(bootstrap: list[str], topic: str, partitions: list[int]) -> dict[bytes, bytes]:
    data: dict[bytes, bytes] = {}
    if not partitions:
        return data
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        client_id="bordermon-state-reader",
        request_timeout_ms=10_000,
        **client_options(from_env()),
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        reported_end = await consumer.end_offsets(tps)
        empty = 0
        while empty < EMPTY_POLLS_TO_STOP:
            batch = await consumer.getmany(timeout_ms=100, max_records=50_000)
            if not batch:
                positions = [await consumer.position(tp) for tp in tps]
                caught_up = all(pos >= reported_end[tp] for pos, tp in zip(positions, tps, strict=True))
                empty = empty + 1 if caught_up else 0
                continue
            empty = 0
            for records in batch.values():
                for record in records:
                    if record.value is None:
                        data.pop(record.key, None)  # type: ignore[arg-type]
                    else:
                        data[record.key] = record.value  # type: ignore[index]
        return data
    finally:
        await consumer.stop()
