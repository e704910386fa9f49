"""What closed windows hold, read from ClickHouse: the per-topic, per-minute counts
(`topic_counts_1m`, kept exactly by materialized views of the stored rows) and, for a
window that alerts, its context (languages, countries, top videos and hashtags)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from workpulse.clickhouse import Database
from workpulse.model.aggregates import TopicMinute


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def closed_windows(
    db: Database, topics: Sequence[str], after_ms: int, until_ms: int
) -> dict[str, list[tuple[int, TopicMinute]]]:
    """Per topic, the windows in (after_ms, until_ms] that hold data, oldest first."""
    if not topics or until_ms <= after_ms:
        return {}
    result = db.query(
        f"""
        SELECT topic, toUnixTimestamp(window_start) AS start_s,
               sum(videos), sum(views), sum(likes), sum(shares)
        FROM {db.qualify("topic_counts_1m")}
        WHERE topic IN {{topics:Array(String)}}
          AND window_start > {{after:DateTime('UTC')}}
          AND window_start <= {{until:DateTime('UTC')}}
        GROUP BY topic, window_start
        ORDER BY topic, window_start
        """,
        {"topics": list(topics), "after": _dt(after_ms), "until": _dt(until_ms)},
    )
    out: dict[str, list[tuple[int, TopicMinute]]] = {}
    for topic, start_s, videos, views, likes, shares in result.rows:
        out.setdefault(topic, []).append(
            (
                int(start_s) * 1000,
                TopicMinute(
                    videos=int(videos), views=int(views), likes=int(likes), shares=int(shares)
                ),
            )
        )
    return out


def window_context(db: Database, topic: str, start_ms: int, window_ms: int) -> TopicMinute:
    """One topic-minute with its languages, top hashtags and top videos by view gain."""
    params = {"topic": topic, "start": _dt(start_ms), "end": _dt(start_ms + window_ms)}
    counts = db.query(
        f"""
        SELECT lang, sum(videos), sum(views), sum(likes), sum(shares)
        FROM {db.qualify("topic_counts_1m")}
        WHERE topic = {{topic:String}} AND window_start = {{start:DateTime('UTC')}}
        GROUP BY lang
        """,
        params,
    )
    agg = TopicMinute()
    for lang, videos, views, likes, shares in counts.rows:
        agg.videos += int(videos)
        agg.views += int(views)
        agg.likes += int(likes)
        agg.shares += int(shares)
        if int(videos):
            agg.langs[lang] += int(videos)
    rows = db.query(
        f"""
        SELECT video_id, sum(d_views) AS gain, groupArrayIf(hashtags, kind = 'publish') AS tags
        FROM {db.qualify("video_events")}
        WHERE has(topics, {{topic:String}})
          AND event_time >= {{start:DateTime64(3, 'UTC')}}
          AND event_time < {{end:DateTime64(3, 'UTC')}}
        GROUP BY video_id
        ORDER BY gain DESC, video_id
        """,
        params,
    )
    hashtags: Counter[str] = Counter()
    for video_id, gain, tags in rows.rows:
        if int(gain) > 0:
            agg.video_views[video_id] += int(gain)
        for tag_list in tags:
            for tag in tag_list:
                hashtags[tag.casefold()] += 1
    agg.hashtags = hashtags
    return agg
