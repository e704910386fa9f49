"""The per-topic-minute aggregate as the ingest step fills it (`add_publish`,
`add_counters`), merges it and sends it: the spike detector's observation."""

from __future__ import annotations

import random
from collections import Counter

import orjson
import pytest

from workpulse.model.aggregates import AUTHORS_KEPT, WINDOW_TOP, TopicMinute

PUBLISHES = [
    # video, author, lang, country, hashtags, new author
    ("v1", "a", "en", "US", ["QuitMyJob", "fyp"], True),
    ("v2", "a", "en", "GB", ["quitmyjob"], False),
    ("v3", "b", "fr", "FR", ["démission"], True),
    ("v4", "c", "ar", "SA", [], False),
]
GAINS = [
    ("v1", "a", "en", 500),
    ("v3", "b", "fr", 40),
    ("v1", "a", "en", 100),
    ("v9", "z", "en", 7),
]


def filled(publishes: list[tuple] = PUBLISHES, gains: list[tuple] = GAINS) -> TopicMinute:
    agg = TopicMinute()
    for video, author, lang, country, tags, new in publishes:
        agg.add_publish(video_id=video, author_id=author, lang=lang, country=country,
                        hashtags=tags, new_author=new)  # fmt: skip
    for video, author, lang, views in gains:
        agg.add_counters(video_id=video, author_id=author, lang=lang, views=views, likes=1)
    return agg


def test_add_publish_and_counters_fill_the_observation() -> None:
    agg = filled()
    assert (agg.videos, agg.new_authors, agg.views, agg.likes) == (4, 2, 647, 4)
    assert agg.authors == {"a": 2, "b": 1, "c": 1}
    assert agg.distinct_authors == 3
    assert agg.author_views == {"a": 600, "b": 40, "z": 7}
    assert agg.video_views == {"v1": 600, "v3": 40, "v9": 7}
    assert agg.langs == {"en": 2, "fr": 1, "ar": 1}
    assert agg.countries == {"US": 1, "GB": 1, "FR": 1, "SA": 1}
    assert agg.hashtags == {"quitmyjob": 2, "fyp": 1, "démission": 1}, "case-folded"
    # one slice per language, with the same figures restricted to it
    assert set(agg.by_lang) == {"en", "fr", "ar"}
    en = agg.by_lang["en"]
    assert (en.videos, en.new_authors, en.views, en.authors) == (2, 1, 607, {"a": 2})
    assert en.by_lang == {}
    for field in ("videos", "views", "new_authors", "likes"):
        assert sum(getattr(p, field) for p in agg.by_lang.values()) == getattr(agg, field)


def test_zero_deltas_add_nothing() -> None:
    agg = TopicMinute()
    agg.add_counters(video_id="v", author_id="a", lang="en", views=0)
    assert agg == TopicMinute()


def test_merge_adds_in_any_order() -> None:
    """Batches and partitions combine in any order to the same aggregate."""
    rng = random.Random(3)
    parts = []
    for i in range(6):
        pubs = [(f"v{i}{j}", f"a{rng.randrange(5)}", rng.choice(["en", "fr"]), "", ["t"],
                 rng.random() < 0.3) for j in range(4)]  # fmt: skip
        gains = [(f"v{i}{j}", f"a{j}", "en", rng.randrange(1, 100)) for j in range(3)]
        parts.append(filled(pubs, gains))
    forward, backward = TopicMinute(), TopicMinute()
    for part in parts:
        forward.merge(part)
    for part in reversed(parts):
        backward.merge(part)
    assert forward.to_dict() == backward.to_dict()
    assert forward.videos == sum(p.videos for p in parts)
    assert forward.by_lang["fr"].videos == sum(
        p.by_lang["fr"].videos for p in parts if "fr" in p.by_lang
    )


