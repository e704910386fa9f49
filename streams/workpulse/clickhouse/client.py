"""The ClickHouse client: one class over two transports (chDB in-process, a server over
HTTP), the way clickhouse-connect splits its client from its transports.

`ClickHouse` does everything through clickhouse-connect's public API (`query`, `command`
and column-oriented `insert`) on the client its transport opened; the transports
(`workpulse.clickhouse.transports`) only open and close that client. Pure I/O: nothing
here knows about Kafka, Faust or the pipeline.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

DATABASE = "workpulse"

INSERT_SETTINGS: dict[str, Any] = {
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "async_insert": 0,
    "insert_distributed_sync": 1,
}
"""Settings carried by every insert, so that a retried batch (same token) is dropped by
its table *and* by every materialized-view target fed from it. async_insert=0: chDB
defaults to async_insert=1, and ClickHouse Cloud profiles often do too; asynchronous
inserts deduplicate differently, so we opt out. insert_distributed_sync=1: on a cluster
(schemas/clickhouse/cluster/, Distributed tables) an insert returns once its shards hold
the rows, not once the node queued them: offsets are committed after it, and the replay
guard needs a batch's dead letters stored before its rows (the setting's older name,
which ClickHouse 23.8 also knows; no effect on other tables)."""

READONLY_SETTINGS: dict[str, Any] = {"readonly": 2}
"""`readonly=2`: reads (and per-query settings) only; writes and DDL are refused."""


class DatabaseError(Exception):
    """One clear, single-line message; never contains credentials."""


@dataclass
class QueryResult:
    column_names: list[str]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows and self.rows[0] else None


class Transport(Protocol):
    """Opens the clickhouse-connect client a `ClickHouse` talks through."""

    @property
    def client(self) -> Any: ...

    def describe(self) -> str:
        """A name for messages and repr (never with a password)."""
        ...

    def open_client(self) -> Any:
        """Another clickhouse-connect client of the same database, with its own
        connection (calls on it do not wait for the first client's)."""
        ...

    def close(self) -> None: ...


class _SecondClient:
    """A transport's further client, as a transport of its own: closing it closes that
    client only."""

    def __init__(self, transport: Transport) -> None:
        self.parent = transport
        self.client: Any = transport.open_client()

    def describe(self) -> str:
        return self.parent.describe()

    def open_client(self) -> Any:
        return self.parent.open_client()

    def close(self) -> None:
        self.client.close()


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_CODE_RE = re.compile(r"Code: \d+\. DB::Exception: .*", re.S)
_VERSION_RE = re.compile(r"\s*\(version [^)]*\)\s*$")
_URL_RE = re.compile(r"\s*\(for url [^)]*\)")


def check_identifier(name: str) -> str:
    if not _IDENT.match(name):
        raise DatabaseError(f"invalid table or column name {name!r}")
    return name


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
    """Datetimes come back timezone-aware in UTC from both transports (servers and chDB
    run in UTC; chDB's Native output drops the zone of DateTime('UTC'))."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
    return value


_WRAPPERS = re.compile(r"^(?:(?:Nullable|LowCardinality)\()+")


def _normalize_rows(
    rows: Sequence[Sequence[Any]], type_names: Sequence[str]
) -> list[tuple[Any, ...]]:
    """Rows as tuples, the values of DateTime columns in UTC (`to_utc`). Only those
    columns are looked at: a query without one (most) costs nothing per value."""
    dates = [i for i, t in enumerate(type_names) if _WRAPPERS.sub("", t).startswith("DateTime")]
    if not dates:
        return [row if type(row) is tuple else tuple(row) for row in rows]
    out: list[tuple[Any, ...]] = []
    for row in rows:
        values = list(row)
        for i in dates:
            values[i] = to_utc(values[i])
        out.append(tuple(values))
    return out


def _utc_column(values: list[Any]) -> list[Any]:
    return [
        v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo is None else v
        for v in values
    ]


def to_columns(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], type_names: Sequence[str]
) -> list[list[Any]]:
    """Transpose rows to columns; naive datetimes in DateTime columns are UTC."""
    width = len(columns)
    for row in rows:
        if len(row) != width:
            raise DatabaseError(
                f"row has {len(row)} values, expected {width} ({', '.join(columns)})"
            )
    data = [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in columns]
    for i, type_name in enumerate(type_names):
        if "DateTime" in type_name and not type_name.startswith(("Array", "Map")):
            data[i] = _utc_column(data[i])
    return data


class ClickHouse:
    """A ClickHouse database (default `workpulse`) through one transport.

    Thread-safe: calls are serialised by a lock (the worker makes them from one sink
    thread anyway). Before `init-db` the database does not exist; the client then runs
    unqualified statements in `default` and switches to the database once it exists.
    """

    def __init__(self, transport: Transport, database: str = DATABASE) -> None:
        self.transport = transport
        self.database = database
        self._client = transport.client
        self._lock = threading.Lock()
        self._types: dict[str, dict[str, str]] = {}
        self._database_in_use = False
        self._closed = False

    def __repr__(self) -> str:
        return f"ClickHouse({self.transport.describe()})"

    def another(self) -> ClickHouse:
        """The same database through a client of its own: its calls run alongside this
        one's (the worker reads video states there while its sink inserts). Close it
        before this one."""
        return ClickHouse(_SecondClient(self.transport), self.database)

    def qualify(self, table: str) -> str:
        """`video_events` -> `workpulse.video_events`; already qualified names pass."""
        return check_identifier(table if "." in table else f"{self.database}.{table}")

    # -- helpers (under the lock) -------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseError(f"{self.transport.describe()} is closed")

    def _use_database(self) -> None:
        if self._database_in_use:
            return
        found = self._client.query(
            "SELECT count() FROM system.databases WHERE name = {db:String}",
            parameters={"db": self.database},
        ).result_rows[0][0]
        if found:
            self._client.database = self.database
            self._database_in_use = True

    def _column_types(self, table: str, columns: Sequence[str]) -> list[str]:
        known = self._types.get(table)
        if known is None or any(c not in known for c in columns):
            rows = self._client.query(f"DESCRIBE TABLE {table}").result_rows
            known = {r[0]: r[1] for r in rows}
            self._types[table] = known
        missing = [c for c in columns if c not in known]
        if missing:
            raise DatabaseError(f"unknown column(s) {', '.join(missing)} in {table}")
        return [known[c] for c in columns]

    # -- the API ------------------------------------------------------------------------
    def command(self, sql: str) -> None:
        with self._lock:
            self._check_open()
            try:
                self._use_database()
                self._client.command(sql)
            except DatabaseError:
                raise
            except Exception as exc:
                raise DatabaseError(clean_error(exc)) from exc

    def query(
        self,
        sql: str,
        parameters: dict[str, Any] | None = None,
        *,
        column_formats: dict[str, str | dict[str, str]] | None = None,
        readonly: bool = False,
    ) -> QueryResult:
        """Rows as Python values. String columns decode as UTF-8 (invalid UTF-8 comes back
        as a hex string); pass column_formats={"payload": "bytes"} for raw bytes.
        `readonly=True` makes ClickHouse refuse anything that writes."""
        with self._lock:
            self._check_open()
            try:
                self._use_database()
                res = self._client.query(
                    sql,
                    parameters=parameters,
                    column_formats=column_formats,
                    settings=READONLY_SETTINGS if readonly else None,
                )
            except Exception as exc:
                raise DatabaseError(clean_error(exc)) from exc
            types = [t.name for t in res.column_types]
            return QueryResult(list(res.column_names), _normalize_rows(res.result_rows, types))

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        dedup_token: str | None = None,
        types: Sequence[str] | None = None,
    ) -> None:
        """Insert rows (column-oriented, clickhouse-connect's public `insert`), with the
        deduplication settings and `dedup_token`. `types`: the columns' ClickHouse types
        when the caller knows them (a row model), else they are read once per table."""
        if not rows:
            return
        full = self.qualify(table)
        for c in columns:
            check_identifier(c)
        settings = dict(INSERT_SETTINGS)
        if dedup_token is not None:
            settings["insert_deduplication_token"] = dedup_token
        with self._lock:
            self._check_open()
            try:
                self._use_database()
                type_names = list(types) if types is not None else self._column_types(full, columns)
                data = to_columns(columns, rows, type_names)
                try:
                    self._client.insert(
                        full,
                        data,
                        column_names=list(columns),
                        column_type_names=type_names,
                        column_oriented=True,
                        settings=settings,
                    )
                finally:
                    # clickhouse-connect's insert context is in a reference cycle (it
                    # holds a bound method of itself) and keeps `data` until the
                    # garbage collector finds it: emptied here, the rows' values go
                    # with the rows, not in a collector pause of ~0.2 s.
                    for column in data:
                        column.clear()
            except DatabaseError:
                raise
            except Exception as exc:
                raise DatabaseError(f"insert into {full} failed: {clean_error(exc)}") from exc

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self.transport.close()

    def __enter__(self) -> ClickHouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Database = ClickHouse
"""The name the rest of workpulse uses for a connected ClickHouse."""
