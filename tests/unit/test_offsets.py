"""The replay guard's cache of what ClickHouse holds (worker/offsets.py), on a fake
database that answers its two queries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from workpulse.processing.ingest import StoredSources
from workpulse.worker.offsets import GUARDED, DurableOffsetCache


@dataclass
class Result:
    rows: list[tuple[Any, ...]]


class FakeDatabase:
    """video_events rows up to offset 40 of partition 0; dead letters at 12 and 35."""

    def __init__(self, during: Callable[[], None] = lambda: None) -> None:
        self.during = during  # runs inside each query (a rebalance meanwhile)
        self.queries: list[str] = []

    def qualify(self, table: str) -> str:
        return f"workpulse.{table}"

    def query(self, sql: str, parameters: dict[str, Any]) -> Result:
        self.queries.append(sql)
        self.during()
        if "max(src_offset)" in sql:
            high = 40 if "video_events" in sql else 35
            return Result([(0, high)])
        dead = {12: ("bad_json", "at 12"), 35: ("video_already_published", "at 35")}
        first, upto = parameters["first"], parameters["upto"]
        return Result([(o, r, d) for o, (r, d) in dead.items() if first <= o <= upto])


AT_12 = {12: ("bad_json", "at 12")}
AT_35 = {35: ("video_already_published", "at 35")}


@pytest.mark.parametrize(
    ("first", "expected", "dead_queried"),
    [
        (0, StoredSources(40, {**AT_12, **AT_35}), True),
        (20, StoredSources(40, AT_35), True),
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
