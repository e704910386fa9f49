"""Event-time tumbling windows with a grace period, per topic. Pure.

A window [start, start + size) stays open until the watermark (the newest event
time seen) passes `start + size + grace`; then it closes, in order, and minutes
without any event close as empty windows, so a baseline sees the quiet minutes too.
Events for an already closed window are late: the caller counts them (they are
still stored in ClickHouse, whose per-minute counts never close).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workpulse.model.aggregates import TopicMinute

WINDOW_MS = 60_000


@dataclass(slots=True)
class ClosedWindow:
    start_ms: int
    aggregate: TopicMinute

    @property
    def videos(self) -> int:
        return self.aggregate.videos


@dataclass(slots=True)
class TopicWindows:
    """Open windows of one topic, JSON-serialisable for a Faust table."""

    open: dict[int, TopicMinute] = field(default_factory=dict)
    last_closed_ms: int | None = None
    watermark_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "open": {str(k): v.to_dict() for k, v in self.open.items()},
            "last_closed_ms": self.last_closed_ms,
            "watermark_ms": self.watermark_ms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TopicWindows:
        return cls(
            open={int(k): TopicMinute.from_dict(v) for k, v in data.get("open", {}).items()},
            last_closed_ms=data.get("last_closed_ms"),
            watermark_ms=data.get("watermark_ms", 0),
        )

    def add(self, window_start_ms: int, part: TopicMinute) -> bool:
        """Add a partial aggregate; False (and nothing added) if that window has closed."""
        if self.last_closed_ms is not None and window_start_ms <= self.last_closed_ms:
            return False
        window = self.open.get(window_start_ms)
        if window is None:
            window = self.open[window_start_ms] = TopicMinute()
        window.merge(part)
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
            window = self.open.pop(start, None)
            closed.append(ClosedWindow(start, window if window is not None else TopicMinute()))
            self.last_closed_ms = start
            start += window_ms
        return closed
