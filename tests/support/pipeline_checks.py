"""What "exactly once" means, checked from the outside: ClickHouse, the DLQ topic, spikes.

Used by the fault tests (crash, rebalance, outage, poison): whatever happened to the
workers, the stored result must be what one uninterrupted worker would have stored.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workpulse.clickhouse import Database
from workpulse.dev.bench.pipeline import WorkerProc
from workpulse.dev.summary import COUNTS_SQL, RECOUNT_SQL
from workpulse.processing.spikes import SpikeDetector, replay
from workpulse.processing.windows import WINDOW_MS
from workpulse.worker.minutes import read_observations

ROOT = Path(__file__).resolve().parents[2]
GRACE_MS = 120_000


@dataclass(frozen=True)
class Expected:
    valid: int
    bad: int
    duplicates: int

    @classmethod
    def of(cls, labels: Iterable[str]) -> Expected:
        kinds = Counter(label.split(":")[0] for label in labels)
        return cls(kinds["valid"], kinds["bad"], kinds["duplicate"])


def scalar(db: Database, sql: str, **params: Any) -> Any:
    return db.query(sql, params or None).rows[0][0]


def stored(db: Database, topic: str) -> tuple[int, int]:
    """(video_events rows, dead_letters rows) of `topic`."""
    return (
        int(scalar(db, "SELECT count() FROM workpulse.video_events WHERE src_topic = {t:String}",
                   t=topic)),
        int(scalar(db, "SELECT count() FROM workpulse.dead_letters WHERE src_topic = {t:String}",
                   t=topic)),
    )  # fmt: skip


def assert_exact(db: Database, topic: str, expected: Expected) -> None:
    """Every event stored once, every bad message dead-lettered once, view deltas adding
    up to the largest counters, per-minute counts equal to a recount."""
    t = {"t": topic}
    rows, events = db.query(
        "SELECT count(), uniqExact(event_id) FROM workpulse.video_events "
        "WHERE src_topic = {t:String}",
        t,
    ).rows[0]
    assert (rows, events) == (expected.valid, expected.valid)
    dead, sources, no_reason = db.query(
        "SELECT count(), uniqExact(src_partition, src_offset), countIf(reason = '') "
        "FROM workpulse.dead_letters WHERE src_topic = {t:String}",
        t,
    ).rows[0]
    assert (dead, sources, no_reason) == (expected.bad, expected.bad, 0)
    wrong = scalar(
        db,
        """SELECT count() FROM (
               SELECT video_id, sum(d_views) AS dv, max(views) AS v, sum(d_likes) AS dl,
                      max(likes) AS l, sum(d_shares) AS ds, max(shares) AS s
               FROM workpulse.video_events WHERE src_topic = {t:String} GROUP BY video_id)
           WHERE dv != v OR dl != l OR ds != s""",
        t=topic,
    )
    assert wrong == 0, f"{wrong} videos whose deltas do not add up to their counters"
    counts = {r[0]: (int(r[1]), int(r[2])) for r in db.query(COUNTS_SQL).rows}
    recount = {r[0]: (int(r[1]), int(r[2])) for r in db.query(RECOUNT_SQL).rows}
    assert counts == recount


def fetched_ends(
    consumer: Any, partitions: Sequence[Any], timeout_s: float = 10.0
) -> dict[Any, int]:
    """The partitions' end offsets as fetches report them (their high watermark).
    The embedded broker's ListOffsets (kafka-python's `end_offsets`) answers the last
    batch's first offset + 1: 1 for five messages sent in one batch; its fetches are
    right. Reads from the start without committing; `consumer` is left assigned."""
    consumer.assign(list(partitions))
    consumer.seek_to_beginning(*partitions)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        highs = {tp: consumer.highwater(tp) for tp in partitions}
        if None not in highs.values():
            return highs
        consumer.poll(timeout_ms=200, max_records=1, update_offsets=False)
    raise AssertionError(f"no fetch answered for {partitions} within {timeout_s:.0f}s")


def dlq_sources(bootstrap: str, topic: str, timeout_s: float = 20.0) -> Counter[str]:
    """`source` header → how many times it is in the DLQ topic."""
    return Counter(
        dict(r.headers or []).get("source", b"").decode()
        for r in dlq_records(bootstrap, topic, timeout_s)
    )


def dlq_sizes(
    bootstrap: str, topic: str, timeout_s: float = 20.0
) -> list[tuple[int, bytes | None]]:
    """Per message of the DLQ topic: its value's length and its `truncated_from` header."""
    return [
        (len(r.value or b""), dict(r.headers or []).get("truncated_from"))
        for r in dlq_records(bootstrap, topic, timeout_s)
    ]


