"""Which failed writes to retry, and how long to wait before the next attempt.

A write fails for one of two kinds of reasons:
- **transient**: ClickHouse or the network is unavailable, slow or overloaded (and
  operator errors such as a missing table or a revoked password, which someone fixes):
  retry with capped exponential backoff, holding the Kafka offsets, forever;
- **refused**: ClickHouse (or the client encoding the rows for it) will never take
  these rows as they are: retrying cannot help; the sink finds the rows to blame and
  the worker dead-letters them.

An error that is neither recognisably transient nor recognisably about the data is
treated as transient: holding offsets (and alerting) is safer than dead-lettering good
events.
"""

from __future__ import annotations

import re
import socket
import struct
from dataclasses import dataclass

TRANSIENT = "transient"
REFUSED = "refused"

# ClickHouse error codes (src/Common/ErrorCodes.cpp) that say the data is at fault.
DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        33,  # CANNOT_READ_ALL_DATA
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        43,  # ILLEGAL_TYPE_OF_ARGUMENT
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        190,  # SIZES_OF_ARRAYS_DONT_MATCH
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        407,  # DECIMAL_OVERFLOW
        469,  # VIOLATED_CONSTRAINT: a CHECK constraint an operator put on the table
    }
)
_CODE = re.compile(r"Code: (\d+)\.")

# Exceptions raised while encoding rows (before anything is sent): deterministic.
_ENCODING_ERRORS: tuple[type[BaseException], ...] = (
    TypeError,
    ValueError,
    OverflowError,
    struct.error,
    UnicodeError,
    KeyError,
    IndexError,
)
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    socket.timeout,
    OSError,
)


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        out.append(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return out


def classify(exc: BaseException) -> str:
    """`TRANSIENT` or `REFUSED` for a failed insert (see the module doc)."""
    chain = _chain(exc)
    for err in chain:
        match = _CODE.search(str(err))
        if match:
            return REFUSED if int(match.group(1)) in DATA_ERROR_CODES else TRANSIENT
    for err in chain:
        module = type(err).__module__
        name = type(err).__name__
        if module.startswith("clickhouse_connect"):
            if name in ("DataError", "ProgrammingError"):
                return REFUSED
            if name == "OperationalError":
                return TRANSIENT
        if isinstance(err, _NETWORK_ERRORS) and not isinstance(err, UnicodeError):
            return TRANSIENT
        if isinstance(err, _ENCODING_ERRORS):
            return REFUSED
    return TRANSIENT


@dataclass
class Backoff:
    """Delays first, 2·first, 4·first, … up to `cap` seconds."""

    first_s: float = 0.2
    cap_s: float = 30.0
    _next: float | None = None

    def next_delay(self) -> float:
        delay = self.first_s if self._next is None else self._next
        self._next = min(delay * 2, self.cap_s)
        return min(delay, self.cap_s)
