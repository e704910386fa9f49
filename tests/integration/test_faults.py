"""Faults on real parts: worker processes killed with SIGKILL at chosen and random points,
a second worker joining and the first leaving mid-stream, ClickHouse unreachable for a
while, and a row ClickHouse refuses. Whatever happens, the result must be what one
uninterrupted worker stores: every event once, every bad message dead-lettered once (in
ClickHouse and the DLQ topic), view deltas adding up, counts equal to a recount, and the
same spikes.

The workers are `workpulse worker` subprocesses (tests/support/fault_worker.py) sharing
one ClickHouse: chDB behind ClickHouse's HTTP interface (tests/support/chdb_http.py),
fresh for this module, so its spikes are this module's.
"""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from tests.support.pipeline_checks import (
    Expected,
    WorkerProcess,
    assert_dlq_complete,
    assert_exact,
    dlq_records,
    dlq_sizes,
    expected_spikes,
    produce_labelled,
    spike_rows,
    start_worker,
    stored,
    stored_spikes,
    unhandled_reports,
    wait_for_spikes,
    wait_until,
    worker_env,
)

from workpulse.clickhouse import Database, apply_schema, connect
from workpulse.dev.broker import EmbeddedBroker, free_port
from workpulse.dev.chdb_http import ChdbHttpServer
from workpulse.dev.generator import Workload, WorkloadConfig
from workpulse.kafka.admin import create_topics, topic_config
from workpulse.processing.ingest import DEAD_LETTER_HEADROOM_BYTES

pytestmark = pytest.mark.integration

N = 10_000  # ~55 simulated minutes: the wave (and its spike) is in it


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbHttpServer]:
    server = ChdbHttpServer(tmp_path_factory.mktemp("faults-ch"), user="wp", password="pw")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def db(clickhouse: ChdbHttpServer, tmp_path: Path) -> Iterator[Database]:
    database = connect(clickhouse.url_with_credentials(), tmp_path)
    apply_schema(database)
    for table in ("video_events", "dead_letters", "topic_spikes", "topic_counts_1m",
                  "topic_counts_1h", "topic_counts_1d", "topic_author_first_seen"):  # fmt: skip
        database.command(f"TRUNCATE TABLE workpulse.{table}")
    try:
        yield database
    finally:
        database.close()


def fault_env(broker: EmbeddedBroker, clickhouse: ChdbHttpServer, topic: str, tmp_path: Path,
              **extra: str) -> dict[str, str]:  # fmt: skip
    """A worker's environment for `topic` in a fresh consumer group on this module's
    ClickHouse."""
    return worker_env(broker.bootstrap, clickhouse.url_with_credentials(), topic,
                      f"faults-{uuid.uuid4().hex[:8]}", tmp_path / "data", **extra)  # fmt: skip


def stream(broker: EmbeddedBroker, seed: int) -> tuple[str, Expected]:
    topic = f"faults-{uuid.uuid4().hex[:8]}"
    create_topics(broker.bootstrap, {topic: 4})
    config = WorkloadConfig(seed=seed, bad_fraction=0.03, duplicate_fraction=0.03)
    return topic, produce_labelled(
        broker.bootstrap, topic, list(Workload(config).labelled_messages(N))
    )


def finish(
    db: Database, env: dict[str, str], tmp_path: Path, topic: str, expected: Expected
) -> None:
    """Run a worker to the end; then everything must be exact."""
    worker = start_worker(env, tmp_path / "logs")
    try:
        wait_until(
            lambda: stored(db, topic) == (expected.valid, expected.bad),
            180,
            "every event and dead letter stored",
        )
        spikes = expected_spikes(db)
        assert spikes, "the wave should make at least one spike"
        wait_for_spikes(db, spikes, worker)
        bootstrap, app_id = env["WORKPULSE_KAFKA_BOOTSTRAP"], env["WORKPULSE_APP_ID"]
        wait_until(
            lambda: not unhandled_reports(bootstrap, app_id),
            60,
            "every watermark report handled (the counts agent's commits at the end)",
        )
        assert worker.alive(), worker.tail()
    finally:
        code = worker.terminate()
    assert code == 0, worker.tail()
    assert_exact(db, topic, expected)
    assert_dlq_complete(db, env["WORKPULSE_KAFKA_BOOTSTRAP"], f"{topic}-dlq", topic)
    assert spike_rows(db) == len(stored_spikes(db)), "a spike was inserted twice"


