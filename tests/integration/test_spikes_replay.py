"""`workpulse spikes` recomputes alerts from ClickHouse alone: the observations it reads
back from chDB are the ones the events make, and the alerts equal those of the detector
fed directly with them (the live worker's equivalence comes when its counts agent feeds
this detector).

The events are simulated here (their own seeds): three topics over five hours, a wave
of new authors in one, a view surge spread over many authors in another, a single
account's burst in the third, videos in two topics at once, stats updates after publish.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from workpulse.cli import main
from workpulse.clickhouse import apply_schema, connect
from workpulse.model.aggregates import TopicMinute
from workpulse.model.rows import VIDEO_EVENTS, VideoEventRow
from workpulse.processing.spikes import Spike, SpikeDetector, SpikeDetectorConfig, replay
from workpulse.worker.minutes import read_observations, time_range

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
MIN = 60_000
HOURS = 5
WAVE_MIN, BURST_MIN, SURGE_MIN = 200, 220, 240
CONFIG = SpikeDetectorConfig(min_history=30, lang_min_videos=150)


def utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def simulate(seed: int = 7) -> list[dict[str, Any]]:
    """Events in time order: publish (topics, author, lang, country, hashtags) and stats
    (view deltas of a known video; its topics, author and language). Event ids are
    unique within a video only: every publish is "publish", a video's stats "s1", "s2"…
    The pipeline keeps events apart by (video, event id), and `topic_counts_1m` counts
    each; the readers de-duplicated by event id alone and saw one publish per topic (a
    producer reusing another video's event ids hid that video from the detector)."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    videos: list[dict[str, Any]] = []
    regulars = [f"r{i}" for i in range(200)]
    serial = 0
    stats_of: dict[str, int] = {}

    def publish(t: int, topics: list[str], author: str, tags: list[str]) -> None:
        nonlocal serial
        serial += 1
        lang = rng.choice(["en", "en", "fr", "ar"])
        video = {"video_id": f"v{serial}", "topics": topics, "author_id": author, "lang": lang}
        videos.append(video)
        events.append({**video, "kind": "publish", "t": t, "event_id": "publish",
                       "country": {"en": "US", "fr": "FR", "ar": "EG"}[lang],
                       "hashtags": tags, "d_views": 0})  # fmt: skip

    def stats(t: int, views: int, video: dict[str, Any] | None = None) -> None:
        nonlocal serial
        serial += 1
        video = video or rng.choice(videos[-150:])
        stats_of[video["video_id"]] = n = stats_of.get(video["video_id"], 0) + 1
        events.append({**video, "kind": "stats", "t": t, "event_id": f"s{n}",
                       "country": "", "hashtags": [], "d_views": views})  # fmt: skip

    for minute in range(HOURS * 60):
        base = T0 + minute * MIN
        rhythm = 1 + 0.3 * math.sin(2 * math.pi * minute / 240)
        for topic, rate in (("resignation", 6.0), ("salary", 4.0), ("burnout", 3.0)):
            for _ in range(sum(rng.random() < rate * rhythm / 20 for _ in range(20))):
                topics = (
                    [topic, "burnout"] if topic == "resignation" and rng.random() < 0.1 else [topic]
                )
                author = f"n{serial}" if rng.random() < 0.2 else rng.choice(regulars)
                publish(
                    base + rng.randrange(MIN),
                    topics,
                    author,
                    [f"#{topic}", "fyp"][: rng.randrange(1, 3)],
                )
        if WAVE_MIN <= minute < WAVE_MIN + 4:  # copycats: new authors, the wave's hashtag
            for i in range(25):
                publish(
                    base + rng.randrange(MIN), ["resignation"], f"wave{minute}-{i}", ["QuitMyJob"]
                )
        if BURST_MIN <= minute < BURST_MIN + 3:  # one account, many videos
            for _ in range(30):
                publish(base + rng.randrange(MIN), ["salary"], "spammer", ["salary"])
        for _ in range(len(videos) and 25):
            stats(base + rng.randrange(MIN), int(100 * math.exp(rng.gauss(0, 0.5))))
        if SURGE_MIN <= minute < SURGE_MIN + 3:  # attention on many burnout videos
            burnout = [v for v in videos[-400:] if "burnout" in v["topics"]]
            for video in rng.sample(burnout, min(40, len(burnout))):
                stats(base + rng.randrange(MIN), 2_000, video)
    events.sort(key=lambda e: (e["t"], e["event_id"]))
    return events  # fmt: skip


def rows(events: list[dict[str, Any]]) -> list[VideoEventRow]:
    out = []
    for i, e in enumerate(events):
        out.append(
            VideoEventRow(
                event_id=e["event_id"], kind=e["kind"], video_id=e["video_id"],
                event_time=utc(e["t"]), author_id=e["author_id"], author_followers=0,
                lang=e["lang"], country=e["country"], caption="", hashtags=e["hashtags"],
                topics=e["topics"], matched={}, views=0, likes=0, shares=0, comments=0,
                d_views=e["d_views"], d_likes=0, d_shares=0, d_comments=0,
                taxonomy_version="test", ingest_time=utc(e["t"]), src_topic="video-events",
                src_partition=0, src_offset=i,
            )
        )  # fmt: skip
    return out


def direct_observations(events: list[dict[str, Any]]) -> dict[str, dict[int, TopicMinute]]:
    """What an ingest step makes of the events, in event-time order: one aggregate per
    topic and minute, an author new in a topic at their first video there."""
    seen: set[tuple[str, str]] = set()
    out: dict[str, dict[int, TopicMinute]] = {}
    for e in events:
        start = e["t"] // MIN * MIN
        for topic in e["topics"]:
            agg = out.setdefault(topic, {}).setdefault(start, TopicMinute())
            if e["kind"] == "publish":
                new = (topic, e["author_id"]) not in seen
                seen.add((topic, e["author_id"]))
                agg.add_publish(video_id=e["video_id"], author_id=e["author_id"],
                                lang=e["lang"], country=e["country"], hashtags=e["hashtags"],
                                new_author=new)  # fmt: skip
            else:
                agg.add_counters(video_id=e["video_id"], author_id=e["author_id"],
                                 lang=e["lang"], views=e["d_views"])  # fmt: skip
    windows: dict[str, dict[int, TopicMinute]] = {}
    for topic, minutes in out.items():
        for start, agg in minutes.items():
            window = windows.setdefault(topic, {}).setdefault(start, TopicMinute())
            window.merge(agg)  # trimmed as a live window
    return windows


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("spikes_replay")
    db = connect(None, path)
    try:
        apply_schema(db)
        made = rows(simulate())
        for i in range(0, len(made), 5_000):  # batches, as the worker writes them
            db.insert("video_events", VIDEO_EVENTS.columns, made[i : i + 5_000])
    finally:
        db.close()
    yield path


@pytest.fixture(scope="module")
def from_clickhouse(data_dir: Path) -> dict[str, dict[int, TopicMinute]]:
    db = connect(None, data_dir)
    try:
        span = time_range(db)
        assert span is not None
        return read_observations(db, T0, T0 + HOURS * 60 * MIN)
    finally:
        db.close()


def alerts_of(observations: dict[str, dict[int, TopicMinute]]) -> list[Spike]:
    return replay(SpikeDetector(CONFIG), observations, until_ms=T0 + HOURS * 60 * MIN)


def test_observations_read_back_are_the_events_aggregates(from_clickhouse: dict) -> None:
    direct = direct_observations(simulate())
    assert set(from_clickhouse) == set(direct) == {"resignation", "salary", "burnout"}
    for topic, minutes in direct.items():
        assert set(from_clickhouse[topic]) == set(minutes), topic
        for start, agg in minutes.items():
            assert from_clickhouse[topic][start].to_dict() == agg.to_dict(), (topic, start)


def test_chunks_and_topics_read_the_same_observations(
    data_dir: Path, from_clickhouse: dict
) -> None:
    """A live caller reads the minutes it closes, for the topics it owns: in chunks,
    the same aggregates as one read (new authors included)."""
    db = connect(None, data_dir)
    try:
        cuts = [T0, T0 + WAVE_MIN * MIN, T0 + (WAVE_MIN + 1) * MIN, T0 + HOURS * 60 * MIN]
        chunked: dict[str, dict[int, TopicMinute]] = {}
        for start, end in itertools.pairwise(cuts):
            for topic, minutes in read_observations(db, start, end).items():
                for minute, agg in minutes.items():
                    chunked.setdefault(topic, {}).setdefault(minute, TopicMinute()).merge(agg)
        one = read_observations(db, T0, T0 + HOURS * 60 * MIN, topics=["burnout"])
    finally:
        db.close()
    assert set(one) == {"burnout"}
    assert {m: a.to_dict() for m, a in one["burnout"].items()} == {
        m: a.to_dict() for m, a in from_clickhouse["burnout"].items()
    }
    for topic, minutes in from_clickhouse.items():
        assert {m: a.to_dict() for m, a in chunked[topic].items()} == {
            m: a.to_dict() for m, a in minutes.items()
        }, topic


def test_replay_gives_the_alerts_of_the_detector_fed_directly(from_clickhouse: dict) -> None:
    replayed = alerts_of(from_clickhouse)
    direct = alerts_of(direct_observations(simulate()))
    assert replayed == direct
    found = {(s.topic, s.metric, s.lang, (s.window_start_ms - T0) // MIN) for s in replayed}
    # the scenario's waves are found, the single account's burst is not
    assert any(t == "resignation" and m == "new_authors" and WAVE_MIN <= w <= WAVE_MIN + 1
               for t, m, _, w in found), found  # fmt: skip
    assert any(t == "burnout" and m == "views" and SURGE_MIN <= w <= SURGE_MIN + 1
               for t, m, _, w in found), found  # fmt: skip
    assert not any(t == "salary" and BURST_MIN <= w <= BURST_MIN + 5 for t, _, _, w in found)


def test_spikes_command_prints_the_same_alerts(data_dir: Path, from_clickhouse: dict) -> None:
    settings = ["--spike-min-history", "30", "--spike-lang-min-videos", "150"]
    result = CliRunner().invoke(
        main, ["spikes", "--data-dir", str(data_dir), "--format", "json", *settings,
               "--to", utc(T0 + HOURS * 60 * MIN).isoformat()],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = orjson.loads(result.stdout)
    assert [{k: v for k, v in p.items() if k != "window_start"} for p in printed] == [
        orjson.loads(orjson.dumps(s.to_dict())) for s in alerts_of(from_clickhouse)
    ]
    # --from only selects what is printed: the detector still learns from the start
    later = CliRunner().invoke(
        main, ["spikes", "--data-dir", str(data_dir), "--format", "jsonl", *settings,
               "--from", utc(T0 + WAVE_MIN * MIN).isoformat(),
               "--to", utc(T0 + HOURS * 60 * MIN).isoformat()],
    )  # fmt: skip
    assert later.exit_code == 0, later.output
    tail = [orjson.loads(line) for line in later.stdout.splitlines()]
    assert tail == [p for p in printed if p["window_start_ms"] >= T0 + WAVE_MIN * MIN]
    # times past the range an event can have are held to it ("year 10000 is out of
    # range", naming no flag); a --from after the data says so (it said "before --to")
    widest = CliRunner().invoke(
        main, ["spikes", "--data-dir", str(data_dir), "--format", "json", *settings,
               "--from", "0001-01-01T00:00+14:00", "--to", "9999-12-31T23:59:59-12:00"],
    )  # fmt: skip
    assert widest.exit_code == 0, widest.output
    assert orjson.loads(widest.stdout) == printed
    after = CliRunner().invoke(
        main, ["spikes", "--data-dir", str(data_dir), "--from", "2100-01-01"]
    )
    assert after.exit_code == 1 and "--from 2100-01-01 is after the last event (" in after.output


class _Sent:
    """A publisher that keeps what it is given (Kafka is not what this test is about)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes | None, bytes]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes,
                   headers: Any = None) -> Any:  # fmt: skip
        self.messages.append((topic, key, value))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class _CountingDatabase:
    """The real chDB client, counting the observation reads (one per FIRSTS query)."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.reads = 0

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        if "topic_author_first_seen" in sql:
            self.reads += 1
        return self.db.query(sql, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


@pytest.mark.parametrize("mode", ["together", "staggered", "one leaves"])
def test_the_counts_step_alerts_as_the_replay_and_reads_each_range_once(
    data_dir: Path, from_clickhouse: dict, tmp_path: Path, mode: str
) -> None:
    """The live path: watermark reports reach the counts step once per topic (keyed by
    topic), minutes close in chunks of ten; its alerts are the replay's, and each closed
    minute is read from ClickHouse once for all topics, not once per topic. Staggered:
    the first topic's report of each round comes a round early (as they interleave in a
    worker), so the topics ask for overlapping ranges: still one read per round. One
    leaves: the last topic's reports stop halfway (it moved to another worker, or another
    worker owns it): the minutes kept in memory stay a round's worth all the same."""
    staggered = mode == "staggered"
    from prometheus_client import CollectorRegistry

    from workpulse.metrics import Metrics
    from workpulse.model.topics import TOPICS
    from workpulse.processing.windows import PartitionMark
    from workpulse.sinks.clickhouse import Sink
    from workpulse.worker.steps import CountsStep, Progress

    grace_ms = 120_000
    end = T0 + HOURS * 60 * MIN
    db = connect(None, data_dir)
    counting = _CountingDatabase(db)
    metrics = Metrics(CollectorRegistry(), runtime_collectors=False)
    sink = Sink(db, metrics)
    table: dict[str, Any] = {}

    class Table:
        get = staticmethod(table.get)

        @staticmethod
        def put(key: str, value: Any) -> None:
            table[key] = orjson.loads(orjson.dumps(value))  # as a changelog would keep it

    publisher = _Sent()
    progress = Progress()
    step = CountsStep(
        windows=Table(), detector=SpikeDetector(CONFIG), sink=sink, db=counting,  # type: ignore[arg-type]
        publisher=publisher, metrics=metrics, progress=progress, spikes_topic="spikes",
        grace_ms=grace_ms, taxonomy_version=lambda: "test", wall_clock=lambda: end / 1000,
    )  # fmt: skip
    rounds = range(T0 + 10 * MIN, end + 1, 10 * MIN)

    def report(low: int) -> dict[str, Any]:
        mark = PartitionMark(event_time_ms=low + grace_ms, as_of_ms=low).to_dict()
        return {"source": "video-events", "partitions": 1, "marks": {"0": mark}}

    async def feed() -> None:
        for i, low in enumerate(rounds):
            first, rest = TOPICS[0], TOPICS[1:]
            if staggered and i + 1 < len(rounds):
                if i == 0:
                    await step.handle([(first, report(low))])
                await step.handle([(first, report(rounds[i + 1]))])
            elif not staggered:
                await step.handle([(first, report(low))])
            for topic in rest:  # one message per topic, as the ingest step sends them
                if mode == "one leaves" and topic == TOPICS[-1] and i > len(rounds) // 2:
                    continue
                await step.handle([(topic, report(low))])

    try:
        db.command("TRUNCATE TABLE workpulse.topic_spikes")
        asyncio.run(feed())
        stored = db.query(
            "SELECT topic, toUnixTimestamp(window_start) * 1000, metric, lang, observed "
            "FROM workpulse.topic_spikes ORDER BY ALL"
        ).rows
    finally:
        sink.close()
        db.close()
    expected = alerts_of(from_clickhouse)
    assert expected, "the scenario has waves"
    if mode == "one leaves":
        expected = [s for s in expected if s.topic != TOPICS[-1]]
        progress.spikes = [s for s in progress.spikes if s.topic != TOPICS[-1]]
        stored = [row for row in stored if row[0] != TOPICS[-1]]
    key = lambda s: (s.window_start_ms, s.topic, s.metric, s.lang)  # noqa: E731
    assert sorted(progress.spikes, key=key) == sorted(expected, key=key)
    assert sorted((t, int(w), m, la, float(o)) for t, w, m, la, o in stored) == sorted(
        (s.topic, s.window_start_ms, s.metric, s.lang, float(s.observed)) for s in expected
    )
    assert len(publisher.messages) == len(expected) or mode == "one leaves"
    assert counting.reads == len(rounds)
    kept = [minute for minutes in step._kept.values() for minute in minutes]
    assert all(minute >= rounds[-3] for minute in kept)  # a round's worth, not all
