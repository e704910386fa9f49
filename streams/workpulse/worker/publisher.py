"""Sending to Kafka from the ingest path: dead letters and watermarks.

`send` queues a message and returns its delivery: the ingest step queues a batch's
messages, then awaits all deliveries (acks from all in-sync replicas) before the
batch's input offsets are committed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer

from workpulse.kafka.settings import Connection, aiokafka_options


class Publisher(Protocol):
    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> Awaitable[Any]:
        """Queue one message; the result resolves once Kafka has it."""
        ...


MAX_BATCH_BYTES = 512 * 1024
"""The producer's batches (per partition) at most, unless `KafkaPublisher.max_batch_bytes`
is lowered before the start."""


class KafkaPublisher:
    """`Publisher` over aiokafka's producer (acks from all in-sync replicas), made at
    `start`: `max_batch_bytes` may be lowered before (a dead-letter topic that takes
    smaller messages: a broker checks a whole batch against its limit)."""

    def __init__(self, conn: Connection, client_id: str) -> None:
        self._options: dict[str, Any] = {
            **aiokafka_options(conn),
            "client_id": client_id,
            "acks": "all",
            "linger_ms": 5,
            "max_request_size": 4 * 1024 * 1024,
        }
        self.max_batch_bytes = MAX_BATCH_BYTES
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(**self._options, max_batch_size=self.max_batch_bytes)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> Awaitable[Any]:
        assert self._producer is not None, "start() first"
        future: Awaitable[Any] = await self._producer.send(
            topic, value=value, key=key, headers=list(headers or [])
        )
        return future
