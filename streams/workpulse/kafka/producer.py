"""Sending raw messages to Kafka (`workpulse produce`), and reading them from JSONL."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import orjson

from workpulse.kafka.settings import Connection, kafka_python_options

RawMessage = tuple[bytes | None, bytes]
"""(key, value) of a Kafka message."""

PROGRESS_EVERY = 1000


def file_messages(path: Path) -> Iterator[RawMessage]:
    """One raw message per line (bad lines included, sent as they are); the key is the
    `video_id` when the line is a JSON object that has one."""
    with path.open("rb") as fh:
        for line in fh:
            value = line[:-1] if line.endswith(b"\n") else line
            key: bytes | None = None
            with contextlib.suppress(Exception):
                obj = orjson.loads(value)
                if isinstance(obj, dict) and isinstance(obj.get("video_id"), str):
                    key = obj["video_id"].encode()
            yield key, value


def count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


def send_messages(
    conn: Connection,
    topic: str,
    messages: Iterable[RawMessage],
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Send every message (acks=all), then flush; returns how many were sent.
    `on_progress(sent)` is called every PROGRESS_EVERY messages and at the end."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        **kafka_python_options(conn),
        acks="all",
        linger_ms=10,
        batch_size=256 * 1024,
        max_request_size=2 * 1024 * 1024,
    )
    sent = 0
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value)
            sent += 1
            if on_progress is not None and sent % PROGRESS_EVERY == 0:
                on_progress(sent)
        producer.flush()
    finally:
        producer.close()
    if on_progress is not None:
        on_progress(sent)
    return sent
