"""The per-topic, per-minute aggregate: the one type the ingest step builds from a batch,
the counts agent receives, the live windows merge and the spike context reads."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

WIRE_TOP_HASHTAGS = 20
WIRE_TOP_VIDEOS = 10
"""A batch's aggregate keeps its top hashtags and videos on the wire (the deltas topic)."""
WINDOW_TOP = 50
"""A window keeps this many languages, hashtags and videos (context of a spike)."""


@dataclass(slots=True)
class TopicMinute:
    """New videos and counter deltas of one topic in one minute of event time, with the
    languages, hashtags and per-video view gains behind them."""

    videos: int = 0
    views: int = 0
    likes: int = 0
    shares: int = 0
    langs: Counter[str] = field(default_factory=Counter)
    hashtags: Counter[str] = field(default_factory=Counter)
    video_views: Counter[str] = field(default_factory=Counter)

    def merge(self, other: TopicMinute, top: int = WINDOW_TOP) -> None:
        """Add `other` into this aggregate, keeping the `top` entries of each counter."""
        self.videos += other.videos
        self.views += other.views
        self.likes += other.likes
        self.shares += other.shares
        for mine, theirs in (
            (self.langs, other.langs),
            (self.hashtags, other.hashtags),
            (self.video_views, other.video_views),
        ):
            mine.update(theirs)
            if len(mine) > top:
                kept = mine.most_common(top)
                mine.clear()
                mine.update(dict(kept))

    def to_dict(
        self, top_hashtags: int | None = None, top_videos: int | None = None
    ) -> dict[str, Any]:
        """JSON-safe form; optionally only the top hashtags and videos."""
        return {
            "videos": self.videos,
            "views": self.views,
            "likes": self.likes,
            "shares": self.shares,
            "langs": dict(self.langs),
            "hashtags": dict(self.hashtags.most_common(top_hashtags)),
            "video_views": dict(self.video_views.most_common(top_videos)),
        }

    def to_wire(self) -> dict[str, Any]:
        """The form sent on the deltas topic."""
        return self.to_dict(WIRE_TOP_HASHTAGS, WIRE_TOP_VIDEOS)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TopicMinute:
        return cls(
            videos=int(data.get("videos", 0)),
            views=int(data.get("views", 0)),
            likes=int(data.get("likes", 0)),
            shares=int(data.get("shares", 0)),
            langs=Counter(data.get("langs", {})),
            hashtags=Counter(data.get("hashtags", {})),
            video_views=Counter(data.get("video_views", {})),
        )

    def top_videos(self, n: int = 5) -> list[str]:
        return [v for v, _ in self.video_views.most_common(n)]

    def top_hashtags(self, n: int = 5) -> list[str]:
        return [h for h, _ in self.hashtags.most_common(n)]
