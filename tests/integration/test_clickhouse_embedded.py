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
    Database,
    DatabaseError,
    EmbeddedDatabase,
    apply_schema,
    connect,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDatabase]:
    db = connect(None, tmp_path_factory.mktemp("wp_embedded"))
    assert isinstance(db, EmbeddedDatabase)
    apply_schema(db)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def db(embedded: EmbeddedDatabase) -> Database:
    clean(embedded)
    return embedded


class TestEmbedded(ClickHouseContract):
    pass


def test_one_engine_per_process_guard(embedded: EmbeddedDatabase, tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="already open"):
        EmbeddedDatabase(embedded.path)
    with pytest.raises(DatabaseError, match="one engine per process"):
        EmbeddedDatabase(tmp_path / "other")


def test_data_survives_reopen(embedded: EmbeddedDatabase) -> None:
    clean(embedded)
    embedded.insert("video_events", VIDEO_COLUMNS, [event(1), event(2)], dedup_token=token())
    path = embedded.path
    embedded.close()
    with pytest.raises(DatabaseError, match="closed"):
        embedded.query("SELECT 1")
    reopened = EmbeddedDatabase(path)
    try:
        assert reopened.query("SELECT count() FROM video_events").rows == [(2,)]
        assert reopened.query("SELECT sum(videos) FROM topic_counts_1m").rows == [(2,)]
    finally:
        reopened.close()
    # hand the module fixture a live instance again
    embedded.__init__(path)  # type: ignore[misc]
