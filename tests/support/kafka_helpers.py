"""Helpers shared by the integration tests that talk to the embedded broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from typing import Any

from kafka import KafkaProducer


def produce(bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> None:
    """Send (key, value) messages with kafka-python and wait until all are acked."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()


def keyed_messages(n: int, keys: int = 16) -> list[tuple[bytes | None, bytes]]:
    """n messages over `keys` keys; the value names its key and sequence number."""
    return [(f"k{i % keys}".encode(), f"{i % keys}:{i}".encode()) for i in range(n)]


def by_partition_and_key(
    seen: Iterable[tuple[int, int, bytes]],
) -> tuple[dict[int, list[int]], dict[bytes, list[int]]]:
    """Offsets per partition and sequence numbers per key of consumed `keyed_messages`,
    in the order they were consumed."""
    by_partition: dict[int, list[int]] = defaultdict(list)
    by_key: dict[bytes, list[int]] = defaultdict(list)
    for partition, offset, value in seen:
        by_partition[partition].append(offset)
        key, seq = value.split(b":")
        by_key[key].append(int(seq))
    return by_partition, by_key


@contextlib.asynccontextmanager
async def running(app: Any, timeout_s: float = 30.0) -> AsyncIterator[Any]:
    """Starts a Faust app in the current event loop, waits until its first
    rebalance is complete (partitions assigned, tables recovered) and always
    stops it, so that its consumer thread does not outlive the test."""
    ready = asyncio.Event()

    async def on_ready(sender: Any, **kwargs: Any) -> None:
        ready.set()

    app.on_rebalance_complete.connect(on_ready)
    await app.start()
    try:
        await asyncio.wait_for(ready.wait(), timeout_s)
        yield app
    finally:
        await app.stop()
