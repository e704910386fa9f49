"""Text checks of the ClickHouse DDL (schemas/clickhouse/): order, idempotence,
and that the cluster variant defines the same columns as the single-node one.
(Running the DDL is covered by tests/integration/test_clickhouse_*.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workpulse.clickhouse import schema_files, split_statements
from workpulse.model.rows import WORKER_TABLES
from workpulse.resources import ddl_dir

SCHEMA = ddl_dir()
CLUSTER = ddl_dir(cluster=True)
_TABLE = re.compile(
    r"CREATE TABLE IF NOT EXISTS workpulse\.(\w+)(?: ON CLUSTER '\{cluster\}')?\s*"
    r"\((.*?)\)\s*ENGINE",
    re.S,
)
_OBJECT = re.compile(
    r"(?:CREATE (TABLE|(?:MATERIALIZED )?VIEW|DATABASE) IF NOT EXISTS|CREATE OR REPLACE (VIEW)"
    r"|(ALTER) TABLE) "
    r"workpulse(?:\.(\w+))?"
)
_ALTER = re.compile(r"ALTER TABLE workpulse\.(\w+)(?: ON CLUSTER '\{cluster\}')?\s+(.*)", re.S)
_ADD_COLUMN = re.compile(r"ADD COLUMN IF NOT EXISTS (\w+)\s+(.+?) AFTER (\w+)$")


def statements(directory: Path) -> list[str]:
    out: list[str] = []
    for path in schema_files(cluster=directory == CLUSTER):
        out += split_statements(path.read_text(encoding="utf-8"))
    return out


def columns(directory: Path) -> dict[str, list[tuple[str, str]]]:
    tables: dict[str, list[tuple[str, str]]] = {}
    for stmt in statements(directory):
        match = _TABLE.match(stmt)
        if not match:
            continue
        name = match.group(1).removesuffix("_local")
        cols = []
        for line in match.group(2).strip().splitlines():
            line = line.strip().rstrip(",")
            if line:
                col, type_ = line.split(None, 1)
                cols.append((col, " ".join(type_.split())))
        tables[name] = cols
    return tables


def objects(directory: Path) -> set[tuple[str, str]]:
    found = set()
    for stmt in statements(directory):
        match = _OBJECT.match(stmt)
        assert match, f"unexpected statement: {stmt[:80]}"
        kind = match.group(1) or match.group(2) or match.group(3)
        found.add((kind, (match.group(4) or "").removesuffix("_local")))
    return found


def migrations(directory: Path) -> list[tuple[str, list[str]]]:
    """(table, its ALTER clauses) of every migration statement."""
    out = []
    for stmt in statements(directory):
        match = _ALTER.match(stmt)
        if match:
            clauses = [" ".join(c.split()) for c in match.group(2).split(",\n")]
            out.append((match.group(1), clauses))
    return out


def test_files_are_numbered_and_ordered() -> None:
    names = [p.name for p in schema_files()]
    assert names[0] == "001_database.sql"
    assert names == sorted(names)
    assert len({n.split("_", 1)[0] for n in names}) == len(names)
    for expected in ("010_video_events.sql", "020_dead_letters.sql", "030_topic_spikes.sql",
                     "040_topic_counts_1m.sql", "050_rollups.sql", "060_authors.sql",
                     "080_topic_spikes_context.sql"):  # fmt: skip
        assert expected in names
    assert [p.name for p in schema_files(cluster=True)] == names


@pytest.mark.parametrize("directory", [SCHEMA, CLUSTER], ids=["single", "cluster"])
def test_every_statement_is_idempotent_and_qualified(directory: Path) -> None:
    for stmt in statements(directory):
        altered = _ALTER.match(stmt)
        if altered:  # a migration of existing tables: only idempotent clauses
            for clause in altered.group(2).split(",\n"):
                clause = " ".join(clause.split())
                assert clause.startswith(("ADD COLUMN IF NOT EXISTS ", "MODIFY ORDER BY ")), clause
        else:  # created once, or a plain view replaced (it holds no data)
            created = (
                r"CREATE (TABLE|(MATERIALIZED )?VIEW|DATABASE) IF NOT EXISTS "
                r"|CREATE OR REPLACE VIEW "
            )
            assert re.match(created, stmt), stmt
        assert "workpulse" in stmt.split("\n", 1)[0]
        if directory == CLUSTER:
            assert "ON CLUSTER '{cluster}'" in stmt.split("\n", 1)[0]
        else:
            assert "ON CLUSTER" not in stmt and "Replicated" not in stmt


def test_cluster_variant_defines_the_same_columns() -> None:
    single, cluster = columns(SCHEMA), columns(CLUSTER)
    assert single == cluster
    assert objects(SCHEMA) == objects(CLUSTER)


def test_cluster_variant_subqueries_are_global() -> None:
    """A plain IN (subquery) over a Distributed table, inside a query that reads a
    Distributed table, is refused on a cluster (distributed_product_mode = 'deny') or
    reads one shard's part ('local'): the cluster DDL uses GLOBAL IN."""
    text = " ".join("\n".join(statements(CLUSTER)).split())
    plain = re.findall(r"(?<!GLOBAL) IN \(SELECT", text)
    assert not plain, f"{len(plain)} subqueries without GLOBAL in the cluster DDL"
    single = " ".join("\n".join(statements(SCHEMA)).split())
    assert text.count("GLOBAL IN (SELECT") == single.count(" IN (SELECT")


