"""The worker process's collector thresholds follow what it is doing: full batches (a
backlog) raise the young-generation threshold, smaller ones (live traffic) lower it."""

from __future__ import annotations

import pytest

from workpulse.worker.collector import BACKLOG_GC_THRESHOLDS, LIVE_GC_THRESHOLDS, GcThresholds

LIVE, BACKLOG = LIVE_GC_THRESHOLDS, BACKLOG_GC_THRESHOLDS


@pytest.mark.parametrize(
    ("sizes", "calls"),
    [
        ([10, 2500, 9999], []),  # live from the start (tune_gc set LIVE): nothing to change
        ([10_000], [BACKLOG]),
        ([10_000, 10_000, 10_000], [BACKLOG]),  # set once, not per batch
        ([10_000, 2500], [BACKLOG, LIVE]),  # caught up
        ([10_000, 2500, 10_000, 12_000, 1], [BACKLOG, LIVE, BACKLOG, LIVE]),
    ],
)
def test_thresholds_follow_the_batch_sizes(sizes: list[int], calls: list[tuple[int, ...]]) -> None:
    seen: list[tuple[int, ...]] = []
    policy = GcThresholds(10_000, set_threshold=lambda *t: seen.append(t))
    for size in sizes:
        policy.batch(size)
    assert seen == calls
    assert policy.backlog == (sizes[-1] >= 10_000)
