"""An accepted input event (the DESIGN.md contract), and why a message was refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["publish", "stats"]


@dataclass(slots=True)
class Event:
    """An accepted event, with event time normalised to epoch milliseconds."""

    event_id: str
    kind: Kind
    video_id: str
    event_time_ms: int
    author_id: str = ""
    author_followers: int = 0
    caption: str = ""
    hashtags: list[str] = field(default_factory=list)
    lang: str | None = None
    country: str | None = None
    views: int | None = None
    likes: int | None = None
    shares: int | None = None
    comments: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was not accepted. `reason` is a short stable code (a metric label)."""

    reason: str
    detail: str


ALREADY_PUBLISHED = "video_already_published"
"""A second publish event (new event_id) for a known video: dead-lettered, since
counting it would count the video twice."""

CLICKHOUSE_REFUSED = "clickhouse_refused"
"""A valid event whose row ClickHouse itself refused (found by bisecting the batch
against a twin table that stores nothing); the detail is ClickHouse's message."""

REASONS: tuple[str, ...] = (
    "oversized",
    "invalid_utf8",
    "not_json",
    "not_object",
    "missing_field",
    "wrong_type",
    "invalid_value",
    "bad_event_time",
    ALREADY_PUBLISHED,
    CLICKHOUSE_REFUSED,
)
"""Every rejection reason code; metrics and dashboards use these labels."""
