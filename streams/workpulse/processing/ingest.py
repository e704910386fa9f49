"""One batch of raw input messages → rows, dead letters, state changes, watermarks.

Pure: no Kafka, Faust or ClickHouse. The worker hands in the messages, the last state
of every video the batch mentions (`video_ids` says which), and what ClickHouse already
holds (per table and partition, the highest source offset durably written); it gets
back everything to write.

The video state is what the stored rows imply (the worker loads it from ClickHouse when
it is not in memory), so a message whose row is already stored (a replay after a crash
or a rebalance) changes nothing and writes nothing: its outcome is `replayed`. Its
dead-letter message, if it had one, is emitted again (`dlq`): downstream readers
de-duplicate by its source (topic/partition/offset).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from workpulse.model.event import ALREADY_PUBLISHED, CLICKHOUSE_REFUSED, Event, Rejection
from workpulse.model.message import Message
from workpulse.model.rows import DeadLetterRow, VideoEventRow
from workpulse.model.state import VideoState
from workpulse.processing.contract import DEFAULT_MAX_BYTES, Contract, default_contract
from workpulse.processing.windows import watermark_as_of
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


Decoded = Event | Rejection
Source = tuple[str, int, int]
"""(topic, partition, offset) of a message."""


@dataclass(frozen=True, slots=True)
class StoredSources:
    """What ClickHouse held from one source partition when the worker took it: the
    highest offset stored as a row (`rows_upto`, -1: none), and the dead letters stored
    from the first offset the worker reads on (their offsets and reasons).

    A batch's dead letters are written before its rows, both atomically, so a message at
    or below `rows_upto` that is not a stored dead letter was a row or a duplicate: it is
    replayed. A stored dead letter is sent again with its stored reason, however it decodes
    now: decided while processing (a second publish, a row ClickHouse refused) it decodes
    as an event, and dated at the contract's edge (a day ahead) it may be valid when read
    again. Going by `rows_upto` and how a message decodes now, the first were dropped
    with their dead letters unwritten or unsent after a crash, and the second stored as
    rows too."""

    rows_upto: int = -1
    dead: DeadLetterIndex = field(default_factory=lambda: DeadLetterIndex.of([]))


@dataclass(frozen=True, slots=True)
class DeadLetterIndex:
    """Offsets of stored dead letters and their reasons, ~10 bytes each: a worker that
    reads a partition again from its start (a new consumer group, offsets expired) may
    hold millions of them."""

    offsets: array[int]  # ascending
    reasons: array[int]  # index into `names`
    names: tuple[str, ...]

    @classmethod
    def of(cls, items: Iterable[tuple[int, str]]) -> DeadLetterIndex:
        """From (offset, reason) pairs in ascending offset order."""
        offsets, reasons = array("q"), array("H")
        names: dict[str, int] = {}
        for offset, reason in items:
            offsets.append(offset)
            reasons.append(names.setdefault(reason, len(names)))
        return cls(offsets, reasons, tuple(names))

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def last(self) -> int:
        return self.offsets[-1] if self.offsets else -1

    def items(self) -> Iterator[tuple[int, str]]:
        names = self.names
        return ((o, names[r]) for o, r in zip(self.offsets, self.reasons, strict=True))

    def with_more(self, pairs: Iterable[tuple[int, str]]) -> DeadLetterIndex:
        """This index and `pairs` (offsets not in it)."""
        return DeadLetterIndex.of(sorted([*self.items(), *pairs]))

    def reason(self, offset: int) -> str | None:
        i = bisect_left(self.offsets, offset)
        if i < len(self.offsets) and self.offsets[i] == offset:
            return self.names[self.reasons[i]]
        return None


RESENT_DETAIL = "sent again after a restart; the first detail is in workpulse.dead_letters"
"""The detail of a dead letter sent again whose message no longer decodes to it (the
index keeps no details: they are up to 1,000 bytes each)."""


NOTHING_STORED = StoredSources()


@dataclass(slots=True)
class BatchOutput:
    video_rows: list[VideoEventRow] = field(default_factory=list)
    dead_rows: list[DeadLetterRow] = field(default_factory=list)
    dlq: list[tuple[Message, Rejection]] = field(default_factory=list)
    """Every rejected message of the batch, replayed ones included (sent again)."""
    states: dict[str, tuple[int, VideoState]] = field(default_factory=dict)
    """video_id → (source partition, new state) for every video the batch changed."""
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(kind, outcome) → messages; kind is publish, stats or invalid; outcome is accepted,
    rejected, duplicate or replayed."""
    rejections: Counter[str] = field(default_factory=Counter)
    """reason → new dead letters (replays not included)."""
    topic_events: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(topic, kind) → accepted events."""
    watermarks: dict[tuple[str, int], int] = field(default_factory=dict)
    """(topic, partition) → newest event time (ms) of a valid event of that partition, as
    far as it may move the watermark (`windows.watermark_as_of`)."""
    late: Counter[str] = field(default_factory=Counter)
    """topic → accepted events too old for their window (see `late_before`)."""
    misrouted: int = 0
    """Accepted events whose Kafka key is not their video id (the contract's key): one
    video's events on several partitions, whose owners each keep a state of it."""

    @property
    def processed(self) -> int:
        return sum(self.outcomes.values())


def combine(first: BatchOutput, then: BatchOutput) -> BatchOutput:
    """The output of a batch computed in two parts, `then` from the video states `first`
    left: the same as computing the whole batch at once (rows and dead letters in order,
    the latest state of each video, counts added, the newest watermark per partition)."""
    watermarks = dict(first.watermarks)
    for key, event_time in then.watermarks.items():
        if event_time > watermarks.get(key, -1):
            watermarks[key] = event_time
    return BatchOutput(
        video_rows=first.video_rows + then.video_rows,
        dead_rows=first.dead_rows + then.dead_rows,
        dlq=first.dlq + then.dlq,
        states={**first.states, **then.states},
        outcomes=first.outcomes + then.outcomes,
        rejections=first.rejections + then.rejections,
        topic_events=first.topic_events + then.topic_events,
        watermarks=watermarks,
        late=first.late + then.late,
        misrouted=first.misrouted + then.misrouted,
    )


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def video_ids(decoded: Sequence[Decoded]) -> set[str]:
    """The videos whose state a batch needs."""
    return {d.video_id for d in decoded if isinstance(d, Event)}


def dead_letter_payload(value: bytes, max_bytes: int) -> bytes:
    """What a dead letter keeps of its message's value (or key): all of it, or the first
    `max_bytes` of one the contract refused as `oversized` (of a key that long too). A
    whole copy could be too large for the dead-letter topic (the worker's producer
    refused one over 4 MB, and the worker stopped on it at every restart); the message
    is whole in the input topic at the dead letter's `source` while retention keeps it."""
    return value if len(value) <= max_bytes else value[:max_bytes]


DEAD_LETTER_HEADROOM_BYTES = 4096
"""Room in a dead-letter message for its headers (a reason, a detail of at most 1,000
bytes, its source) and Kafka's record and batch overhead."""


def dead_letter_cut_bytes(max_message_bytes: int, topic_max_bytes: int | None) -> int:
    """The most of a message's value (and of its key) a dead letter keeps in the
    dead-letter topic: `max_message_bytes`, or less if the topic takes smaller messages
    (`topic_max_bytes`, its max.message.bytes; None: not known), so that a dead letter's
    value and key of that size and its headers fit (the broker refuses a larger one)."""
    if topic_max_bytes is None:
        return max_message_bytes
    return max(0, min(max_message_bytes, (topic_max_bytes - DEAD_LETTER_HEADROOM_BYTES) // 2))


def dead_letter_batch_bytes(batch_bytes: int, topic_max_bytes: int | None) -> int:
    """The producer's batch size that keeps a batch of dead letters within the dead-letter
    topic's max.message.bytes (`topic_max_bytes`; None: not known): a broker checks a
    whole batch against it, and dead letters cut to fit one by one still share batches."""
    if topic_max_bytes is None:
        return batch_bytes
    return max(1, min(batch_bytes, topic_max_bytes - DEAD_LETTER_HEADROOM_BYTES))


HASHTAG_MARKS = ("#", "＃")


def without_marks(hashtags: list[str]) -> list[str]:
    """Hashtags as the contract writes them, without their '#' (`#quitmyjob` was stored,
    and ranked in the spikes' top hashtags, apart from `quitmyjob`)."""
    if not any(tag.startswith(HASHTAG_MARKS) for tag in hashtags):
        return hashtags
    return [tag[1:] if tag.startswith(HASHTAG_MARKS) else tag for tag in hashtags]


def with_dead_letters(
    stored: Mapping[tuple[str, int], StoredSources],
    written: Sequence[tuple[str, int, int, str]],
) -> dict[tuple[str, int], StoredSources]:
    """`stored` and the dead letters (topic, partition, offset, reason) written since."""
    more: dict[tuple[str, int], list[tuple[int, str]]] = {}
    for topic, partition, offset, reason in written:
        more.setdefault((topic, partition), []).append((offset, reason))
    result = dict(stored)
    for key, pairs in more.items():
        held = stored.get(key, NOTHING_STORED)
        result[key] = StoredSources(held.rows_upto, held.dead.with_more(pairs))
    return result


def count_as_rejected(out: BatchOutput, written: Sequence[tuple[str, int, int, str]]) -> None:
    """A recompute finds the batch's dead letters written before it stored, as replays:
    they are this batch's rejections all the same (the metrics count them once)."""
    if not written:
        return
    out.outcomes[("invalid", "replayed")] -= len(written)
    out.outcomes[("invalid", "rejected")] += len(written)
    for _, _, _, reason in written:
        out.rejections[reason] += 1


def resent_rejection(reason: str, now: Decoded) -> Rejection:
    """The dead letter to send again for a message stored with `reason`, which decodes
    to `now` this time: its detail if it is the same rejection, else one that says where
    the first is."""
    if isinstance(now, Rejection) and now.reason == reason:
        return now
    if reason == ALREADY_PUBLISHED and isinstance(now, Event):
        return already_published(now.video_id)
    return Rejection(reason, RESENT_DETAIL)


def already_published(video_id: str) -> Rejection:
    return Rejection(ALREADY_PUBLISHED, f"video {video_id} already published")


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

    def decode(self, messages: Sequence[Message], now_ms: int | None) -> list[Decoded]:
        """Decode and validate every message (the first half of a batch's work)."""
        decode = (self._contract or default_contract()).decode
        max_bytes = self._max_bytes
        return [decode(m.value, max_bytes, now_ms) for m in messages]

    def process(
        self,
        messages: Sequence[Message],
        states: Mapping[str, VideoState],
        stored: Mapping[tuple[str, int], StoredSources],
        now_ms: int,
        *,
        decoded: Sequence[Decoded] | None = None,
        refused: Mapping[Source, str] | None = None,
        late_before: Mapping[tuple[str, int], int] | None = None,
    ) -> BatchOutput:
        """The batch's rows, dead letters, state changes and watermarks.

        `states`: the stored state of the videos of `video_ids(decoded)` (absent: a video
        never seen). `stored`: per (topic, partition), what ClickHouse held when the worker
        took it (absent: nothing); a message stored as a dead letter is sent to the
        dead-letter topic again with its stored reason, one at or below the rows' highest
        offset is replayed (its watermark only), any other is handled afresh.
        `refused`: messages whose row ClickHouse refused, with its reason: they are
        dead-lettered instead.
        `late_before`: per (topic, partition), event times older than this are counted
        as late (their minute has likely closed in the live windows: they are stored, but
        no longer counted in spike detection)."""
        if decoded is None:
            decoded = self.decode(messages, now_ms)
        items: list[Decoded] = list(decoded)
        for i, msg in enumerate(messages):
            why = refused.get((msg.topic, msg.partition, msg.offset)) if refused else None
            if why is not None:
                items[i] = Rejection(CLICKHOUSE_REFUSED, why)
        out = BatchOutput()
        # Per message: None (handled afresh), True (stored as a row, or a duplicate), or
        # the reason of the dead letter stored for it.
        replayed: list[bool | str | None] = [None] * len(messages)
        for i, msg in enumerate(messages):
            held = stored.get((msg.topic, msg.partition), NOTHING_STORED)
            dead_last = held.dead.last
            if msg.offset <= dead_last:
                replayed[i] = held.dead.reason(msg.offset)
            if (
                replayed[i] is None
                and msg.offset <= held.rows_upto
                # Refused by the contract, past every stored dead letter: written by a
                # version that stored rows first, killed between the two inserts (or
                # a row then, and a setting changed since): its dead letter is written.
                and not (msg.offset > dead_last and isinstance(items[i], Rejection))
            ):
                replayed[i] = True
        # Tag the publish events that may become rows, in one call (the tagger's fast path).
        tagger = self._tagger()
        to_tag = [
            (item.caption, item.hashtags, item.lang)
            for item, again in zip(items, replayed, strict=True)
            if isinstance(item, Event) and item.kind == "publish" and again is None
        ]
        tags = iter(tagger.tag_batch(to_tag) if to_tag else ())
        version = tagger.version

        overlay: dict[str, VideoState] = {}
        for msg, item, again in zip(messages, items, replayed, strict=True):
            # An event's watermark, as when it was first handled: a stored dead letter's
            # only if it was a second publish (refused rows and events dated past the
            # contract's edge were dead-lettered before it was taken).
            if isinstance(item, Event) and (
                not isinstance(again, str) or again == ALREADY_PUBLISHED
            ):
                key = (msg.topic, msg.partition)
                passed = watermark_as_of(item.event_time_ms, now_ms, msg.timestamp_ms)
                if passed > out.watermarks.get(key, -1):
                    out.watermarks[key] = passed
            if again is not None:
                if isinstance(again, str):  # its dead letter is stored: sent again with
                    kind = "invalid"  # its stored reason, not stored again
                    out.dlq.append((msg, resent_rejection(again, item)))
                else:  # stored as a row (or a duplicate): its watermark only
                    kind = item.kind if isinstance(item, Event) else "invalid"
                out.outcomes[(kind, "replayed")] += 1
                continue
            if isinstance(item, Event):
                tag = next(tags) if item.kind == "publish" else None
                state = overlay.get(item.video_id)
                if state is None:
                    loaded = states.get(item.video_id)
                    state = loaded.copy() if loaded is not None else VideoState()
                if state.seen(item.event_id):
                    out.outcomes[(item.kind, "duplicate")] += 1
                    continue
                if item.kind == "publish" and state.published:
                    item = already_published(item.video_id)
                else:
                    self._accept(msg, item, state, tag, version, now_ms, out)
                    if msg.key != item.video_id.encode():
                        out.misrouted += 1
                    overlay[item.video_id] = state
                    out.states[item.video_id] = (msg.partition, state)
                    if late_before and item.event_time_ms < late_before.get(key, -1):
                        for topic in state.topics:
                            out.late[topic] += 1
                    continue
            self._reject(msg, item, now_ms, out, self._max_bytes)
        return out

    @property
    def max_message_bytes(self) -> int:
        return self._max_bytes

    @staticmethod
    def _accept(
        msg: Message,
        event: Event,
        state: VideoState,
        tag: Tags | None,
        version: str,
        ingest_time: int,
        out: BatchOutput,
    ) -> None:
        state.remember(event.event_id)
        if event.kind == "publish" and tag is not None:
            state.published = True
            state.publish_id = event.event_id
            state.topics = tag.topics
            state.author_id = event.author_id
            state.lang = video_lang(event.lang, event.caption)
            state.country = (event.country or "").upper()
            caption, hashtags = event.caption, without_marks(event.hashtags)
            matched = {t: list(terms) for t, terms in tag.matched.items()}
            lang = state.lang
        else:
            caption, hashtags, matched, lang = "", [], {}, state.lang
        d_views, d_likes, d_shares, d_comments = state.advance_counters(
            event.views, event.likes, event.shares, event.comments
        )
        if not state.published:
            # Stats before their video's publish: no topic known yet to count the gains
            # in. They are counted by the publish, which carries all the video has so far
            # (nothing is credited before it); else they were counted in no topic.
            d_views = d_likes = d_shares = d_comments = 0
        elif event.kind == "publish":
            d_views, d_likes, d_shares, d_comments = (
                state.views,
                state.likes,
                state.shares,
                state.comments,
            )
        out.outcomes[(event.kind, "accepted")] += 1
        # Positional (the fields of VideoEventRow, in order): a keyword call costs twice
        # as much, per row, on the hot path.
        out.video_rows.append(
            VideoEventRow._make(
                (
                    event.event_id,
                    event.kind,
                    event.video_id,
                    event.event_time_ms,  # event_time
                    state.author_id or event.author_id,
                    event.author_followers,
                    lang,
                    (event.country or state.country or "").upper(),  # country
                    caption,
                    hashtags,
                    list(state.topics),  # topics
                    matched,
                    state.views,
                    state.likes,
                    state.shares,
                    state.comments,
                    d_views,
                    d_likes,
                    d_shares,
                    d_comments,
                    version,  # taxonomy_version
                    ingest_time,
                    msg.topic,  # src_topic
                    msg.partition,
                    msg.offset,
                )
            )
        )
        for topic in state.topics:
            out.topic_events[(topic, event.kind)] += 1

    @staticmethod
    def _reject(
        msg: Message,
        rejection: Rejection,
        received_at: int,
        out: BatchOutput,
        max_bytes: int,
    ) -> None:
        out.dlq.append((msg, rejection))
        out.outcomes[("invalid", "rejected")] += 1
        out.rejections[rejection.reason] += 1
        out.dead_rows.append(
            DeadLetterRow(
                received_at=received_at,
                reason=rejection.reason,
                detail=rejection.detail,
                payload=dead_letter_payload(msg.value, max_bytes),
                src_topic=msg.topic,
                src_partition=msg.partition,
                src_offset=msg.offset,
                key=dead_letter_payload(msg.key or b"", max_bytes),
            )
        )
