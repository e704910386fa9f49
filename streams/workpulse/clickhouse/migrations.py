"""Applying the DDL in schemas/clickhouse/ (`workpulse init-db`): idempotent migrations."""

from __future__ import annotations

import re
from pathlib import Path

from workpulse.clickhouse.client import ClickHouse, DatabaseError
from workpulse.resources import ddl_dir


def split_statements(text: str) -> list[str]:
    """Split SQL on `;`, ignoring `;` inside comments, strings and quoted names.

    Comments are dropped from the returned statements.
    """
    statements: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            buf.append(" ")
            continue
        if ch in "'\"`":
            j = i + 1
            while j < n:
                if text[j] == "\\":
                    j += 2
                    continue
                if text[j] == ch:
                    if j + 1 < n and text[j + 1] == ch:  # doubled quote
                        j += 2
                        continue
                    break
                j += 1
            buf.append(text[i : j + 1])
            i = j + 1
            continue
        if ch == ";":
            stmt = "".join(buf).strip()
            if stmt:
                statements.append(stmt)
            buf = []
        else:
            buf.append(ch)
        i += 1
    stmt = "".join(buf).strip()
    if stmt:
        statements.append(stmt)
    return statements


def schema_files(schemas: Path | None = None, cluster: bool = False) -> list[Path]:
    """The numbered .sql files of the DDL (of the `schemas` directory, default: packaged)."""
    base = ddl_dir(schemas, cluster=cluster)
    files = sorted(p for p in base.glob("*.sql") if p.name[:1].isdigit())
    if not files:
        raise DatabaseError(f"no numbered .sql files in {base}")
    return files


def apply_schema(db: ClickHouse, schemas: Path | None = None, cluster: bool = False) -> list[str]:
    """Run the numbered DDL files in order (`workpulse init-db`); idempotent.

    Returns the names of the files applied.
    """
    applied: list[str] = []
    for path in schema_files(schemas, cluster):
        for stmt in split_statements(path.read_text(encoding="utf-8")):
            try:
                db.command(stmt)
            except DatabaseError as exc:
                raise DatabaseError(f"{path.name}: {exc}") from exc
        applied.append(path.name)
    return applied


_CREATE_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS workpulse\.(\w+)")


def missing_tables(db: ClickHouse, schemas: Path | None = None) -> list[str]:
    """The tables of the DDL that the database does not have (all of them when there is
    no `workpulse` database): a worker started before `workpulse init-db` would retry
    its first read for ever."""
    wanted: list[str] = []
    for path in schema_files(schemas):
        for stmt in split_statements(path.read_text(encoding="utf-8")):
            match = _CREATE_TABLE.match(stmt)
            if match and match.group(1) not in wanted:
                wanted.append(match.group(1))
    present = {
        row[0]
        for row in db.query("SELECT name FROM system.tables WHERE database = 'workpulse'").rows
    }
    return [name for name in wanted if name not in present]
