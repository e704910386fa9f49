"""The ClickHouse layer: pure I/O against chDB (embedded) or a ClickHouse server.

See docs/clickhouse.md and schemas/clickhouse/.
"""

from __future__ import annotations

from pathlib import Path

from workpulse.clickhouse.base import (
    DATABASE,
    INSERT_SETTINGS,
    Database,
    DatabaseError,
    QueryResult,
    qualify,
)
from workpulse.clickhouse.embedded import EmbeddedDatabase
from workpulse.clickhouse.schema import (
    WORKER_TABLES,
    apply_schema,
    default_schema_dir,
    durable_offsets,
    split_statements,
)
from workpulse.clickhouse.server import ServerDatabase

__all__ = [
    "DATABASE",
    "INSERT_SETTINGS",
    "WORKER_TABLES",
    "Database",
    "DatabaseError",
    "EmbeddedDatabase",
    "QueryResult",
    "ServerDatabase",
    "apply_schema",
    "connect",
    "default_schema_dir",
    "durable_offsets",
    "qualify",
    "split_statements",
]


def connect(url: str | None, data_dir: Path) -> Database:
    """None -> embedded chDB at data_dir/"chdb"; http(s)://user:pass@host:port/db -> server."""
    if url is None or url == "":
        return EmbeddedDatabase(Path(data_dir) / "chdb")
    if url.startswith(("http://", "https://")):
        return ServerDatabase.from_url(url)
    raise DatabaseError("ClickHouse URL must start with http:// or https:// (or be unset)")