def crash(env: dict[str, str], tmp_path: Path, point: str) -> None:
    worker = start_worker(env, tmp_path / "logs", crash_at=point)
    code = worker.wait_dead(180)
    assert code == -9, f"{point}: exit {code}\n{worker.tail()}"


def test_kill_9_at_every_point_loses_and_doubles_nothing(
    broker: EmbeddedBroker, clickhouse: ChdbHttpServer, db: Database, tmp_path: Path
) -> None:
    """SIGKILL between the ClickHouse write and the Kafka sends, between the dead letters
    and Kafka, before a commit, and at a random point; then a clean run to the end."""
    topic, expected = stream(broker, seed=21)
    env = fault_env(broker, clickhouse, topic, tmp_path)
    rng = random.Random(20261202)
    random_point = f"{rng.choice(['batch', 'video_rows', 'commit'])}:{rng.randint(2, 4)}"
    # early in the stream (batches of 500 of 10,000 messages)...
    for point in ["video_rows:3", "dead_letters:2", "kafka:4", random_point]:
        crash(env, tmp_path, point)
    rows, _ = stored(db, topic)
    assert 0 < rows < expected.valid  # the crashes happened mid-stream
    crash(env, tmp_path, "spike:1")  # ...then right after the wave's spike is written
    # The last worker restores the windows table, seeks to the watermark reports the
    # killed one left unacknowledged, and must handle every one of them: with Faust's seek
    # widened and the counts agent slowed, what was fetched between the seek and the end
    # of the recovery was dropped (before the seek fence), and the wave's later spikes
    # were lost.
    slow = {"WORKPULSE_TEST_SEEK_DELAY_S": "0.5", "WORKPULSE_TEST_COUNTS_DELAY_S": "0.1"}
    finish(db, {**env, **slow}, tmp_path, topic, expected)


@pytest.mark.parametrize("point", ["video_rows:1", "dead_letters:1"])
def test_a_dead_letter_decided_while_processing_survives_a_kill_9(
    broker: EmbeddedBroker, clickhouse: ChdbHttpServer, db: Database, tmp_path: Path, point: str
) -> None:
    """A second publish of a video decodes as an event and is dead-lettered only when its
    batch is processed. Killed after the batch's dead letters were stored (before its
    rows), or after its rows (before Kafka): its dead letter must be stored once and
    sent. With the rows written first, the replay took it for a stored row, below the
    later rows' offsets, and its dead letter was never written, or never sent
    (fault-finding run, 2026-12-04)."""
    topic = f"faults-{uuid.uuid4().hex[:8]}"
    create_topics(broker.bootstrap, {topic: 1})
    events = list(Workload(WorkloadConfig(seed=26)).events(40))
    first = next(e for e in events if e["kind"] == "publish")
    again = {**first, "event_id": first["event_id"] + "-again", "caption": "posted twice"}
    labelled = [(e["video_id"].encode(), orjson.dumps(e), "valid") for e in events]
    labelled.insert(2, (again["video_id"].encode(), orjson.dumps(again), "bad"))
    labelled.insert(5, (b"k", b"not json", "bad"))
    expected = produce_labelled(broker.bootstrap, topic, labelled)
    env = fault_env(broker, clickhouse, topic, tmp_path)
    crash(env, tmp_path, point)
    worker = start_worker(env, tmp_path / "logs")
    try:
        wait_until(  # read again from the start (nothing was committed), sent to Kafka
            lambda: _processed(worker.tail()) == len(labelled), 120, "every message"
        )
    finally:
        assert worker.terminate() == 0, worker.tail()
    assert stored(db, topic) == (expected.valid, expected.bad)
    reasons = db.query(
        "SELECT src_offset, reason FROM workpulse.dead_letters WHERE src_topic = {t:String} "
        "ORDER BY src_offset",
        {"t": topic},
    ).rows
    assert [tuple(r) for r in reasons] == [(2, "video_already_published"), (5, "not_json")]
    assert_dlq_complete(db, broker.bootstrap, f"{topic}-dlq", topic)


