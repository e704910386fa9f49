"""What the report shows, read from ClickHouse."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workpulse.clickhouse import Database
from workpulse.clickhouse.copycat import wave_uptake
from workpulse.model.aggregates import TopicMinute
from workpulse.model.topics import TOPICS
from workpulse.processing.spikes import SpikeDetector, SpikeDetectorConfig, TopicBaseline

MINUTE_MS = 60_000
MAX_MINUTES = 7 * 24 * 60  # a week of minutes per topic at most

SQL_MINUTES = """
SELECT topic, toUnixTimestamp(window_start) * 1000 AS t, sum(videos) AS videos
FROM workpulse.topic_counts_1m
GROUP BY topic, window_start
ORDER BY topic, window_start
"""

SQL_SPIKES = """
SELECT topic, toUnixTimestamp(window_start) * 1000 AS t, metric, lang, severity, windows,
       observed, expected, score, top_hashtags
FROM workpulse.topic_spikes
ORDER BY topic, window_start, metric, lang
LIMIT 1 BY topic, window_start, metric, lang
"""

# The reader of the minutes' aggregates the detector is fed, passed in by the caller:
# `workpulse.worker.minutes.read_observations`, which the report may not import
# (docs/layout.md).
ReadMinutes = Callable[[Database, int, int], Mapping[str, Mapping[int, TopicMinute]]]

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
    expected: list[float]  # the detector's expected new videos for that minute
    lower: list[float] = field(default_factory=list)  # its band (the gauges' band)
    upper: list[float] = field(default_factory=list)
    spikes: list[dict[str, Any]] = field(default_factory=list)
    """Every alert of the topic (all signals and languages); the chart marks those of
    the new-videos signal at topic level, the title lists them all."""

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "start_ms": self.start_ms,
            "videos": self.videos,
            "expected": [round(e, 3) for e in self.expected],
            "upper": [round(u, 3) for u in self.upper or self.expected],
            "lower": [round(v, 3) for v in self.lower or self.expected],
            "spikes": self.spikes,
        }


@dataclass
class ReportData:
    timelines: list[Timeline]
    topic_totals: dict[str, int]
    languages: dict[str, int]
    top_videos: list[dict[str, Any]]
    source: str = ""
    copycat: list[dict[str, Any]] = field(default_factory=list)
    """One entry per wave: `WaveUptake.to_dict()`."""

    def to_json(self) -> dict[str, Any]:
        return {
            "timelines": [t.to_json() for t in self.timelines],
            "topic_totals": self.topic_totals,
            "languages": self.languages,
            "top_videos": self.top_videos,
            "source": self.source,
            "copycat": self.copycat,
        }


def detector_band(
    topic: str,
    minutes: Mapping[int, TopicMinute],
    first_ms: int,
    n: int,
    config: SpikeDetectorConfig,
) -> tuple[list[float], list[float], list[float]]:
    """The spike detector's expected new videos and band for each of `n` minutes from
    `first_ms`: the topic's minutes fed to a fresh detector in order, as the counts
    agent does (from the topic's first minute with data; empty minutes included), read
    after each minute like the worker's `workpulse_window_expected` and band gauges."""
    detector = SpikeDetector(config)
    baseline = TopicBaseline()
    expected, lower, upper = [], [], []
    fed = False
    for i in range(n):
        start = first_ms + i * MINUTE_MS
        minute = minutes.get(start)
        fed = fed or minute is not None
        if fed:
            detector.observe_window(baseline, topic, start, minute or TopicMinute())
        series = baseline.series.get("videos")
        low, high = detector.band(baseline, "videos")
        expected.append(series.expected if series is not None and fed else 0.0)
        lower.append(low if fed else 0.0)
        upper.append(high if fed else 0.0)
    return expected, lower, upper


def collect(
    db: Database, read_minutes: ReadMinutes, config: SpikeDetectorConfig | None = None
) -> ReportData:
    config = config or SpikeDetectorConfig()
    per_topic: dict[str, dict[int, float]] = {}
    for topic, t, videos in db.query(SQL_MINUTES).rows:
        per_topic.setdefault(str(topic), {})[int(t)] = float(videos)
    spikes: dict[str, list[dict[str, Any]]] = {}
    for topic, t, metric, lang, severity, windows, observed, expected, score, hashtags in db.query(
        SQL_SPIKES
    ).rows:
        spikes.setdefault(str(topic), []).append(
            {
                "t": int(t),
                "metric": str(metric),
                "lang": str(lang),
                "severity": str(severity),
                "windows": int(windows),  # 2: observed and expected are two minutes' sums
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
        observations = read_minutes(db, first, last + MINUTE_MS)
        for topic in TOPICS:
            minutes = per_topic.get(topic)
            if not minutes:
                continue
            counts = [minutes.get(first + i * MINUTE_MS, 0.0) for i in range(n)]
            expected, lower, upper = detector_band(
                topic, observations.get(topic, {}), first, n, config
            )
            timelines.append(
                Timeline(topic, first, counts, expected, lower, upper, spikes.get(topic, []))
            )
    totals = {t.topic: int(sum(t.videos)) for t in timelines}
    languages = {str(r[0]): int(r[1]) for r in db.query(SQL_LANGUAGES).rows}
    top = [
        {"video_id": r[0], "author": r[1], "caption": r[2], "topics": r[3], "views": int(r[4])}
        for r in db.query(SQL_TOP_VIDEOS).rows
    ]
    copycat = [wave.to_dict() for wave in wave_uptake(db)]
    return ReportData(timelines, totals, languages, top, db.transport.describe(), copycat)
