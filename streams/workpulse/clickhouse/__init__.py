"""The ClickHouse layer: one client (`ClickHouse`) over two transports (chDB in-process,
a server over HTTP), and the schema migrations. See docs/clickhouse.md and
schemas/clickhouse/."""

from __future__ import annotations

from pathlib import Path

from workpulse.clickhouse.client import (
    DATABASE,
    INSERT_SETTINGS,
    ClickHouse,
    Database,
    DatabaseError,
    QueryResult,
)
from workpulse.clickhouse.migrations import (
    apply_schema,
    missing_tables,
    schema_files,
    split_statements,
)
from workpulse.clickhouse.transports import ChdbTransport, HttpTransport

__all__ = [
    "DATABASE",
    "INSERT_SETTINGS",
    "ChdbTransport",
    "ClickHouse",
    "Database",
    "DatabaseError",
    "HttpTransport",
    "QueryResult",
    "apply_schema",
    "connect",
    "missing_tables",
    "open_embedded",
    "open_server",
    "schema_files",
    "split_statements",
]


def open_embedded(path: Path | str, *, create: bool = True) -> ClickHouse:
    """chDB persisted under `path` (one per process); `create=False`: only if it exists."""
    return ClickHouse(ChdbTransport(path, create=create))


def open_server(url: str) -> ClickHouse:
    """A server: http(s)://user:password@host:port/database."""
    transport = HttpTransport.from_url(url)
    return ClickHouse(transport, transport.database)


def connect(url: str | None, data_dir: Path, *, create: bool = True) -> ClickHouse:
    """None -> embedded chDB at data_dir/"chdb" (made unless `create=False`);
    http(s)://user:pass@host:port/db -> server."""
    if url is None or url == "":
        return open_embedded(Path(data_dir) / "chdb", create=create)
    if url.startswith(("http://", "https://")):
        return open_server(url)
    raise DatabaseError("ClickHouse URL must start with http:// or https:// (or be unset)")
