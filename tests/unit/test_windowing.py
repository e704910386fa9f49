"""Per-partition watermarks decide which windows may close; aggregates merge."""

from __future__ import annotations

from collections import Counter

import pytest

from workpulse.model.aggregates import WINDOW_TOP, TopicMinute
from workpulse.processing.windows import (
    WINDOW_MS,
    PartitionMark,
    TopicWindows,
    partition_idle,
    watermark_as_of,
)

M = WINDOW_MS
T = 1_767_225_600_000  # a minute boundary


def marks(**by_partition: tuple[int | None, bool, int]) -> dict[int, PartitionMark]:
    return {int(p[1:]): PartitionMark(*v) for p, v in by_partition.items()}


@pytest.mark.parametrize(
    ("partitions", "reports", "low"),
    [
        # the slowest partition decides, not the newest event seen anywhere
        (2, [marks(p0=(T + 10 * M, False, 1), p1=(T + 3 * M, False, 1))], T + 3 * M),
        # a partition nobody reported yet holds every window back
        (3, [marks(p0=(T + 10 * M, False, 1), p1=(T + 3 * M, False, 1))], None),
        # an idle partition does not hold windows back
        (2, [marks(p0=(T + 10 * M, False, 1), p1=(T + 3 * M, True, 1))], T + 10 * M),
        # an idle partition that never had an event neither
        (2, [marks(p0=(T + 10 * M, False, 1), p1=(None, True, 1))], T + 10 * M),
        # a busy partition without a valid event yet holds them back
        (2, [marks(p0=(T + 10 * M, False, 1), p1=(None, False, 1))], None),
        # all idle: the stream stopped; close up to the newest event
        (2, [marks(p0=(T + 10 * M, True, 1), p1=(T + 3 * M, True, 1))], T + 10 * M),
        # watermarks never go back (a replayed, older report changes nothing)
        (1, [marks(p0=(T + 9 * M, False, 2)), marks(p0=(T + 2 * M, False, 1))], T + 9 * M),
        # the newest report says whether a partition is idle, whatever order they come in
        (
            2,
            [
                marks(p0=(T + 9 * M, False, 5), p1=(T + 2 * M, True, 7)),
                marks(p1=(T + 2 * M, False, 3)),  # replayed, older: still idle
            ],
            T + 9 * M,
        ),
        (
            2,
            [marks(p0=(T + 9 * M, False, 5), p1=(T + 2 * M, True, 7)), marks(p1=(None, False, 8))],
            T + 2 * M,  # busy again (newer report)
        ),
    ],
)
def test_low_watermark(
    partitions: int, reports: list[dict[int, PartitionMark]], low: int | None
) -> None:
    w = TopicWindows()
    for report in reports:
        w.update(partitions, report)
    assert w.low_watermark() == low


@pytest.mark.parametrize(
    ("low", "grace", "last_closed", "closable"),
    [
        # the minute [T, T+M) waits for its end plus grace: only the one before may close
        (T + M + 30_000, 60_000, None, T - M),
        (T + 2 * M - 1, 60_000, None, T - M),
        (T + 2 * M, 60_000, None, T),
        (T + 10 * M, 0, None, T + 9 * M),
        (T + 10 * M, 0, T + 9 * M, None),  # nothing new to close
        (T + 10 * M + 1, 0, T + 8 * M, T + 9 * M),
        # any timestamps: one step, however far the watermark jumped
        (T + 10**9 * M, 0, T, T + (10**9 - 1) * M),
    ],
)
def test_closable(low: int, grace: int, last_closed: int | None, closable: int | None) -> None:
    w = TopicWindows(partitions=1, marks={0: PartitionMark(low)}, last_closed_ms=last_closed)
    assert w.closable(grace) == closable


def test_round_trip() -> None:
    w = TopicWindows(2, marks(p0=(T, False, 3), p1=(None, True, 4)), T - M)
    assert TopicWindows.from_dict(w.to_dict()) == w


def test_merge_aggregates() -> None:
    a = TopicMinute(videos=1, views=10, langs=Counter({"fr": 1}))
    a.merge(
        TopicMinute(
            videos=2,
            views=5,
            langs=Counter({"fr": 1, "ar": 1}),
            hashtags=Counter({"quitmyjob": 2}),
        )
    )
    assert a.videos == 3 and a.views == 15
    assert a.langs == {"fr": 2, "ar": 1}
    assert a.hashtags == {"quitmyjob": 2}


def test_merge_keeps_the_top_entries() -> None:
    a = TopicMinute(hashtags=Counter({f"h{i}": i + 1 for i in range(WINDOW_TOP)}))
    a.merge(TopicMinute(hashtags=Counter({"h0": 100, "new": 1})))
    assert len(a.hashtags) == WINDOW_TOP
    assert a.hashtags.most_common(1) == [("h0", 101)]
    assert "new" not in a.hashtags  # the smallest entry is the one dropped


@pytest.mark.parametrize(
    "agg",
    [
        TopicMinute(),
        TopicMinute(3, 10, 2, 1, Counter({"fr": 3}), Counter({"quitmyjob": 2}), Counter({"v": 9})),
    ],
)
def test_aggregate_round_trip(agg: TopicMinute) -> None:
    assert TopicMinute.from_dict(agg.to_dict()) == agg


@pytest.mark.parametrize(
    ("position", "end", "quiet_s", "idle"),
    [
        (100, 100, 5.0, True),  # caught up, quiet
        (100, 100, 0.5, False),  # caught up, a message less than idle_after_s ago
        (99, 100, 5.0, False),  # one message left to read
        (0, 0, 5.0, True),  # an empty partition, its end known
        # The end not known yet (no fetch answered since the assignment): a partition
        # with a backlog looked caught up, and windows closed without its events.
        (None, None, 5.0, False),
        (0, None, 5.0, False),
        (None, 100, 5.0, False),  # where to read from not known yet
    ],
)
def test_partition_idle(position: int | None, end: int | None, quiet_s: float, idle: bool) -> None:
    assert partition_idle(position, end, quiet_s, idle_after_s=1.0) is idle


H = 3_600_000
NOW = T + 24 * H


@pytest.mark.parametrize(
    ("event_time", "timestamp", "watermark"),
    [
        (NOW - H, NOW - H, NOW - H),  # behind the clock (a backlog, a replay): as it is
        (NOW - H, 0, NOW - H),  # a message without a timestamp
        (NOW, NOW, NOW),
        (NOW + 30_000, NOW, NOW),  # ahead of the clock: the clock
        (NOW + 23 * H, NOW, NOW),  # a day ahead: the clock
        (NOW + 23 * H, 0, NOW),
        # in a backlog an hour behind: its message's time and a minute, not the clock
        # (the clock let the watermark jump over the hour still unread)
        (NOW + 23 * H, NOW - H, NOW - H + M),
        (NOW - H + 30_000, NOW - H, NOW - H + 30_000),  # a device's clock a little ahead
    ],
)
def test_watermark_as_of(event_time: int, timestamp: int, watermark: int) -> None:
    assert watermark_as_of(event_time, NOW, timestamp) == watermark
