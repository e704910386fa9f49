"""Fixtures of the integration tests: the embedded broker (one per session) and
unique topic names. ClickHouse fixtures live in clickhouse_fixtures.py."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from workpulse.dev.broker import EmbeddedBroker  # noqa: E402

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


#: Faust settings that make joining the group quick on the embedded broker (Tansu
#: answers a JoinGroup after about half the session timeout; Faust's default of 60 s
#: means ~31 s). See docs/broker-and-faust.md.
FAST_GROUP_SETTINGS: dict[str, Any] = {
    "broker_session_timeout": 2.0,
    "broker_heartbeat_interval": 0.5,
    "broker_rebalance_timeout": 2.0,
    "broker_commit_interval": 0.2,
}


@pytest.fixture
def faust_app_factory(broker: EmbeddedBroker, tmp_path: Path) -> Callable[..., Any]:
    """Builds faust.App objects with a unique id (= a fresh consumer group), memory
    store, no web server, a fresh datadir and the quick-join settings."""
    import faust

    def make(prefix: str = "test", **overrides: Any) -> Any:
        app_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
        conf: dict[str, Any] = {
            "broker": f"kafka://{broker.bootstrap}",
            "store": "memory://",
            "web_enabled": False,
            "datadir": str(tmp_path / app_id),
            "topic_partitions": 4,
            "topic_replication_factor": 1,
            "consumer_auto_offset_reset": "earliest",
            **FAST_GROUP_SETTINGS,
        }
        conf.update(overrides)
        return faust.App(app_id, **conf)

    return make
