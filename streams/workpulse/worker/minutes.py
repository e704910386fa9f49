"""The spike detector's per-minute observations, read back from ClickHouse.

`read_observations` rebuilds, for every topic and minute of event time, the
`TopicMinute` the counts agent's window holds: publish rows go through
`TopicMinute.add_publish` and view gains through `add_counters` (the ingest step's own
calls), a publish is a new author's when it is that author's first in the topic
(`topic_author_first_seen`), and each minute is trimmed like a live window (merged into
an empty one). So `workpulse spikes` needs nothing but ClickHouse, and the counts agent
can read the minutes it closes the same way (for the topics it owns), which makes its
alerts and the replay's the same by construction.

Two differences from the live path, both documented in docs/spikes.md: "first video of
an author in the topic" is by event time here (the live ingest decides it in processing
order), and entries tied at the trimming boundary (50 videos, 256 authors) may differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from workpulse.model.aggregates import TopicMinute

MINUTE_MS = 60_000


class Queryable(Protocol):
    """What the readers need of `workpulse.clickhouse.ClickHouse`."""

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Any: ...


START = "fromUnixTimestamp64Milli({start:Int64}, 'UTC')"
END = "fromUnixTimestamp64Milli({end:Int64}, 'UTC')"
TOPICS = "({all_topics:UInt8} OR topic IN {topics:Array(String)})"

# Authors first seen in the range: only those with a row in it are aggregated (the
# table is an AggregatingMergeTree: an older, unmerged row may still hold an earlier
# first video, hence min() over all rows of those authors).
FIRSTS_SQL = f"""
SELECT topic, author_id, toUnixTimestamp64Milli(min(first_seen)) AS first_ms
FROM workpulse.topic_author_first_seen
WHERE (topic, author_id) IN
(
    SELECT topic, author_id FROM workpulse.topic_author_first_seen
    WHERE first_seen >= {START} AND first_seen < {END} AND {TOPICS}
)
GROUP BY topic, author_id
HAVING first_ms >= {{start:Int64}} AND first_ms < {{end:Int64}}
"""

PUBLISH_SQL = f"""
SELECT topic, toUnixTimestamp64Milli(event_time) AS t, event_id, video_id, author_id, lang,
       country, hashtags
FROM workpulse.video_events
ARRAY JOIN topics AS topic
WHERE kind = 'publish' AND event_time >= {START} AND event_time < {END} AND {TOPICS}
ORDER BY topic, t, event_id
LIMIT 1 BY topic, video_id, event_id
"""

GAINS_SQL = f"""
SELECT topic, intDiv(t, 60000) * 60000 AS minute, video_id, author_id, any(lang) AS lang,
       sum(d_views) AS views, sum(d_likes) AS likes, sum(d_shares) AS shares
FROM
(
    SELECT event_id, toUnixTimestamp64Milli(event_time) AS t, video_id, author_id, lang,
           topics, d_views, d_likes, d_shares
    FROM workpulse.video_events
    WHERE event_time >= {START} AND event_time < {END}
      AND (d_views > 0 OR d_likes > 0 OR d_shares > 0)
    LIMIT 1 BY video_id, event_id
)
ARRAY JOIN topics AS topic
WHERE {TOPICS}
GROUP BY topic, minute, video_id, author_id
ORDER BY topic, minute, video_id, author_id
"""

RANGE_SQL = """
SELECT toUnixTimestamp64Milli(min(event_time)), toUnixTimestamp64Milli(max(event_time)),
       count()
FROM workpulse.video_events
"""


def time_range(db: Queryable) -> tuple[int, int] | None:
    """(first, last) event time in ClickHouse, epoch ms; None when there is no event."""
    first, last, n = db.query(RANGE_SQL).rows[0]
    return None if not n else (int(first), int(last))


def read_observations(
    db: Queryable, start_ms: int, end_ms: int, topics: Sequence[str] | None = None
) -> dict[str, dict[int, TopicMinute]]:
    """topic → minute start (epoch ms) → aggregate, for event times in [start, end),
    of the given topics (default: all). Minutes without data are absent."""
    params: dict[str, Any] = {
        "start": int(start_ms),
        "end": int(end_ms),
        "all_topics": int(topics is None),
        "topics": list(topics or []),
    }
    firsts = {(r[0], r[1]): int(r[2]) for r in db.query(FIRSTS_SQL, params).rows}
    raw: dict[str, dict[int, TopicMinute]] = {}

    def minute_of(topic: str, t_ms: int) -> TopicMinute:
        minutes = raw.setdefault(topic, {})
        start = t_ms // MINUTE_MS * MINUTE_MS
        agg = minutes.get(start)
        if agg is None:
            agg = minutes[start] = TopicMinute()
        return agg

    for topic, t, _event_id, video_id, author_id, lang, country, hashtags in db.query(
        PUBLISH_SQL, params
    ).rows:
        first = firsts.get((topic, author_id))
        new_author = first is not None and int(t) == first
        if new_author:
            del firsts[(topic, author_id)]  # one new author even if two videos tie
        minute_of(topic, int(t)).add_publish(
            video_id=video_id, author_id=author_id, lang=lang, country=country,
            hashtags=hashtags, new_author=new_author,
        )  # fmt: skip
    for topic, minute, video_id, author_id, lang, views, likes, shares in db.query(
        GAINS_SQL, params
    ).rows:
        minute_of(topic, int(minute)).add_counters(
            video_id=video_id, author_id=author_id, lang=lang, views=int(views),
            likes=int(likes), shares=int(shares),
        )  # fmt: skip
    return {topic: _as_windows(minutes) for topic, minutes in raw.items()}


def _as_windows(minutes: Mapping[int, TopicMinute]) -> dict[int, TopicMinute]:
    """Each minute trimmed like a live window (merged into an empty one), in order."""
    out: dict[int, TopicMinute] = {}
    for start in sorted(minutes):
        window = minutes[start]
        window.trim()
        out[start] = window
    return out
