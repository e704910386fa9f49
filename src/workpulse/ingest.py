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
from typing import Any

from workpulse.events import Event, Rejection, decode_event
from workpulse.tagging import Tagger, TagResult
from workpulse.video_state import VideoState

VIDEO_COLUMNS = (
    "event_id",
    "kind",
    "video_id",
    "event_time",
    "author_id",
    "author_followers",
    "lang",
    "country",
    "caption",
    "hashtags",
    "topics",
    "matched",
    "views",
    "likes",
    "shares",
    "comments",
    "d_views",
    "d_likes",
    "d_shares",
    "d_comments",
    "taxonomy_version",
    "ingest_time",
    "src_topic",
    "src_partition",
    "src_offset",
)
DEAD_LETTER_COLUMNS = (
    "received_at",
    "reason",
    "detail",
    "payload",
    "key",
    "src_topic",
    "src_partition",
    "src_offset",
)
VIDEO_TABLE = "video_events"
DEAD_LETTER_TABLE = "dead_letters"

ALREADY_PUBLISHED = "video_already_published"
"""A second publish event (new event_id) for a known video: dead-lettered, since
counting it would count the video twice."""

NO_EMPTY: TagResult = TagResult(topics=(), matched={})


@dataclass(frozen=True, slots=True)
class Message:
    """A raw Kafka record as the agent received it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int = 0


@dataclass(slots=True)
class TopicMinute:
    """Live per-topic, per-minute aggregate of one batch (feeds windows and spikes)."""

    videos: int = 0
    views: int = 0
    likes: int = 0
    shares: int = 0
    langs: Counter[str] = field(default_factory=Counter)
    hashtags: Counter[str] = field(default_factory=Counter)
    video_views: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "videos": self.videos,
            "views": self.views,
            "likes": self.likes,
            "shares": self.shares,
            "langs": dict(self.langs),
            "hashtags": dict(self.hashtags.most_common(20)),
            "video_views": dict(self.video_views.most_common(10)),
        }


@dataclass(slots=True)
class BatchOutput:
    video_rows: list[tuple[Any, ...]] = field(default_factory=list)
    dead_rows: list[tuple[Any, ...]] = field(default_factory=list)
    rejected: list[tuple[Message, Rejection]] = field(default_factory=list)
    states: dict[str, tuple[int, VideoState]] = field(default_factory=dict)
    """video_id → (source partition, new state) for every video the batch changed."""
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    topic_events: Counter[tuple[str, str]] = field(default_factory=Counter)
    topic_minutes: dict[str, dict[int, TopicMinute]] = field(default_factory=dict)
    max_event_time_ms: int | None = None
    last_offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def processed(self) -> int:
        return sum(self.outcomes.values())


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def guess_lang(caption: str) -> str:
    """Primary language when the event has none: Arabic script → ar, else und."""
    for ch in caption:
        if "\u0600" <= ch <= "\u06ff":
            return "ar"
    return "und"


def normalise_lang(lang: str | None, caption: str) -> str:
    if not lang:
        return guess_lang(caption)
    return lang.replace("_", "-").split("-", 1)[0].lower()


DurableOffsets = Callable[[str, str, int], int]
"""(table, source topic, partition) → highest source offset durably in that table, or -1."""


class BatchProcessor:
    """Turns batches of messages into rows; holds no state between batches."""

    def __init__(self, tagger: Callable[[], Tagger], max_message_bytes: int) -> None:
        self._tagger = tagger
        self._max_bytes = max_message_bytes

    def process(
        self,
        messages: Sequence[Message],
        load_state: Callable[[str], VideoState | None],
        durable: DurableOffsets,
        now_ms: int,
    ) -> BatchOutput:
        out = BatchOutput()
        tagger = self._tagger()
        decoded = [decode_event(m.value, self._max_bytes) for m in messages]

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
            out.last_offsets[(msg.topic, msg.partition)] = msg.offset
            tag = next(tags) if isinstance(item, Event) and item.kind == "publish" else NO_EMPTY
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
        tag: TagResult,
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
            state.lang = normalise_lang(event.lang, event.caption)
            state.country = (event.country or "").upper()
            caption, hashtags, matched = event.caption, event.hashtags, tag.matched
        else:
            caption, hashtags, matched = "", [], {}
        deltas = state.advance_counters(event.views, event.likes, event.shares, event.comments)
        if durable(VIDEO_TABLE, msg.topic, msg.partition) >= msg.offset:
            out.outcomes[(event.kind, "already_persisted")] += 1
            return
        out.outcomes[(event.kind, "accepted")] += 1
        lang = (
            state.lang
            if event.kind == "stats" or not event.lang
            else normalise_lang(event.lang, caption)
        )
        country = (event.country or state.country or "").upper()
        out.video_rows.append(
            (
                event.event_id,
                event.kind,
                event.video_id,
                utc(event.event_time_ms),
                state.author_id or event.author_id,
                event.author_followers,
                lang,
                country,
                caption,
                hashtags,
                list(state.topics),
                {t: list(terms) for t, terms in matched.items()},
                state.views,
                state.likes,
                state.shares,
                state.comments,
                *deltas,
                version,
                ingest_time,
                msg.topic,
                msg.partition,
                msg.offset,
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
        if durable(DEAD_LETTER_TABLE, msg.topic, msg.partition) >= msg.offset:
            out.outcomes[("invalid", "already_persisted")] += 1
            return
        out.outcomes[("invalid", "rejected")] += 1
        out.rejections[rejection.reason] += 1
        out.rejected.append((msg, rejection))
        out.dead_rows.append(
            (
                received_at,
                rejection.reason,
                rejection.detail,
                msg.value,
                msg.key or b"",
                msg.topic,
                msg.partition,
                msg.offset,
            )
        )
