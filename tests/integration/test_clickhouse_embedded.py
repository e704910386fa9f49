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
from workpulse.model.rows import WORKER_TABLES, TableModel  # noqa: E402

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
