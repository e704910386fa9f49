"""Batch processing: rows, dead letters, dedupe, deltas, replays, refused rows."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest

from workpulse.model.event import ALREADY_PUBLISHED, CLICKHOUSE_REFUSED
from workpulse.model.message import Message
from workpulse.model.rows import DEAD_LETTERS, VIDEO_EVENTS
from workpulse.model.state import RECENT_IDS, VideoState
from workpulse.processing.ingest import (
    RESENT_DETAIL,
    BatchOutput,
    BatchProcessor,
    DeadLetterIndex,
    StoredSources,
    combine,
    count_as_rejected,
    video_ids,
    with_dead_letters,
)
from workpulse.processing.windows import MAX_LEAD_MS
from workpulse.tagging import TagResult, video_lang

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
NOW = T0 + 3_600_000


class KeywordTagger:
    """A stand-in tagger for these unit tests: 'quit' → resignation."""

    version = "test-1"

    def tag_batch(self, items: Sequence[tuple[str, Sequence[str], str | None]]) -> list[TagResult]:
        out = []
        for caption, _hashtags, _lang in items:
            if "quit" in caption:
                out.append(TagResult(("resignation",), {"resignation": ("quit",)}))
            else:
                out.append(TagResult((), {}))
        return out


def publish(
    eid: str, vid: str, caption: str = "I quit my job", t: int = T0 + 60_000, **kw: object
) -> dict:
    return {
        "event_id": eid,
        "kind": "publish",
        "video_id": vid,
        "event_time": t,
        "author_id": "a",
        "caption": caption,
        **kw,
    }


def stats(eid: str, vid: str, views: int, t: int = T0 + 120_000) -> dict:
    return {"event_id": eid, "kind": "stats", "video_id": vid, "event_time": t, "views": views}


def messages(*payloads: dict | bytes, partition: int = 0) -> list[Message]:
    return [
        Message("in", partition, i, None, p if isinstance(p, bytes) else orjson.dumps(p))
        for i, p in enumerate(payloads)
    ]


PROCESSOR = BatchProcessor(lambda: KeywordTagger(), 1024)  # type: ignore[arg-type,return-value]


def run(
    msgs: list[Message],
    states: dict[str, VideoState] | None = None,
    stored: StoredSources | None = None,
    **kwargs: object,
) -> BatchOutput:
    """`stored`: what ClickHouse held from partition 0 of "in" when the worker took it."""
    return PROCESSOR.process(
        msgs,
        states or {},
        {("in", 0): stored} if stored is not None else {},
        NOW,
        **kwargs,  # type: ignore[arg-type]
    )


def col(row: tuple, name: str) -> object:
    return row[VIDEO_EVENTS.index(name)]


def test_publish_then_stats_deltas_and_topics() -> None:
    out = run(messages(publish("e1", "v1", views=10), stats("e2", "v1", 25), stats("e3", "v1", 40)))
    assert [col(r, "d_views") for r in out.video_rows] == [10, 15, 15]
    assert all(col(r, "topics") == ["resignation"] for r in out.video_rows)
    assert col(out.video_rows[0], "matched") == {"resignation": ["quit"]}
    assert col(out.video_rows[2], "views") == 40
    assert out.states["v1"][1].views == 40
    assert out.outcomes == {("publish", "accepted"): 1, ("stats", "accepted"): 2}
    assert out.topic_events == {("resignation", "publish"): 1, ("resignation", "stats"): 2}
    assert out.watermarks == {("in", 0): T0 + 120_000}


@pytest.mark.parametrize(
    ("payloads", "outcome"),
    [
        ((publish("e1", "v1"), publish("e1", "v1")), ("publish", "duplicate")),
        ((stats("e1", "v1", 3), stats("e1", "v1", 3)), ("stats", "duplicate")),
    ],
)
def test_duplicates_in_one_batch(payloads: tuple[dict, ...], outcome: tuple[str, str]) -> None:
    out = run(messages(*payloads))
    assert len(out.video_rows) == 1
    assert out.outcomes[outcome] == 1


def test_duplicate_across_batches_uses_state() -> None:
    first = run(messages(publish("e1", "v1")))
    state = {"v1": first.states["v1"][1]}
    out = run(messages(publish("e1", "v1")), state)
    assert out.video_rows == [] and out.outcomes[("publish", "duplicate")] == 1


def test_second_publish_of_a_video_is_dead_lettered() -> None:
    out = run(messages(publish("e1", "v1"), publish("e2", "v1")))
    assert len(out.video_rows) == 1
    assert [r.reason for r in out.dead_rows] == [ALREADY_PUBLISHED]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{oops", "not_json"),
        (b"\xff", "invalid_utf8"),
        (b"x" * 2000, "oversized"),
        (orjson.dumps({"kind": "stats"}), "missing_field"),
        (orjson.dumps(stats("e9", "v1", 1, t=60_000)), "bad_event_time"),
        (b'{"event_id":"e","kind":"stats","video_id":"v","event_time":1767225600000,'
         b'"views":18446744073709551621}', "invalid_value"),
    ],
)  # fmt: skip
def test_dead_letters_keep_payload_and_source(payload: bytes, reason: str) -> None:
    out = run(messages(publish("e1", "v1"), payload))
    assert len(out.dead_rows) == 1
    row = dict(zip(DEAD_LETTERS.columns, out.dead_rows[0], strict=True))
    # all of it; the first max_message_bytes (1024 here) of an oversized one
    assert row["reason"] == reason and row["payload"] == payload[:1024]
    assert len(row["payload"]) == min(len(payload), 1024)
    assert (row["src_topic"], row["src_partition"], row["src_offset"]) == ("in", 0, 1)
    assert out.rejections == {reason: 1}
    assert [(m.offset, r.reason) for m, r in out.dlq] == [(1, reason)]
    assert out.processed == 2


@pytest.mark.parametrize(
    ("events", "d_views", "topic_views"),
    [
        # a video not published (yet): its gains wait for the topics its publish gives
        ([stats("e1", "v9", 50)], [0], 0),
        # stats before the publish: the publish carries all the video has so far (they
        # were counted in no topic: 500 of 1,500 views reached the topic)
        ([stats("e1", "v9", 1000), publish("e2", "v9"), stats("e3", "v9", 1500)],
         [0, 1000, 500], 1500),
        ([stats("e1", "v9", 1000), publish("e2", "v9", views=1200)], [0, 1200], 1200),
        ([stats("e1", "v9", 1000), publish("e2", "v9", views=10)], [0, 1000], 1000),
        # the usual order: deltas as they come
        ([publish("e1", "v9", views=10), stats("e2", "v9", 25)], [10, 15], 25),
    ],
)  # fmt: skip
def test_gains_count_in_the_topics_of_their_video(
    events: list[dict], d_views: list[int], topic_views: int
) -> None:
    out = run(messages(*events))
    assert [col(r, "d_views") for r in out.video_rows] == d_views
    assert sum(int(col(r, "d_views")) for r in out.video_rows if col(r, "topics")) == topic_views
    # whatever the order, the video's gains add up to its counter once it is published
    if any(e["kind"] == "publish" for e in events):
        assert sum(d_views) == max(int(col(r, "views")) for r in out.video_rows)


def test_replay_writes_nothing_twice_and_keeps_deltas_right() -> None:
    """Rows up to offset 1 are already in ClickHouse; the state the worker loads from
    ClickHouse includes them: the replay writes only offset 2, with the right delta."""
    first = run(messages(publish("e1", "v1", views=10), stats("e2", "v1", 25)))
    stored = {"v1": first.states["v1"][1]}
    batch = messages(publish("e1", "v1", views=10), stats("e2", "v1", 25), stats("e3", "v1", 40))
    out = run(batch, stored, StoredSources(1))
    assert [col(r, "event_id") for r in out.video_rows] == ["e3"]
    assert col(out.video_rows[0], "d_views") == 15
    assert out.outcomes == {
        ("publish", "replayed"): 1,
        ("stats", "replayed"): 1,
        ("stats", "accepted"): 1,
    }
    assert out.watermarks == {("in", 0): T0 + 120_000}  # replays move watermarks too


def test_replayed_dead_letters_are_sent_again_but_not_stored_again() -> None:
    batch = messages(b"{oops", publish("e1", "v1"), b"[]")
    out = run(batch, stored=StoredSources(-1, DeadLetterIndex.of([(0, "not_json")])))
    assert [r.src_offset for r in out.dead_rows] == [2]
    assert [(m.offset, r.reason) for m, r in out.dlq] == [(0, "not_json"), (2, "not_object")]
    assert out.dlq[0][1].detail.startswith("unexpected")  # as decoded again
    assert out.outcomes[("invalid", "replayed")] == 1
    assert out.rejections == {"not_object": 1}


PUBLISHED = VideoState(published=True, topics=("resignation",), publish_id="e1")
# A video whose 64 remembered event ids (loaded from ClickHouse) are all later ones.
BUSY = VideoState(
    published=True,
    topics=("resignation",),
    publish_id="e1",
    recent_ids=[f"later{i}" for i in range(64)],
)


@pytest.mark.parametrize(
    ("batch", "state", "stored", "rows", "dead_rows", "dlq"),
    [
        # A second publish, dead-lettered while its batch was processed. Killed after the
        # dead letters' insert and before the rows' (the dead letters go first): it is
        # sent again as stored; the rest is handled afresh.
        (
            [publish("e1", "v1"), publish("e2", "v1"), stats("e3", "v1", 5)],
            None,
            StoredSources(-1, DeadLetterIndex.of([(1, ALREADY_PUBLISHED)])),
            ["e1", "e3"],
            [],
            [(1, ALREADY_PUBLISHED)],
        ),
        # Killed after both inserts, before Kafka: it was taken for a stored row (an
        # event, below the rows' highest offset), and never sent.
        (
            [publish("e1", "v1"), publish("e2", "v1"), stats("e3", "v1", 5)],
            PUBLISHED,
            StoredSources(2, DeadLetterIndex.of([(1, ALREADY_PUBLISHED)])),
            [],
            [],
            [(1, ALREADY_PUBLISHED)],
        ),
        # Killed before any insert: handled afresh, dead-lettered again.
        (
            [publish("e1", "v1"), publish("e2", "v1"), stats("e3", "v1", 5)],
            None,
            StoredSources(),
            ["e1", "e3"],
            [(1, ALREADY_PUBLISHED)],
            [(1, ALREADY_PUBLISHED)],
        ),
        # Dead-lettered the first time (dated past the contract's edge, or a setting since
        # changed), an event now: it stays a dead letter; it was stored as a row too.
        (
            [publish("e1", "v1"), stats("e2", "v1", 5)],
            PUBLISHED,
            StoredSources(0, DeadLetterIndex.of([(1, "bad_event_time")])),
            [],
            [],
            [(1, "bad_event_time")],
        ),
        # Stored as a row the first time, refused by the contract now (a setting changed
        # since): indistinguishable from the case below, it gets its dead letter too.
        (
            [publish("e1", "v1"), {"kind": "stats"}],
            PUBLISHED,
            StoredSources(1),
            [],
            [(1, "missing_field")],
            [(1, "missing_field")],
        ),
        # The same with a dead letter stored after it (the order of this version): it
        # stays a row.
        (
            [publish("e1", "v1"), {"kind": "stats"}, b"not json"],
            PUBLISHED,
            StoredSources(1, DeadLetterIndex.of([(2, "not_json")])),
            [],
            [],
            [(2, "not_json")],
        ),
        # A duplicate (offset 2) below the rows' highest offset, its first copy past the
        # 64 event ids the stored state remembers: replayed, not stored (handled afresh,
        # it was stored twice).
        (
            [publish("e1", "v1"), stats("s1", "v1", 5), stats("s1", "v1", 5)],
            BUSY,
            StoredSources(2),
            [],
            [],
            [],
        ),
        # Written by a version that stored rows before dead letters, killed between the
        # two inserts: refused by the contract past every stored dead letter, its dead
        # letter is written (taken for a row, it was lost).
        (
            [publish("e1", "v1"), b"not json", stats("e3", "v1", 5)],
            PUBLISHED,
            StoredSources(2),
            [],
            [(1, "not_json")],
            [(1, "not_json")],
        ),
        # Past the rows' highest offset: handled as new.
        ([publish("e1", "v1"), stats("e2", "v1", 5)], PUBLISHED, StoredSources(0), ["e2"], [], []),
    ],
)
def test_the_replay_guard_goes_by_the_rows_highest_offset_and_the_stored_dead_letters(
    batch: list[dict | bytes],
    state: VideoState | None,
    stored: StoredSources,
    rows: list[str],
    dead_rows: list[tuple[int, str]],
    dlq: list[tuple[int, str]],
) -> None:
    out = run(messages(*batch), {"v1": state} if state else {}, stored)
    assert [col(r, "event_id") for r in out.video_rows] == rows
    assert [(r.src_offset, r.reason) for r in out.dead_rows] == dead_rows
    assert [(m.offset, r.reason) for m, r in out.dlq] == dlq
    details = {r.reason: r.detail for _, r in out.dlq}
    assert details.get(ALREADY_PUBLISHED, "video v1 already published") == (
        "video v1 already published"
    )
    assert details.get("bad_event_time", RESENT_DETAIL) == RESENT_DETAIL  # an event now


@pytest.mark.parametrize(
    ("pairs", "probes"),
    [
        ([], {0: None, 5: None}),
        ([(3, "bad_json"), (7, "not_object"), (9, "bad_json")],
         {2: None, 3: "bad_json", 7: "not_object", 8: None, 9: "bad_json", 10: None}),
    ],
)  # fmt: skip
def test_the_dead_letter_index_finds_each_stored_offset(
    pairs: list[tuple[int, str]], probes: dict[int, str | None]
) -> None:
    index = DeadLetterIndex.of(pairs)
    assert len(index) == len(pairs)
    assert index.last == (pairs[-1][0] if pairs else -1)
    assert {offset: index.reason(offset) for offset in probes} == probes
    assert len(index.names) == len({reason for _, reason in pairs})  # each name once


def test_a_recompute_for_a_refused_row_keeps_the_dead_letters_already_written() -> None:
    """The publish is refused by ClickHouse after the batch's dead letters (the second
    publish's) were written: recomputed without it, the second publish would become the
    video's publish, a row and a stored dead letter at once (review). It stays a dead
    letter, as a replay after a crash finds it; the metrics count each rejection once."""
    batch = messages(publish("e1", "v1"), publish("e2", "v1"), stats("e3", "v1", 5))
    first = run(batch)
    assert [(r.src_offset, r.reason) for r in first.dead_rows] == [(1, ALREADY_PUBLISHED)]
    written = [(r.src_topic, r.src_partition, r.src_offset, r.reason) for r in first.dead_rows]
    out = PROCESSOR.process(
        batch,
        {},
        with_dead_letters({}, written),
        NOW,
        refused={("in", 0, 0): "constraint no_poison violated"},
    )
    count_as_rejected(out, written)
    assert [col(r, "event_id") for r in out.video_rows] == ["e3"]  # no publish row
    assert col(out.video_rows[0], "topics") == []
    assert [(r.src_offset, r.reason) for r in out.dead_rows] == [(0, CLICKHOUSE_REFUSED)]
    assert sorted((m.offset, r.reason) for m, r in out.dlq) == [
        (0, CLICKHOUSE_REFUSED),
        (1, ALREADY_PUBLISHED),
    ]
    assert out.rejections == {CLICKHOUSE_REFUSED: 1, ALREADY_PUBLISHED: 1}
    assert out.outcomes[("invalid", "rejected")] == 2
    assert out.outcomes[("invalid", "replayed")] == 0


def test_refused_rows_are_dead_lettered_and_the_rest_recomputed() -> None:
    batch = messages(publish("e1", "v1", views=10), stats("e2", "v1", 25), stats("e3", "v1", 40))
    out = run(batch, refused={("in", 0, 1): "Code: 53. DB::Exception: bad (TYPE_MISMATCH)"})
    assert [col(r, "event_id") for r in out.video_rows] == ["e1", "e3"]
    assert [col(r, "d_views") for r in out.video_rows] == [10, 30]  # e2 never counted
    assert [(r.reason, r.src_offset) for r in out.dead_rows] == [(CLICKHOUSE_REFUSED, 1)]
    assert "TYPE_MISMATCH" in out.dead_rows[0].detail


def test_late_events_are_counted_per_topic() -> None:
    batch = messages(publish("e1", "v1", t=T0), publish("e2", "v2", t=T0 + 600_000))
    out = run(batch, late_before={("in", 0): T0 + 60_000})
    assert out.late == {"resignation": 1}


def test_video_ids_of_a_batch() -> None:
    decoded = PROCESSOR.decode(messages(publish("e1", "v1"), b"{oops", stats("e2", "v2", 1)), NOW)
    assert video_ids(decoded) == {"v1", "v2"}


def test_stats_rows_carry_video_language_and_author() -> None:
    out = run(messages(publish("e1", "v1", lang="fr-FR", country="fr"), stats("e2", "v1", 5)))
    s = out.video_rows[1]
    assert (col(s, "lang"), col(s, "country"), col(s, "author_id")) == ("fr", "FR", "a")


@pytest.mark.parametrize(
    ("lang", "caption", "expected"),
    [
        ("fr-FR", "", "fr"),
        ("EN", "", "en"),
        (None, "استقلت من وظيفتي", "ar"),
        (None, "hello", "und"),
        (None, "ok \u06ff", "ar"),  # the Arabic block's last letter
        (None, "ok \u0710", "und"),  # Syriac, just past it
        ("pt_BR", "", "pt"),
        # the tagger's guess (one language guess for tagging and storage)
        (None, "Je quitte mon travail, c'est la fin", "fr"),
        (None, "I quit my job and it was the best day", "en"),
        ("", "I quit my job and it was the best day", "en"),
    ],
)
def test_video_lang(lang: str | None, caption: str, expected: str) -> None:
    assert video_lang(lang, caption) == expected


SPLIT_BATCH = messages(
    publish("p1", "v1"),
    stats("s1", "v1", 10),
    b"not json",
    publish("p2", "v2", caption="nothing here", t=T0 + 600_000),
    stats("s1", "v1", 10),  # a duplicate (across the split point too)
    publish("p1b", "v1"),  # already published
    stats("s2", "v1", 25, t=T0 + 30_000),  # late-ish, older than the first
    stats("s3", "v2", 7),
    stats("s2", "v1", 25),  # a duplicate
    stats("s1", "v3", 40),  # before its video's publish: its gains wait for it
    publish("p3", "v3", views=45),  # carries the 45
)


@pytest.mark.parametrize("split", range(len(SPLIT_BATCH) + 1))
@pytest.mark.parametrize("stored", [False, True], ids=["new", "known"])
def test_a_batch_computed_in_two_parts_equals_the_batch_at_once(split: int, stored: bool) -> None:
    """`combine`: the second part computed from the states the first left (what the
    consumer does with a batch prepared in parts while the one before is written)."""
    before = {"v2": VideoState(published=True, topics=("resignation",), views=3)} if stored else {}
    late = {("in", 0): T0 + 60_000}
    whole = run(SPLIT_BATCH, dict(before), late_before=late)
    first = run(SPLIT_BATCH[:split], dict(before), late_before=late)
    after_first = {**before, **{v: st for v, (_, st) in first.states.items()}}
    then = run(SPLIT_BATCH[split:], after_first, late_before=late)
    combined = combine(first, then)
    assert combined == whole
    assert list(combined.states) == list(whole.states)  # in the order of first change


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (["quitmyjob", "fyp"], ["quitmyjob", "fyp"]),
        (["#quitmyjob", "fyp"], ["quitmyjob", "fyp"]),  # stored and ranked apart before
        (["＃QuitMyJob"], ["QuitMyJob"]),  # the fullwidth mark, as the tagger reads it
        (["##x", "a#b"], ["#x", "a#b"]),  # one mark, at the start only
        ([], []),
    ],
)
def test_hashtags_are_stored_without_their_mark(given: list[str], stored: list[str]) -> None:
    out = run(messages(publish("e1", "v1", hashtags=given)))
    assert col(out.video_rows[0], "hashtags") == stored


def test_a_publish_sent_again_after_many_stats_is_a_duplicate() -> None:
    """Past the 64 event ids a video remembers, the publish sent again was dead-lettered
    `video_already_published`, as if another publish of the video."""
    first = run(
        messages(
            publish("e0", "v1", views=1),
            *(stats(f"s{i}", "v1", i + 2) for i in range(RECENT_IDS + 6)),
        )
    )
    state = first.states["v1"][1]
    assert not state.seen("s0") and state.seen("e0")  # (s0 is past the 64)
    again = run(messages(publish("e0", "v1", views=1), publish("e9", "v1")), {"v1": state})
    assert again.outcomes == {("publish", "duplicate"): 1, ("invalid", "rejected"): 1}
    assert again.rejections == {"video_already_published": 1}


@pytest.mark.parametrize(
    ("key", "misrouted"),
    [(b"v1", 0), (None, 2), (b"v2", 2), (b"V1", 2)],  # the contract's key is the video id
)
def test_events_whose_key_is_not_their_video_are_counted(key: bytes | None, misrouted: int) -> None:
    """With several workers, such a video may sit on two partitions, and each owner keeps
    its own state of it: the worker cannot tell, but ops can see it happen."""
    payloads = [orjson.dumps(publish("e1", "v1")), orjson.dumps(stats("e2", "v1", 5)), b"{oops"]
    batch = [Message("in", 0, i, key, p) for i, p in enumerate(payloads)]
    assert run(batch).misrouted == misrouted  # (the dead letter is not counted)
    first = run(batch[:1])
    then = run(batch[1:], {"v1": first.states["v1"][1]})
    assert combine(first, then).misrouted == misrouted


def test_an_event_dated_ahead_in_a_backlog_moves_the_watermark_to_its_message_s_time() -> None:
    """A partition an hour behind: an event dated a day ahead moved its watermark to the
    clock (capped there), and every window of the hour still unread closed early."""
    hour_ago = NOW - 3_600_000
    payloads = [publish("e1", "v1", t=hour_ago), publish("e2", "v2", t=NOW + 23 * 3_600_000)]
    batch = [Message("in", 0, i, b"v%d" % (i + 1), orjson.dumps(p), hour_ago + i)
             for i, p in enumerate(payloads)]  # fmt: skip
    out = run(batch)
    assert out.watermarks == {("in", 0): hour_ago + 1 + MAX_LEAD_MS}
    assert out.outcomes == {("publish", "accepted"): 2}  # both stored