def dlq_records(bootstrap: str, topic: str, timeout_s: float = 20.0) -> list[Any]:
    """Every message of the DLQ topic, up to its end."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=int(timeout_s * 1000),
    )
    seen: list[Any] = []
    try:
        end = None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500)
            for records in batch.values():
                seen += records
            if end is None:
                parts = consumer.assignment()
                highs = {tp: consumer.highwater(tp) for tp in parts}
                if parts and None not in highs.values():
                    end = highs
            if end is not None and all(consumer.position(tp) >= o for tp, o in end.items()):
                break
    finally:
        consumer.close()
    return seen


def assert_dlq_complete(db: Database, bootstrap: str, dlq_topic: str, src_topic: str) -> None:
    """Every dead letter is in the DLQ topic (re-sends allowed: readers de-duplicate by
    `source`), and nothing else is."""
    stored_sources = {
        f"{t}/{p}/{o}"
        for t, p, o in db.query(
            "SELECT src_topic, src_partition, src_offset FROM workpulse.dead_letters "
            "WHERE src_topic = {t:String}",
            {"t": src_topic},
        ).rows
    }
    sent = dlq_sources(bootstrap, dlq_topic)
    assert set(sent) == stored_sources


def expected_spikes(db: Database) -> list[tuple[str, int, str, str, float]]:
    """The alerts one uninterrupted worker raises on what ClickHouse holds: every window
    up to the newest event minus the grace period, in order, through the same detector
    (the `workpulse spikes` replay)."""
    newest = scalar(
        db, "SELECT toUnixTimestamp64Milli(max(event_time)) FROM workpulse.video_events"
    )
    until = (int(newest) - GRACE_MS - WINDOW_MS) // WINDOW_MS * WINDOW_MS
    first = scalar(db, "SELECT toUnixTimestamp64Milli(min(event_time)) FROM workpulse.video_events")
    minutes = read_observations(db, int(first) // WINDOW_MS * WINDOW_MS, until + WINDOW_MS)
    spikes = replay(SpikeDetector(), minutes, until_ms=until + WINDOW_MS)
    return sorted(
        (s.topic, s.window_start_ms, s.metric, s.lang, round(s.observed, 6)) for s in spikes
    )


def stored_spikes(db: Database) -> list[tuple[str, int, str, str, float]]:
    rows = db.query(
        "SELECT topic, toUnixTimestamp(window_start) * 1000, metric, lang, observed "
        "FROM workpulse.topic_spikes FINAL"
    ).rows
    return sorted((t, int(w), m, lang, round(float(o), 6)) for t, w, m, lang, o in rows)


def spike_rows(db: Database) -> int:
    """Rows in topic_spikes before any merge (a doubled insert would show here)."""
    return int(scalar(db, "SELECT count() FROM workpulse.topic_spikes"))


class WorkerProcess(WorkerProc):
    """A `workpulse worker` subprocess (optionally killed at a fault point)."""

    def wait_dead(self, timeout_s: float) -> int:
        return self.proc.wait(timeout=timeout_s)

    def progress(self) -> str:
        """Its watermark reports and consumer lag, from its /metrics (for a failure's
        message: whether its ingest reported, and its counts agent handled, anything)."""
        samples = self.scrape() if self.alive() else {}
        wanted = ("workpulse_watermark_reports_total", "workpulse_consumer_lag")
        found = [f"{name}{labels} {value:g}" for name in wanted
                 for labels, value in samples.get(name, [])]  # fmt: skip
        return "; ".join(found) or "(no metrics)"


def worker_env(
    bootstrap: str, clickhouse_url: str, topic: str, app_id: str, data_dir: Path, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKPULSE_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "WORKPULSE_KAFKA_BOOTSTRAP": bootstrap,
            "WORKPULSE_CLICKHOUSE_URL": clickhouse_url,
            "WORKPULSE_INPUT_TOPIC": topic,
            "WORKPULSE_DLQ_TOPIC": f"{topic}-dlq",
            "WORKPULSE_SPIKES_TOPIC": f"{topic}-spikes",
            "WORKPULSE_APP_ID": app_id,
            "WORKPULSE_KAFKA_SESSION_TIMEOUT_S": "2",
            "WORKPULSE_METRICS_PORT": "0",
            "WORKPULSE_DATA_DIR": str(data_dir),
            "WORKPULSE_BATCH_SIZE": "500",
            "WORKPULSE_BATCH_TIMEOUT_S": "0.2",
            "WORKPULSE_IDLE_PARTITION_S": "1",
            "WORKPULSE_SINK_RETRY_MAX_S": "1",
            "WORKPULSE_LOG_LEVEL": "WARNING",
        }
    )
    env.update(extra)
    return env


def start_worker(env: dict[str, str], log_dir: Path, crash_at: str | None = None) -> WorkerProcess:
    env = dict(env)
    if crash_at:
        env["WORKPULSE_TEST_CRASH_AT"] = crash_at
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"worker-{uuid.uuid4().hex[:6]}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fault_worker"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return WorkerProcess(proc, log)


def wait_until(condition: Any, timeout_s: float, what: str, poll_s: float = 0.2) -> None:
    """Poll `condition()` until it is true (a condition, never a fixed sleep)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(poll_s)


