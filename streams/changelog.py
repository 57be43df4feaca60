"""Read state changelog partitions to their real end.

Tansu 0.6 (the embedded broker) answers ListOffsets(latest) with the base offset of the last
record batch + 1, so when the last batch holds several records the high watermark is too low
and Faust's own table recovery (which stops at the high watermark) misses the newest writes.
Fetches do return every record, so this reader stops only when the broker has nothing more.
Against Apache Kafka it is simply a second, cheap read of a compacted topic.
"""

from __future__ import annotations

from collections.abc import Iterable

from kafka import KafkaConsumer, TopicPartition

from bordermon.security import client_options, from_env

EMPTY_POLLS_TO_STOP = 2


def read_partitions(bootstrap: list[str], topic: str, partitions: Iterable[int]) -> dict[bytes, bytes]:
    """Latest value per key across the given changelog partitions (tombstones delete)."""
    tps = [TopicPartition(topic, p) for p in partitions]
    data: dict[bytes, bytes] = {}
    if not tps:
        return data
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        client_id="bordermon-state-reader",
        **client_options(from_env()),
    )
    try:
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        reported_end = consumer.end_offsets(tps)
        empty = 0
        while empty < EMPTY_POLLS_TO_STOP:
            batch = consumer.poll(timeout_ms=100, max_records=50_000)
            if not batch:
                caught_up = all(consumer.position(tp) >= reported_end[tp] for tp in tps)
                empty = empty + 1 if caught_up else 0
                continue
            empty = 0
            for records in batch.values():
                for record in records:
                    if record.value is None:
                        data.pop(record.key, None)
                    else:
                        data[record.key] = record.value
        return data
    finally:
        consumer.close()