def test_the_ingest_does_not_wait_for_the_counts_agent_s_recovery(
    broker: EmbeddedBroker, clickhouse: ChdbHttpServer, db: Database, tmp_path: Path
) -> None:
    """Faust's start returns once the counts agent has recovered its table (a fixed 1 s,
    its group join and seek: ~3.5 s here, as long as reading its changelog takes on a
    big one). The ingest needs none of it and starts first: with the counts agent's
    start held (Faust's tables held ten minutes), every event is stored while the agent
    has handled no report. Before, the ingest started after the recovery: no row. A
    SIGTERM then stops it cleanly (it went unheard until the start was done)."""
    topic, expected = stream(broker, seed=27)
    env = fault_env(broker, clickhouse, topic, tmp_path, WORKPULSE_TEST_TABLES_DELAY_S="600")
    worker = start_worker(env, tmp_path / "logs")
    try:
        wait_until(lambda: stored(db, topic) == (expected.valid, expected.bad), 120,
                   "every event stored while the counts agent starts")  # fmt: skip
        reports = dict(
            (labels["side"], value)
            for labels, value in worker.scrape().get("workpulse_watermark_reports_total", [])
        )
        assert reports.get("sent", 0) > 0 and reports.get("handled", 0) == 0, reports
        assert worker.terminate(timeout_s=45) == 0, worker.tail()
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.terminate(timeout_s=5)


def test_a_stop_while_the_broker_cannot_be_reached_ends_the_worker_at_once(
    clickhouse: ChdbHttpServer, db: Database, tmp_path: Path
) -> None:
    """A worker that cannot reach its broker tries for 30 s to create its topics. A
    SIGTERM meanwhile stopped it at once, and then the process sat silent until the
    attempt gave up (the interpreter joined the thread it ran in); it exits now."""
    env = worker_env(f"127.0.0.1:{free_port()}", clickhouse.url_with_credentials(), "absent",
                     f"faults-{uuid.uuid4().hex[:8]}", tmp_path / "data")  # fmt: skip
    worker = start_worker(env, tmp_path / "logs")
    try:
        # one line says so after the first try (kafka-python logged four per retry)
        wait_until(lambda: "does not answer yet" in worker.tail(), 60, "the worker tries")
        assert worker.terminate(timeout_s=15) == 0, worker.tail()
        assert "kafka.net" not in worker.tail() and "ECONNREFUSED" not in worker.tail()
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.terminate(timeout_s=5)