def unhandled_reports(bootstrap: str, app_id: str) -> dict[int, tuple[int, int]]:
    """The partitions of the watermark reports' topic whose counts agent (Faust's group
    `<app_id>-counts`) has not committed up to the end: {partition: (committed, end)}.
    Faust commits an offset only once every report before it was handled and
    acknowledged: one that was dropped unhandled holds that partition's commit back."""
    from kafka import KafkaConsumer, TopicPartition

    topic = f"{app_id}-watermarks"
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=f"{app_id}-counts", enable_auto_commit=False
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        assert partitions, f"no partitions found for {topic}"  # else nothing was checked
        ends = fetched_ends(consumer, partitions)
        behind = {}
        for tp in partitions:
            committed = consumer.committed(tp) or 0
            if committed < ends[tp]:
                behind[tp.partition] = (committed, ends[tp])
        return behind
    finally:
        consumer.close()


def wait_for_spikes(
    db: Database, spikes: list[tuple[str, int, str, str, float]], *workers: WorkerProcess
) -> None:
    """Wait until the stored spikes are `spikes`; on timeout, say what is stored and how the
    workers' logs end."""
    try:
        wait_until(lambda: stored_spikes(db) == spikes, 60, f"the spikes {spikes}")
    except AssertionError as exc:
        tails = "\n".join(f"{w.tail()}\n{w.progress()}" for w in workers)
        raise AssertionError(f"{exc}; stored: {stored_spikes(db)}\n{tails}") from None


def produce_labelled(
    bootstrap: str, topic: str, labelled: Sequence[tuple[bytes, bytes, str]]
) -> Expected:
    from tests.support.kafka_helpers import produce

    produce(bootstrap, topic, [(k, v) for k, v, _ in labelled])
    return Expected.of(label for _, _, label in labelled)
