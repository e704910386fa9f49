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
from workpulse.lines import bounded_lines
from workpulse.lines import count_lines as count_chunked

RawMessage = tuple[bytes | None, bytes]
"""(key, value) of a Kafka message."""

PROGRESS_EVERY = 1000
MAX_REQUEST_BYTES = 2 * 1024 * 1024
"""The producers' request limit: a larger message is not sent (and reported), the
others are (a broker may have a lower limit, `message.max.bytes`: same outcome)."""
FLUSH_TIMEOUT_S = 60.0
"""The longest wait for Kafka's acknowledgements once every message is handed over."""
CLOSE_TIMEOUT_S = 5.0
SHOWN_FAILURES = 3
"""Failed messages named in a report; the rest are counted."""


class SendTimeout(RuntimeError):
    """Kafka stopped answering while `send_messages` sent: one line for the person."""


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


@dataclass(frozen=True)
class TooLong:
    """A line over the request limit, read no further than that: its length in bytes."""

    size: int


FileMessage = RawMessage | TooLong


def too_long(size: int) -> str:
    """Why a `TooLong` line was not sent."""
    return f"{size:,} bytes: over the {MAX_REQUEST_BYTES // (1024 * 1024)} MB request limit"


def file_messages(path: Path) -> Iterator[FileMessage]:
    """One raw message per line (bad lines included, sent as they are); the key is the
    `video_id` when the line is a JSON object that has one. A line longer than a request
    may be is `TooLong`, and never read whole (a line without end, `/dev/zero`, grew the
    process by 300 MB/s)."""
    with path.open("rb") as fh:
        for line in bounded_lines(fh, MAX_REQUEST_BYTES):
            if isinstance(line, int):
                yield TooLong(line)
                continue
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
        return count_chunked(fh)


def send_messages(
    conn: Connection,
    topic: str,
    messages: Iterable[FileMessage],
    on_progress: Callable[[int], None] | None = None,
    flush_timeout_s: float = FLUSH_TIMEOUT_S,
) -> SendReport:
    """Send every message (acks=all), then flush (`SendTimeout` when Kafka does not
    acknowledge them within `flush_timeout_s`). A message Kafka refuses (too large) is
    reported, not a reason to stop: the others are sent. `on_progress(done)` is called
    every PROGRESS_EVERY messages and at the end."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

    producer = KafkaProducer(
        **kafka_python_options(conn),
        acks="all",
        linger_ms=10,
        batch_size=256 * 1024,
        max_request_size=MAX_REQUEST_BYTES,
    )
    report = SendReport()
    done = acked = 0

    def refused_by_broker(position: int, exc: BaseException) -> None:
        report.failed.append((position, refusal(exc, by_broker=True)))

    def acknowledged(_: object) -> None:
        nonlocal acked
        acked += 1

    def unanswered(what: str) -> SendTimeout:
        return SendTimeout(
            f"{what}: Kafka acknowledged {acked:,} of {done:,} messages read (is the broker "
            f"up, and does topic {topic} exist?); the others may or may not be stored"
        )

    try:
        for done, message in enumerate(messages, start=1):
            if isinstance(message, TooLong):
                report.failed.append((done, too_long(message.size)))
                continue
            key, value = message
            try:
                future = producer.send(topic, key=key, value=value)
            except MessageSizeTooLargeError as exc:  # checked before sending
                report.failed.append((done, refusal(exc)))
            except KafkaTimeoutError:  # no metadata, or the buffer full, for max_block_ms
                blocked_s = producer.config["max_block_ms"] / 1000
                raise unanswered(f"Kafka took no more messages for {blocked_s:.0f} s") from None
            else:  # refused by the broker (its own size limit, …)
                future.add_callback(acknowledged)
                future.add_errback(partial(refused_by_broker, done))
            if on_progress is not None and done % PROGRESS_EVERY == 0:
                on_progress(done)
        try:
            # bounded: with the broker gone, flush waited for ever (more than 10 minutes)
            producer.flush(timeout=flush_timeout_s)
        except KafkaTimeoutError:
            raise unanswered(f"not all sent within {flush_timeout_s:.0f} s") from None
    finally:
        # kafka-python's close flushes first, and raises if that times out, leaving the
        # producer open (its finaliser tries again at exit): a caller that must end then
        # ends its process (`workpulse produce` does).
        with contextlib.suppress(KafkaTimeoutError):
            producer.close(timeout=CLOSE_TIMEOUT_S)
    report.sent = done - len(report.failed)
    if on_progress is not None:
        on_progress(done)
    return report
