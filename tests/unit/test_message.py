"""`next_offsets`: per partition, the offset after a batch's last message."""

from __future__ import annotations

import pytest

from workpulse.model.message import Message, next_offsets


def batch(*at: tuple[int, int]) -> list[Message]:
    return [Message("t", p, o, None, b"") for p, o in at]


@pytest.mark.parametrize(
    ("messages", "ends"),
    [
        (batch(), {}),
        (batch((0, 0)), {0: 1}),
        (batch((0, 4), (0, 5), (1, 9)), {0: 6, 1: 10}),
        (batch((2, 7), (2, 3)), {2: 8}),  # not in offset order
    ],
)
def test_next_offsets(messages: list[Message], ends: dict[int, int]) -> None:
    assert next_offsets(messages) == ends
