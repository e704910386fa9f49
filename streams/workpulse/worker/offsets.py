"""What ClickHouse already holds, per source partition: the replay guard.

Every row and dead letter the worker writes records its source (topic, partition,
offset). After a (re)assignment the worker asks ClickHouse for the highest source offset
stored per partition and table, and, for each partition it reads, the dead letters
stored from the first offset it reads (`StoredSources`): a stored dead letter is sent
again, a message at or below the rows' highest offset is replayed (a batch's dead letters
are written before its rows), the rest is handled afresh (`BatchProcessor.process`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from workpulse.clickhouse import Database
from workpulse.model.rows import DEAD_LETTERS, VIDEO_EVENTS, TableModel
from workpulse.processing.ingest import DeadLetterIndex, StoredSources

GUARDED = (VIDEO_EVENTS.name, DEAD_LETTERS.name)
"""The tables whose source offsets the replay guard reads."""

OffsetRange = tuple[str, int, int, int]
"""(source topic, partition, first offset, last offset)."""


def durable_offsets(db: Database, table: str, src_topic: str) -> dict[int, int]:
    """partition -> highest source offset already stored in `table` for `src_topic`."""
    res = db.query(
        f"SELECT src_partition, max(src_offset) FROM {db.qualify(table)} "
        "WHERE src_topic = {topic:String} GROUP BY src_partition",
        parameters={"topic": src_topic},
    )
    return {int(p): int(o) for p, o in res.rows}


DEAD_LETTERS_PER_QUERY = 100_000
"""Dead letters a query aims at. A partition read again from its start may hold
millions: they are read in windows of offsets, starting at this many offsets; a window
doubles while sparse, and one that would bring more than twice this many is halved and
read again, so that no result is too big to hold as Python rows (paging by LIMIT made
each page group every dead letter left)."""


def stored_dead_letters(
    db: Database, topic: str, partition: int, first: int, upto: int
) -> DeadLetterIndex:
    """The dead letters stored from the partition's offsets `first` to `upto`."""
    cap = 2 * DEAD_LETTERS_PER_QUERY

    def windows() -> Iterator[tuple[int, str]]:
        start, span = first, DEAD_LETTERS_PER_QUERY
        while start <= upto:
            end = min(upto, start + span - 1)
            rows = db.query(
                f"SELECT src_offset, any(reason) FROM {db.qualify(DEAD_LETTERS.name)} "
                "WHERE src_topic = {topic:String} AND src_partition = {partition:UInt32} "
                "AND src_offset BETWEEN {start:UInt64} AND {end:UInt64} "
                "GROUP BY src_offset ORDER BY src_offset LIMIT {limit:UInt32}",
                parameters={
                    "topic": topic,
                    "partition": partition,
                    "start": start,
                    "end": end,
                    "limit": cap + 1,
                },
            ).rows
            if len(rows) > cap and span > 1:  # too many at once: half the window, again
                span //= 2
                continue
            for offset, reason in rows:
                yield int(offset), str(reason)
            start = end + 1
            if len(rows) < DEAD_LETTERS_PER_QUERY // 2:
                span *= 2

    return DeadLetterIndex.of(windows())


