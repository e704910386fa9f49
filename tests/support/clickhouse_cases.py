"""Backend-independent contract tests for workpulse.clickhouse.

Each backend's test module subclasses `ClickHouseContract` and provides a `db`
fixture yielding a Database with the schema applied and the tables empty.
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
import time
import uuid
import weakref
from typing import Any

import pytest

from workpulse.clickhouse import Database, DatabaseError, apply_schema
from workpulse.model.rows import DEAD_LETTERS, TOPIC_SPIKES, VIDEO_EVENTS, SpikeRow
from workpulse.worker.offsets import durable_offsets
from workpulse.worker.video_states import load_video_states

UTC = dt.UTC
T0 = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)

# The row models are the one copy of the worker tables' columns.
VIDEO_COLUMNS = list(VIDEO_EVENTS.columns)
DEAD_COLUMNS = list(DEAD_LETTERS.columns)
SPIKE_COLUMNS = list(TOPIC_SPIKES.columns)
ALL_TABLES = [
    "video_events", "dead_letters", "topic_spikes", "topic_counts_1m", "topic_counts_1h",
    "topic_counts_1d", "topic_author_first_seen",
]  # fmt: skip
COUNT_TABLES = ["topic_counts_1m", "topic_counts_1h", "topic_counts_1d"]


def token() -> str:
    return "test:" + uuid.uuid4().hex


def event(
    i: int,
    *,
    kind: str = "publish",
    video: str | None = None,
    seconds: float = 0.0,
    author: str = "a1",
    topics: tuple[str, ...] = ("salary",),
    lang: str = "en",
    country: str = "US",
    counters: tuple[int, int, int, int] = (0, 0, 0, 0),
    deltas: tuple[int, int, int, int] | None = None,
    partition: int = 0,
    src_topic: str = "video-events",
) -> list[Any]:
    deltas = counters if deltas is None else deltas
    return [
        f"ev-{i}", kind, video or f"vid-{i}", T0 + dt.timedelta(seconds=seconds), author,
        1000 + i, lang, country, f"caption {i} #quitmyjob ✨", ["quitmyjob", "work"],
        list(topics), {t: ["quit", "job"] for t in topics}, *counters, *deltas, "tax-test-1",
        T0 + dt.timedelta(seconds=seconds + 1), src_topic, partition, i,
    ]  # fmt: skip


def sample_batch() -> list[list[Any]]:
    """Publishes and stats over 3 minutes, 2 hours, 2 languages, 3 topics."""
    rows = [
        event(1, video="v1", seconds=5, author="alice", topics=("salary", "burnout")),
        event(2, video="v2", seconds=30, author="bob", topics=("salary",), lang="fr", country="FR"),
        event(3, kind="stats", video="v1", seconds=65, author="alice",
              topics=("salary", "burnout"), counters=(100, 10, 2, 1)),
        event(4, kind="stats", video="v1", seconds=70, author="alice",
              topics=("salary", "burnout"), counters=(250, 12, 5, 1), deltas=(150, 2, 3, 0)),
        event(5, video="v3", seconds=3700, author="alice", topics=("layoffs",), partition=1),
        event(6, kind="stats", video="v2", seconds=3720, author="bob", topics=("salary",),
              lang="fr", country="FR", counters=(40, 4, 0, 0), partition=1),
        event(7, video="v4", seconds=3725, author="carol", topics=("salary",), partition=1),
    ]  # fmt: skip
    return rows


def snapshot(db: Database) -> dict[str, Any]:
    """Everything a retry could change: row counts of every table and all sums."""
    snap: dict[str, Any] = {}
    for table in ALL_TABLES:
        snap[table] = db.query(f"SELECT count() FROM workpulse.{table}").rows
    for table in COUNT_TABLES:
        snap[table + ":sums"] = db.query(
            f"SELECT topic, window_start, sum(videos), sum(views), sum(likes), sum(shares), "
            f"sum(comments), sum(events), uniqExactMerge(authors) FROM workpulse.{table} "
            "GROUP BY topic, window_start ORDER BY topic, window_start"
        ).rows
    snap["new_authors"] = db.query(
        "SELECT * FROM workpulse.topic_new_authors_1m ORDER BY topic, window_start"
    ).rows
    snap["uniq_events"] = db.query("SELECT uniqExact(event_id) FROM workpulse.video_events").rows
    return snap


def recount(db: Database, trunc: str) -> list[tuple[Any, ...]]:
    return db.query(
        f"SELECT topic, {trunc}(toDateTime(event_time, 'UTC')) AS w, "
        "toUInt64(countIf(kind = 'publish')), sum(d_views), sum(d_likes), sum(d_shares), "
        "sum(d_comments), toUInt64(count()), uniqExactIf(author_id, kind = 'publish') "
        "FROM workpulse.video_events ARRAY JOIN topics AS topic "
        "GROUP BY topic, w ORDER BY topic, w"
    ).rows


def rollup(db: Database, table: str) -> list[tuple[Any, ...]]:
    return db.query(
        "SELECT topic, window_start, sum(videos), sum(views), sum(likes), sum(shares), "
        f"sum(comments), sum(events), uniqExactMerge(authors) FROM workpulse.{table} "
        "GROUP BY topic, window_start ORDER BY topic, window_start"
    ).rows


class ClickHouseContract:
    def test_apply_schema_is_idempotent(self, db: Database) -> None:
        first = apply_schema(db)
        second = apply_schema(db)
        assert first == second
        assert first[0] == "001_database.sql"
        assert first == sorted(first)
        names = {
            r[0]
            for r in db.query("SELECT name FROM system.tables WHERE database = 'workpulse'").rows
        }
        assert set(ALL_TABLES) <= names
        assert {"topic_minutes", "topic_new_authors_1m", "topic_counts_1m_mv"} <= names

    def test_another_client_runs_alongside_the_first_and_closes_alone(self, db: Database) -> None:
        db.insert("video_events", VIDEO_COLUMNS, sample_batch(), dedup_token=token())
        other = db.another()
        counted: list[int] = []
        try:
            # The first client busy (as while the worker's sink inserts): the other's
            # reads do not wait for it.
            with db._lock:
                reader = threading.Thread(
                    target=lambda: counted.append(
                        other.query("SELECT count() FROM workpulse.video_events").scalar()
                    )
                )
                reader.start()
                reader.join(timeout=60)
                assert not reader.is_alive(), "the other client waited for the first"
        finally:
            other.close()
        assert counted == [len(sample_batch())]
        assert db.query("SELECT count() FROM workpulse.video_events").scalar() == counted[0]

    @pytest.mark.parametrize("long", [False, True], ids=["hostile", "long"])
    def test_video_states_of_any_ids(self, db: Database, long: bool) -> None:
        """Quotes, backslashes, control characters, placeholders and SQL in ids are data;
        long ids are read in several queries (`chunks`)."""
        hostile = ["x') OR 1=1 --", "back\\slash\\", "it's", "tab\tnew\nline\r", "nul\0",
                   "`tick`", "{ids}", "{v:String}", "%s %(x)s", "émoji 🚀 عربي", "\\'"]  # fmt: skip
        ids = [f"{i:04d}" + "v" * 252 for i in range(1200)] if long else hostile
        rows = [event(i, video=v, counters=(i + 1, 0, 0, 0)) for i, v in enumerate(ids)]
        # Videos not asked for: an id that escaped its literal would bring them in.
        rows += [event(10_000 + i, video=f"bystander-{i}") for i in range(3)]
        db.insert("video_events", VIDEO_COLUMNS, rows, dedup_token=token())
        asked = [*ids, "absent", "it''s", "x"]
        states = load_video_states(db, asked)
        assert sorted(states) == sorted(ids)
        assert [states[v].views for v in ids] == [i + 1 for i in range(len(ids))]
        assert all(states[v].published for v in ids)
        # the publish's event id, whatever came since (its re-send is a duplicate)
        assert [states[v].publish_id for v in ids] == [f"ev-{i}" for i in range(len(ids))]

    def test_counts_are_a_recount_of_video_events(self, db: Database) -> None:
        db.insert("video_events", VIDEO_COLUMNS, sample_batch(), dedup_token=token())
        assert rollup(db, "topic_counts_1m") == recount(db, "toStartOfMinute")
        minutes = db.query(
            "SELECT topic, window_start, videos, views, distinct_authors "
            "FROM workpulse.topic_minutes ORDER BY topic, window_start"
        ).rows
        by_key = {(t, w): (v, vw, a) for t, w, v, vw, a in minutes}
        assert by_key[("salary", T0)] == (2, 0, 2)
        assert by_key[("salary", T0 + dt.timedelta(minutes=1))] == (0, 250, 0)
        assert by_key[("burnout", T0 + dt.timedelta(minutes=1))] == (0, 250, 0)
        assert by_key[("layoffs", T0 + dt.timedelta(hours=1, minutes=1))] == (1, 0, 1)
        # plain sum() without FINAL, per topic and window, also exact per language
        fr = db.query(
            "SELECT sum(videos), sum(views) FROM workpulse.topic_counts_1m "
            "WHERE topic = 'salary' AND lang = 'fr'"
        ).rows
        assert fr == [(1, 40)]

    def test_retry_with_same_token_changes_nothing(self, db: Database) -> None:
        batch = sample_batch()
        tok = token()
        db.insert("video_events", VIDEO_COLUMNS, batch, dedup_token=tok)
        before = snapshot(db)
        db.insert("video_events", VIDEO_COLUMNS, batch, dedup_token=tok)
        db.insert("video_events", VIDEO_COLUMNS, batch, dedup_token=tok)
        assert snapshot(db) == before
        # a different token is a different batch: inserted, MVs follow
        db.insert("video_events", VIDEO_COLUMNS, batch, dedup_token=token())
        after = snapshot(db)
        assert after["video_events"] == [(2 * len(batch),)]
        assert after["uniq_events"] == before["uniq_events"]
        assert rollup(db, "topic_counts_1m") == recount(db, "toStartOfMinute")
        assert sum(r[2] for r in rollup(db, "topic_counts_1m")) == 2 * sum(
            r[2] for r in before["topic_counts_1m:sums"]
        )

    def test_an_insert_keeps_nothing_of_its_rows(self, db: Database) -> None:
        """Once an insert returns, the rows' values are freed with the rows (by reference
        counting): nothing waits for the garbage collector, whose pass over a batch's
        worth of them held the worker's event loop for ~0.2 s."""

        class Tags(list[str]):  # a list that can be watched with a weak reference
            pass

        rows = [event(i) for i in range(50)]
        watched = []
        for row in rows:
            tags = Tags(row[9])
            row[9] = tags
            watched.append(weakref.ref(tags))
        del tags
        gc.disable()
        try:
            db.insert("video_events", VIDEO_COLUMNS, rows, dedup_token=token())
            del rows, row
            alive = sum(ref() is not None for ref in watched)
        finally:
            gc.enable()
        assert alive == 0
        assert db.query("SELECT count() FROM workpulse.video_events").rows == [(50,)]

    def test_retry_dedup_for_worker_tables(self, db: Database) -> None:
        dead = [[T0, "invalid_json", "x", b"{", "video-events", 0, 5, "k"]]
        spikes = [spike_row()]
        tok_d, tok_s = token(), token()
        for _ in range(2):
            db.insert("dead_letters", DEAD_COLUMNS, dead, dedup_token=tok_d)
            db.insert("topic_spikes", SPIKE_COLUMNS, spikes, dedup_token=tok_s)
        assert db.query("SELECT count() FROM workpulse.dead_letters").rows == [(1,)]
        assert db.query("SELECT count() FROM workpulse.topic_spikes").rows == [(1,)]

    def test_dead_letter_payload_bytes_round_trip(self, db: Database) -> None:
        payload = b'\xff\xfe{"event_id": "\xc3\x28"}\x00\n'
        db.insert(
            "dead_letters",
            DEAD_COLUMNS,
            [[T0, "invalid_utf8", "byte 0", payload, "video-events", 3, 42, "vid-\xe9"]],
            dedup_token=token(),
        )
        hexed = db.query("SELECT hex(payload), length(payload) FROM workpulse.dead_letters").rows
        assert hexed == [(payload.hex().upper(), len(payload))]
        raw = db.query(  # type: ignore[call-arg]
            "SELECT payload, reason, src_partition, src_offset, key, received_at "
            "FROM workpulse.dead_letters",
            column_formats={"payload": "bytes"},
        ).rows
        assert raw == [(payload, "invalid_utf8", 3, 42, "vid-\xe9", T0)]

    def test_durable_offsets(self, db: Database) -> None:
        assert durable_offsets(db, "video_events", "video-events") == {}
        db.insert("video_events", VIDEO_COLUMNS, sample_batch(), dedup_token=token())
        other = event(99, partition=0, src_topic="other-topic")
        db.insert("video_events", VIDEO_COLUMNS, [other], dedup_token=token())
        assert durable_offsets(db, "video_events", "video-events") == {0: 4, 1: 7}
        assert durable_offsets(db, "workpulse.video_events", "other-topic") == {0: 99}
        db.insert(
            "dead_letters",
            DEAD_COLUMNS,
            [[T0, "r", "", b"x", "video-events", 2, 1234567890123, ""]],
            dedup_token=token(),
        )
        assert durable_offsets(db, "dead_letters", "video-events") == {2: 1234567890123}
        assert durable_offsets(db, "topic_spikes", "video-events") == {}

    def test_rollups_agree(self, db: Database) -> None:
        db.insert("video_events", VIDEO_COLUMNS, sample_batch(), dedup_token=token())
        db.insert(
            "video_events",
            VIDEO_COLUMNS,
            [event(50 + i, seconds=86400 + 61 * i, author=f"z{i % 3}") for i in range(40)],
            dedup_token=token(),
        )
        assert rollup(db, "topic_counts_1h") == recount(db, "toStartOfHour")
        assert rollup(db, "topic_counts_1d") == recount(db, "toStartOfDay")
        hourly_from_minutes = db.query(
            "SELECT topic, toStartOfHour(window_start) AS h, sum(videos), sum(views) "
            "FROM workpulse.topic_counts_1m GROUP BY topic, h ORDER BY topic, h"
        ).rows
        assert hourly_from_minutes == [r[:4] for r in rollup(db, "topic_counts_1h")]
        days = {(r[0], r[1]): r for r in rollup(db, "topic_counts_1d")}
        assert days[("salary", dt.datetime(2024, 5, 2, tzinfo=UTC))][2] == 40
        assert days[("salary", dt.datetime(2024, 5, 2, tzinfo=UTC))][8] == 3

    def test_new_authors(self, db: Database) -> None:
        rows = [
            event(1, seconds=5, author="alice", topics=("salary",)),
            event(2, seconds=10, author="bob", topics=("salary", "burnout")),
            event(3, seconds=70, author="alice", topics=("salary", "burnout")),  # new in burnout
            event(4, seconds=75, author="carol", topics=("salary",)),
            event(5, kind="stats", video="vid-1", seconds=80, author="dave", topics=("salary",)),
        ]
        db.insert("video_events", VIDEO_COLUMNS, rows[2:], dedup_token=token())
        db.insert("video_events", VIDEO_COLUMNS, rows[:2], dedup_token=token())  # late batch
        got = db.query(
            "SELECT topic, window_start, new_authors FROM workpulse.topic_new_authors_1m "
            "ORDER BY topic, window_start"
        ).rows
        m0, m1 = T0, T0 + dt.timedelta(minutes=1)
        assert got == [("burnout", m0, 1), ("burnout", m1, 1), ("salary", m0, 2), ("salary", m1, 1)]

    def test_topic_spikes_round_trip(self, db: Database) -> None:
        db.insert("topic_spikes", SPIKE_COLUMNS, [spike_row()], dedup_token=token())
        got = db.query(
            "SELECT topic, window_start, metric, observed, top_videos, languages, detected_at, "
            "lang, severity, windows, upper, top_video_gains, countries "
            "FROM workpulse.topic_spikes"
        ).rows
        assert got == [
            (
                "resignation",
                T0,
                "videos",
                42.0,
                ["v1", "v2"],
                {"en": 30, "fr": 12},
                T0 + dt.timedelta(seconds=61, milliseconds=250),
                "fr",
                "warning",
                2,
                19.0,
                [900, 450],
                {"FR": 30, "BE": 12},
            )
        ]
        # every column of the row model went in and comes back as written
        back = db.query(f"SELECT {', '.join(SPIKE_COLUMNS)} FROM workpulse.topic_spikes").rows
        assert list(back[0]) == spike_row()

    def test_errors_are_database_errors(self, db: Database) -> None:
        with pytest.raises(DatabaseError) as info:
            db.query("SELECT * FROM workpulse.no_such_table")
        assert "\n" not in str(info.value)
        assert "UNKNOWN_TABLE" in str(info.value)
        with pytest.raises(DatabaseError):
            db.insert("video_events", ["event_id", "no_such_column"], [["x", 1]], "t")
        with pytest.raises(DatabaseError):
            db.command("CREATE TABLE workpulse.broken (")
        db.insert("video_events", VIDEO_COLUMNS, [], dedup_token=token())  # no-op

    def test_query_parameters(self, db: Database) -> None:
        db.insert("video_events", VIDEO_COLUMNS, sample_batch(), dedup_token=token())
        res = db.query(
            "SELECT count() AS n FROM video_events WHERE has(topics, {t:String}) "
            "AND event_time >= {since:DateTime64(3, 'UTC')}",
            {"t": "salary", "since": T0 + dt.timedelta(minutes=1)},
        )
        assert res.column_names == ["n"]
        assert res.rows == [(4,)]

    def test_insert_50k_rows_throughput(self, db: Database, figures: list[str]) -> None:
        n = 50_000
        topics = ["salary", "burnout", "resignation", "layoffs", "remote_work"]
        rows = [
            event(
                10_000 + i,
                kind="publish" if i % 4 == 0 else "stats",
                video=f"v{i % 5000}",
                seconds=i * 0.037,
                author=f"a{i % 700}",
                topics=(topics[i % 5], topics[(i + 2) % 5]),
                lang=("en", "fr", "ar")[i % 3],
                counters=(i, i // 2, i // 3, i // 4),
                deltas=(5, 2, 1, 0),
                partition=i % 4,
            )
            for i in range(n)
        ]
        started = time.perf_counter()
        db.insert("video_events", VIDEO_COLUMNS, rows, dedup_token=token())
        elapsed = time.perf_counter() - started
        figures.append(
            f"{type(db.transport).__name__}: {n:,} video_events rows inserted in {elapsed:.2f} s "
            f"= {n / elapsed:,.0f} rows/s (with the materialized views)"
        )
        got = db.query("SELECT count(), uniqExact(event_id) FROM workpulse.video_events").rows
        assert got == [(n, n)]
        assert rollup(db, "topic_counts_1m") == recount(db, "toStartOfMinute")


def spike_row() -> list[Any]:
    return list(
        SpikeRow(
            topic="resignation", window_start=T0, metric="videos", observed=42.0, expected=7.5,
            score=6.1, p_value=1e-9, detected_at=T0 + dt.timedelta(seconds=61, milliseconds=250),
            top_videos=["v1", "v2"], top_hashtags=["quitmyjob"], languages={"en": 30, "fr": 12},
            taxonomy_version="tax-test-1", src_topic="video-events", src_partition=0,
            src_offset=77, lang="fr", severity="warning", windows=2, lower=0.0, upper=19.0,
            distinct_authors=31, new_authors=12, new_author_share=0.39, top_author_share=0.05,
            distinct_videos=42, top_video_share=0.2, top_video_gains=[900, 450],
            countries={"FR": 30, "BE": 12},
        )
    )  # fmt: skip


def clean(db: Database) -> None:
    apply_schema(db)
    for table in ALL_TABLES:
        db.command(f"TRUNCATE TABLE IF EXISTS workpulse.{table}")
