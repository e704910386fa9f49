"""The per-topic, per-minute aggregate: the one type the ingest step builds from a batch,
the counts agent receives, the live windows merge, the spike detector observes and the
spike context reads.

A `TopicMinute` is also the spike detector's *observation* of one topic in one minute
of event time (docs/spikes.md): new videos, view gain, new authors, who published
(`authors`) and whose videos gained the views (`author_views`, `video_views`), plus the
context (languages, countries, hashtags) and one slice per language (`by_lang`, each a
`TopicMinute` itself, without slices of its own).

The ingest step fills it through `add_publish` (a publish event of the topic) and
`add_counters` (the counter deltas of any event of the topic); the ClickHouse replay
(`workpulse spikes`) builds the same thing with SQL. Every field merges by addition, so
batches and partitions can be combined in any order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

WIRE_TOP_HASHTAGS = 20
WIRE_TOP_VIDEOS = 50
"""A batch's aggregate keeps its top hashtags and videos on the wire (the deltas topic)."""
WINDOW_TOP = 50
"""A window keeps this many languages, countries, hashtags and videos (context of a spike)."""
AUTHORS_KEPT = 256
"""Per-author counters (`authors`, `author_views`) keep this many entries in a window
(and `author_views` on the wire). Below it `distinct_authors` is exact; above it, it
reads 256 (the support rule only needs "at least N", N ≪ 256) and the kept entries are
the largest, which is what the per-author caps and the top author's share need."""


_empty_counter = partial(Counter.__new__, Counter)
"""`Counter()` without its `__init__` (which only calls `update(None)`): the same empty
Counter at a fifth of the cost. A read of a day of minutes creates ~200,000 of them."""


def _trim(counter: Counter[str], top: int | None) -> None:
    """Keep the `top` largest entries (ties: first inserted), in place."""
    if top is not None and len(counter) > top:
        kept = counter.most_common(top)
        counter.clear()
        counter.update(dict(kept))


def _top(counter: Counter[str], n: int | None) -> dict[str, int]:
    return dict(counter.most_common(n))


