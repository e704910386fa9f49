"""The database seam: a Protocol both backends implement, plus shared helpers.

Pure I/O: nothing here knows about Kafka, Faust or the pipeline.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

DATABASE = "workpulse"

# Settings carried by every insert so that a retried batch (same token) is dropped
# by video_events *and* by every materialized-view target fed from it.
# async_insert=0: chDB 26.x defaults to async_insert=1 and ClickHouse Cloud profiles
# often do too; asynchronous inserts deduplicate differently, so we opt out.
INSERT_SETTINGS: dict[str, Any] = {
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "async_insert": 0,
}


class DatabaseError(Exception):
    """One clear, single-line message; never contains credentials."""


@dataclass
class QueryResult:
    column_names: list[str]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def named(self) -> list[dict[str, Any]]:
        return [dict(zip(self.column_names, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows and self.rows[0] else None


@runtime_checkable
class Database(Protocol):
    def command(self, sql: str) -> None: ...

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult: ...

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        dedup_token: str | None = None,
    ) -> None: ...

    def close(self) -> None: ...


def qualify(table: str, database: str = DATABASE) -> str:
    """`video_events` -> `workpulse.video_events`; already qualified names pass."""
    return table if "." in table else f"{database}.{table}"


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def check_identifier(name: str) -> str:
    if not _IDENT.match(name):
        raise DatabaseError(f"invalid table or column name {name!r}")
    return name


_CODE_RE = re.compile(r"Code: \d+\. DB::Exception: .*", re.S)
_VERSION_RE = re.compile(r"\s*\(version [^)]*\)\s*$")
_URL_RE = re.compile(r"\s*\(for url [^)]*\)")


def clean_error(exc: BaseException) -> str:
    """The ClickHouse part of an error, on one line, without version/url trailers."""
    text = str(exc) or type(exc).__name__
    match = _CODE_RE.search(text)
    if match:
        text = match.group(0)
    text = _URL_RE.sub("", text)
    text = " ".join(text.split())
    text = _VERSION_RE.sub("", text)
    return text[:2000]


def to_utc(value: Any) -> Any:
    """Datetimes come back timezone-aware in UTC from both backends (servers and
    chDB run in UTC; chDB's Native output drops the zone of DateTime('UTC'))."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
    return value


def normalize_rows(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for row in rows:
        if any(isinstance(v, dt.datetime) for v in row):
            out.append(tuple(to_utc(v) for v in row))
        else:
            out.append(tuple(row))
    return out
