"""Fixtures of the integration tests: the embedded broker (one per session) and
unique topic names. ClickHouse fixtures live in clickhouse_fixtures.py."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from workpulse.broker import EmbeddedBroker  # noqa: E402

with contextlib.suppress(ImportError):
    from tests.integration.clickhouse_fixtures import chdb_http_server  # noqa: F401


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """Tansu on 127.0.0.1 on a free port, memory storage, stopped at session end."""
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    embedded = EmbeddedBroker(log_path=log_path)
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses (the broker lives for the whole session)."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
    return f"{base}-{uuid.uuid4().hex[:8]}"