def test_merge_keeps_the_largest_authors() -> None:
    agg = TopicMinute(authors=Counter({f"a{i}": 1 for i in range(AUTHORS_KEPT)}))
    agg.merge(TopicMinute(authors=Counter({"heavy": 40, "a0": 1})))
    assert len(agg.authors) == AUTHORS_KEPT
    assert agg.authors["heavy"] == 40 and agg.authors["a0"] == 2
    assert agg.distinct_authors == AUTHORS_KEPT, "saturates: 'at least' this many"


@pytest.mark.parametrize("agg", [TopicMinute(), filled()], ids=["empty", "filled"])
def test_round_trip_through_json_and_the_wire(agg: TopicMinute) -> None:
    assert TopicMinute.from_dict(orjson.loads(orjson.dumps(agg.to_dict()))) == agg
    assert TopicMinute.from_dict(orjson.loads(orjson.dumps(agg.to_wire()))) == agg


def test_payloads_of_earlier_versions_still_read() -> None:
    old = {"videos": 3, "views": 10, "likes": 2, "shares": 1, "langs": {"fr": 3},
           "hashtags": {"quitmyjob": 2}, "video_views": {"v": 9}}  # fmt: skip
    agg = TopicMinute.from_dict(old)
    assert (agg.videos, agg.new_authors, agg.authors, agg.by_lang) == (3, 0, Counter(), {})


def test_the_wire_keeps_the_top_context() -> None:
    agg = TopicMinute(
        hashtags=Counter({f"h{i}": i + 1 for i in range(100)}),
        video_views=Counter({f"v{i}": i + 1 for i in range(100)}),
    )
    wire = agg.to_wire()
    assert len(wire["hashtags"]) == 20 and "h99" in wire["hashtags"]
    assert len(wire["video_views"]) == WINDOW_TOP and "v99" in wire["video_views"]


def test_the_wire_carries_every_publishing_author_of_a_batch() -> None:
    """The counts agent decides who is new to the topic from the batch's authors."""
    agg = TopicMinute()
    for i in range(AUTHORS_KEPT + 40):
        agg.add_publish(video_id=f"v{i}", author_id=f"a{i}", lang="fr", country="FR",
                        hashtags=[], new_author=False)  # fmt: skip
    wire = agg.to_wire()
    assert len(wire["authors"]) == AUTHORS_KEPT + 40
    assert len(wire["by_lang"]["fr"]["authors"]) == AUTHORS_KEPT + 40
    assert len(agg.to_dict()["authors"]) == AUTHORS_KEPT, "a window keeps the largest"


def crowded(seed: int, size: int) -> TopicMinute:
    """More authors, videos and hashtags than a window keeps, with ties at the cut."""
    rng = random.Random(seed)
    agg = TopicMinute()
    for i in range(size):
        lang = rng.choice(["en", "fr", "ar", "und"])
        agg.add_publish(
            video_id=f"v{i}", author_id=f"a{rng.randrange(size // 2 + 1)}", lang=lang,
            country=rng.choice(["US", "FR", ""]), hashtags=[f"h{rng.randrange(80)}"],
            new_author=rng.random() < 0.3,
        )  # fmt: skip
        agg.add_counters(
            video_id=f"v{rng.randrange(size)}", author_id=f"a{rng.randrange(size)}",
            lang=lang, views=rng.choice([1, 1, 2, 50]),
        )  # fmt: skip
    return agg


@pytest.mark.parametrize(("seed", "size"), [(1, 10), (2, 300), (3, 1200), (4, 5000)])
def test_trim_keeps_what_merging_into_an_empty_window_keeps(seed: int, size: int) -> None:
    """`trim` (in place, the ClickHouse reader's minutes) = merged into an empty window:
    the same entries, in the same order (ties at the cut included)."""
    merged = TopicMinute()
    merged.merge(crowded(seed, size))
    trimmed = crowded(seed, size)
    trimmed.trim()
    assert trimmed == merged
    assert orjson.dumps(trimmed.to_dict()) == orjson.dumps(merged.to_dict())  # order too
    assert len(trimmed.video_views) <= WINDOW_TOP and len(trimmed.authors) <= AUTHORS_KEPT
