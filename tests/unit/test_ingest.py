"""Batch processing: rows, dead letters, dedupe, deltas, replay after a crash."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest

from workpulse.model.event import ALREADY_PUBLISHED
from workpulse.model.message import Message
from workpulse.model.rows import DEAD_LETTERS, VIDEO_EVENTS
from workpulse.model.state import VideoState
from workpulse.processing.ingest import BatchOutput, BatchProcessor
from workpulse.tagging import TagResult, video_lang


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
    eid: str, vid: str, caption: str = "I quit my job", t: int = 60_000, **kw: object
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


def stats(eid: str, vid: str, views: int, t: int = 120_000) -> dict:
    return {"event_id": eid, "kind": "stats", "video_id": vid, "event_time": t, "views": views}


def messages(*payloads: dict | bytes, partition: int = 0) -> list[Message]:
    return [
        Message("in", partition, i, None, p if isinstance(p, bytes) else orjson.dumps(p))
        for i, p in enumerate(payloads)
    ]


def run(
    msgs: list[Message],
    states: dict[str, VideoState] | None = None,
    durable: dict[tuple[str, int], int] | None = None,
) -> BatchOutput:
    states = states or {}
    durable = durable or {}
    proc = BatchProcessor(lambda: KeywordTagger(), 1024)  # type: ignore[arg-type,return-value]
    return proc.process(msgs, states.get, lambda table, _t, p: durable.get((table, p), -1), 0)


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
    minute = out.topic_minutes["resignation"]
    assert minute[60_000].videos == 1 and minute[60_000].views == 10
    assert minute[120_000].views == 30


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
    assert [r[1] for r in out.dead_rows] == [ALREADY_PUBLISHED]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{oops", "not_json"),
        (b"\xff", "invalid_utf8"),
        (b"x" * 2000, "oversized"),
        (orjson.dumps({"kind": "stats"}), "missing_field"),
    ],
)
def test_dead_letters_keep_payload_and_source(payload: bytes, reason: str) -> None:
    out = run(messages(publish("e1", "v1"), payload))
    assert len(out.dead_rows) == 1
    row = dict(zip(DEAD_LETTERS.columns, out.dead_rows[0], strict=True))
    assert row["reason"] == reason and row["payload"] == payload
    assert (row["src_topic"], row["src_partition"], row["src_offset"]) == ("in", 0, 1)
    assert out.rejections == {reason: 1}
    assert out.processed == 2


def test_stats_of_unknown_video_count_for_no_topic() -> None:
    out = run(messages(stats("e1", "v9", 50)))
    assert col(out.video_rows[0], "topics") == [] and col(out.video_rows[0], "d_views") == 50
    assert out.topic_minutes == {}


def test_replay_after_crash_writes_nothing_twice_and_keeps_deltas_right() -> None:
    """Rows up to offset 1 are already in ClickHouse but the state table lost the
    update: the replay rebuilds the state and writes only offset 2."""
    batch = messages(publish("e1", "v1", views=10), stats("e2", "v1", 25), stats("e3", "v1", 40))
    out = run(batch, durable={("video_events", 0): 1})
    assert [col(r, "event_id") for r in out.video_rows] == ["e3"]
    assert col(out.video_rows[0], "d_views") == 15
    assert out.outcomes[("publish", "already_persisted")] == 1
    assert out.outcomes[("stats", "already_persisted")] == 1


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
        ("pt_BR", "", "pt"),
        # the tagger's guess (one language guess for tagging and storage)
        (None, "Je quitte mon travail, c'est la fin", "fr"),
        (None, "I quit my job and it was the best day", "en"),
        ("", "I quit my job and it was the best day", "en"),
    ],
)
def test_video_lang(lang: str | None, caption: str, expected: str) -> None:
    assert video_lang(lang, caption) == expected
