"""An error told in one line: what a person reads (the CLI's last line, a dead letter's
reason, a log line) is the exception's first line, never a traceback."""

from __future__ import annotations


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first non-blank line of `exc`'s message, at most `limit` characters; its type's
    name when the message is blank (`TimeoutError()` says nothing else)."""
    for line in str(exc).splitlines():
        if line.strip():
            text = line.strip()
            return text if limit is None else text[:limit]
    return type(exc).__name__
