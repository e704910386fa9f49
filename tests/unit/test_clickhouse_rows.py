"""Query results as the rest of workpulse gets them: tuples, DateTime columns in UTC."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from workpulse.clickhouse.client import _normalize_rows

NAIVE = dt.datetime(2026, 1, 1, 12, 0, 0)
AWARE = NAIVE.replace(tzinfo=dt.UTC)
PARIS = dt.datetime(2026, 1, 1, 13, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))


@pytest.mark.parametrize(
    ("type_name", "value", "expected"),
    [
        ("DateTime", NAIVE, AWARE),
        ("DateTime('UTC')", PARIS, AWARE),
        ("DateTime64(3, 'UTC')", NAIVE, AWARE),
        ("Nullable(DateTime)", NAIVE, AWARE),
        ("Nullable(DateTime)", None, None),
        ("LowCardinality(Nullable(DateTime64(3)))", NAIVE, AWARE),
        ("Array(DateTime)", [NAIVE], [NAIVE]),  # only top-level values, as before
        ("String", "DateTime", "DateTime"),
        ("Date", dt.date(2026, 1, 1), dt.date(2026, 1, 1)),
    ],
)
def test_datetime_columns_come_back_in_utc(type_name: str, value: Any, expected: Any) -> None:
    rows = _normalize_rows([(1, value), [2, value]], ["UInt8", type_name])
    assert rows == [(1, expected), (2, expected)]
    assert all(type(r) is tuple for r in rows)
    got = rows[0][1]
    if isinstance(expected, dt.datetime):
        assert got.tzinfo is not None and got.utcoffset() == dt.timedelta(0)
