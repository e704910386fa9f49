"""The copycat index (090_copycat.sql, workpulse.clickhouse.copycat) on chDB, on events
whose figures are known: adopters before and after a wave's first alert, a generic
hashtag the signature leaves out, a second alert of the same wave, authors who were not
new."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from workpulse.clickhouse import ClickHouse, apply_schema, connect
from workpulse.clickhouse.copycat import copycat_hours, wave_uptake
from workpulse.model.rows import TOPIC_SPIKES, VIDEO_EVENTS, SpikeRow, VideoEventRow

pytestmark = pytest.mark.integration

WAVE = dt.datetime(2026, 1, 2, 12, 0, tzinfo=dt.UTC)
H, M = dt.timedelta(hours=1), dt.timedelta(minutes=1)


class Events:
    def __init__(self) -> None:
        self.rows: list[VideoEventRow] = []

    def publish(self, at: dt.datetime, author: str, tags: list[str], topics: list[str]) -> None:
        n = len(self.rows)
        self.rows.append(
            VideoEventRow(
                event_id=f"e{n}", kind="publish", video_id=f"v{n}", event_time=at,
                author_id=author, author_followers=0, lang="en", country="US", caption="",
                hashtags=tags, topics=topics, matched={}, views=0, likes=0, shares=0,
                comments=0, d_views=0, d_likes=0, d_shares=0, d_comments=0,
                taxonomy_version="t", ingest_time=at, src_topic="s", src_partition=0,
                src_offset=n,
            )
        )  # fmt: skip


def alert(at: dt.datetime, hashtags: list[str], lang: str = "") -> SpikeRow:
    return SpikeRow(
        topic="resignation", window_start=at, metric="videos", observed=30, expected=3,
        score=9, p_value=1e-9, detected_at=at, top_videos=[], top_hashtags=hashtags,
        languages={}, taxonomy_version="t", src_topic="", src_partition=0, src_offset=0,
        lang=lang,
    )  # fmt: skip


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouse]:
    events = Events()
    # before the wave: 2 new authors adopt #QuitMyJob, 1 regular posts it, #fyp everywhere
    events.publish(WAVE - 30 * H, "regular", ["QuitMyJob"], ["resignation"])
    for i in range(2):
        events.publish(WAVE - (5 + i) * H, f"early{i}", ["QuitMyJob"], ["resignation"])
    events.publish(WAVE - 4 * H, "regular", ["quitmyjob"], ["resignation"])  # not new
    for i in range(40):
        events.publish(WAVE - 3 * H + i * M, f"x{i}", ["fyp"], [])
    # hour 0: 30 adopters (with #fyp too) and 3 new authors without the hashtags
    for i in range(30):
        events.publish(WAVE + i * M, f"new{i}", ["QuitMyJob", "fyp"], ["resignation"])
    for i in range(3):
        events.publish(WAVE + (10 + i) * M, f"other{i}", ["work"], ["resignation"])
    # hour 1: 5 adopters, whose later videos do not count again
    for i in range(5):
        events.publish(WAVE + 70 * M + i * M, f"late{i}", ["quitmyjob"], ["resignation"])
        events.publish(WAVE + 80 * M + i * M, f"late{i}", ["quitmyjob"], ["resignation"])
    spikes = [
        alert(WAVE, ["quitmyjob", "fyp"]),
        alert(WAVE + 20 * M, ["somethingelse"]),  # the same wave: no new signature
        alert(WAVE - 2 * H, ["quitmyjob"], lang="fr"),  # a language's alert starts nothing
    ]
    database = connect(None, tmp_path_factory.mktemp("copycat"))
    apply_schema(database)
    database.insert("video_events", VIDEO_EVENTS.columns, events.rows)
    database.insert("topic_spikes", TOPIC_SPIKES.columns, spikes)
    try:
        yield database
    finally:
        database.close()


def test_hourly_rows(db: ClickHouse) -> None:
    hours = copycat_hours(db)
    assert [(h.hours_after, h.new_authors, h.adopters) for h in hours] == [(0, 33, 30), (1, 5, 5)]
    first = hours[0]
    assert (first.topic, first.wave_start) == ("resignation", WAVE)
    assert first.signature == ("quitmyjob",), "#fyp is not specific to the topic"
    assert first.baseline_adopters_per_hour == pytest.approx(2 / 24)
    assert first.copycat_index == pytest.approx((30 + 1) / (2 / 24 + 1))
    assert first.adoption_share == pytest.approx(30 / 33)
    assert hours[1].window_start == WAVE + H
    assert copycat_hours(db, "salary") == []


def test_wave_uptake(db: ClickHouse) -> None:
    (wave,) = wave_uptake(db)
    assert (wave.topic, wave.hours, wave.new_authors, wave.adopters) == ("resignation", 2, 38, 35)
    assert wave.copycat_index == pytest.approx((35 / 2 + 1) / (2 / 24 + 1))
    assert wave.peak_copycat_index == pytest.approx((30 + 1) / (2 / 24 + 1))
    assert wave.to_dict()["wave_start"] == WAVE.isoformat()


def test_init_db_replaces_the_view_of_an_older_deployment(db: ClickHouse) -> None:
    """`CREATE VIEW IF NOT EXISTS` kept an older definition for good: a deployment never
    got a faster (or corrected) view."""
    db.command("DROP VIEW workpulse.topic_copycat")
    db.command("CREATE VIEW workpulse.topic_copycat AS SELECT 1 AS older")
    apply_schema(db)
    columns = db.query("SELECT * FROM workpulse.topic_copycat LIMIT 0").column_names
    assert list(columns) == [
        "topic", "wave_start", "signature", "hours_after", "window_start", "new_authors",
        "adopters", "baseline_adopters_per_hour", "adoption_share", "copycat_index",
    ]  # fmt: skip
    assert [(h.hours_after, h.adopters) for h in copycat_hours(db)] == [(0, 30), (1, 5)]