def test_a_message_too_large_for_the_dead_letter_topic_is_cut_and_the_worker_runs_on(
    broker: EmbeddedBroker, clickhouse: ChdbHttpServer, db: Database, tmp_path: Path
) -> None:
    """5 MB messages on the input topic (the broker took them) are `oversized`. Their dead
    letters were the whole messages: the worker's producer refused them (over its 4 MB
    request limit), the worker stopped, and stopped again on the same message at every
    restart: the pipeline stalled. A dead letter now keeps the first max_message_bytes
    of such a message (header `truncated_from`: its size), in ClickHouse and in the
    dead-letter topic, and everything else is stored. The same for a 5 MB key."""
    from kafka import KafkaProducer

    topic = f"faults-{uuid.uuid4().hex[:8]}"
    create_topics(broker.bootstrap, {topic: 2})
    labelled = list(Workload(WorkloadConfig(seed=28, bad_fraction=0.03)).labelled_messages(600))
    big = 5_000_000
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all",
                             max_request_size=2 * big)  # fmt: skip
    try:
        for i, (key, value, _) in enumerate(labelled):
            producer.send(topic, key=key, value=value)
            if i % 200 == 0:
                producer.send(topic, key=b"huge", value=b"{" + b" " * big + b"}")
                producer.send(topic, key=b"k" * big, value=b"not json")  # a huge key
        producer.flush(timeout=60)
    finally:
        producer.close()
    expected = Expected.of(label for _, _, label in labelled)
    env = fault_env(broker, clickhouse, topic, tmp_path)
    limit = 256 * 1024  # max_message_bytes' default
    worker = start_worker(env, tmp_path / "logs")
    try:
        wait_until(lambda: stored(db, topic) == (expected.valid, expected.bad + 6), 120,
                   "every event and dead letter stored")  # fmt: skip
        assert worker.alive(), worker.tail()
    finally:
        code = worker.terminate()
    assert code == 0, worker.tail()
    assert_exact(db, topic, Expected(expected.valid, expected.bad + 6, expected.duplicates))
    cut = db.query(
        "SELECT reason, length(payload) FROM workpulse.dead_letters "
        "WHERE src_topic = {t:String} AND key = 'huge'",
        {"t": topic},
    ).rows
    assert sorted(cut) == [("oversized", limit)] * 3
    keys = db.query(
        "SELECT reason, length(key), payload = 'not json' FROM workpulse.dead_letters "
        "WHERE src_topic = {t:String} AND startsWith(key, 'kkk')",
        {"t": topic},
    ).rows
    assert keys == [("not_json", limit, True)] * 3
    assert_dlq_complete(db, broker.bootstrap, f"{topic}-dlq", topic)
    sizes = dlq_sizes(broker.bootstrap, f"{topic}-dlq")
    assert sorted(v for v in sizes if v[1] is not None) == [(limit, str(big + 2).encode())] * 3
    cut_keys = [
        (len(r.key), dict(r.headers).get("key_truncated_from"))
        for r in dlq_records(broker.bootstrap, f"{topic}-dlq")
        if (r.key or b"").startswith(b"kkk")
    ]
    assert cut_keys == [(limit, str(big).encode())] * 3
    # the worker made the dead-letter topic to take them (Kafka's default, ~1 MB, here)
    assert topic_config(broker.bootstrap, f"{topic}-dlq", "max.message.bytes") == "1048588"


def test_dead_letters_are_cut_to_fit_a_dead_letter_topic_made_before(
    broker: EmbeddedBroker, clickhouse: ChdbHttpServer, db: Database, tmp_path: Path
) -> None:
    """A dead-letter topic made before the worker (by hand, 200,000 bytes a message) takes
    less than a dead letter of max_message_bytes (256 KiB). A 230 kB message that is not
    JSON was sent to it whole, over the topic's limit: a Kafka broker refuses it, and the
    worker stopped on it at every restart. Its dead letter is cut to fit the topic (header
    `truncated_from`) and the worker says so at start; ClickHouse keeps it whole."""
    from kafka import KafkaProducer

    topic = f"faults-{uuid.uuid4().hex[:8]}"
    dlq, topic_max, big = f"{topic}-dlq", 200_000, 230_000
    create_topics(broker.bootstrap, {topic: 2, dlq: 2},
                  configs={dlq: {"max.message.bytes": str(topic_max)}})  # fmt: skip
    labelled = list(Workload(WorkloadConfig(seed=29, bad_fraction=0.03)).labelled_messages(400))
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    try:
        for i, (key, value, _) in enumerate(labelled):
            producer.send(topic, key=key, value=value)
            if i % 200 == 0:
                producer.send(topic, key=b"big", value=b"x" * big)  # not JSON, not oversized
        producer.flush(timeout=60)
    finally:
        producer.close()
    expected = Expected.of(label for _, _, label in labelled)
    worker = start_worker(fault_env(broker, clickhouse, topic, tmp_path), tmp_path / "logs")
    try:
        wait_until(lambda: stored(db, topic) == (expected.valid, expected.bad + 2), 120,
                   "every event and dead letter stored")  # fmt: skip
    finally:
        code = worker.terminate()
    assert code == 0, worker.tail()
    assert_exact(db, topic, Expected(expected.valid, expected.bad + 2, expected.duplicates))
    assert_dlq_complete(db, broker.bootstrap, dlq, topic)
    records = dlq_records(broker.bootstrap, dlq)
    assert all(
        len(r.value or b"") + len(r.key or b"") + sum(len(k) + len(v) for k, v in r.headers)
        <= topic_max
        for r in records
    )
    cut = (topic_max - DEAD_LETTER_HEADROOM_BYTES) // 2
    assert sorted((len(r.value), dict(r.headers).get("truncated_from")) for r in records
                  if r.key == b"big") == [(cut, str(big).encode())] * 2  # fmt: skip
    whole = db.query(
        "SELECT length(payload) FROM workpulse.dead_letters "
        "WHERE src_topic = {t:String} AND key = 'big'",
        {"t": topic},
    ).rows
    assert whole == [(big,)] * 2
    assert "set its max.message.bytes to 1048588" in worker.tail(20_000), worker.tail()


