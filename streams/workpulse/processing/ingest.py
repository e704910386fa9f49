"""One batch of raw input messages → rows, dead letters, state changes, live aggregates.

Pure: no Kafka, Faust or ClickHouse. The Faust agent hands in the messages, a way
to read a video's last state, and what ClickHouse already holds (per table and
partition, the highest source offset durably written); it gets back everything to
write. Messages at or below a durable offset still update the state (so deltas stay
right after a crash) but produce no row again: that is what makes a replay after
`kill -9` neither lose nor double anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from workpulse.model.aggregates import TopicMinute
from workpulse.model.event import ALREADY_PUBLISHED, Event, Rejection
from workpulse.model.message import Message
from workpulse.model.rows import DEAD_LETTERS, VIDEO_EVENTS, DeadLetterRow, VideoEventRow
from workpulse.model.state import VideoState
from workpulse.processing.contract import DEFAULT_MAX_BYTES, Contract, decode_event
from workpulse.tagging.language import video_lang


class Tags(Protocol):
    """What ingest needs of a tagging result."""

    @property
    def topics(self) -> tuple[str, ...]: ...

    @property
    def matched(self) -> dict[str, tuple[str, ...]]: ...


class BatchTagger(Protocol):
    """What ingest needs of a tagger (`workpulse.tagging.Tagger`)."""

    @property
    def version(self) -> str: ...

    def tag_batch(self, items: Sequence[tuple[str, list[str], str | None]]) -> Sequence[Tags]: ...


@dataclass(frozen=True, slots=True)
class _NoTags:
    topics: tuple[str, ...] = ()
    matched: dict[str, tuple[str, ...]] = field(default_factory=dict)


NO_TAGS: Tags = _NoTags()


@dataclass(slots=True)
class BatchOutput:
    video_rows: list[VideoEventRow] = field(default_factory=list)
    dead_rows: list[DeadLetterRow] = field(default_factory=list)
    rejected: list[tuple[Message, Rejection]] = field(default_factory=list)
    states: dict[str, tuple[int, VideoState]] = field(default_factory=dict)
    """video_id → (source partition, new state) for every video the batch changed."""
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    topic_events: Counter[tuple[str, str]] = field(default_factory=Counter)
    topic_minutes: dict[str, dict[int, TopicMinute]] = field(default_factory=dict)
    max_event_time_ms: int | None = None

    @property
    def processed(self) -> int:
        return sum(self.outcomes.values())


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


DurableOffsets = Callable[[str, str, int], int]
"""(table, source topic, partition) → highest source offset durably in that table, or -1."""


class BatchProcessor:
    """Turns batches of messages into rows; holds no state between batches."""

    def __init__(
        self,
        tagger: Callable[[], BatchTagger],
        max_message_bytes: int = DEFAULT_MAX_BYTES,
        contract: Contract | None = None,
    ) -> None:
        self._tagger = tagger
        self._max_bytes = max_message_bytes
        self._contract = contract

    def process(
        self,
        messages: Sequence[Message],
        load_state: Callable[[str], VideoState | None],
        durable: DurableOffsets,
        now_ms: int,
    ) -> BatchOutput:
        out = BatchOutput()
        tagger = self._tagger()
        decoded = [decode_event(m.value, self._max_bytes, self._contract) for m in messages]

        # Tag all publish captions of the batch in one call (the tagger's fast path).
        to_tag = [
            (d.caption, d.hashtags, d.lang)
            for d in decoded
            if isinstance(d, Event) and d.kind == "publish"
        ]
        tags = iter(tagger.tag_batch(to_tag) if to_tag else [])

        overlay: dict[str, VideoState] = {}
        ingest_time = utc(now_ms)
        version = tagger.version
        for msg, item in zip(messages, decoded, strict=True):
            tag = next(tags) if isinstance(item, Event) and item.kind == "publish" else NO_TAGS
            if isinstance(item, Event):
                state = overlay.get(item.video_id)
                if state is None:
                    loaded = load_state(item.video_id)
                    state = loaded.copy() if loaded is not None else VideoState()
                if state.seen(item.event_id):
                    out.outcomes[(item.kind, "duplicate")] += 1
                    continue
                if item.kind == "publish" and state.published:
                    item = Rejection(ALREADY_PUBLISHED, f"video {item.video_id} already published")
                else:
                    self._accept(msg, item, state, tag, version, ingest_time, durable, out)
                    overlay[item.video_id] = state
                    out.states[item.video_id] = (msg.partition, state)
                    continue
            self._reject(msg, item, ingest_time, durable, out)
        return out

    @staticmethod
    def _accept(
        msg: Message,
        event: Event,
        state: VideoState,
        tag: Tags,
        version: str,
        ingest_time: datetime,
        durable: DurableOffsets,
        out: BatchOutput,
    ) -> None:
        state.remember(event.event_id)
        if event.kind == "publish":
            state.published = True
            state.topics = tag.topics
            state.author_id = event.author_id
            state.lang = video_lang(event.lang, event.caption)
            state.country = (event.country or "").upper()
            caption, hashtags, matched = event.caption, event.hashtags, tag.matched
        else:
            caption, hashtags, matched = "", [], {}
        deltas = state.advance_counters(event.views, event.likes, event.shares, event.comments)
        if durable(VIDEO_EVENTS.name, msg.topic, msg.partition) >= msg.offset:
            out.outcomes[(event.kind, "already_persisted")] += 1
            return
        out.outcomes[(event.kind, "accepted")] += 1
        lang = (
            state.lang
            if event.kind == "stats" or not event.lang
            else video_lang(event.lang, caption)
        )
        country = (event.country or state.country or "").upper()
        d_views, d_likes, d_shares, d_comments = deltas
        out.video_rows.append(
            VideoEventRow(
                event_id=event.event_id,
                kind=event.kind,
                video_id=event.video_id,
                event_time=utc(event.event_time_ms),
                author_id=state.author_id or event.author_id,
                author_followers=event.author_followers,
                lang=lang,
                country=country,
                caption=caption,
                hashtags=hashtags,
                topics=list(state.topics),
                matched={t: list(terms) for t, terms in matched.items()},
                views=state.views,
                likes=state.likes,
                shares=state.shares,
                comments=state.comments,
                d_views=d_views,
                d_likes=d_likes,
                d_shares=d_shares,
                d_comments=d_comments,
                taxonomy_version=version,
                ingest_time=ingest_time,
                src_topic=msg.topic,
                src_partition=msg.partition,
                src_offset=msg.offset,
            )
        )
        if out.max_event_time_ms is None or event.event_time_ms > out.max_event_time_ms:
            out.max_event_time_ms = event.event_time_ms
        minute = event.event_time_ms // 60_000 * 60_000
        for topic in state.topics:
            out.topic_events[(topic, event.kind)] += 1
            agg = out.topic_minutes.setdefault(topic, {}).get(minute)
            if agg is None:
                agg = out.topic_minutes[topic][minute] = TopicMinute()
            agg.views += deltas[0]
            agg.likes += deltas[1]
            agg.shares += deltas[2]
            if deltas[0]:
                agg.video_views[event.video_id] += deltas[0]
            if event.kind == "publish":
                agg.videos += 1
                agg.langs[lang] += 1
                for h in hashtags:
                    agg.hashtags[h.casefold()] += 1

    @staticmethod
    def _reject(
        msg: Message,
        rejection: Rejection,
        received_at: datetime,
        durable: DurableOffsets,
        out: BatchOutput,
    ) -> None:
        if durable(DEAD_LETTERS.name, msg.topic, msg.partition) >= msg.offset:
            out.outcomes[("invalid", "already_persisted")] += 1
            return
        out.outcomes[("invalid", "rejected")] += 1
        out.rejections[rejection.reason] += 1
        out.rejected.append((msg, rejection))
        out.dead_rows.append(
            DeadLetterRow(
                received_at=received_at,
                reason=rejection.reason,
                detail=rejection.detail,
                payload=msg.value,
                src_topic=msg.topic,
                src_partition=msg.partition,
                src_offset=msg.offset,
                key=msg.key or b"",
            )
        )
