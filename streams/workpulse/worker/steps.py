"""The work done per batch, between the pure modules and I/O, in an order that is the
guarantee.

`IngestStep.handle` (a batch of input messages, from `worker.consumer`):
1. decode and validate (pure); load the state of the batch's videos that are not in
   memory from ClickHouse (one query);
2. rows (pure): messages already stored (a replay) change and write nothing; a stored
   dead letter is sent again (what ClickHouse held from each partition is read once,
   when the partition is taken: `worker.offsets`);
   (steps 1 and 2 are `IngestStep.prepare`, which the consumer runs on the next batch
   while this one goes through the steps below: the next batch sees this one's video
   states, and is computed again if they changed or the partitions moved meanwhile);
3. `dead_letters`, then the `video_events` rows to ClickHouse, each awaited until
   durable (the replay guard relies on this order); rows ClickHouse refuses are found
   (`Sink.isolate`) and dead-lettered instead, the batch recomputed without them and
   with the dead letters already written kept;
4. Kafka: the dead letters (replayed ones again: readers de-duplicate by `source`) and
   each topic's watermarks, awaited until acknowledged;
5. the video states into memory.
Only then does the consumer commit the batch's offsets (while the input is behind,
watermark reports may be held back: then with those of the batch that sends them): a
crash at any point replays the batch, and the replay finds in ClickHouse what is
already there.

`CountsStep.handle` (watermark reports, in the counts agent): moves each topic's
per-partition watermarks forward; for the windows every partition has passed (plus
grace) it reads the counts from ClickHouse, runs the spike detector and writes spikes
to ClickHouse (one deterministic dedup token per spike) and Kafka (key = topic; readers
de-duplicate by topic, window and metric), then stores the topic's state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import orjson

from workpulse.clickhouse import Database
from workpulse.metrics import Metrics
from workpulse.model.aggregates import TopicMinute
from workpulse.model.message import Message, next_offsets
from workpulse.model.rows import DEAD_LETTERS, TOPIC_SPIKES, VIDEO_EVENTS, TableModel
from workpulse.model.state import VideoState
from workpulse.model.topics import TOPICS
from workpulse.processing.ingest import (
    BatchOutput,
    BatchProcessor,
    Decoded,
    Source,
    combine,
    count_as_rejected,
    dead_letter_payload,
    utc,
    video_ids,
    with_dead_letters,
)
from workpulse.processing.spikes import (
    METRICS,
    Spike,
    SpikeDetector,
    TopicBaseline,
    observe_range,
    spike_row,
)
from workpulse.processing.windows import (
    WINDOW_MS,
    PartitionMark,
    TopicWindows,
    covered_with,
    uncovered,
)
from workpulse.sinks.clickhouse import RowsRefused, Sink, WriteAborted, batch_token
from workpulse.sinks.retry import Backoff
from workpulse.worker.minutes import read_observations
from workpulse.worker.offsets import (
    GUARDED,
    DurableOffsetCache,
    check_not_reset,
    offset_ranges,
)
from workpulse.worker.publisher import Publisher
from workpulse.worker.video_states import VideoStateCache, load_video_states

# topic → minute start (epoch ms) → that minute's aggregate, as read from ClickHouse
Observations = Mapping[str, Mapping[int, TopicMinute]]

log = logging.getLogger(__name__)

LOOKBACK_MS = 24 * 3600 * 1000
"""How far back the first window closing of a topic reads (the detector's history)."""
STALE_CALLS = 2 * len(TOPICS)
"""Closings after which a topic that asked for no minutes no longer holds any in the
counts agent's memory (the topics on a worker close their minutes together)."""
REPORT_INTERVAL_S = 1.0
"""While the input is behind (a batch's partitions hold more to read), the ingest step
sends watermark reports at most once per this many seconds. Each report makes the
counts agent read the minutes it closes from ClickHouse, ~25 ms of chDB per read plus
~1 ms per minute: reports after every batch of a backlog (or of a stream whose event
time runs faster than the clock) had the agent's reads take most of a core from the
batches. Caught up, every change is reported at once; one held back goes with the next
report, or before the partitions move or the worker stops (`flush_reports`), and the
offsets of its batches are committed only then (`reports_held`): a crash in between
replays them, reports with them."""
MAX_EMPTY_WINDOWS = 1_440
"""Empty windows a gap feeds the detector at most (a day of minutes): a gap of any length
costs at most this, whatever the timestamps."""


class StateTable(Protocol):
    """What the counts step needs of a Faust table: read a key, persist a key's value."""

    def get(self, key: str) -> Any: ...

    def put(self, key: str, value: Any) -> None: ...


@dataclass
class Progress:
    """Running totals the demo's live view and summary read."""

    processed: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    replayed: int = 0
    watermarks_sent: int = 0
    watermarks_handled: int = 0
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
            elif outcome == "replayed":
                self.replayed += n
        for (topic, kind), n in out.topic_events.items():
            if kind == "publish":
                self.topic_videos[topic] = self.topic_videos.get(topic, 0) + n


def _headers(
    msg: Message, reason: str, detail: str, payload: bytes, key: bytes | None
) -> list[tuple[str, bytes]]:
    headers = [
        ("reason", reason.encode()),
        ("detail", detail.encode("utf-8", "replace")[:1000]),
        ("source", msg.source.encode()),
    ]
    if len(payload) < len(msg.value):  # cut (`dead_letter_payload`): its size whole
        headers.append(("truncated_from", str(len(msg.value)).encode()))
    if msg.key is not None and key is not None and len(key) < len(msg.key):  # the key too
        headers.append(("key_truncated_from", str(len(msg.key)).encode()))
    return headers


@dataclass
class PreparedBatch:
    """A batch computed by `IngestStep.prepare`, while the batch before it was written."""

    decoded: list[Decoded]
    now: float
    states: dict[str, VideoState]
    """The video states it was computed from."""
    out: BatchOutput
    generation: int
    """`IngestStep`'s generation then (it changes when the partitions move)."""
    after: BatchOutput | None
    """The output of the batch before, whose video states it saw (None: none pending)."""


class IngestStep:
    def __init__(
        self,
        *,
        processor: BatchProcessor,
        sink: Sink,
        db: Database,
        reads: Sink | None = None,
        reads_db: Database | None = None,
        offsets: DurableOffsetCache,
        states: VideoStateCache,
        publisher: Publisher,
        metrics: Metrics,
        progress: Progress,
        dlq_topic: str,
        watermarks_topic: str,
        partition_count: Callable[[], int],
        grace_ms: int,
        wall_clock: Callable[[], float] = time.time,
        highwater: Callable[[int], int | None] = lambda _partition: None,
        report_interval_s: float = REPORT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`highwater`: the end of an input partition as of the consumer's last fetch
        (None: not known, taken as caught up); `clock` times `report_interval_s` (a
        monotonic one: a wall clock set back would hold reports back as long)."""
        self.processor = processor
        self.sink = sink
        self.db = db
        # Reads through a client and thread of their own: they run while the sink inserts.
        self.reads = reads or sink
        self.reads_db = reads_db or db
        self.offsets = offsets
        self.states = states
        self.publisher = publisher
        self.metrics = metrics
        self.progress = progress
        self.dlq_topic = dlq_topic
        self.watermarks_topic = watermarks_topic
        self.partition_count = partition_count
        self.grace_ms = grace_ms
        self.wall_clock = wall_clock
        self.highwater = highwater
        self.report_interval_s = report_interval_s
        self.clock = clock
        self.marks: dict[tuple[str, int], PartitionMark] = {}
        self.dead_letter_max_bytes: int | None = None
        """The most of a message's value and key its dead letter keeps in the dead-letter
        topic, if less than max_message_bytes (`Worker.start`: a topic that takes less)."""
        self._reported: dict[tuple[str, int], int] = {}
        """Per partition, the minute (of watermark minus grace) last reported: the windows
        that may close change only when it does."""
        self._reported_at: float | None = None
        """When (`clock`) the last watermark report was sent."""
        self.reports_held = False
        """Whether watermark changes of handled batches are held back (their offsets must
        not be committed before they are sent: the next owner of a partition reports only
        what it reads after the committed offset)."""
        self._generation = 0
        self._newest: BatchOutput | None = None
        """The output of the batch computed last (the next one sees its video states)."""
        self._handled: BatchOutput | None = None
        """The output of the batch handled last, as it was written."""

    def forget(self) -> None:
        """Drop what was known about the partitions (they are moving to other workers)."""
        self._generation += 1
        self._newest = self._handled = None
        self._reported_at = None
        self.reports_held = False
        self.offsets.clear()
        self.states.clear()
        self.marks.clear()
        self._reported.clear()

    async def _video_states(
        self, ids: set[str], before: BatchOutput | None, *, cache: bool
    ) -> dict[str, Any]:
        """The states of `ids`: those the batch `before` changed (not in the cache until it
        is durable), then the cache, then ClickHouse (kept in the cache if `cache`: not
        while another batch is being written, whose states could land in the cache before
        these older ones)."""
        found: dict[str, Any] = {}
        if before is not None and before.states:
            pending = before.states
            for video_id in ids & pending.keys():
                found[video_id] = pending[video_id][1]
            ids = ids - found.keys()
        cached, missing = self.states.lookup(ids)
        found.update(cached)
        self.metrics.video_states.labels("memory").inc(len(found))
        if missing:
            loaded = await self.reads.call(
                "video states", partial(load_video_states, self.reads_db, missing)
            )
            self.metrics.video_states.labels("clickhouse").inc(len(loaded))
            self.metrics.video_states.labels("new").inc(len(missing) - len(loaded))
            if cache:
                self.states.put_many(loaded.items())
            found.update(loaded)
        return found

    async def _write_video_rows(
        self, messages: Sequence[Message], decoded: Sequence[Any], states: Mapping[str, Any],
        now_ms: int, out: BatchOutput,
    ) -> BatchOutput:  # fmt: skip
        """Store the batch's video rows; on refusal, dead-letter the rows to blame and
        store the batch recomputed without them. Returns the output that was stored."""
        refused: dict[Source, str] = {}
        # The batch's dead letters stored so far (before its rows): a recompute keeps
        # them, as a replay would find them (without the refused row, a second publish
        # would become its video's publish).
        written = [(r.src_topic, r.src_partition, r.src_offset, r.reason) for r in out.dead_rows]
        backoff = Backoff(cap_s=30.0)
        while out.video_rows:
            ranges = offset_ranges(VIDEO_EVENTS, out.video_rows)
            token = batch_token(VIDEO_EVENTS.name, ranges, len(out.video_rows))
            try:
                await self.sink.write(VIDEO_EVENTS, out.video_rows, token)
            except RowsRefused as exc:
                blamed = await self.sink.isolate(VIDEO_EVENTS, out.video_rows)
                if not blamed:  # not these rows' fault after all: wait and retry
                    self.metrics.sink_failures.labels(VIDEO_EVENTS.name).inc()  # a stall
                    delay = backoff.next_delay()
                    log.warning(
                        "insert refused but no row to blame (%s); retrying in %.1fs", exc, delay
                    )
                    await asyncio.sleep(delay)
                    continue
                for i, why in blamed.items():
                    row = out.video_rows[i]
                    refused[(row.src_topic, row.src_partition, row.src_offset)] = why
                log.warning("ClickHouse refused %d row(s): dead-lettered (%s)", len(blamed), exc)
                out = self.processor.process(
                    messages,
                    states,
                    with_dead_letters(self.offsets.replays, written),
                    now_ms,
                    decoded=decoded,
                    refused=refused,
                )
                count_as_rejected(out, written)
                # Their dead letters before the rows, like the batch's others.
                await self._write(DEAD_LETTERS, out.dead_rows)
                written += [
                    (r.src_topic, r.src_partition, r.src_offset, r.reason) for r in out.dead_rows
                ]
                continue
            self.offsets.advance(VIDEO_EVENTS.name, ranges)
            break
        return out

    async def _write(self, model: TableModel, rows: Sequence[Any]) -> None:
        if not rows:
            return
        ranges = offset_ranges(model, rows)
        backoff = Backoff(cap_s=30.0)
        while True:
            try:
                await self.sink.write(model, rows, batch_token(model.name, ranges, len(rows)))
                break
            except RowsRefused as exc:  # nothing of a dead letter is the sender's to blame
                self.metrics.sink_failures.labels(model.name).inc()  # retried: a stall
                delay = backoff.next_delay()
                log.error(
                    "ClickHouse refused %d %s row(s): %s; retrying", len(rows), model.name, exc
                )
                await asyncio.sleep(delay)
        self.offsets.advance(model.name, ranges)

    def _late_before(self, before: BatchOutput | None) -> dict[tuple[str, int], int]:
        """Per partition, the event time before which an event is late, as of the batch
        `before` (whose watermarks may not be reported yet)."""
        newest = {
            key: mark.event_time_ms
            for key, mark in self.marks.items()
            if mark.event_time_ms is not None
        }
        if before is not None:
            for key, event_time in before.watermarks.items():
                if event_time > newest.get(key, -1):
                    newest[key] = event_time
        return {key: t - self.grace_ms - WINDOW_MS for key, t in newest.items()}

    async def _compute(
        self,
        messages: Sequence[Message],
        decoded: Sequence[Decoded],
        now: float,
        before: BatchOutput | None,
        *,
        alongside: bool,
        late: dict[tuple[str, int], int] | None = None,
    ) -> tuple[dict[str, Any], BatchOutput]:
        """Steps 1-2: the batch's states (after `before`'s) and its output. `alongside`:
        while the batch before is being written. `late`: the lateness bounds, when
        `before` also holds earlier parts of this batch (their events are written with
        it: they make nothing late); default: as of `before`."""
        generation = self.offsets.generation
        for topic in {m.topic for m in messages}:
            if not self.offsets.knows(GUARDED, topic):
                await self.reads.call(
                    "durable offsets", partial(self.offsets.prefetch, GUARDED, topic)
                )
        if self.offsets.generation != generation:
            raise WriteAborted("the partitions moved while their offsets were read")
        firsts: dict[tuple[str, int], int] = {}
        for m in messages:
            firsts.setdefault((m.topic, m.partition), m.offset)
        check_not_reset(firsts, partial(self.offsets.highest, GUARDED), self.highwater)
        for (topic, partition), first in firsts.items():
            if not self.offsets.knows_replay(topic, partition):
                replay = await self.reads.call(
                    "durable offsets", partial(self.offsets.read_replay, topic, partition, first)
                )
                if not self.offsets.put_replay(topic, partition, replay, generation):
                    raise WriteAborted("the partitions moved while their offsets were read")
        states = await self._video_states(video_ids(decoded), before, cache=not alongside)
        late_before = self._late_before(before) if late is None else late
        with self.metrics.tagging_batch_seconds.time():
            out = self.processor.process(
                messages,
                states,
                self.offsets.replays,
                int(now * 1000),
                decoded=decoded,
                late_before=late_before,
            )
        self._newest = out
        return states, out

    def _decode(self, messages: Sequence[Message], now: float) -> list[Decoded]:
        with self.metrics.tagging_batch_seconds.time():
            return self.processor.decode(messages, int(now * 1000))

    async def prepare(
        self, messages: Sequence[Message], previous: PreparedBatch | None = None
    ) -> PreparedBatch | None:
        """Steps 1-2 for the next batch, while the batch before it is being written (the
        consumer runs this): its video states are those the batch before left. None when
        the partitions are moving or the worker stops (then `handle` starts over).

        `previous`: the batch's messages so far, prepared; `messages` follow them (live
        traffic: what arrives while the batch before is written is prepared in parts as
        it comes). The result covers both, as if prepared at once (`combine`)."""
        if previous is not None and previous.generation != self._generation:
            return None
        now = self.wall_clock()
        decoded = self._decode(messages, now)
        if previous is None:
            generation, after = self._generation, self._newest
            before = after
        else:
            generation, after = previous.generation, previous.after
            before = previous.out if after is None else combine(after, previous.out)
        try:
            states, out = await self._compute(
                messages, decoded, now, before, alongside=True, late=self._late_before(after)
            )
        except WriteAborted:
            return None
        if previous is None:
            return PreparedBatch(decoded, now, states, out, generation, after)
        whole = combine(previous.out, out)
        self._newest = whole
        # The states the whole batch is computed from (again, if ClickHouse refuses one of
        # its rows): a video the earlier parts changed is as they found it, or absent (new
        # before the batch), never as they left it.
        earlier = {v: st for v, st in states.items() if v not in previous.out.states}
        return PreparedBatch(
            previous.decoded + decoded,
            previous.now,
            {**earlier, **previous.states},
            whole,
            generation,
            after,
        )

    async def handle(
        self, messages: Sequence[Message], prepared: PreparedBatch | None = None
    ) -> BatchOutput:
        """`prepared`: `prepare(messages)`, if it ran; used if still valid (the batch
        before was written as it saw it, and the partitions did not move since)."""
        if not messages:
            return BatchOutput()
        if (
            prepared is not None
            and prepared.generation == self._generation
            and prepared.after is self._handled
        ):
            now, decoded, states, out = (
                prepared.now,
                prepared.decoded,
                prepared.states,
                prepared.out,
            )
        else:
            now = self.wall_clock()
            decoded = prepared.decoded if prepared is not None else self._decode(messages, now)
            states, out = await self._compute(messages, decoded, now, None, alongside=False)
        now_ms = int(now * 1000)

        # 1. Durable first: nothing below happens for rows that are not in ClickHouse.
        # The dead letters before the rows: the replay guard takes a message at or below
        # the rows' highest offset for a row unless it is a stored dead letter.
        await self._write(DEAD_LETTERS, out.dead_rows)
        out = await self._write_video_rows(messages, decoded, states, now_ms, out)

        # 2. Kafka: dead letters, then every topic's watermarks; all acknowledged.
        deliveries: list[Awaitable[Any]] = []
        limit = self.processor.max_message_bytes
        if self.dead_letter_max_bytes is not None:
            limit = min(limit, self.dead_letter_max_bytes)
        for msg, rejection in out.dlq:
            payload = dead_letter_payload(msg.value, limit)
            dead_key = None if msg.key is None else dead_letter_payload(msg.key, limit)
            deliveries.append(
                await self.publisher.send(
                    self.dlq_topic,
                    dead_key,
                    payload,
                    _headers(msg, rejection.reason, rejection.detail, payload, dead_key),
                )
            )
        for key, event_time in out.watermarks.items():
            mark = self.marks.setdefault(key, PartitionMark())
            mark.event_time_ms = max(event_time, mark.event_time_ms or event_time)
            mark.idle, mark.as_of_ms = False, now_ms
        due, minutes = self._reports_due(messages)
        deliveries += await self._send_marks(due)
        await asyncio.gather(*deliveries)
        self._reported.update(minutes)  # (only once acknowledged: else sent again)

        # 3. The video states, now that their rows are durable.
        self.states.put_many((vid, state) for vid, (_, state) in out.states.items())

        record_batch(self.metrics, messages, out, self.wall_clock())
        self.progress.add(out)
        self._handled = out
        return out

    async def flush_reports(self, timeout_s: float = 5.0) -> bool:
        """Send the watermark changes held back, or not acknowledged (before the
        partitions move away or the worker stops), in at most `timeout_s`; returns
        whether they were sent (then the offsets of their batches may be committed; else
        those batches are replayed)."""

        async def send() -> None:
            due, minutes = self._reports_due([], force=True)
            await asyncio.gather(*await self._send_marks(due))
            self._reported.update(minutes)

        try:
            await asyncio.wait_for(send(), timeout_s)
        except Exception as exc:
            log.warning("held-back watermark reports not sent: %s", exc)
            return False
        return True

    def _reports_due(
        self, messages: Sequence[Message], *, force: bool = False
    ) -> tuple[dict[tuple[str, int], PartitionMark], dict[tuple[str, int], int]]:
        """The partition marks to report after a batch: those whose minute (of watermark
        minus grace) changed since last reported; none while the input is behind and the
        last report is less than `report_interval_s` old (they go with the next), unless
        `force`. Also their minutes, to be taken as reported once the reports are
        acknowledged (a report that failed is sent again, by the next or by
        `flush_reports`: the consumer commits the batches it holds back after that)."""
        minutes = {
            key: (mark.event_time_ms - self.grace_ms) // WINDOW_MS
            for key, mark in self.marks.items()
            if mark.event_time_ms is not None
        }
        changed = {
            key: minute for key, minute in minutes.items() if self._reported.get(key) != minute
        }
        self.reports_held = False
        if not changed:
            return {}, {}
        now = self.clock()
        if (
            not force
            and self._reported_at is not None
            and now - self._reported_at < self.report_interval_s
            and self._behind(messages)
        ):
            self.reports_held = True
            return {}, {}
        self._reported_at = now
        return {key: self.marks[key] for key in changed}, changed

    def _behind(self, messages: Sequence[Message]) -> bool:
        """Whether a batch's partitions hold more to read after it: more than one offset
        (a transactional producer's commit marker takes an offset that never becomes a
        message: the last batch of such a topic would look behind, its report held back
        until more input came)."""
        for partition, end in next_offsets(messages).items():
            high = self.highwater(partition)
            if high is not None and high > end + 1:
                return True
        return False

    async def idle(self, topic: str, status: Mapping[int, bool]) -> None:
        """Report assigned partitions that became idle (or busy again) to the counts agent."""
        now_ms = int(self.wall_clock() * 1000)
        changed: dict[tuple[str, int], PartitionMark] = {}
        for p, idle in status.items():
            mark = self.marks.setdefault((topic, p), PartitionMark())
            mark.idle, mark.as_of_ms = idle, now_ms
            changed[(topic, p)] = mark
        await asyncio.gather(*await self._send_marks(changed))

    async def _send_marks(self, marks: Mapping[tuple[str, int], PartitionMark]) -> list[Any]:
        if not marks:
            return []
        by_source: dict[str, dict[str, Any]] = {}
        for (src, p), mark in marks.items():
            by_source.setdefault(src, {})[str(p)] = mark.to_dict()
        deliveries = []
        partitions = self.partition_count()
        for src, payload_marks in by_source.items():
            payload = orjson.dumps(
                {"source": src, "partitions": partitions, "marks": payload_marks}
            )
            for topic in TOPICS:
                deliveries.append(
                    await self.publisher.send(self.watermarks_topic, topic.encode(), payload)
                )
                self.progress.watermarks_sent += 1
                self.metrics.watermark_reports.labels("sent").inc()
        return deliveries


def record_batch(
    metrics: Metrics, messages: Sequence[Message], out: BatchOutput, done: float
) -> None:
    """The metrics of one handled batch (`done`: when its effects were durable)."""
    m = metrics
    m.batch_events.observe(len(messages))
    done_ms = done * 1000
    m.event_latency_seconds.observe_many(
        max(0.0, done_ms - msg.timestamp_ms) / 1000 for msg in messages if msg.timestamp_ms > 0
    )
    for (kind, outcome), n in out.outcomes.items():
        m.events.labels(kind, outcome).inc(n)
    for reason, n in out.rejections.items():
        m.invalid_events.labels(reason).inc(n)
    for (topic, kind), n in out.topic_events.items():
        m.topic_events.labels(topic, kind).inc(n)
    for topic, n in out.late.items():
        m.late_events.labels(topic).inc(n)
    if out.misrouted:
        m.misrouted_events.inc(out.misrouted)
    for (_, partition), event_time in out.watermarks.items():
        m.observe_newest_event(partition, event_time / 1000)


def spike_token(spike: Spike) -> str:
    """One dedup token per alert: a re-detection after a replay is dropped."""
    return f"topic_spikes:{spike.topic}@{spike.window_start_ms}:{spike.metric}:{spike.lang}"


class CountsStep:
    """Per-topic windows and spike detection, fed by the ingest step's watermarks."""

    def __init__(
        self,
        *,
        windows: StateTable,
        detector: SpikeDetector,
        sink: Sink,
        db: Database,
        publisher: Publisher,
        metrics: Metrics,
        progress: Progress,
        spikes_topic: str,
        grace_ms: int,
        taxonomy_version: Callable[[], str],
        wall_clock: Callable[[], float] = time.time,
        window_ms: int = WINDOW_MS,
    ) -> None:
        self.windows = windows
        self.detector = detector
        self.sink = sink
        self.db = db
        self.publisher = publisher
        self.metrics = metrics
        self.progress = progress
        self.spikes_topic = spikes_topic
        self.grace_ms = grace_ms
        self.taxonomy_version = taxonomy_version
        self.wall_clock = wall_clock
        self.window_ms = window_ms
        self._kept: dict[str, dict[int, TopicMinute]] = {}
        """The minutes read and kept (see `_observations`), per topic."""
        self._covered: list[tuple[int, int]] = []
        """The ranges [start, end) of `_kept`, ascending and apart."""
        self._asked: dict[str, tuple[int, int]] = {}
        """Per topic, the start of the minutes it asked for last, and in which call."""
        self._calls = 0

    async def _observations(self, start: int, end: int) -> Observations:
        """Every topic's minutes in [start, end), each minute read once for all topics:
        each watermark report reaches the agent once per topic (the reports are keyed by
        topic), so the topics' calls ask for overlapping ranges, some a report ahead of
        others. The minutes read are kept from the slowest topic's next window on, and a
        call reads only the parts of its range not read yet. A minute is closed for every
        topic that asks (all topics get the same partition marks, sent after the rows
        were durable), so it no longer changes (but for events past the grace, which no
        live window counts); a minute's aggregate does not depend on the range it was
        read with."""
        minutes = self._kept
        for a, b in uncovered(self._covered, start, end):
            for topic, topic_minutes in (await self._read(a, b)).items():
                minutes.setdefault(topic, {}).update(topic_minutes)
            self._covered = covered_with(self._covered, a, b)
        # Topics that stopped asking (moved to another worker) no longer hold minutes.
        stale = self._calls - STALE_CALLS
        self._asked = {t: asked for t, asked in self._asked.items() if asked[1] > stale}
        if self._calls > STALE_CALLS:  # (before, a topic may still ask from afar)
            # No topic asks for minutes before the slowest one's next window again.
            keep_from = min(start for start, _ in self._asked.values())
            self._covered = [(max(a, keep_from), b) for a, b in self._covered if b > keep_from]
            for topic_minutes in minutes.values():
                for old in [m for m in topic_minutes if m < keep_from]:
                    del topic_minutes[old]
        return {
            topic: {m: agg for m, agg in topic_minutes.items() if start <= m < end}
            for topic, topic_minutes in minutes.items()
        }

    async def _read(self, start: int, end: int) -> dict[str, dict[int, TopicMinute]]:
        read: dict[str, dict[int, TopicMinute]] = await self.sink.call(
            "closed windows", partial(read_observations, self.db, start, end)
        )
        return read

    def _load(self, topic: str) -> tuple[TopicWindows, TopicBaseline]:
        raw = self.windows.get(topic) or {}
        return (
            TopicWindows.from_dict(raw.get("windows", {})),
            TopicBaseline.from_dict(raw.get("baseline")),
        )

    async def handle(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Spike]:
        """items: (topic, watermark report) from the watermarks topic."""
        states: dict[str, tuple[TopicWindows, TopicBaseline]] = {}
        for topic, payload in items:
            if topic not in TOPICS:
                continue
            if topic not in states:
                states[topic] = self._load(topic)
            windows, _ = states[topic]
            marks = {int(p): PartitionMark.from_dict(m) for p, m in payload["marks"].items()}
            windows.update(int(payload.get("partitions", 0)), marks)

        closing: dict[str, tuple[int, int]] = {}
        for topic, (windows, _) in states.items():
            until = windows.closable(self.grace_ms, self.window_ms)
            if until is not None:
                after = windows.last_closed_ms
                closing[topic] = (after if after is not None else until - LOOKBACK_MS, until)
        found: list[Spike] = []
        if closing:
            # The minutes' full aggregates (videos, views, new authors, per language),
            # read from what is stored: the same reader `workpulse spikes` replays with.
            self._calls += 1
            for topic, (after, _) in closing.items():
                self._asked[topic] = (after + self.window_ms, self._calls)
            start = min(a for a, _ in closing.values()) + self.window_ms
            end = max(u for _, u in closing.values()) + self.window_ms
            minutes = await self._observations(start, end)
            for topic, (_, until) in closing.items():
                windows, baseline = states[topic]
                found += self._close(topic, windows, baseline, minutes.get(topic, {}), until)
        for spike in found:
            await self._emit(spike)
        for topic, (windows, baseline) in states.items():
            self.windows.put(topic, {"windows": windows.to_dict(), "baseline": baseline.to_dict()})
        self.progress.watermarks_handled += len(items)
        self.metrics.watermark_reports.labels("handled").inc(len(items))
        return found

    def _close(
        self,
        topic: str,
        windows: TopicWindows,
        baseline: TopicBaseline,
        minutes: Mapping[int, TopicMinute],
        until: int,
    ) -> list[Spike]:
        """Feed the detector every window up to `until` (its start), empty ones included
        (gaps bounded by MAX_EMPTY_WINDOWS); returns the alerts."""
        found = observe_range(
            self.detector,
            baseline,
            topic,
            minutes,
            until + self.window_ms,
            window_ms=self.window_ms,
            max_empty=MAX_EMPTY_WINDOWS,
        )
        m = self.metrics
        videos = baseline.series.get("videos")
        if videos is not None:
            m.window_videos.labels(topic).set(videos.observed)
            m.window_expected_videos.labels(topic).set(baseline.mean)
        for metric in METRICS:
            series = baseline.series.get(metric)
            if series is None:
                continue
            lower, upper = self.detector.band(baseline, metric)
            m.window_observed.labels(topic, metric).set(series.observed)
            m.window_expected.labels(topic, metric).set(series.expected)
            m.window_band_lower.labels(topic, metric).set(lower)
            m.window_band_upper.labels(topic, metric).set(upper)
        windows.last_closed_ms = until
        return found

    async def _emit(self, spike: Spike) -> None:
        now = utc(int(self.wall_clock() * 1000))
        row = spike_row(spike, detected_at=now, taxonomy_version=self.taxonomy_version())
        await self.sink.write(TOPIC_SPIKES, [row], spike_token(spike))
        delivery = await self.publisher.send(
            self.spikes_topic, spike.topic.encode(), orjson.dumps(spike_message(spike))
        )
        await delivery
        m = self.metrics
        m.spike_score.labels(spike.topic).set(spike.score)
        scope = "language" if spike.lang else "topic"
        m.last_spike_observed.labels(spike.topic, spike.metric, scope).set(spike.observed)
        m.last_spike_expected.labels(spike.topic, spike.metric, scope).set(spike.expected)
        m.last_spike_score.labels(spike.topic, spike.metric, scope, spike.severity).set(spike.score)
        m.spikes.labels(spike.topic).inc()
        m.spike_alerts.labels(spike.topic, spike.metric, spike.severity, scope).inc()
        self.progress.spikes.append(spike)


def spike_message(spike: Spike) -> dict[str, Any]:
    """The Kafka message of an alert (key: its topic); readers de-duplicate by topic,
    window, metric and language."""
    return {"window_start": utc(spike.window_start_ms).isoformat(), **spike.to_dict()}
