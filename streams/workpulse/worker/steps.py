"""The work each Faust agent does per batch, between the pure modules and I/O.

`IngestStep` and `CountsStep` are called by the thin agents in `worker/app.py`; they take
their collaborators (tables, sink, producer, metrics, clock) as arguments so the
order of effects is visible in one place:

ingest: decode/validate/tag/state (pure) → dead letters and rows to ClickHouse
(awaited until durable) → dead letters to Kafka → video state to the table → live
per-topic aggregates to the counts agent. Only after all that does the agent take
the next batch, which is when Faust acks, and later commits, the batch's offsets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import orjson

from workpulse.metrics import Metrics
from workpulse.model.aggregates import TopicMinute
from workpulse.model.message import Message
from workpulse.model.rows import DEAD_LETTERS, TOPIC_SPIKES, VIDEO_EVENTS, SpikeRow
from workpulse.model.state import VideoState
from workpulse.model.topics import TOPICS
from workpulse.processing.ingest import BatchOutput, BatchProcessor, utc
from workpulse.processing.spikes import Spike, SpikeDetector, TopicBaseline
from workpulse.processing.windows import ClosedWindow, TopicWindows
from workpulse.sinks.clickhouse import Sink, batch_token
from workpulse.worker.offsets import DurableOffsetCache, offset_ranges

log = logging.getLogger(__name__)


class StateTable(Protocol):
    """What the steps need of a Faust table: read a key, persist a key's new value
    to a given changelog partition."""

    def get(self, key: str) -> Any: ...

    def put(self, key: str, value: Any, partition: int) -> None: ...


class Publisher(Protocol):
    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None: ...


@dataclass
class Progress:
    """Running totals the demo's live view and summary read."""

    processed: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    deltas_sent: int = 0
    deltas_handled: int = 0
    topic_videos: dict[str, int] = field(default_factory=dict)
    spikes: list[Spike] = field(default_factory=list)

    def add(self, out: BatchOutput) -> None:
        self.processed += out.processed
        for (_, outcome), n in out.outcomes.items():
            if outcome == "accepted":
                self.accepted += n
            elif outcome == "rejected":
                self.rejected += n
            elif outcome == "duplicate":
                self.duplicates += n
        for (topic, kind), n in out.topic_events.items():
            if kind == "publish":
                self.topic_videos[topic] = self.topic_videos.get(topic, 0) + n


