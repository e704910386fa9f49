"""What `workpulse produce` and the demo say about messages Kafka refused."""

from __future__ import annotations

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from workpulse.kafka.producer import SendReport, refusal


@pytest.mark.parametrize(
    ("failed", "unit", "expected"),
    [
        ([(2, "too big")], "line", "1 message(s) not sent: line 2 (too big)"),
        (
            [(9, "c"), (4, "b"), (1, "a")],
            "message",
            "3 message(s) not sent: message 1 (a); message 4 (b); message 9 (c)",
        ),
        (
            [(i, "x") for i in range(1500, 0, -1)],
            "line",
            "1,500 message(s) not sent: line 1 (x); line 2 (x); line 3 (x); 1,497 more",
        ),
    ],
)
def test_failure_summary(failed: list[tuple[int, str]], unit: str, expected: str) -> None:
    assert SendReport(sent=0, failed=failed).failure_summary(unit) == expected


@pytest.mark.parametrize(
    ("exc", "by_broker", "expected"),
    [
        (MessageSizeTooLargeError("3000121 bytes"), False, "over the 2 MB request limit"),
        (MessageSizeTooLargeError(), True, "over the broker's message size limit"),
        (KafkaTimeoutError("no metadata\nmore"), True, "KafkaTimeoutError: no metadata"),
    ],
)
def test_refusal(exc: BaseException, by_broker: bool, expected: str) -> None:
    assert refusal(exc, by_broker=by_broker) == expected