def test_a_report_the_consumer_loses_stops_the_worker_and_is_replayed(
    broker: EmbeddedBroker, clickhouse: ChdbHttpServer, db: Database, tmp_path: Path
) -> None:
    """A watermark report the stream framework loses (test support: read, never
    delivered) held the counts group's commits back and left its windows open, with the
    worker running on. The report check stops the worker (exit 1, one line: without it,
    this test times out); the next worker replays the report and everything is exact."""
    topic, expected = stream(broker, seed=26)
    env = fault_env(broker, clickhouse, topic, tmp_path)
    losing = start_worker({**env, "WORKPULSE_TEST_SKIP_REPORTS": "1"}, tmp_path / "logs")
    try:
        code: int | None = losing.wait_dead(timeout_s=120)
    except subprocess.TimeoutExpired:
        code = None  # ran on with the report lost
    finally:
        losing.terminate(timeout_s=10)
    last = losing.tail().strip().splitlines()[-1]
    assert code == 1 and "skipped by the consumer" in last, f"exit {code}\n{losing.tail()}"
    finish(db, env, tmp_path, topic, expected)


def test_a_worker_joins_and_another_leaves_mid_stream(
    broker: EmbeddedBroker, clickhouse: ChdbHttpServer, db: Database, tmp_path: Path
) -> None:
    topic, expected = stream(broker, seed=22)
    env = fault_env(broker, clickhouse, topic, tmp_path, WORKPULSE_BATCH_SIZE="200")
    first = start_worker(env, tmp_path / "logs")
    second = None
    try:
        wait_until(
            lambda: stored(db, topic)[0] > expected.valid // 5, 120, "the first worker's progress"
        )
        second = start_worker(
            {**env, "WORKPULSE_DATA_DIR": str(tmp_path / "data2")}, tmp_path / "logs"
        )
        wait_until(
            lambda: stored(db, topic)[0] > expected.valid // 2, 120, "progress with two workers"
        )
        assert first.terminate() == 0, first.tail()  # leaves mid-stream
        wait_until(
            lambda: stored(db, topic) == (expected.valid, expected.bad), 180, "the second worker"
        )
        spikes = expected_spikes(db)
        wait_for_spikes(db, spikes, second)
    finally:
        first.terminate()
        if second is not None:
            assert second.terminate() == 0, second.tail()
    assert_exact(db, topic, expected)
    assert_dlq_complete(db, broker.bootstrap, f"{topic}-dlq", topic)
    assert spike_rows(db) == len(stored_spikes(db))


def test_clickhouse_outage_holds_offsets_and_loses_nothing(
    broker: EmbeddedBroker, clickhouse: ChdbHttpServer, db: Database, tmp_path: Path
) -> None:
    topic, expected = stream(broker, seed=23)
    env = fault_env(broker, clickhouse, topic, tmp_path)
    worker = start_worker(env, tmp_path / "logs")
    try:
        wait_until(lambda: stored(db, topic)[0] > 500, 120, "some progress")
        clickhouse.stop()  # unreachable while the worker is mid-stream
        wait_until(lambda: "retrying" in worker.tail(), 60, "the worker to notice the outage")
        assert worker.alive()
        clickhouse.start()  # same data directory, same port
        wait_until(
            lambda: stored(db, topic) == (expected.valid, expected.bad), 180, "everything after"
        )
    finally:
        code = worker.terminate()
    assert code == 0, worker.tail()
    assert_exact(db, topic, expected)


