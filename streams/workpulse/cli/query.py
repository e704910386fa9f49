"""`workpulse query`: run SQL on the configured ClickHouse and print the result."""

from __future__ import annotations

import csv
import re
from typing import Any

import click
import orjson

from workpulse.cli.options import (
    CLICKHOUSE,
    UserError,
    reader_may_leave,
    result_stream,
    settings_from,
    settings_options,
)

FORMATS = ("table", "csv", "json", "jsonl")
# A trailing FORMAT clause: the client adds its own (FORMAT Native), and ClickHouse's
# syntax error then quotes text the user never wrote.
_FORMAT_CLAUSE = re.compile(r"\bFORMAT\s+\w+\s*;?\s*$", re.IGNORECASE)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


@click.command("query")
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "--write",
    is_flag=True,
    help="Allow statements that change data or tables (by default the query runs read-only).",
)
@settings_options(*CLICKHOUSE)
def command(sql: str, fmt: str, write: bool, **kwargs: Any) -> None:
    """Run SQL on the configured ClickHouse (embedded chDB by default) and print it.

    Tables live in the `workpulse` database, e.g.
    workpulse query "SELECT topic, sum(videos) FROM workpulse.topic_counts_1m GROUP BY topic"

    Read-only unless --write is given: ClickHouse refuses INSERT, DROP, ALTER… (readonly=2).
    """
    from workpulse.clickhouse import DatabaseError, connect

    if not sql.strip().strip(";").strip():
        raise UserError('no SQL given: workpulse query "SELECT …"')
    if _FORMAT_CLAUSE.search(sql):
        raise UserError(
            "leave out the FORMAT clause: workpulse query picks the format itself "
            f"(--format {'|'.join(FORMATS)})"
        )
    out = result_stream()
    settings = settings_from(kwargs)
    db = connect(settings.clickhouse_url_value, settings.data_dir, create=False)
    try:
        result = db.query(sql, readonly=not write)
    except DatabaseError as exc:
        if "UNKNOWN_DATABASE" in str(exc):
            raise UserError(
                "no workpulse database here: run `workpulse init-db` (or `workpulse demo`) first"
            ) from None
        if "(READONLY)" in str(exc):
            raise UserError(
                "this statement writes; workpulse query is read-only unless --write is given"
            ) from None
        raise
    finally:
        db.close()
    cols, rows = result.column_names, result.rows
    with reader_may_leave():
        if fmt == "csv":
            writer = csv.writer(out)
            writer.writerow(cols)
            writer.writerows([[_jsonable(v) for v in r] for r in rows])
        elif fmt in ("json", "jsonl"):
            objs = [dict(zip(cols, (_jsonable(v) for v in r), strict=True)) for r in rows]
            opts = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
            if fmt == "json":
                out.write(
                    orjson.dumps(objs, default=str, option=opts | orjson.OPT_INDENT_2).decode()
                    + "\n"
                )
            else:
                for obj in objs:
                    out.write(orjson.dumps(obj, default=str, option=opts).decode() + "\n")
        else:
            from rich.console import Console

            from workpulse.terminal import data_table

            table = data_table(cols, [[_jsonable(v) for v in r] for r in rows])
            Console(emoji=False, markup=False, highlight=False).print(table)
            click.echo(f"{len(rows)} row{'s' if len(rows) != 1 else ''}", err=True)
        out.flush()  # (a closed pipe is found here, not in the interpreter's last flush)
