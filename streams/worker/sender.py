"""The worker's producer: outputs packed into one record batch per partition (`bordermon.batches`).

A log with a few percent of bad lines spent a tenth of the worker's time in Faust's per-message
`Topic.send`. Each returned future resolves to the batch's RecordMetadata (its base offset),
once the broker acknowledged it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer

from bordermon.batches import BatchPacker, Headers
from bordermon.partitioning import Partitioner
from bordermon.security import KafkaSecurity, client_options

# partition (None: Kafka's default partitioner), key, value, headers, timestamp in ms (None: now)
OutRecord = tuple[int | None, bytes | None, bytes | None, Headers, int | None]  # value None: a tombstone


class BatchSender:
    def __init__(self, bootstrap: list[str], security: KafkaSecurity, **options: Any) -> None:
        """`options`: more aiokafka producer settings (idempotence, a transactional id)."""
        self.bootstrap = bootstrap
        self.security = security
        self.options = options
        self.producer: AIOKafkaProducer | None = None
        self.partitioners: dict[str, Partitioner] = {}
        self.lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self.lock:  # made on first use: aiokafka binds to the running loop
            if self.producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    acks="all",
                    max_batch_size=1024 * 1024,
                    max_request_size=4 * 1024 * 1024,
                    **client_options(self.security),
                    **self.options,
                )
                await producer.start()
                self.producer = producer
            return self.producer

    async def started(self) -> AIOKafkaProducer:
        """The producer, started (for a transactional one: its id registered, fencing any other)."""
        return await self._started()

    async def partitions(self, topic: str) -> int:
        partitioner = self.partitioners.get(topic)
        if partitioner is None:
            producer = await self._started()
            partitioner = self.partitioners[topic] = Partitioner(len(await producer.partitions_for(topic)))
        return partitioner.partitions

    async def send(self, topic: str, records: Iterable[OutRecord]) -> list[asyncio.Future[Any]]:
        """Queue records; futures for the delivery of each batch (one or more per partition)."""
        producer = await self._started()
        await self.partitions(topic)
        partition_of = self.partitioners[topic]
        packer = BatchPacker(producer.create_batch)
        delivered: list[asyncio.Future[Any]] = []
        for partition, key, value, headers, timestamp in records:
            p = partition_of(key) if partition is None else partition
            if not packer.append(p, key, value, timestamp, headers):
                delivered.append(await producer.send_batch(packer.take(p), topic, partition=p))  # full: send it
                packer.append(p, key, value, timestamp, headers)
        for p, batch in packer.take_all().items():
            delivered.append(await producer.send_batch(batch, topic, partition=p))
        return delivered

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None
