"""A raw Kafka record as a worker receives it (before any decoding)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int = 0

    @property
    def source(self) -> str:
        """`topic/partition/offset`: where the message came from."""
        return f"{self.topic}/{self.partition}/{self.offset}"
