"""Runs SQL statements on an embedded chDB in this (child) process and prints the
results as JSON: `python -m tests.support.run_sql CHDB_DIR < queries.json`.

chDB hosts one engine per process, so tests that already hold another chDB (or none)
run queries on a demo's data directory through this."""

from __future__ import annotations

import json
import sys

from workpulse.clickhouse import open_embedded


def main() -> None:
    queries = json.load(sys.stdin)
    db = open_embedded(sys.argv[1])
    out = []
    try:
        for sql in queries:
            try:
                res = db.query(sql, readonly=True)
                out.append(
                    {"columns": res.column_names, "rows": [[str(v) for v in r] for r in res.rows]}
                )
            except Exception as exc:
                out.append({"error": str(exc).splitlines()[0][:500]})
    finally:
        db.close()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
