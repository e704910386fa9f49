"""The in-memory cache of video states (bounded by count and by idle time), and the
chunks of ids the state query reads them in."""

from __future__ import annotations

from typing import Any

import pytest

from workpulse.model.state import VideoState
from workpulse.worker.video_states import VideoStateCache, chunks


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def state(views: int) -> VideoState:
    return VideoState(published=True, views=views)


def test_hits_and_misses() -> None:
    cache = VideoStateCache(max_videos=10, ttl_s=60, clock=Clock())
    cache.put_many([("a", state(1))])
    found, missing = cache.lookup(["a", "b"])
    assert found == {"a": state(1)} and missing == ["b"]
    assert (cache.hits, cache.misses) == (1, 1)


@pytest.mark.parametrize(("max_videos", "kept"), [(3, {"c", "d", "e"}), (10, set("abcde"))])
def test_least_recently_stored_leave_first(max_videos: int, kept: set[str]) -> None:
    cache = VideoStateCache(max_videos=max_videos, ttl_s=60, clock=Clock())
    for i, video in enumerate("abcde"):
        cache.put_many([(video, state(i))])
    assert len(cache) == len(kept)
    found, _ = cache.lookup("abcde")
    assert set(found) == kept


def test_idle_entries_expire() -> None:
    clock = Clock()
    cache = VideoStateCache(max_videos=10, ttl_s=60, clock=clock)
    cache.put_many([("old", state(1))])
    clock.now = 50
    cache.put_many([("new", state(2))])
    clock.now = 70  # "old" idle for 70 s, "new" for 20 s
    found, missing = cache.lookup(["old", "new"])
    assert set(found) == {"new"} and missing == ["old"]  # reloaded from ClickHouse, not lost
    cache.put_many([])
    assert len(cache) == 1 and cache.evicted == 1


def test_clear() -> None:
    cache = VideoStateCache(clock=Clock())
    cache.put_many([("a", state(1))])
    cache.clear()
    assert len(cache) == 0


@pytest.mark.parametrize(
    ("ids", "max_chars", "expected"),
    [
        ([], 10, []),
        (["a", "b", "c"], 100, [["a", "b", "c"]]),
        (["aaaa", "bbbb", "cccc"], 16, [["aaaa", "bbbb"], ["cccc"]]),  # 8 characters each
        (["x" * 50, "b"], 16, [["x" * 50], ["b"]]),  # longer than a chunk: alone
        ([f"{i:036d}" for i in range(4000)], 64 * 1024, "under"),
    ],
)
def test_state_queries_take_the_ids_in_chunks(
    ids: list[str], max_chars: int, expected: Any
) -> None:
    got = list(chunks(ids, max_chars))
    assert [i for chunk in got for i in chunk] == ids
    if expected == "under":  # 4,000 UUID-sized ids: 160k characters, 3 queries
        assert len(got) == 3
        assert all(sum(len(i) + 4 for i in chunk) <= max_chars for chunk in got)
    else:
        assert got == expected