class DurableOffsetCache:
    """Highest source offset already in each ClickHouse table, per partition.

    Looked up once per (table, topic) after each partition assignment and then
    advanced by the sink's own writes.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._known: dict[tuple[str, str], dict[int, int]] = {}
        self._replays: dict[tuple[str, int], StoredSources] = {}
        self.generation = 0
        """Changes at each `clear`: what a read started before brings is not kept."""

    def clear(self) -> None:
        self._known.clear()
        self._replays.clear()
        self.generation += 1

    @property
    def replays(self) -> Mapping[tuple[str, int], StoredSources]:
        """Per (topic, partition) taken: what ClickHouse held from it then (`replay`)."""
        return self._replays

    def knows_replay(self, topic: str, partition: int) -> bool:
        return (topic, partition) in self._replays

    def read_replay(self, topic: str, partition: int, first: int) -> StoredSources:
        """What ClickHouse holds from the partition for a worker that reads it from
        `first`: the rows' highest offset, and the dead letters from `first` on (read
        only if there are some that far). Call after `prefetch` of `GUARDED`, before
        anything is written from the partition; keep it with `put_replay`."""
        rows_upto = self.get(VIDEO_EVENTS.name, topic, partition)
        dead_upto = self.get(DEAD_LETTERS.name, topic, partition)
        if first > dead_upto:
            return StoredSources(rows_upto)
        return StoredSources(
            rows_upto, stored_dead_letters(self._db, topic, partition, first, dead_upto)
        )

    def put_replay(
        self, topic: str, partition: int, replay: StoredSources, generation: int
    ) -> bool:
        """Keep `replay` unless the cache was cleared since `generation` (the partitions
        moved while it was read: a stale prepare must not leave it for the next owner)."""
        if generation != self.generation:
            return False
        self._replays[(topic, partition)] = replay
        return True

    def knows(self, tables: Iterable[str], topic: str) -> bool:
        """Whether `prefetch(tables, topic)` has nothing to read."""
        return all((table, topic) in self._known for table in tables)

    def prefetch(self, tables: Iterable[str], topic: str) -> None:
        generation = self.generation
        for table in tables:
            if (table, topic) not in self._known:
                found = durable_offsets(self._db, table, topic)
                if generation == self.generation:  # else cleared while it was read
                    self._known[(table, topic)] = found

    def get(self, table: str, topic: str, partition: int) -> int:
        return self._known.get((table, topic), {}).get(partition, -1)

    def highest(self, tables: Iterable[str], topic: str, partition: int) -> int:
        """The highest source offset any of `tables` holds from the partition (-1: none)."""
        return max((self.get(table, topic, partition) for table in tables), default=-1)

    def advance(self, table: str, ranges: Iterable[OffsetRange]) -> None:
        for topic, partition, _, last in ranges:
            known = self._known.setdefault((table, topic), {})
            known[partition] = max(known.get(partition, -1), last)


class SourceReset(RuntimeError):
    """ClickHouse holds rows read from further into an input partition than the partition
    now goes: the topic was deleted and made again, or the broker lost messages."""


def check_not_reset(
    partitions: Iterable[tuple[str, int]],
    stored: Callable[[str, int], int],
    end: Callable[[int], int | None],
) -> None:
    """Raise `SourceReset` for the first (topic, partition) whose end (the next offset the
    log will give, None: not known) is not past the highest offset stored from it. An
    offset once written is never given again by a log that keeps growing; one made anew
    gives offsets from 0 again, and the replay guard took its messages for replays and
    dropped them, silently."""
    for topic, partition in sorted(partitions):
        held, high = stored(topic, partition), end(partition)
        if high is not None and held >= high:
            raise SourceReset(
                f"input partition {topic}[{partition}] ends at offset {high}, but ClickHouse "
                f"holds rows read up to offset {held} from it: the topic was made again, or "
                "the broker lost messages; what it holds now would be taken for replays and "
                "dropped. See 'An input topic made again' in docs/reliability.md"
            )


def offset_ranges(model: TableModel, rows: Sequence[Sequence[Any]]) -> list[OffsetRange]:
    """(topic, partition, first, last) source offsets covered by rows of `model`."""
    topic_i = model.source_index
    spans: dict[tuple[str, int], list[int]] = {}
    for row in rows:
        key = (row[topic_i], row[topic_i + 1])
        offset = row[topic_i + 2]
        span = spans.get(key)
        if span is None:
            spans[key] = [offset, offset]
        else:
            span[0] = min(span[0], offset)
            span[1] = max(span[1], offset)
    return [(t, p, a, b) for (t, p), (a, b) in spans.items()]
