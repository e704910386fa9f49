"""The video state a worker keeps: a bounded cache over what ClickHouse's rows imply.

A video's state (published, its topics, author, language, country, its largest counters
and its recent event ids) is a function of the rows stored for it in `video_events`, and
only the worker that owns the video's partition writes them. So the worker keeps states
in memory as a cache (least recently used first out, and idle entries after
`ttl_s`), loads the missing ones from ClickHouse in one query per batch, and drops the
cache whenever its partitions change: the state it works with is always exactly what
the stored rows imply, whoever wrote them (another worker before a rebalance, or this
one before a crash). Memory is bounded by `max_videos`; an evicted video costs one
lookup when it comes back.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from workpulse.clickhouse import Database
from workpulse.model.state import RECENT_IDS, VideoState

_STATE_SQL = f"""
SELECT
    video_id,
    max(kind = 'publish') AS published,
    anyIf(topics, kind = 'publish') AS topics,
    anyIf(author_id, kind = 'publish') AS author_id,
    anyIf(lang, kind = 'publish') AS lang,
    anyIf(country, kind = 'publish') AS country,
    anyIf(event_id, kind = 'publish') AS publish_id,
    max(views), max(likes), max(shares), max(comments),
    arraySlice(
        arrayMap(
            x -> x.3,
            arraySort(x -> (x.1, x.2), groupArray((ingest_time, src_offset, event_id)))
        ),
        -{RECENT_IDS}
    ) AS recent_ids
FROM {{table}}
WHERE video_id IN {{ids:Array(String)}}
GROUP BY video_id
"""


IDS_PER_QUERY_CHARS = 64 * 1024
"""At most about this many characters of ids in one state query. A ClickHouse server
takes a large parameter as an HTML form field (clickhouse-connect sends it so), and
refuses fields over `http_max_field_value_size`, 128 KiB by default: a batch's new
videos with 36-character ids reach that at ~3,500."""


def chunks(ids: Sequence[str], max_chars: int = IDS_PER_QUERY_CHARS) -> Iterator[list[str]]:
    """`ids` in order, in lists of at most `max_chars` characters (counting 4 more per id
    for quotes and separators; an id longer than that alone)."""
    chunk: list[str] = []
    size = 0
    for video_id in ids:
        cost = len(video_id) + 4
        if chunk and size + cost > max_chars:
            yield chunk
            chunk, size = [], 0
        chunk.append(video_id)
        size += cost
    if chunk:
        yield chunk


def load_video_states(db: Database, video_ids: Iterable[str]) -> dict[str, VideoState]:
    """The stored state of each video that has rows (absent: no row stored yet)."""
    ids = list(video_ids)
    if not ids:
        return {}
    sql = _STATE_SQL.replace("{table}", db.qualify("video_events"))
    rows = [row for chunk in chunks(ids) for row in db.query(sql, {"ids": chunk}).rows]
    out: dict[str, VideoState] = {}
    for row in rows:
        video_id, published, topics, author, lang, country, publish_id, v, li, sh, co, recent = row
        out[video_id] = VideoState(
            published=bool(published),
            topics=tuple(topics),
            author_id=author,
            lang=lang,
            country=country,
            views=int(v),
            likes=int(li),
            shares=int(sh),
            comments=int(co),
            recent_ids=list(recent),
            publish_id=publish_id,
        )
    return out


class VideoStateCache:
    """States by video id, most recently used last; at most `max_videos`, none idle for
    more than `ttl_s` seconds of `clock`."""

    def __init__(
        self,
        max_videos: int = 200_000,
        ttl_s: float = 24 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_videos = max_videos
        self.ttl_s = ttl_s
        self._clock = clock
        # A dict keeps insertion order: the least recently stored entry is the first.
        self._entries: dict[str, tuple[float, VideoState]] = {}
        self.hits = self.misses = self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, video_ids: Iterable[str]) -> tuple[dict[str, VideoState], list[str]]:
        """(states found, ids to load)."""
        now = self._clock()
        found: dict[str, VideoState] = {}
        missing: list[str] = []
        entries = self._entries
        for video_id in video_ids:
            entry = entries.get(video_id)
            if entry is None or now - entry[0] > self.ttl_s:
                missing.append(video_id)
            else:
                found[video_id] = entry[1]
        self.hits += len(found)
        self.misses += len(missing)
        return found, missing

    def put_many(self, states: Iterable[tuple[str, VideoState]]) -> None:
        now = self._clock()
        entries = self._entries
        pop = entries.pop
        for video_id, state in states:
            pop(video_id, None)  # re-inserted last: the newest entries are at the end
            entries[video_id] = (now, state)
        self._evict(now)

    def _evict(self, now: float) -> None:
        entries = self._entries
        excess = len(entries) - self.max_videos
        if excess > 0:
            for video_id in list(itertools.islice(entries, excess)):
                del entries[video_id]
            self.evicted += excess
        expired = []
        for video_id, (stored_at, _) in entries.items():
            if now - stored_at <= self.ttl_s:
                break
            expired.append(video_id)
        for video_id in expired:
            del entries[video_id]
        self.evicted += len(expired)

    def clear(self) -> None:
        self._entries.clear()
