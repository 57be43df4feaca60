"""Kafka's default partitioner (murmur2 of the key), as Java and kafka-python clients apply it.

The worker rejects an event found on another partition than its checkpoint's, so every
producer here must agree with it exactly.
"""

from __future__ import annotations

from functools import lru_cache

from kafka.partitioner.default import murmur2


@lru_cache(maxsize=4096)
def partition_for_key(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class Partitioner:
    """Keyed messages by murmur2 of the key; unkeyed ones spread round-robin."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.unkeyed = 0

    def __call__(self, key: bytes | None) -> int:
        if key is None:
            self.unkeyed += 1
            return self.unkeyed % self.partitions
        return partition_for_key(key, self.partitions)
