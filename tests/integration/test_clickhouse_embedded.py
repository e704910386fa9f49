"""The ClickHouse contract on the embedded backend (chDB in this process)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.support.clickhouse_cases import (  # noqa: E402
    VIDEO_COLUMNS,
    ClickHouseContract,
    clean,
    event,
    token,
)

from workpulse.clickhouse import (  # noqa: E402
    ChdbTransport,
    ClickHouse,
    Database,
    DatabaseError,
    apply_schema,
    connect,
    open_embedded,
)
from workpulse.model.rows import TOPIC_SPIKES, WORKER_TABLES, TableModel  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouse]:
    db = connect(None, tmp_path_factory.mktemp("wp_embedded"))
    assert isinstance(db.transport, ChdbTransport)
    apply_schema(db)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def db(embedded: ClickHouse) -> Database:
    clean(embedded)
    return embedded


class TestEmbedded(ClickHouseContract):
    pass


def embedded_path(db: ClickHouse) -> str:
    assert isinstance(db.transport, ChdbTransport)
    return db.transport.path


def test_one_engine_per_process_guard(embedded: ClickHouse, tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="already open"):
        open_embedded(embedded_path(embedded))
    with pytest.raises(DatabaseError, match="one engine per process"):
        open_embedded(tmp_path / "other")


def test_data_survives_reopen(embedded: ClickHouse) -> None:
    clean(embedded)
    embedded.insert("video_events", VIDEO_COLUMNS, [event(1), event(2)], dedup_token=token())
    path = embedded_path(embedded)
    embedded.close()
    with pytest.raises(DatabaseError, match="closed"):
        embedded.query("SELECT 1")
    reopened = open_embedded(path)
    try:
        assert reopened.query("SELECT count() FROM video_events").rows == [(2,)]
        assert reopened.query("SELECT sum(videos) FROM topic_counts_1m").rows == [(2,)]
    finally:
        reopened.close()
    # hand the module fixture a live instance again
    embedded.__init__(ChdbTransport(path))  # type: ignore[misc]


@pytest.mark.parametrize("model", WORKER_TABLES, ids=lambda m: m.name)
def test_row_models_match_describe_table(embedded: ClickHouse, model: TableModel) -> None:
    """The row models (names, types, order) are what chDB made of the DDL."""
    described = embedded.query(f"DESCRIBE TABLE workpulse.{model.name}").rows
    assert [(r[0], r[1]) for r in described] == list(zip(model.columns, model.types, strict=True))


# topic_spikes as 030_topic_spikes.sql created it before the three-signal detector
TOPIC_SPIKES_BEFORE_ISSUE_14 = """
CREATE TABLE workpulse.topic_spikes
(
    topic LowCardinality(String), window_start DateTime('UTC'),
    metric LowCardinality(String), observed Float64, expected Float64, score Float64,
    p_value Float64, detected_at DateTime64(3, 'UTC'), top_videos Array(String),
    top_hashtags Array(String), languages Map(String, UInt64),
    taxonomy_version LowCardinality(String), src_topic LowCardinality(String),
    src_partition UInt32, src_offset UInt64
)
ENGINE = ReplacingMergeTree(detected_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (topic, window_start, metric)
SETTINGS non_replicated_deduplication_window = 10000
"""


def test_init_db_migrates_an_existing_topic_spikes(embedded: ClickHouse) -> None:
    """A database made before the new columns gets them from `init-db` (080), in the
    fresh table's order, with `lang` in the sorting key; its rows stay."""
    embedded.command("DROP TABLE IF EXISTS workpulse.topic_spikes")
    embedded.command(TOPIC_SPIKES_BEFORE_ISSUE_14)
    embedded.command(
        "INSERT INTO workpulse.topic_spikes (topic, window_start, metric, observed) "
        "VALUES ('salary', '2026-01-01 10:00:00', 'videos', 12)"
    )
    for _ in range(2):  # idempotent
        apply_schema(embedded)
    described = embedded.query("DESCRIBE TABLE workpulse.topic_spikes").rows
    model = TOPIC_SPIKES
    assert [(r[0], r[1]) for r in described] == list(zip(model.columns, model.types, strict=True))
    key = embedded.query(
        "SELECT sorting_key FROM system.tables "
        "WHERE database = 'workpulse' AND name = 'topic_spikes'"
    ).scalar()
    assert key == "topic, window_start, metric, lang"
    assert embedded.query(
        "SELECT topic, metric, observed, lang, severity, countries FROM workpulse.topic_spikes"
    ).rows == [("salary", "videos", 12.0, "", "", {})]


_FIRST_INSERT = """
import asyncio, sys
from prometheus_client import CollectorRegistry
from workpulse.clickhouse import apply_schema, connect
from workpulse.metrics import Metrics
from workpulse.model.rows import DEAD_LETTERS
from workpulse.sinks.clickhouse import Sink

db = connect(None, sys.argv[1])
apply_schema(db)
sink = Sink(db, Metrics(CollectorRegistry()))
if sys.argv[2] == "warm":
    asyncio.run(sink.warm_up())
before = set(sys.modules)
row = (0, "not_json", "", b"x", "t", 0, 0, b"")
asyncio.run(sink.write(DEAD_LETTERS, [row], "token"))
print(sorted(m for m in set(sys.modules) - before if m.split(".")[0] == "pandas")[:3])
sink.close()
db.close()
"""


@pytest.mark.parametrize(("mode", "imports"), [("cold", True), ("warm", False)])
def test_warm_up_loads_what_the_first_insert_would(
    tmp_path: Path, mode: str, imports: bool
) -> None:
    """clickhouse-connect imports pandas on its first insert (~0.3-0.6 s the first batch
    would wait); `Sink.warm_up` does it before (cold: the reason it exists)."""
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", _FIRST_INSERT, str(tmp_path / "db"), mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert (out.strip() != "[]") is imports, out
