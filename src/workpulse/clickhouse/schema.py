"""Applying the DDL in schemas/clickhouse/ and the restart-time offset query."""

from __future__ import annotations

from pathlib import Path

from workpulse.clickhouse.base import DATABASE, Database, DatabaseError, check_identifier, qualify

WORKER_TABLES = ("video_events", "dead_letters", "topic_spikes")


def default_schema_dir() -> Path:
    """schemas/clickhouse of the checkout (WORKPULSE_SCHEMAS_DIR overrides schemas/)."""
    from workpulse.paths import schemas_dir

    return schemas_dir() / "clickhouse"


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


def schema_files(schema_dir: Path | None = None, cluster: bool = False) -> list[Path]:
    base = Path(schema_dir) if schema_dir is not None else default_schema_dir()
    if cluster:
        base = base / "cluster"
    files = sorted(p for p in base.glob("*.sql") if p.name[:1].isdigit())
    if not files:
        raise DatabaseError(f"no numbered .sql files in {base}")
    return files


def apply_schema(db: Database, schema_dir: Path | None = None, cluster: bool = False) -> list[str]:
    """Run the numbered DDL files in order (`workpulse init-db`); idempotent.

    Returns the names of the files applied.
    """
    applied: list[str] = []
    for path in schema_files(schema_dir, cluster):
        for stmt in split_statements(path.read_text(encoding="utf-8")):
            try:
                db.command(stmt)
            except DatabaseError as exc:
                raise DatabaseError(f"{path.name}: {exc}") from exc
        applied.append(path.name)
    return applied


def durable_offsets(
    db: Database, table: str, src_topic: str, database: str = DATABASE
) -> dict[int, int]:
    """partition -> highest source offset already stored in `table` for `src_topic`."""
    full = check_identifier(qualify(table, database))
    res = db.query(
        f"SELECT src_partition, max(src_offset) FROM {full} "
        "WHERE src_topic = {topic:String} GROUP BY src_partition",
        parameters={"topic": src_topic},
    )
    return {int(p): int(o) for p, o in res.rows}
