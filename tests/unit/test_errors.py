"""An error told in one line (`workpulse.errors.first_line`)."""

from __future__ import annotations

import pytest

from workpulse.errors import first_line


@pytest.mark.parametrize(
    ("exc", "limit", "expected"),
    [
        (ValueError("bad value"), None, "bad value"),
        (ValueError("  first\nsecond\nthird"), None, "first"),
        (ValueError("\n\n  after blank lines  \nmore"), None, "after blank lines"),
        (TimeoutError(), None, "TimeoutError"),
        (RuntimeError("   \n\t\n"), None, "RuntimeError"),
        (ValueError("x" * 600), 500, "x" * 500),
        (ValueError("short"), 500, "short"),
        (OSError(111, "Connection refused"), None, "[Errno 111] Connection refused"),
    ],
    ids=[
        "one-line",
        "first-of-many",
        "blank-lines-first",
        "no-message",
        "blank-message",
        "limited",
        "under-the-limit",
        "errno",
    ],
)
def test_first_line(exc: BaseException, limit: int | None, expected: str) -> None:
    assert first_line(exc, limit) == expected
