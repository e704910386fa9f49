"""The whole pipeline on real engines: the embedded broker, the Faust worker, and
ClickHouse both embedded (chDB) and over HTTP through clickhouse-connect."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.kafka_helpers import produce

from workpulse.clickhouse import Database, apply_schema, connect, open_embedded
from workpulse.config import Settings
from workpulse.dev.broker import EmbeddedBroker
from workpulse.dev.generator import Workload, WorkloadConfig
from workpulse.dev.summary import COUNTS_SQL, RECOUNT_SQL
from workpulse.kafka.admin import create_topics
from workpulse.worker.app import EMBEDDED_SESSION_TIMEOUT_S
from workpulse.worker.runtime import Worker, build_worker

pytestmark = pytest.mark.integration

N_MESSAGES = 3000


@pytest.fixture(scope="module", params=["embedded", "server"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """The same tests against chDB in-process and a ClickHouse HTTP endpoint."""
    if request.param == "embedded":
        db: Database = open_embedded(tmp_path_factory.mktemp("pipeline") / "chdb")
    else:
        server = request.getfixturevalue("chdb_http_server")
        db = connect(server.url_with_credentials(), tmp_path_factory.mktemp("unused"))
    apply_schema(db)
    try:
        yield db
    finally:
        db.close()


def worker_settings(tmp_path: Path, input_topic: str, app_id: str) -> Settings:
    return Settings(
        input_topic=input_topic,
        dlq_topic=f"{input_topic}-dlq",
        spikes_topic=f"{input_topic}-spikes",
        app_id=app_id,
        data_dir=tmp_path / app_id,
        metrics_port=0,
        batch_size=500,
        batch_timeout_s=0.2,
        kafka_session_timeout_s=EMBEDDED_SESSION_TIMEOUT_S,
    )


def run_worker(
    settings: Settings, bootstrap: str, db: Database, expected: int, timeout_s: float = 180
) -> Worker:
    """Start a worker, wait until it has processed `expected` messages, stop it."""

    async def main() -> Worker:
        worker = build_worker(settings, bootstrap, db, serve_metrics=False)
        await worker.start()
        try:
            deadline = time.monotonic() + timeout_s
            while worker.progress.processed < expected:
                assert time.monotonic() < deadline, (
                    f"processed {worker.progress.processed} of {expected}"
                )
                await asyncio.sleep(0.1)
            await worker.wait_idle()
        finally:
            await worker.stop()
        return worker

    return asyncio.run(main())


def scalar(db: Database, sql: str) -> Any:
    return db.query(sql).rows[0][0]


def source_filter(topic: str) -> str:
    return f"src_topic = '{topic}'"


def test_every_message_is_accounted_for_and_counts_equal_a_recount(
    broker: EmbeddedBroker, database: Database, tmp_path: Path
) -> None:
    topic = f"events-{uuid.uuid4().hex[:8]}"
    create_topics(broker.bootstrap, {topic: 4})
    workload = Workload(WorkloadConfig(seed=11, bad_fraction=0.05, duplicate_fraction=0.05))
    labelled = list(workload.labelled_messages(N_MESSAGES))
    labels = Counter(label.split(":")[0] for _, _, label in labelled)
    produce(broker.bootstrap, topic, [(k, v) for k, v, _ in labelled])

    settings = worker_settings(tmp_path, topic, f"wp-{uuid.uuid4().hex[:8]}")
    worker = run_worker(settings, broker.bootstrap, database, N_MESSAGES)

    p = worker.progress
    assert (p.accepted, p.rejected, p.duplicates) == (
        labels["valid"],
        labels["bad"],
        labels["duplicate"],
    )
    where = source_filter(topic)
    accepted = scalar(
        database, f"SELECT uniqExact(event_id) FROM workpulse.video_events WHERE {where}"
    )
    rows = scalar(database, f"SELECT count() FROM workpulse.video_events WHERE {where}")
    dead = scalar(database, f"SELECT count() FROM workpulse.dead_letters WHERE {where}")
    no_reason = scalar(
        database, f"SELECT count() FROM workpulse.dead_letters WHERE {where} AND reason = ''"
    )
    assert accepted == rows == labels["valid"]
    assert dead == labels["bad"]
    assert no_reason == 0
    # Every topic's per-minute counts equal a recount of the rows (whole database:
    # earlier tests in this module wrote to it too, which the property must survive).
    counts = {r[0]: (int(r[1]), int(r[2])) for r in database.query(COUNTS_SQL).rows}
    recount = {r[0]: (int(r[1]), int(r[2])) for r in database.query(RECOUNT_SQL).rows}
    assert counts == recount
    assert sum(v for v, _ in counts.values()) > 0


def test_replay_from_the_start_writes_nothing_twice(
    broker: EmbeddedBroker, database: Database, tmp_path: Path
) -> None:
    """A worker that re-reads already persisted offsets (what follows a kill -9
    between the insert and the offset commit) adds no row and changes no count."""
    topic = f"events-{uuid.uuid4().hex[:8]}"
    create_topics(broker.bootstrap, {topic: 2})
    messages = list(Workload(WorkloadConfig(seed=5, bad_fraction=0.02)).messages(1000))
    produce(broker.bootstrap, topic, messages)
    first = worker_settings(tmp_path, topic, f"wp-{uuid.uuid4().hex[:8]}")
    run_worker(first, broker.bootstrap, database, len(messages))
    where = source_filter(topic)
    before = database.query(
        f"SELECT count(), sum(d_views) FROM workpulse.video_events WHERE {where}"
    ).rows
    counts_before = database.query(COUNTS_SQL).rows

    # A new consumer group with empty tables starts from offset 0: a full replay.
    second = worker_settings(tmp_path, topic, f"wp-{uuid.uuid4().hex[:8]}")
    replay = run_worker(second, broker.bootstrap, database, len(messages))

    assert replay.progress.accepted == 0
    after = database.query(
        f"SELECT count(), sum(d_views) FROM workpulse.video_events WHERE {where}"
    ).rows
    assert after == before
    assert database.query(COUNTS_SQL).rows == counts_before


def test_rocksdb_table_store(broker: EmbeddedBroker, database: Database, tmp_path: Path) -> None:
    """The production table store (RocksDB through rocksdict) keeps the counts agent's
    table on disk under the data directory."""
    topic = f"events-{uuid.uuid4().hex[:8]}"
    create_topics(broker.bootstrap, {topic: 2})
    messages = list(Workload(WorkloadConfig(seed=6)).messages(800))
    produce(broker.bootstrap, topic, messages)
    settings = worker_settings(tmp_path, topic, f"wp-{uuid.uuid4().hex[:8]}").replace(
        table_store="rocksdb://"
    )
    worker = run_worker(settings, broker.bootstrap, database, len(messages))
    assert worker.progress.accepted == len(messages)
    stored = list((settings.data_dir / "faust").rglob("*.sst")) + list(
        (settings.data_dir / "faust").rglob("CURRENT")
    )
    assert stored, "no RocksDB files under the data directory"


def test_a_worker_that_cannot_serve_metrics_closes_what_it_opened(tmp_path: Path) -> None:
    """Building a worker opens further ClickHouse clients; when its /metrics cannot
    listen, it fails with a clear reason and closes them (they were left open)."""
    import socket

    from workpulse.worker.runtime import MetricsUnavailable

    db = connect(None, tmp_path / "chdb")
    opened: list[Any] = []
    another = db.another

    def recorded() -> Any:
        client = another()
        opened.append(client)
        return client

    db.another = recorded  # type: ignore[method-assign]
    try:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            settings = Settings(
                data_dir=tmp_path, metrics_host="127.0.0.1", metrics_port=busy.getsockname()[1]
            )

            async def build() -> None:  # (aiokafka's consumer is made in a running loop)
                build_worker(settings, "127.0.0.1:9", db)

            with pytest.raises(MetricsUnavailable, match="cannot serve /metrics"):
                asyncio.run(build())
        assert opened and all(client._closed for client in opened)
    finally:
        db.close()
