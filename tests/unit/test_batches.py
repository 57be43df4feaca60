"""The one record-batch packer: full batches are handed over whole, nothing is dropped or reordered."""

from __future__ import annotations

from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch

from bordermon.batches import BatchPacker

BATCH_BYTES = 1024


def create_batch() -> BatchBuilder:
    return BatchBuilder(BATCH_BYTES, 0)


def values(batch: BatchBuilder) -> list[bytes]:
    return [bytes(r.value) for r in DefaultRecordBatch(bytes(batch._build()))]


def test_a_full_partition_batch_is_refused_taken_and_the_message_goes_into_the_next():
    packer = BatchPacker(create_batch)
    sent: list[tuple[int, list[bytes]]] = []
    messages = [(i % 2, f"m{i:03d}".encode() * 20) for i in range(40)]
    for partition, value in messages:
        if not packer.append(partition, b"k", value, headers=[("h", b"1")]):
            sent.append((partition, values(packer.take(partition))))
            assert packer.append(partition, b"k", value)
    sent += [(p, values(b)) for p, b in packer.take_all().items()]
    assert not packer
    assert len(sent) > 2, "the messages needed more than one batch per partition"
    for partition in (0, 1):
        received = [v for p, batch in sent if p == partition for v in batch]
        assert received == [v for p, v in messages if p == partition]


def test_a_message_larger_than_a_batch_travels_alone_so_a_retry_always_succeeds():
    packer = BatchPacker(lambda: BatchBuilder(16, 0))
    assert packer.append(0, None, b"x" * 64)
    assert not packer.append(0, None, b"y")
    assert values(packer.take(0)) == [b"x" * 64]
    assert packer.append(0, None, b"y")