def test_cluster_variant_engines() -> None:
    text = "\n".join(statements(CLUSTER))
    local_tables = re.findall(r"workpulse\.(\w+)_local ON CLUSTER", text)
    assert set(local_tables) == set(columns(SCHEMA))
    for name in local_tables:
        assert f"Distributed('{{cluster}}', workpulse, {name}_local" in text
    assert "non_replicated_deduplication_window" not in text
    # Null: the probe twin, which stores nothing (no replication needed)
    assert re.search(r"ENGINE = (?!Replicated|Distributed|Null)\w+", text) is None
    # MVs read and write the shard-local tables
    for stmt in statements(CLUSTER):
        if "MATERIALIZED VIEW" in stmt:
            assert "TO workpulse." in stmt and "_local" in stmt.split("AS SELECT")[0]
            assert "FROM workpulse.video_events_local" in stmt


def test_video_events_contract_columns() -> None:
    cols = dict(columns(SCHEMA)["video_events"])
    assert cols == {
        "event_id": "String",
        "kind": "LowCardinality(String)",
        "video_id": "String",
        "event_time": "DateTime64(3, 'UTC')",
        "author_id": "String",
        "author_followers": "UInt64",
        "lang": "LowCardinality(String)",
        "country": "LowCardinality(String)",
        "caption": "String",
        "hashtags": "Array(String)",
        "topics": "Array(LowCardinality(String))",
        "matched": "Map(String, Array(String))",
        **{c: "UInt64" for c in ("views", "likes", "shares", "comments")},
        **{f"d_{c}": "Int64" for c in ("views", "likes", "shares", "comments")},
        "taxonomy_version": "LowCardinality(String)",
        "ingest_time": "DateTime64(3, 'UTC')",
        "src_topic": "LowCardinality(String)",
        "src_partition": "UInt32",
        "src_offset": "UInt64",
    }


def test_worker_tables_carry_source_position_and_dedup_window() -> None:
    tables = columns(SCHEMA)
    for name in ("video_events", "dead_letters", "topic_spikes"):
        cols = dict(tables[name])
        assert cols["src_topic"] == "LowCardinality(String)"
        assert (cols["src_partition"], cols["src_offset"]) == ("UInt32", "UInt64")
    for stmt in statements(SCHEMA):
        if stmt.startswith("CREATE TABLE") and not stmt.endswith("ENGINE = Null"):
            assert "non_replicated_deduplication_window = 10000" in stmt, stmt[:60]


def test_counts_tables_are_exact_without_final() -> None:
    tables = columns(SCHEMA)
    for name in ("topic_counts_1m", "topic_counts_1h", "topic_counts_1d"):
        cols = dict(tables[name])
        for c in ("videos", "events"):
            assert cols[c] == "SimpleAggregateFunction(sum, UInt64)"
        for c in ("views", "likes", "shares", "comments"):
            assert cols[c] == "SimpleAggregateFunction(sum, Int64)"
        assert cols["authors"] == "AggregateFunction(uniqExact, String)"
    assert dict(tables["topic_author_first_seen"])["first_seen"] == (
        "SimpleAggregateFunction(min, DateTime64(3, 'UTC'))"
    )


def test_split_statements_ignores_semicolons_in_comments_and_strings() -> None:
    sql = """
    -- a comment; with a semicolon
    CREATE TABLE t (a String DEFAULT 'x;y', `b;c` UInt8) ENGINE = Memory; /* ; */
    SELECT 'it''s; fine', "q;q"   ;
    ;
    SELECT 3
    """
    assert split_statements(sql) == [
        "CREATE TABLE t (a String DEFAULT 'x;y', `b;c` UInt8) ENGINE = Memory",
        "SELECT 'it''s; fine', \"q;q\"",
        "SELECT 3",
    ]


@pytest.mark.parametrize("model", WORKER_TABLES, ids=lambda m: m.name)
@pytest.mark.parametrize("directory", [SCHEMA, CLUSTER], ids=["single", "cluster"])
def test_row_models_are_the_ddl_columns(model: object, directory: Path) -> None:
    """Each worker table's row model has the DDL's columns, types and order (the running
    engine's DESCRIBE TABLE is compared in tests/integration/test_clickhouse_embedded.py)."""
    from workpulse.model.rows import TableModel

    assert isinstance(model, TableModel)
    assert columns(directory)[model.name] == list(zip(model.columns, model.types, strict=True))


@pytest.mark.parametrize("directory", [SCHEMA, CLUSTER], ids=["single", "cluster"])
def test_migrations_add_the_create_columns_in_order(directory: Path) -> None:
    """A database created before a column existed gets it from a migration with the
    type and the position the CREATE TABLE gives it, so the DESCRIBE TABLE of a migrated
    table is that of a fresh one (and the row model's)."""
    tables = columns(directory)
    found = migrations(directory)
    assert found, "no migration"
    for table, clauses in found:
        created = tables[table.removesuffix("_local")]
        names = [c for c, _ in created]
        for clause in clauses:
            added = _ADD_COLUMN.match(clause)
            if added is None:
                continue
            column, type_, after = added.groups()
            assert (column, type_) in created, clause
            assert names.index(after) == names.index(column) - 1, clause
        added_columns = [m.group(1) for c in clauses if (m := _ADD_COLUMN.match(c))]
        assert added_columns == names[names.index(added_columns[0]) :], "added at the end"
