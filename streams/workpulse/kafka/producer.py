"""Sending raw messages to Kafka (`workpulse produce`), and reading them from JSONL."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import orjson

from workpulse.errors import first_line
from workpulse.kafka.settings import Connection, kafka_python_options

RawMessage = tuple[bytes | None, bytes]
"""(key, value) of a Kafka message."""

PROGRESS_EVERY = 1000
MAX_REQUEST_BYTES = 2 * 1024 * 1024
"""The producers' request limit: a larger message is not sent (and reported), the
others are (a broker may have a lower limit, `message.max.bytes`: same outcome)."""
SHOWN_FAILURES = 3
"""Failed messages named in a report; the rest are counted."""


@dataclass
class SendReport:
    """What a producer did with its messages: `sent` were acknowledged; `failed` lists
    (1-based position in the input, i.e. the line of a JSONL file, and why) the ones
    Kafka refused."""

    sent: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)

    def failure_summary(self, unit: str = "line") -> str:
        """One line naming the first failures, e.g. "2 messages not sent: line 2 (…)"."""
        shown = "; ".join(f"{unit} {i} ({why})" for i, why in sorted(self.failed)[:SHOWN_FAILURES])
        more = len(self.failed) - SHOWN_FAILURES
        tail = f"; {more:,} more" if more > 0 else ""
        return f"{len(self.failed):,} message(s) not sent: {shown}{tail}"


def refusal(exc: BaseException, *, by_broker: bool = False) -> str:
    """Why Kafka refused a message, in a few words (`by_broker`: the broker answered so;
    else the producer refused to send it)."""
    if type(exc).__name__ == "MessageSizeTooLargeError":
        if by_broker:
            return "over the broker's message size limit"
        return f"over the {MAX_REQUEST_BYTES // (1024 * 1024)} MB request limit"
    return first_line(exc, limit=200)


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


def count_lines(path: Path) -> int | None:
    """The lines of a regular file, for a progress bar's total; None for a pipe, a FIFO
    or a device (`/dev/stdin`, `<(…)`): read twice, a pipe's lines went to the count and
    none were sent."""
    if not path.is_file():
        return None
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


def send_messages(
    conn: Connection,
    topic: str,
    messages: Iterable[RawMessage],
    on_progress: Callable[[int], None] | None = None,
) -> SendReport:
    """Send every message (acks=all), then flush. A message Kafka refuses (too large) is
    reported, not a reason to stop: the others are sent. `on_progress(done)` is called
    every PROGRESS_EVERY messages and at the end."""
    from kafka import KafkaProducer
    from kafka.errors import MessageSizeTooLargeError

    producer = KafkaProducer(
        **kafka_python_options(conn),
        acks="all",
        linger_ms=10,
        batch_size=256 * 1024,
        max_request_size=MAX_REQUEST_BYTES,
    )
    report = SendReport()
    done = 0

    def refused_by_broker(position: int, exc: BaseException) -> None:
        report.failed.append((position, refusal(exc, by_broker=True)))

    try:
        for done, (key, value) in enumerate(messages, start=1):
            try:
                future = producer.send(topic, key=key, value=value)
            except MessageSizeTooLargeError as exc:  # checked before sending
                report.failed.append((done, refusal(exc)))
            else:  # refused by the broker (its own size limit, …)
                future.add_errback(partial(refused_by_broker, done))
            if on_progress is not None and done % PROGRESS_EVERY == 0:
                on_progress(done)
        producer.flush()
    finally:
        producer.close()
    report.sent = done - len(report.failed)
    if on_progress is not None:
        on_progress(done)
    return report
