"""Event-time windows per topic: which one-minute windows may close. Pure.

A window [start, start + 1 min) of a topic may close once *every* input partition has
passed its end plus the grace period: each partition's watermark is the newest event
time seen in it, but never ahead of the worker's clock nor far ahead of its messages'
timestamps (`watermark_as_of`), and the topic's low watermark is the smallest of them.
Watermarks only move forward (a re-sent, older watermark changes nothing), so replays
after a crash or a rebalance are harmless.

Idle partitions: a partition that is caught up (nothing left to read) and has had no
new message for the worker's `idle_partition_s` is reported idle, and holds no window
back until it reports an event again; when every partition is idle (the stream has
stopped), windows close up to the newest watermark. A partition nobody has reported yet
(no worker owns it) holds every window back: its events may still come.

What a closed window holds comes from ClickHouse (the per-minute counts the materialized
views keep exactly), so a window's counts never depend on how batches were cut, replayed
or spread over workers. `uncovered` and `covered_with` keep track of the minutes the
counts agent has read, so that it reads each once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

WINDOW_MS = 60_000


MAX_LEAD_MS = 60_000
"""How far an event's time may run ahead of its message's timestamp in a watermark
(producers' and devices' clocks differ)."""


def watermark_as_of(event_time_ms: int, now_ms: int, timestamp_ms: int = 0) -> int:
    """How far an event moves its partition's watermark: its time, but never past the
    worker's clock (`now_ms`), nor more than `MAX_LEAD_MS` past its message's timestamp
    (`timestamp_ms`, when the message has one: 0 or less is none).

    The contract takes events dated up to a day ahead (clocks are wrong): one such event,
    or one per partition, closed every window up to its time, and the detector saw none
    of the real minutes in between: live alerts were off for a day. The clock alone does
    not cover a backlog (a partition an hour behind would jump to now, and the hour
    still unread would come late): there the message's own timestamp bounds it."""
    bound = now_ms if timestamp_ms <= 0 else min(now_ms, timestamp_ms + MAX_LEAD_MS)
    return min(event_time_ms, bound)


def partition_idle(
    position: int | None, end: int | None, quiet_s: float, idle_after_s: float
) -> bool:
    """Whether an input partition is idle: caught up (`position`, the next offset to
    read, has reached `end`, the partition's end as of the last fetch) and without a
    new message for `idle_after_s`. An end or position not known yet (None: no fetch
    has answered since the partition was assigned) is not caught up: a partition with a
    backlog looked idle until its first fetch came back, and windows closed without its
    events (at start-up, or whenever fetches took longer than `idle_after_s`)."""
    caught_up = end is not None and position is not None and position >= end
    return caught_up and quiet_s >= idle_after_s


@dataclass(slots=True)
class PartitionMark:
    """One input partition's progress: its newest event time (None: no valid event yet),
    whether it is idle, and when that was reported (wall clock, ms)."""

    event_time_ms: int | None = None
    idle: bool = False
    as_of_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.event_time_ms, "idle": self.idle, "as_of": self.as_of_ms}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PartitionMark:
        t = data.get("t")
        return cls(None if t is None else int(t), bool(data.get("idle")), int(data.get("as_of", 0)))


@dataclass(slots=True)
class TopicWindows:
    """Per topic: the input partitions' marks and the newest closed window."""

    partitions: int = 0
    marks: dict[int, PartitionMark] = field(default_factory=dict)
    last_closed_ms: int | None = None

    def update(self, partitions: int, marks: Mapping[int, PartitionMark]) -> None:
        """Take a report: event times only move forward; the newest report says idle."""
        self.partitions = max(self.partitions, partitions)
        for p, mark in marks.items():
            known = self.marks.get(p)
            if known is None:
                self.marks[p] = PartitionMark(mark.event_time_ms, mark.idle, mark.as_of_ms)
                continue
            if mark.event_time_ms is not None and (
                known.event_time_ms is None or mark.event_time_ms > known.event_time_ms
            ):
                known.event_time_ms = mark.event_time_ms
            if mark.as_of_ms >= known.as_of_ms:
                known.idle = mark.idle
                known.as_of_ms = mark.as_of_ms

    def low_watermark(self) -> int | None:
        """The event time every partition has passed (None: not known yet)."""
        if self.partitions == 0:
            return None
        active: list[int] = []
        newest: int | None = None
        for p in range(self.partitions):
            mark = self.marks.get(p)
            if mark is None:
                return None
            if mark.event_time_ms is not None and (newest is None or mark.event_time_ms > newest):
                newest = mark.event_time_ms
            if mark.idle:
                continue
            if mark.event_time_ms is None:
                return None
            active.append(mark.event_time_ms)
        return min(active) if active else newest

    def closable(self, grace_ms: int, window_ms: int = WINDOW_MS) -> int | None:
        """Start of the newest window that may close now (None: none)."""
        low = self.low_watermark()
        if low is None:
            return None
        newest = (low - grace_ms - window_ms) // window_ms * window_ms
        if self.last_closed_ms is not None and newest <= self.last_closed_ms:
            return None
        return newest

    def to_dict(self) -> dict[str, Any]:
        return {
            "partitions": self.partitions,
            "marks": {str(p): m.to_dict() for p, m in self.marks.items()},
            "last_closed_ms": self.last_closed_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TopicWindows:
        last = data.get("last_closed_ms")
        return cls(
            partitions=int(data.get("partitions", 0)),
            marks={int(p): PartitionMark.from_dict(m) for p, m in data.get("marks", {}).items()},
            last_closed_ms=None if last is None else int(last),
        )


def uncovered(covered: Sequence[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """The parts of [start, end) outside the ascending, disjoint ranges `covered`."""
    parts: list[tuple[int, int]] = []
    at = start
    for a, b in covered:
        if b <= at:
            continue
        if a >= end:
            break
        if a > at:
            parts.append((at, a))
        at = max(at, b)
    if at < end:
        parts.append((at, end))
    return parts


def covered_with(covered: Sequence[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """`covered` plus [start, end), merged (ascending, disjoint, touching ones joined)."""
    out: list[tuple[int, int]] = []
    for a, b in sorted([*covered, (start, end)]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