class IngestStep:
    def __init__(
        self,
        *,
        processor: BatchProcessor,
        sink: Sink,
        offsets: DurableOffsetCache,
        videos: StateTable,
        publisher: Publisher,
        metrics: Metrics,
        progress: Progress,
        dlq_topic: str,
        deltas_topic: str,
        wall_clock: Callable[[], float] = time.time,
        before_table_update: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.processor = processor
        self.sink = sink
        self.offsets = offsets
        self.videos = videos
        self.publisher = publisher
        self.metrics = metrics
        self.progress = progress
        self.dlq_topic = dlq_topic
        self.deltas_topic = deltas_topic
        self.wall_clock = wall_clock
        self.before_table_update = before_table_update

    def _load_state(self, video_id: str) -> VideoState | None:
        raw = self.videos.get(video_id)
        return VideoState.from_dict(raw) if raw is not None else None

    async def handle(self, messages: Sequence[Message]) -> BatchOutput:
        if not messages:
            return BatchOutput()
        topics = {m.topic for m in messages}
        for topic in topics:
            await self.sink.run(
                partial(self.offsets.prefetch, (VIDEO_EVENTS.name, DEAD_LETTERS.name), topic)
            )
        now = self.wall_clock()
        with self.metrics.tagging_batch_seconds.time():
            out = self.processor.process(
                messages, self._load_state, self.offsets.get, int(now * 1000)
            )
        self.metrics.batch_events.observe(len(messages))

        # 1. Durable first: nothing below is done for rows that are not in ClickHouse.
        for model, rows in (
            (DEAD_LETTERS, out.dead_rows),
            (VIDEO_EVENTS, out.video_rows),
        ):
            if rows:
                ranges = offset_ranges(model, rows)
                await self.sink.write(model, rows, batch_token(model.name, ranges))
                self.offsets.advance(model.name, ranges)

        # 2. Dead letters to Kafka for whoever repairs and replays them.
        for msg, rejection in out.rejected:
            await self.publisher.send(
                self.dlq_topic,
                msg.key,
                msg.value,
                [
                    ("reason", rejection.reason.encode()),
                    ("detail", rejection.detail.encode("utf-8", "replace")[:1000]),
                    ("source", f"{msg.topic}/{msg.partition}/{msg.offset}".encode()),
                ],
            )

        # 3. Video state, only now that its rows are durable (a crash before this
        # replays the batch: the rows are then skipped as already persisted).
        if self.before_table_update is not None:
            await self.before_table_update()
        for video_id, (partition, state) in out.states.items():
            self.videos.put(video_id, state.to_dict(), partition)

        # 4. Live aggregates for the per-topic windows (spike detection).
        if out.max_event_time_ms is not None:
            for topic in TOPICS:
                minutes = out.topic_minutes.get(topic, {})
                payload = {
                    "watermark_ms": out.max_event_time_ms,
                    "minutes": {str(k): v.to_wire() for k, v in minutes.items()},
                }
                await self.publisher.send(self.deltas_topic, topic.encode(), orjson.dumps(payload))
                self.progress.deltas_sent += 1

        self._observe(out, now)
        self.progress.add(out)
        return out

    def _observe(self, out: BatchOutput, now: float) -> None:
        m = self.metrics
        for (kind, outcome), n in out.outcomes.items():
            m.events.labels(kind, outcome).inc(n)
        for reason, n in out.rejections.items():
            m.invalid_events.labels(reason).inc(n)
        for (topic, kind), n in out.topic_events.items():
            m.topic_events.labels(topic, kind).inc(n)
        if out.max_event_time_ms is not None:
            m.event_time_lag_seconds.set(max(0.0, now - out.max_event_time_ms / 1000))


class CountsStep:
    """Per-topic windows and spike detection, fed by the ingest step's aggregates."""

    def __init__(
        self,
        *,
        windows: StateTable,
        detector: SpikeDetector,
        sink: Sink,
        publisher: Publisher,
        metrics: Metrics,
        progress: Progress,
        spikes_topic: str,
        grace_ms: int,
        taxonomy_version: Callable[[], str],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.windows = windows
        self.detector = detector
        self.sink = sink
        self.publisher = publisher
        self.metrics = metrics
        self.progress = progress
        self.spikes_topic = spikes_topic
        self.grace_ms = grace_ms
        self.taxonomy_version = taxonomy_version
        self.wall_clock = wall_clock

    async def handle(self, items: Sequence[tuple[str, int, Mapping[str, Any]]]) -> list[Spike]:
        """items: (topic, source partition, payload) from the deltas topic."""
        states: dict[str, tuple[int, TopicWindows, TopicBaseline]] = {}
        closed_by_topic: dict[str, list[ClosedWindow]] = {}
        for topic, partition, payload in items:
            if topic not in states:
                raw = self.windows.get(topic) or {}
                states[topic] = (
                    partition,
                    TopicWindows.from_dict(raw.get("windows", {})),
                    TopicBaseline.from_dict(raw["baseline"])
                    if "baseline" in raw
                    else TopicBaseline(),
                )
            _, windows, _ = states[topic]
            for minute, raw in payload.get("minutes", {}).items():
                part = TopicMinute.from_dict(raw)
                if not windows.add(int(minute), part):
                    self.metrics.late_events.labels(topic).inc(part.videos or 1)
            closed = windows.advance(int(payload["watermark_ms"]), self.grace_ms)
            closed_by_topic.setdefault(topic, []).extend(closed)

        spikes: list[tuple[Spike, ClosedWindow]] = []
        for topic, closed in closed_by_topic.items():
            _, _, baseline = states[topic]
            for window in closed:
                spike = self.detector.observe(baseline, topic, window.start_ms, window.videos)
                self.metrics.window_videos.labels(topic).set(window.videos)
                self.metrics.window_expected_videos.labels(topic).set(baseline.mean)
                if spike is not None:
                    spikes.append((spike, window))
                    self.metrics.spike_score.labels(topic).set(spike.score)
                    self.metrics.last_spike_observed.labels(topic).set(spike.observed)
                    self.metrics.last_spike_expected.labels(topic).set(spike.expected)
                    self.metrics.spikes.labels(topic).inc()

        if spikes:
            now = utc(int(self.wall_clock() * 1000))
            rows = [self._spike_row(s, w, now) for s, w in spikes]
            token = "topic_spikes:" + ",".join(f"{s.topic}@{s.window_start_ms}" for s, _ in spikes)
            await self.sink.write(TOPIC_SPIKES, rows, token)
            for spike, window in spikes:
                await self.publisher.send(
                    self.spikes_topic,
                    spike.topic.encode(),
                    orjson.dumps(spike_message(spike, window)),
                )
                self.progress.spikes.append(spike)

        for topic, (partition, windows, baseline) in states.items():
            self.windows.put(
                topic, {"windows": windows.to_dict(), "baseline": baseline.to_dict()}, partition
            )
        self.progress.deltas_handled += len(items)
        return [s for s, _ in spikes]

    def _spike_row(self, spike: Spike, window: ClosedWindow, now: Any) -> SpikeRow:
        agg = window.aggregate
        return SpikeRow(
            topic=spike.topic,
            window_start=utc(spike.window_start_ms),
            metric=spike.metric,
            observed=float(spike.observed),
            expected=float(spike.expected),
            score=float(spike.score),
            p_value=float(spike.p_value),
            detected_at=now,
            top_videos=agg.top_videos(5),
            top_hashtags=agg.top_hashtags(5),
            languages={k: int(v) for k, v in agg.langs.items()},
            taxonomy_version=self.taxonomy_version(),
            src_topic="",
            src_partition=0,
            src_offset=0,
        )


def spike_message(spike: Spike, window: ClosedWindow) -> dict[str, Any]:
    agg = window.aggregate
    return {
        "topic": spike.topic,
        "window_start": utc(spike.window_start_ms).isoformat(),
        "metric": spike.metric,
        "observed": spike.observed,
        "expected": spike.expected,
        "score": spike.score,
        "p_value": spike.p_value,
        "top_hashtags": agg.top_hashtags(5),
        "languages": dict(agg.langs),
    }
