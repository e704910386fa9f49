"""What the report shows, read from ClickHouse."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from workpulse.clickhouse import Database
from workpulse.model.topics import TOPICS
from workpulse.processing.spikes import SpikeDetector, SpikeDetectorConfig, TopicBaseline

MINUTE_MS = 60_000
BAND_SIGMAS = 3.0
MAX_MINUTES = 7 * 24 * 60  # a week of minutes per topic at most

SQL_MINUTES = """
SELECT topic, toUnixTimestamp(window_start) * 1000 AS t, sum(videos) AS videos
FROM workpulse.topic_counts_1m
GROUP BY topic, window_start
ORDER BY topic, window_start
"""

SQL_SPIKES = """
SELECT topic, toUnixTimestamp(window_start) * 1000 AS t, observed, expected, score,
       top_hashtags
FROM workpulse.topic_spikes
ORDER BY topic, window_start
LIMIT 1 BY topic, window_start, metric, lang
"""

SQL_LANGUAGES = """
SELECT if(lang = '', '(unknown)', lang) AS language, sum(videos) AS videos
FROM workpulse.topic_counts_1m
GROUP BY language
ORDER BY videos DESC
LIMIT 12
"""

SQL_TOP_VIDEOS = """
SELECT video_id, any(author_id) AS author, anyIf(caption, kind = 'publish') AS caption,
       arrayStringConcat(any(topics), ', ') AS topic_list, max(views) AS views
FROM workpulse.video_events
WHERE notEmpty(topics)
GROUP BY video_id
ORDER BY views DESC
LIMIT 10
"""


@dataclass
class Timeline:
    topic: str
    start_ms: int
    videos: list[float]  # one value per minute from start_ms
    expected: list[float]  # the detector's expected value before seeing that minute
    spikes: list[dict[str, Any]] = field(default_factory=list)

    def band(self, sigmas: float = BAND_SIGMAS) -> tuple[list[float], list[float]]:
        upper = [e + sigmas * math.sqrt(e) for e in self.expected]
        lower = [max(0.0, e - sigmas * math.sqrt(e)) for e in self.expected]
        return upper, lower

    def to_json(self) -> dict[str, Any]:
        upper, lower = self.band()
        return {
            "topic": self.topic,
            "start_ms": self.start_ms,
            "videos": self.videos,
            "expected": [round(e, 3) for e in self.expected],
            "upper": [round(u, 3) for u in upper],
            "lower": [round(v, 3) for v in lower],
            "spikes": self.spikes,
        }


@dataclass
class ReportData:
    timelines: list[Timeline]
    topic_totals: dict[str, int]
    languages: dict[str, int]
    top_videos: list[dict[str, Any]]
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "timelines": [t.to_json() for t in self.timelines],
            "topic_totals": self.topic_totals,
            "languages": self.languages,
            "top_videos": self.top_videos,
            "source": self.source,
        }


def expected_series(counts: list[float], start_ms: int, config: SpikeDetectorConfig) -> list[float]:
    """Replays the minutes through the worker's spike detector: its expected value
    (λ = max(baseline, floor)) for each minute, before that minute is observed."""
    detector = SpikeDetector(config)
    baseline = TopicBaseline()
    out = []
    for i, count in enumerate(counts):
        out.append(max(baseline.mean, config.expected_floor))
        detector.observe(baseline, "report", start_ms + i * MINUTE_MS, count)
    return out


def collect(db: Database, config: SpikeDetectorConfig | None = None) -> ReportData:
    config = config or SpikeDetectorConfig()
    per_topic: dict[str, dict[int, float]] = {}
    for topic, t, videos in db.query(SQL_MINUTES).rows:
        per_topic.setdefault(str(topic), {})[int(t)] = float(videos)
    spikes: dict[str, list[dict[str, Any]]] = {}
    for topic, t, observed, expected, score, hashtags in db.query(SQL_SPIKES).rows:
        spikes.setdefault(str(topic), []).append(
            {
                "t": int(t),
                "observed": float(observed),
                "expected": round(float(expected), 2),
                "score": round(float(score), 1),
                "hashtags": list(hashtags),
            }
        )
    all_minutes = [t for minutes in per_topic.values() for t in minutes]
    timelines = []
    if all_minutes:
        first = min(all_minutes)
        last = max(all_minutes)
        first = max(first, last - (MAX_MINUTES - 1) * MINUTE_MS)
        n = (last - first) // MINUTE_MS + 1
        for topic in TOPICS:
            minutes = per_topic.get(topic)
            if not minutes:
                continue
            counts = [minutes.get(first + i * MINUTE_MS, 0.0) for i in range(n)]
            timelines.append(
                Timeline(
                    topic,
                    first,
                    counts,
                    expected_series(counts, first, config),
                    spikes.get(topic, []),
                )
            )
    totals = {t.topic: int(sum(t.videos)) for t in timelines}
    languages = {str(r[0]): int(r[1]) for r in db.query(SQL_LANGUAGES).rows}
    top = [
        {"video_id": r[0], "author": r[1], "caption": r[2], "topics": r[3], "views": int(r[4])}
        for r in db.query(SQL_TOP_VIDEOS).rows
    ]
    return ReportData(timelines, totals, languages, top, db.transport.describe())
