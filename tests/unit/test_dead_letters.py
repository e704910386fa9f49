"""What a dead letter keeps of its message, and the dead-letter topic the worker makes
to take it."""

from __future__ import annotations

import pytest

from workpulse.processing.ingest import (
    DEAD_LETTER_HEADROOM_BYTES,
    dead_letter_batch_bytes,
    dead_letter_cut_bytes,
    dead_letter_payload,
)
from workpulse.worker.publisher import MAX_BATCH_BYTES
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


@pytest.mark.parametrize(
    ("max_message_bytes", "topic_max", "cut"),
    [
        (262_144, None, 262_144),  # the broker does not say: max_message_bytes
        (262_144, 1_048_588, 262_144),  # Kafka's default takes them whole
        (1_048_576, 1_048_588, (1_048_588 - DEAD_LETTER_HEADROOM_BYTES) // 2),  # made before
        (262_144, 200_000, (200_000 - DEAD_LETTER_HEADROOM_BYTES) // 2),
        (262_144, 2 * 262_144 + DEAD_LETTER_HEADROOM_BYTES, 262_144),  # just enough
        (262_144, 2 * 262_144 + DEAD_LETTER_HEADROOM_BYTES - 1, 262_143),  # a byte short
        (262_144, 1000, 0),  # smaller than the headers' room: headers only
    ],
    ids=[
        "unknown",
        "kafka-default",
        "1-MiB-on-default",
        "small-topic",
        "just-enough",
        "a-byte-short",
        "tiny-topic",
    ],
)
def test_dead_letters_are_cut_to_fit_the_dead_letter_topic(
    max_message_bytes: int, topic_max: int | None, cut: int
) -> None:
    assert dead_letter_cut_bytes(max_message_bytes, topic_max) == cut
    if topic_max is not None:  # a value and a key of that size, and headers, fit
        assert 2 * cut + DEAD_LETTER_HEADROOM_BYTES <= max(topic_max, DEAD_LETTER_HEADROOM_BYTES)


def fill_batch(batch_bytes: int, value_bytes: int, key_bytes: int) -> bytes:
    """One producer batch (aiokafka's own builder, as the worker's producer makes them)
    of as many dead letters as it takes: cut value and key, the longest headers."""
    from aiokafka.producer.message_accumulator import BatchBuilder

    batch = BatchBuilder(batch_bytes, 0)
    headers = [("reason", b"not_json"), ("detail", b"d" * 1000), ("source", b"t" * 249 + b":9:9"),
               ("truncated_from", b"999999999"), ("key_truncated_from", b"999999999")]  # fmt: skip
    while batch.append(timestamp=None, key=b"k" * key_bytes, value=b"v" * value_bytes,
                       headers=headers) is not None:  # fmt: skip
        pass
    return bytes(batch._build())  # (what the producer sends)


@pytest.mark.parametrize(
    ("max_message_bytes", "topic_max", "value_bytes", "default_overflows"),
    [
        (262_144, 200_000, None, True),  # cut letters, two to a batch of the default size
        (262_144, 300_000, None, False),  # cut letters of ~297 kB: one to a batch anyway
        (65_536, 300_000, 5_000, True),  # small letters: many to a batch
        (262_144, 1_048_588, None, False),  # Kafka's default: the default batch fits
        (262_144, 2_000, 300, True),  # smaller than the headers' room: one per batch
    ],
)
def test_a_batch_of_dead_letters_fits_the_dead_letter_topic(
    max_message_bytes: int, topic_max: int, value_bytes: int | None, default_overflows: bool
) -> None:
    """A broker checks a whole producer batch against the topic's max.message.bytes: dead
    letters cut to fit one by one still overflowed it together, in batches of the
    producer's default size."""
    cut = dead_letter_cut_bytes(max_message_bytes, topic_max)
    size = cut if value_bytes is None else min(cut, value_bytes)
    batch = fill_batch(dead_letter_batch_bytes(MAX_BATCH_BYTES, topic_max), size, size)
    if topic_max > DEAD_LETTER_HEADROOM_BYTES:  # (below, no dead letter can fit)
        assert len(batch) <= topic_max
    assert (len(fill_batch(MAX_BATCH_BYTES, size, size)) > topic_max) == default_overflows
    assert dead_letter_batch_bytes(MAX_BATCH_BYTES, None) == MAX_BATCH_BYTES
