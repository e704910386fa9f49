"""What the pipeline remembers per video, and how a new event changes it. Pure.

Counters are cumulative on the platform; deltas are taken against the largest
value seen so far, so an out-of-order stats event never produces a negative delta
and the sum of deltas always equals the largest counter seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COUNTERS = ("views", "likes", "shares", "comments")
RECENT_IDS = 64
"""Event ids remembered per video for de-duplication (a video sees a publish and a
handful of stats updates; duplicates are re-sends of recent events)."""


@dataclass(slots=True)
class VideoState:
    published: bool = False
    topics: tuple[str, ...] = ()
    author_id: str = ""
    lang: str = ""
    country: str = ""
    views: int = 0
    likes: int = 0
    shares: int = 0
    comments: int = 0
    recent_ids: list[str] = field(default_factory=list)
    publish_id: str = ""
    """The publish's event id: its re-send is a duplicate however many events came
    since (past `RECENT_IDS` it was dead-lettered `video_already_published`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "p": self.published,
            "t": list(self.topics),
            "a": self.author_id,
            "l": self.lang,
            "c": self.country,
            "n": [self.views, self.likes, self.shares, self.comments],
            "r": self.recent_ids,
            "i": self.publish_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoState:
        views, likes, shares, comments = data["n"]
        return cls(
            published=data["p"],
            topics=tuple(data["t"]),
            author_id=data["a"],
            lang=data["l"],
            country=data["c"],
            views=views,
            likes=likes,
            shares=shares,
            comments=comments,
            recent_ids=list(data["r"]),
            publish_id=data.get("i", ""),
        )

    def copy(self) -> VideoState:
        return VideoState(
            self.published,
            self.topics,
            self.author_id,
            self.lang,
            self.country,
            self.views,
            self.likes,
            self.shares,
            self.comments,
            list(self.recent_ids),
            self.publish_id,
        )

    def seen(self, event_id: str) -> bool:
        return event_id in self.recent_ids or event_id == self.publish_id

    def remember(self, event_id: str) -> None:
        self.recent_ids.append(event_id)
        if len(self.recent_ids) > RECENT_IDS:
            del self.recent_ids[: len(self.recent_ids) - RECENT_IDS]

    def advance_counters(
        self, views: int | None, likes: int | None, shares: int | None, comments: int | None
    ) -> tuple[int, int, int, int]:
        """Take new cumulative counters (None = not reported); return the deltas."""
        d_views = d_likes = d_shares = d_comments = 0
        if views is not None and views > self.views:
            d_views, self.views = views - self.views, views
        if likes is not None and likes > self.likes:
            d_likes, self.likes = likes - self.likes, likes
        if shares is not None and shares > self.shares:
            d_shares, self.shares = shares - self.shares, shares
        if comments is not None and comments > self.comments:
            d_comments, self.comments = comments - self.comments, comments
        return d_views, d_likes, d_shares, d_comments
