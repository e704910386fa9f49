"""A raw Kafka record as a worker receives it (before any decoding)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class Message(NamedTuple):
    """A NamedTuple: made once per message on the hot path, it costs a third of a frozen
    dataclass."""

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


def next_offsets(messages: Iterable[Message]) -> dict[int, int]:
    """Per partition, the offset after the last of `messages` (what to commit)."""
    ends: dict[int, int] = {}
    for m in messages:
        if m.offset >= ends.get(m.partition, 0):
            ends[m.partition] = m.offset + 1
    return ends
