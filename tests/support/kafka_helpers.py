"""Helpers shared by the integration tests that talk to the embedded broker."""

from __future__ import annotations

import asyncio
import contextlib
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
