"""docs/cookbook.md: at least 12 analysts' questions, each SQL run on the demo's data,
unchanged, on chDB and through the ClickHouse HTTP interface (the chDB HTTP test
server), returning rows, the same rows both ways."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ops.conftest import DemoRun, run_sql_on_chdb
from workpulse.clickhouse import connect
from workpulse.dev.chdb_http import ChdbHttpServer

ROOT = Path(__file__).resolve().parents[2]
COOKBOOK = (ROOT / "docs" / "cookbook.md").read_text()
SECTION = re.compile(r"^## (\d+)\. (.+?)\n(.*?)(?=^## |\Z)", re.S | re.M)

pytestmark = pytest.mark.integration


def recipes() -> list[tuple[str, str]]:
    out = []
    for number, question, body in SECTION.findall(COOKBOOK):
        blocks = re.findall(r"```sql\n(.*?)```", body, re.S)
        assert len(blocks) == 1, f"question {number} needs exactly one sql block"
        out.append((f"{number}. {question}", blocks[0].strip()))
    return out


def test_at_least_twelve_questions_each_a_question() -> None:
    found = recipes()
    assert len(found) >= 12
    assert all(q.endswith("?") for q, _ in found)


@pytest.fixture(scope="module")
def on_chdb(demo_run: DemoRun) -> list[dict[str, Any]]:
    return run_sql_on_chdb(demo_run.data_dir / "chdb", [sql for _, sql in recipes()])


@pytest.fixture(scope="module")
def http_server(demo_chdb_copy: Path) -> Iterator[ChdbHttpServer]:
    server = ChdbHttpServer(demo_chdb_copy, user="analyst", password="s3cret")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("number", "question_sql"), list(enumerate(recipes())), ids=lambda x: str(x)[:3]
)
def test_recipe_returns_rows_on_chdb_and_over_http(
    number: int,
    question_sql: tuple[str, str],
    on_chdb: list[dict[str, Any]],
    http_server: ChdbHttpServer,
) -> None:
    question, sql = question_sql
    local = on_chdb[number]
    assert "error" not in local, f"{question}: {local.get('error')}"
    assert local["rows"], f"{question}: no rows on chDB"
    db = connect(http_server.url_with_credentials("workpulse"), Path("unused"))
    try:
        remote = db.query(sql, readonly=True)
    finally:
        db.close()
    assert remote.column_names == local["columns"]
    assert [[str(v) for v in row] for row in remote.rows] == local["rows"], question
