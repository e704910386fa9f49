"""pytest fixtures for the ClickHouse layer.

Import them into tests/integration/conftest.py:

    from tests.integration.clickhouse_fixtures import chdb_http_server  # noqa: F401

(or `from clickhouse_fixtures import *` when tests/integration is on sys.path).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from workpulse.dev.chdb_http import ChdbHttpServer  # noqa: E402

CHDB_HTTP_USER = "workpulse_test"
CHDB_HTTP_PASSWORD = "s3cret:p@ss/word"  # exercises URL quoting


@pytest.fixture(scope="session")
def chdb_http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbHttpServer]:
    """A ClickHouse HTTP endpoint (chDB in a child process), stopped at session end.

    `.url` is http://127.0.0.1:PORT; `.url_with_credentials(db)` is the
    http://user:pass@host:port/db form that workpulse.clickhouse.connect() takes.
    """
    server = ChdbHttpServer(
        tmp_path_factory.mktemp("chdb_http"),
        user=CHDB_HTTP_USER,
        password=CHDB_HTTP_PASSWORD,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
