"""The replay guard's cache of what ClickHouse holds (worker/offsets.py), on a fake
database that answers its two queries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import pytest

from workpulse.processing.ingest import DeadLetterIndex, StoredSources
from workpulse.worker import offsets
from workpulse.worker.offsets import GUARDED, DurableOffsetCache


@dataclass
class Result:
    rows: list[tuple[Any, ...]]


class FakeDatabase:
    """video_events rows up to offset 40 of partition 0; dead letters at 12 and 35."""

    def __init__(self, during: Callable[[], None] = lambda: None) -> None:
        self.during = during  # runs inside each query (a rebalance meanwhile)
        self.queries: list[str] = []
        self.more: dict[int, str] = {}

    def qualify(self, table: str) -> str:
        return f"workpulse.{table}"

    def query(self, sql: str, parameters: dict[str, Any]) -> Result:
        self.queries.append(sql)
        self.during()
        if "max(src_offset)" in sql:
            high = 40 if "video_events" in sql else 35
            return Result([(0, high)])
        dead = {12: "bad_json", 35: "video_already_published"} | self.more
        start, end = parameters["start"], parameters["end"]
        found = [(o, dead[o]) for o in sorted(dead) if start <= o <= end]
        return Result(found[: parameters["limit"]])


AT_12 = [(12, "bad_json")]
AT_35 = [(35, "video_already_published")]


@pytest.mark.parametrize(
    ("first", "expected", "dead_queried"),
    [
        (0, StoredSources(40, DeadLetterIndex.of(AT_12 + AT_35)), True),
        (20, StoredSources(40, DeadLetterIndex.of(AT_35)), True),
        (36, StoredSources(40), False),  # past every dead letter: not asked
        (41, StoredSources(40), False),
    ],
)  # fmt: skip
def test_a_replay_holds_the_rows_highest_offset_and_the_dead_letters_from_the_first(
    first: int, expected: StoredSources, dead_queried: bool
) -> None:
    db = FakeDatabase()
    cache = DurableOffsetCache(db)  # type: ignore[arg-type]
    cache.prefetch(GUARDED, "in")
    generation = cache.generation
    replay = cache.read_replay("in", 0, first)
    assert replay == expected
    assert sum("any(reason)" in q for q in db.queries) == int(dead_queried)
    assert cache.put_replay("in", 0, replay, generation)
    assert cache.replays == {("in", 0): expected}


def test_what_was_read_before_the_partitions_moved_is_not_kept() -> None:
    # A batch being prepared reads while the partitions move: kept, its -1s (the cache
    # just cleared) would have told the next owner nothing was stored.
    db = FakeDatabase()
    cache = DurableOffsetCache(db)  # type: ignore[arg-type]
    cache.prefetch(GUARDED, "in")
    generation = cache.generation
    replay = cache.read_replay("in", 0, 0)
    cache.clear()
    assert not cache.put_replay("in", 0, replay, generation)
    assert not cache.knows_replay("in", 0)

    moving = DurableOffsetCache(FakeDatabase())  # type: ignore[arg-type]
    moving._db = FakeDatabase(during=moving.clear)  # type: ignore[assignment]
    moving.prefetch(GUARDED, "in")  # cleared while each query ran
    assert not moving.knows(GUARDED, "in")


@pytest.mark.parametrize("per_query", [100_000, 4, 2, 1])
def test_dead_letters_are_read_in_windows_of_offsets(
    monkeypatch: pytest.MonkeyPatch, per_query: int
) -> None:
    monkeypatch.setattr(offsets, "DEAD_LETTERS_PER_QUERY", per_query)
    db = FakeDatabase()
    db.more = {o: "empty" for o in range(20, 28)} | {40: "empty"}  # a dense stretch
    windows: list[tuple[int, int, int]] = []
    query = db.query

    def logged(sql: str, parameters: dict[str, Any]) -> Result:
        result = query(sql, parameters)
        windows.append((parameters["start"], parameters["end"], len(result.rows)))
        return result

    db.query = logged  # type: ignore[method-assign]
    index = offsets.stored_dead_letters(db, "in", 0, 0, 40)  # type: ignore[arg-type]
    assert list(index.offsets) == [12, *range(20, 28), 35, 40]
    assert [index.reason(o) for o in (12, 20, 35)] == [
        "bad_json",
        "empty",
        "video_already_published",
    ]
    # Read, never more than twice the aim at once: a window over it is halved and read
    # again; the windows kept cover 0-40 once, in order.
    kept = [(a, b) for a, b, n in windows if n <= 2 * per_query]
    assert kept[0][0] == 0 and kept[-1][1] == 40
    assert all(b + 1 == c for (_, b), (c, _) in pairwise(kept))
    if per_query == 100_000:
        assert len(windows) == 1
    else:
        assert max(n for _, _, n in windows) <= 2 * per_query + 1