def test_a_failing_counts_agent_stops_the_worker_with_one_line(
    broker: EmbeddedBroker, clickhouse: ChdbHttpServer, db: Database, tmp_path: Path
) -> None:
    """Faust logged the crash of an agent and left it dead: the worker ran on with its
    windows stalled behind the unacknowledged report, and hung at SIGTERM waiting for
    it. Now the worker stops by itself, exit 1, with one error line (a supervisor
    restarts it; the report is replayed) without waiting for the crashed agent's
    unacknowledged report, which never comes (it waited 30 s, then left the Faust app
    behind: a supervisor's restart came that much later)."""
    topic, _ = stream(broker, seed=25)
    env = fault_env(broker, clickhouse, topic, tmp_path)
    worker = start_worker(env, tmp_path / "logs", crash_at="counts_error:3")
    try:
        code = worker.wait_dead(timeout_s=120)
    finally:
        worker.terminate(timeout_s=10)
    assert code == 1, worker.tail()
    last = worker.tail().strip().splitlines()[-1]
    assert last == (
        "workpulse: error: the counts agent failed: OverflowError: math range error "
        "(injected) (see the log) (WORKPULSE_DEBUG=1 shows the traceback)"
    ), worker.tail()
    log = worker.log.read_text(errors="replace")
    assert "wait_empty" not in log and "did not stop" not in log, log[-3000:]


def test_sigterm_stops_a_worker_stuck_in_an_outage(
    broker: EmbeddedBroker, clickhouse: ChdbHttpServer, db: Database, tmp_path: Path
) -> None:
    topic, _ = stream(broker, seed=24)
    env = fault_env(broker, clickhouse, topic, tmp_path)
    worker = start_worker(env, tmp_path / "logs")
    try:
        wait_until(lambda: stored(db, topic)[0] > 0, 120, "some progress")
        clickhouse.stop()
        wait_until(lambda: "retrying" in worker.tail(), 60, "the worker to notice the outage")
        assert worker.terminate(timeout_s=45) == 0, worker.tail()
    finally:
        worker.terminate()
        if clickhouse.port is not None and not _up(clickhouse):
            clickhouse.start()


