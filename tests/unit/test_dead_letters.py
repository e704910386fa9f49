"""What a dead letter keeps of its message, and the dead-letter topic the worker makes
to take it."""

from __future__ import annotations

import pytest

from workpulse.processing.ingest import dead_letter_payload
from workpulse.worker.runtime import dead_letter_topic_configs


@pytest.mark.parametrize(
    ("value", "limit", "kept"),
    [
        (b"", 10, b""),
        (b"0123456789", 10, b"0123456789"),  # at the limit: whole
        (b"0123456789x", 10, b"0123456789"),  # over: the first `limit` bytes
        (b"\xff" * 5_000_000, 262_144, b"\xff" * 262_144),
    ],
    ids=["empty", "at-the-limit", "one-over", "5-MB"],
)
def test_dead_letter_payload(value: bytes, limit: int, kept: bytes) -> None:
    assert dead_letter_payload(value, limit) == kept


@pytest.mark.parametrize(
    ("max_message_bytes", "topic_max"),
    [
        (262_144, 1_048_588),  # Kafka's default is more than a dead letter needs
        (1_048_576, 2 * 1_048_576 + 65_536),  # a value and a key of 1 MiB, and headers
    ],
)
def test_the_dead_letter_topic_takes_a_whole_dead_letter(
    max_message_bytes: int, topic_max: int
) -> None:
    assert dead_letter_topic_configs(max_message_bytes) == {"max.message.bytes": str(topic_max)}