@dataclass(slots=True)
class TopicMinute:
    """New videos, counter deltas, new authors and who is behind them, for one topic in
    one minute of event time (optionally one language of it: see `by_lang`).

    The first seven fields keep their historical order (positional construction)."""

    videos: int = 0
    """New videos published (publish events)."""
    views: int = 0
    """View gain: the sum of the view deltas of the topic's videos in this minute."""
    likes: int = 0
    shares: int = 0
    langs: Counter[str] = field(default_factory=_empty_counter)
    """New videos per language."""
    hashtags: Counter[str] = field(default_factory=_empty_counter)
    """Hashtags (case-folded) of the new videos."""
    video_views: Counter[str] = field(default_factory=_empty_counter)
    """View gain per video (top `WINDOW_TOP`)."""
    new_authors: int = 0
    """Authors whose first video in this topic is one of this minute's new videos."""
    authors: Counter[str] = field(default_factory=_empty_counter)
    """New videos per author (top `AUTHORS_KEPT`)."""
    author_views: Counter[str] = field(default_factory=_empty_counter)
    """View gain per author of the videos that gained (top `AUTHORS_KEPT`)."""
    countries: Counter[str] = field(default_factory=_empty_counter)
    """New videos per country (ISO 3166-1 alpha-2; '' unknown)."""
    by_lang: dict[str, TopicMinute] = field(default_factory=dict)
    """The same figures restricted to one language (new videos in it; view gains of
    videos in it); slices have no slices."""

    # -- filling (the ingest step) ------------------------------------------------------
    def add_publish(
        self,
        *,
        video_id: str,
        author_id: str,
        lang: str,
        country: str,
        hashtags: Iterable[str],
        new_author: bool,
    ) -> None:
        """Account one new video of the topic. `new_author`: this is the author's first
        video in this topic (the ingest step decides it with its author state)."""
        del video_id  # a new video's views arrive through add_counters
        tags = [h.casefold() for h in hashtags]
        for agg in (self, self._slice(lang)):
            agg.videos += 1
            agg.langs[lang] += 1
            agg.countries[country] += 1
            agg.authors[author_id] += 1
            if new_author:
                agg.new_authors += 1
            for h in tags:
                agg.hashtags[h] += 1

    def add_counters(
        self,
        *,
        video_id: str,
        author_id: str,
        lang: str,
        views: int,
        likes: int = 0,
        shares: int = 0,
    ) -> None:
        """Account the counter deltas of one event (publish or stats) of a video of the
        topic; `lang` is the video's language."""
        if not (views or likes or shares):
            return
        for agg in (self, self._slice(lang)):
            agg.views += views
            agg.likes += likes
            agg.shares += shares
            if views:
                agg.video_views[video_id] += views
                agg.author_views[author_id] += views

    def _slice(self, lang: str) -> TopicMinute:
        part = self.by_lang.get(lang)
        if part is None:
            part = self.by_lang[lang] = TopicMinute()
        return part

    # -- reading ------------------------------------------------------------------------
    @property
    def distinct_authors(self) -> int:
        """Authors who published in this minute (exact below `AUTHORS_KEPT`)."""
        return sum(1 for n in self.authors.values() if n > 0)

    def capped_videos(self, cap: int) -> int:
        """New videos with each author counted at most `cap` times: one account posting
        many videos weighs like `cap` videos. Exact while the authors above the cap are
        among the kept entries (they are the largest)."""
        excess = sum(n - cap for n in self.authors.values() if n > cap)
        return self.videos - excess

    def top_videos(self, n: int = 5) -> list[str]:
        return [v for v, _ in self.video_views.most_common(n)]

    def top_hashtags(self, n: int = 5) -> list[str]:
        return [h for h, _ in self.hashtags.most_common(n)]

    # -- combining ----------------------------------------------------------------------
    def merge(self, other: TopicMinute, top: int = WINDOW_TOP) -> None:
        """Add `other` into this aggregate, keeping the `top` entries of each context
        counter and `AUTHORS_KEPT` of each per-author counter."""
        self.videos += other.videos
        self.views += other.views
        self.likes += other.likes
        self.shares += other.shares
        self.new_authors += other.new_authors
        for mine, theirs, keep in (
            (self.langs, other.langs, top),
            (self.hashtags, other.hashtags, top),
            (self.video_views, other.video_views, top),
            (self.countries, other.countries, top),
            (self.authors, other.authors, AUTHORS_KEPT),
            (self.author_views, other.author_views, AUTHORS_KEPT),
        ):
            mine.update(theirs)
            _trim(mine, keep)
        for lang, part in other.by_lang.items():
            self._slice(lang).merge(part, top)

    def trim(self, top: int = WINDOW_TOP) -> None:
        """Keep what `merge` would keep of this aggregate merged into an empty one (the
        `top` entries of each context counter, `AUTHORS_KEPT` of each per-author
        counter), in place: the same entries in the same order, without the copies."""
        for counter, keep in (
            (self.langs, top),
            (self.hashtags, top),
            (self.video_views, top),
            (self.countries, top),
            (self.authors, AUTHORS_KEPT),
            (self.author_views, AUTHORS_KEPT),
        ):
            _trim(counter, keep)
        for part in self.by_lang.values():
            part.trim(top)

    # -- JSON ---------------------------------------------------------------------------
    def to_dict(
        self,
        top_hashtags: int | None = None,
        top_videos: int | None = None,
        top_authors: int | None = AUTHORS_KEPT,
    ) -> dict[str, Any]:
        """JSON-safe form; optionally only the top hashtags, videos and publishing
        authors (`author_views` always keeps `AUTHORS_KEPT`)."""
        out: dict[str, Any] = {
            "videos": self.videos,
            "views": self.views,
            "likes": self.likes,
            "shares": self.shares,
            "langs": dict(self.langs),
            "hashtags": _top(self.hashtags, top_hashtags),
            "video_views": _top(self.video_views, top_videos),
            "new_authors": self.new_authors,
            "authors": _top(self.authors, top_authors),
            "author_views": _top(self.author_views, AUTHORS_KEPT),
            "countries": dict(self.countries),
        }
        if self.by_lang:
            out["by_lang"] = {
                lang: part.to_dict(top_hashtags, top_videos, top_authors)
                for lang, part in sorted(self.by_lang.items())
            }
        return out

    def to_wire(self) -> dict[str, Any]:
        """The form sent on the deltas topic: every publishing author of the batch (at
        most a batch's publishes), so that the counts agent, partitioned by topic, can
        decide which authors are new to the topic; the top hashtags and videos."""
        return self.to_dict(WIRE_TOP_HASHTAGS, WIRE_TOP_VIDEOS, top_authors=None)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TopicMinute:
        """Reads `to_dict`'s form; fields missing from older payloads default to empty."""
        return cls(
            videos=int(data.get("videos", 0)),
            views=int(data.get("views", 0)),
            likes=int(data.get("likes", 0)),
            shares=int(data.get("shares", 0)),
            langs=Counter(data.get("langs", {})),
            hashtags=Counter(data.get("hashtags", {})),
            video_views=Counter(data.get("video_views", {})),
            new_authors=int(data.get("new_authors", 0)),
            authors=Counter(data.get("authors", {})),
            author_views=Counter(data.get("author_views", {})),
            countries=Counter(data.get("countries", {})),
            by_lang={
                lang: cls.from_dict(part) for lang, part in (data.get("by_lang") or {}).items()
            },
        )