def test_a_second_sigterm_exits_a_worker_waiting_on_a_hung_clickhouse(
    broker: EmbeddedBroker, clickhouse: ChdbHttpServer, db: Database, tmp_path: Path
) -> None:
    """A ClickHouse that accepts connections but never answers holds a clean stop for the
    client's send_receive_timeout (300 s). The worker says so after a few seconds, and a
    second SIGTERM ends it at once (it dies of the signal); a worker started afterwards
    stores everything exactly once."""
    topic = f"faults-{uuid.uuid4().hex[:8]}"
    create_topics(broker.bootstrap, {topic: 4})
    config = WorkloadConfig(seed=26, bad_fraction=0.03, duplicate_fraction=0.03)
    labelled = list(Workload(config).labelled_messages(N))
    expected = Expected.of(label for _, _, label in labelled)
    produce_labelled(broker.bootstrap, topic, labelled[: N // 2])
    env = fault_env(broker, clickhouse, topic, tmp_path)
    worker = start_worker(env, tmp_path / "logs")
    try:
        wait_until(lambda: stored(db, topic)[0] > 0, 120, "some progress")
        clickhouse.pause()
        # The rest arrives now, so that the worker has a write to make whether or not it
        # had finished the first half; the stop is asked for once that write waits.
        produce_labelled(broker.bootstrap, topic, labelled[N // 2 :])
        try:
            wait_until(lambda: _writing(worker), 60, "a write waiting for ClickHouse")
            worker.proc.send_signal(signal.SIGTERM)
            wait_until(lambda: "still stopping" in worker.tail(), 60, "the stop hint")
            assert worker.alive(), worker.tail()
            worker.proc.send_signal(signal.SIGTERM)
            code = worker.proc.wait(timeout=30)
        finally:
            clickhouse.resume()
    finally:
        worker.terminate()
    assert code == -signal.SIGTERM, worker.tail()
    assert "second SIGTERM: exiting now" in worker.tail().strip().splitlines()[-1]
    finish(db, env, tmp_path, topic, expected)


def _writing(worker: WorkerProcess) -> bool:
    """Whether the worker has rows in a write to ClickHouse that has not returned."""
    samples = worker.scrape(["workpulse_sink_buffered_rows"])
    return any(value > 0 for _, value in samples.get("workpulse_sink_buffered_rows", []))


def _up(server: ChdbHttpServer) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(server.url + "/ping", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _processed(worker_log: str) -> int:
    """Messages the worker has processed, from its /metrics (the URL is in its log)."""
    import re
    import urllib.request

    match = re.search(r"metrics on (http://\S+)", worker_log)
    if not match:
        return 0
    try:
        with urllib.request.urlopen(match.group(1), timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return 0
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("workpulse_events_total{")
        )
    )


def test_a_row_clickhouse_refuses_is_dead_lettered_and_the_rest_stored(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """A CHECK constraint makes ClickHouse refuse one valid event: the worker finds it
    (bisecting against the Null twin), dead-letters it with ClickHouse's message and
    stores the rest of its batch; deltas stay exact without it.

    The worker uses embedded chDB here (the HTTP test server's insert path does not
    enforce constraints); the test reads the result through the HTTP server afterwards."""
    chdb_dir = tmp_path / "data" / "chdb"
    server = ChdbHttpServer(chdb_dir, user="wp", password="pw")
    server.start()
    try:
        db = connect(server.url_with_credentials(), tmp_path)
        apply_schema(db)
        db.command(
            "ALTER TABLE workpulse.video_events ADD CONSTRAINT no_poison "
            "CHECK NOT positionCaseInsensitive(caption, 'POISON-PILL')"
        )
        db.command("DROP TABLE workpulse.video_events_probe")
        apply_schema(db)  # the twin again, with the constraint
        db.close()
    finally:
        server.stop()

    topic = f"faults-{uuid.uuid4().hex[:8]}"
    create_topics(broker.bootstrap, {topic: 2})
    events = list(Workload(WorkloadConfig(seed=25)).events(800))
    publish = next(i for i, e in enumerate(events) if e["kind"] == "publish")
    events[publish] = {**events[publish], "caption": "this one is a POISON-PILL"}
    poisoned = events[publish]["event_id"]
    produce_labelled(
        broker.bootstrap,
        topic,
        [(e["video_id"].encode(), orjson.dumps(e), "valid") for e in events],
    )
    env = worker_env(broker.bootstrap, "", topic, f"faults-{uuid.uuid4().hex[:8]}",
                     tmp_path / "data")  # fmt: skip
    del env["WORKPULSE_CLICKHOUSE_URL"]  # embedded chDB under the data directory
    worker = start_worker(env, tmp_path / "logs")
    try:
        wait_until(lambda: _processed(worker.tail()) == len(events), 120, "every message")
    finally:
        assert worker.terminate() == 0, worker.tail()
    assert "refused 1 row(s)" in worker.tail()

    server.start()
    db = connect(server.url_with_credentials(), tmp_path)
    try:
        reason, detail, payload = db.query(
            "SELECT reason, detail, payload FROM workpulse.dead_letters "
            "WHERE src_topic = {t:String}",
            {"t": topic},
        ).rows[0]
        assert reason == "clickhouse_refused" and "no_poison" in detail
        assert orjson.loads(payload)["event_id"] == poisoned
        # the poisoned video's stats rows count for no topic; no delta of it is lost
        assert_exact(db, topic, Expected(valid=len(events) - 1, bad=1, duplicates=0))
    finally:
        db.close()
        server.stop()
