"""Garbage collection for a worker process (`workpulse worker`, `workpulse demo`): set
once at start (`tune_gc`), then the young-generation threshold by what the worker is
doing (`GcThresholds`). Tests that build workers in their own process leave it alone."""

from __future__ import annotations

import gc
from collections.abc import Callable


def tune_gc() -> None:
    """Set once at the start of a worker process, after what lives for the whole run is built.

    A batch of 20,000 events makes about a million short-lived objects; with Python's
    default threshold (a young collection every 700 allocations, an older one every ten
    of those) the collector ran thousands of times per batch and walked the lexicon,
    Faust and the state cache again and again: measured here, one worker went from
    19-27k to 34-36k events/s with the thresholds below. What lives for the whole run
    (imports, the lexicon) is frozen out of the scans first.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*LIVE_GC_THRESHOLDS)


LIVE_GC_THRESHOLDS = (100_000, 50, 100)
BACKLOG_GC_THRESHOLDS = (1_000_000, 50, 100)


class GcThresholds:
    """The collector's young-generation threshold by what the worker is doing, told
    each batch's size (`batch`). In a backlog (full batches) two batches' objects are
    alive at once, and each young collection walks them: for a 200k backlog the
    collector took 1.3-1.4 s of ~8.9 s at 100,000 and 0.2 s at 1,000,000 (one worker
    22.4k → 26.3k events/s). Under live traffic (smaller batches) what survives (cached
    video states, the counts agent's minutes) piles up between collections instead: at
    500,000 a collection held the event loop up to 0.44 s (0.14 s at 100,000), so live
    traffic keeps the lower threshold."""

    def __init__(
        self, batch_size: int, set_threshold: Callable[..., None] = gc.set_threshold
    ) -> None:
        self.batch_size = batch_size
        self._set_threshold = set_threshold
        self.backlog = False

    def batch(self, size: int) -> None:
        backlog = size >= self.batch_size
        if backlog != self.backlog:
            self.backlog = backlog
            self._set_threshold(*(BACKLOG_GC_THRESHOLDS if backlog else LIVE_GC_THRESHOLDS))
