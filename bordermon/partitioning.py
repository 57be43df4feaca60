"""Where Kafka clients put a keyed message, and which client most likely put one where it is.

Kafka's Java client, aiokafka, kafka-python and franz-go hash keys with murmur2; the worker
treats that partition as a checkpoint's home and processes messages found there in place.
Other clients hash differently (librdkafka: CRC32 by default, FNV-1a on request; Sarama:
FNV-1a) or do not hash at all; `likely_partitioner` names the one that explains a placement,
so on-call can tell which producer to reconfigure.
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import Final

from kafka.partitioner.default import murmur2

# Labels of border_events_off_partition_total{partitioner}.
CRC32: Final = "crc32"  # librdkafka's default (consistent_random) and `consistent`
FNV1A: Final = "fnv1a"  # librdkafka's fnv1a / fnv1a_random, Sarama's default hash partitioner
NO_KEY: Final = "no_key"  # round-robin, sticky or random placement of unkeyed messages
OTHER_KEY: Final = "other_key"  # keyed by something other than the checkpoint id
UNKNOWN: Final = "unknown"  # keyed by the checkpoint id, but no known hash explains the partition
PARTITIONERS: Final = (CRC32, FNV1A, NO_KEY, OTHER_KEY, UNKNOWN)


@lru_cache(maxsize=4096)
def partition_for_key(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner: murmur2 of the key, as the Java client applies it."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def fnv1a_32(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


@lru_cache(maxsize=65536)
def likely_partitioner(key: bytes | None, checkpoint_id: str, partition: int, partitions: int) -> str:
    """Name the partitioner that would have sent a message with this key to `partition`."""
    if key is None:
        return NO_KEY
    if key != checkpoint_id.encode():
        return OTHER_KEY
    if zlib.crc32(key) % partitions == partition:
        return CRC32
    h = fnv1a_32(key)
    signed = h - (1 << 32) if h & 0x80000000 else h
    # librdkafka: unsigned hash; Sarama: |int32 hash| (Go's truncating %), or its Java-compatible mask.
    if partition in (h % partitions, abs(signed) % partitions, (h & 0x7FFFFFFF) % partitions):
        return FNV1A
    return UNKNOWN


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
