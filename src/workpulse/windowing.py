"""Event-time tumbling windows with a grace period, per topic. Pure.

A window [start, start + size) stays open until the watermark (the newest event
time seen) passes `start + size + grace`; then it closes, in order, and minutes
without any event close as empty windows, so a baseline sees the quiet minutes too.
Events for an already closed window are late: the caller counts them (they are
still stored in ClickHouse, whose per-minute counts never close).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

WINDOW_MS = 60_000


def merge_aggregate(into: dict[str, Any], part: dict[str, Any]) -> None:
    """Add one partial aggregate (see `ingest.TopicMinute.to_dict`) into another."""
    for key in ("videos", "views", "likes", "shares"):
        into[key] = into.get(key, 0) + part.get(key, 0)
    for key in ("langs", "hashtags", "video_views"):
        merged = Counter(into.get(key, {}))
        merged.update(part.get(key, {}))
        into[key] = dict(merged.most_common(50))


@dataclass(slots=True)
class ClosedWindow:
    start_ms: int
    aggregate: dict[str, Any]

    @property
    def videos(self) -> int:
        return int(self.aggregate.get("videos", 0))


@dataclass(slots=True)
class TopicWindows:
    """Open windows of one topic, JSON-serialisable for a Faust table."""

    open: dict[int, dict[str, Any]] = field(default_factory=dict)
    last_closed_ms: int | None = None
    watermark_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "open": {str(k): v for k, v in self.open.items()},
            "last_closed_ms": self.last_closed_ms,
            "watermark_ms": self.watermark_ms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TopicWindows:
        return cls(
            open={int(k): v for k, v in data.get("open", {}).items()},
            last_closed_ms=data.get("last_closed_ms"),
            watermark_ms=data.get("watermark_ms", 0),
        )

    def add(self, window_start_ms: int, part: dict[str, Any]) -> bool:
        """Add a partial aggregate; False (and nothing added) if that window has closed."""
        if self.last_closed_ms is not None and window_start_ms <= self.last_closed_ms:
            return False
        merge_aggregate(self.open.setdefault(window_start_ms, {}), part)
        return True

    def advance(
        self, watermark_ms: int, grace_ms: int, window_ms: int = WINDOW_MS
    ) -> list[ClosedWindow]:
        """Move the watermark forward; return the windows it closes, oldest first."""
        self.watermark_ms = max(self.watermark_ms, watermark_ms)
        # Newest window start that may close: its end plus grace is behind the watermark.
        closable = (self.watermark_ms - grace_ms - window_ms) // window_ms * window_ms
        if self.last_closed_ms is None:
            if not self.open:
                return []
            first = min(self.open)
        else:
            first = self.last_closed_ms + window_ms
        closed: list[ClosedWindow] = []
        start = first
        while start <= closable:
            closed.append(ClosedWindow(start, self.open.pop(start, {})))
            self.last_closed_ms = start
            start += window_ms
        return closed
