"""How long to wait before the next attempt of a failed write: capped exponential backoff."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    """Delays first, 2·first, 4·first, … up to `cap` seconds."""

    first_s: float = 0.2
    cap_s: float = 30.0
    _next: float | None = None

    def next_delay(self) -> float:
        delay = self.first_s if self._next is None else self._next
        self._next = min(delay * 2, self.cap_s)
        return min(delay, self.cap_s)
