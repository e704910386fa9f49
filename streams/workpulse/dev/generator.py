"""Seeded, realistic synthetic workload for workpulse (pure: no I/O, no wall clock).

`Workload(config).events(n)` yields `n` valid input events (DESIGN.md contract) in send
order; `Workload(config).messages(n)` yields exactly `n` raw Kafka ``(key, value)`` pairs
including, per the configured fractions, malformed messages and exact re-sends.

Model (all time is simulated, starting at ``config.start_ms``):

* New videos arrive as a Poisson process at ``publish_rate_per_min`` per simulated minute.
  About 35 % are work-related (one of the nine TAXONOMY.md topics, sometimes two), the rest
  is everyday content (food, sport, travel, pets, gaming, ...) with many tricky negatives
  ("quit sugar", "salary cap", "bowling strike", "TV remote").
* Each video gets on average ``stats_per_publish`` later stats updates (Poisson count,
  delays of minutes after the publish) carrying cumulative, non-decreasing counters.
  Stats and publishes are merged in time order, so with the defaults (60 publishes/min,
  2 stats per publish) the stream carries ~180 events per simulated minute: 10,000 events
  cover about one simulated hour.
* Authors are drawn from a Zipf-Mandelbrot law (a few authors post a lot); followers and
  views are heavy-tailed (log-normal, scaled by author rank).
* The wave: between ``wave_start_fraction`` and ``wave_start_fraction +
  wave_length_fraction`` of the run (by event/message index), an extra Poisson stream of
  ``wave_topic`` publishes is added so that the topic's publish rate is multiplied by
  ``wave_multiplier``; most of these come from new (copycat) authors, carry the topic's
  hashtags, and the topic's videos get several times more views.
* About 15 % of events have their ``event_time`` a few seconds earlier than their send
  position (realistic out-of-order jitter); 80 % of event times are epoch milliseconds,
  20 % RFC 3339 strings with the author's local UTC offset (or ``Z``).

The ground truth topics of a video are never put in the emitted events; they are
available separately through `Workload.labelled_events` (for tests and evaluation).
Same config ⇒ same events ⇒ same bytes.
"""

from __future__ import annotations

import heapq
import math
import random
import string
import time
from bisect import bisect
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import orjson

from workpulse.model.event import ALREADY_PUBLISHED
from workpulse.model.topics import TOPICS
from workpulse.resources import corpus_dir

__all__ = [
    "BAD_KINDS",
    "OVERSIZED_CAPTION_CHARS",
    "TOPICS",
    "TOPIC_TAGS",
    "Workload",
    "WorkloadConfig",
    "encode",
]


OVERSIZED_CAPTION_CHARS = 70 * 1024
"""Caption length of the "oversized" malformed message (~70 KiB: well over the contract's
caption limit, well under Kafka's default 1 MiB message limit)."""

WORK_SHARE = 0.35
"""Share of (non-wave) publishes that are work-related."""

TOPIC_WEIGHTS: dict[str, float] = {
    "resignation": 0.15,
    "salary": 0.14,
    "career_meaning": 0.10,
    "harassment": 0.08,
    "job_search": 0.16,
    "layoffs": 0.10,
    "remote_work": 0.10,
    "burnout": 0.10,
    "labor_action": 0.07,
}

LANG_WEIGHTS: dict[str, float] = {"en": 0.55, "fr": 0.22, "ar": 0.18, "es": 0.03, "pt": 0.02}

COUNTRIES: dict[str, tuple[tuple[str, float], ...]] = {
    "en": (
        ("US", 0.45),
        ("GB", 0.15),
        ("IN", 0.12),
        ("CA", 0.06),
        ("AU", 0.05),
        ("NG", 0.05),
        ("PH", 0.05),
        ("ZA", 0.04),
        ("IE", 0.03),
    ),
    "fr": (("FR", 0.68), ("BE", 0.1), ("CA", 0.1), ("MA", 0.05), ("CH", 0.04), ("SN", 0.03)),
    "ar": (("SA", 0.33), ("EG", 0.28), ("AE", 0.14), ("MA", 0.1), ("JO", 0.05), ("KW", 0.05),
           ("DZ", 0.05)),
    "es": (("ES", 0.4), ("MX", 0.35), ("AR", 0.15), ("CO", 0.1)),
    "pt": (("BR", 0.8), ("PT", 0.2)),
}  # fmt: skip

UTC_OFFSET_MIN: dict[str, int] = {
    "US": -300, "GB": 0, "IN": 330, "CA": -300, "AU": 660, "NG": 60, "PH": 480, "ZA": 120,
    "IE": 0, "FR": 60, "BE": 60, "MA": 60, "CH": 60, "SN": 0, "SA": 180, "EG": 120,
    "AE": 240, "JO": 180, "KW": 180, "DZ": 60, "ES": 60, "MX": -360, "AR": -180, "CO": -300,
    "BR": -180, "PT": 0,
}  # fmt: skip

# ---------------------------------------------------------------------------------------
# Text data: the caption corpus, one JSON file per language in dev/corpus/ (+ common.json).
# Templates use {slot} placeholders filled from the language's slots (falling back to
# English's, then the common ones). Work templates may start with "+topic,topic|" to
# declare extra topics the caption is also about. Non-work templates are "category|text".
# ---------------------------------------------------------------------------------------


def _load_corpus() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    directory = corpus_dir()
    common = orjson.loads((directory / "common.json").read_bytes())
    by_lang = {
        lang: orjson.loads((directory / f"{lang}.json").read_bytes()) for lang in LANG_WEIGHTS
    }
    return common, by_lang


_COMMON, _CORPUS = _load_corpus()


def _section(name: str) -> dict[str, Any]:
    """One section of every language's corpus file (languages that have it)."""
    return {lang: data[name] for lang, data in _CORPUS.items() if name in data}


COMMON_SLOTS: dict[str, list[str]] = _COMMON["slots"]
TREND_TAGS: list[str] = _COMMON["trend_tags"]
SLOTS: dict[str, dict[str, list[str]]] = _section("slots")
WORK_TEMPLATES: dict[str, dict[str, list[str]]] = _section("work_templates")
NONWORK_TEMPLATES: dict[str, list[str]] = _section("nonwork_templates")
TOPIC_TAGS: dict[str, dict[str, list[str]]] = _section("topic_tags")
GENERIC_TAGS: dict[str, list[str]] = _section("generic_tags")
CATEGORY_TAGS: dict[str, dict[str, list[str]]] = _section("category_tags")
COPYCAT_PREFIX: dict[str, list[str]] = _section("copycat_prefix")

# ---------------------------------------------------------------------------------------
# Precompiled text: a template is a tuple of (literal, slot-or-None) pairs.
# ---------------------------------------------------------------------------------------

_Template = tuple[tuple[str, str | None], ...]
_FORMATTER = string.Formatter()


def _compile(text: str) -> _Template:
    return tuple((lit, field or None) for lit, field, _, _ in _FORMATTER.parse(text))


def _slot_table(lang: str) -> dict[str, list[str]]:
    table = dict(COMMON_SLOTS)
    for key, values in SLOTS["en"].items():
        table.setdefault(key, values)
    table.update(SLOTS.get(lang, {}))
    return table


@dataclass(frozen=True)
class _WorkTemplate:
    template: _Template
    topics: tuple[str, ...]


class _Weighted:
    """Draw from fixed weights with one random number and a bisect."""

    __slots__ = ("cum", "items", "total")

    def __init__(self, items: list[Any], weights: list[float]) -> None:
        self.items = items
        self.cum = list(accumulate(weights))
        self.total = self.cum[-1]

    def pick(self, u: float) -> Any:
        i = bisect(self.cum, u * self.total)
        return self.items[i if i < len(self.items) else -1]


class _Text:
    """All compiled text data, built once per process."""

    def __init__(self) -> None:
        self.slots = {lang: _slot_table(lang) for lang in LANG_WEIGHTS}
        self.work: dict[str, dict[str, list[_WorkTemplate]]] = {}
        for lang, by_topic in WORK_TEMPLATES.items():
            self.work[lang] = {}
            for topic, texts in by_topic.items():
                compiled = []
                for text in texts:
                    extra: tuple[str, ...] = ()
                    if text.startswith("+"):
                        head, text = text[1:].split("|", 1)
                        extra = tuple(head.split(","))
                    compiled.append(_WorkTemplate(_compile(text), (topic, *extra)))
                self.work[lang][topic] = compiled
        self.nonwork: dict[str, list[tuple[str, _Template]]] = {}
        for lang, entries in NONWORK_TEMPLATES.items():
            self.nonwork[lang] = [
                (cat, _compile(text)) for cat, text in (e.split("|", 1) for e in entries)
            ]
        self.copycat = {lang: [_compile(t) for t in ts] for lang, ts in COPYCAT_PREFIX.items()}
        self.lang = _Weighted(list(LANG_WEIGHTS), list(LANG_WEIGHTS.values()))
        self.country = {
            lang: _Weighted([c for c, _ in cs], [w for _, w in cs])
            for lang, cs in COUNTRIES.items()
        }
        self.topic = _Weighted(list(TOPIC_WEIGHTS), list(TOPIC_WEIGHTS.values()))
        self.offsets = {c: _offset_suffix(m) for c, m in UTC_OFFSET_MIN.items()}


def _offset_suffix(minutes: int) -> tuple[int, str]:
    if minutes == 0:
        return 0, "Z"
    sign = "+" if minutes > 0 else "-"
    m = abs(minutes)
    return minutes * 60_000, f"{sign}{m // 60:02d}:{m % 60:02d}"


_TEXT: _Text | None = None


def _text() -> _Text:
    global _TEXT
    if _TEXT is None:
        _TEXT = _Text()
    return _TEXT


# Zipf-Mandelbrot author popularity: weight(rank) = 1 / (rank + Q) ** S.
_N_AUTHORS = 100_000
_ZIPF_Q = 5.0
_ZIPF_S = 1.0
_ZIPF: _Weighted | None = None


def _zipf() -> _Weighted:
    global _ZIPF
    if _ZIPF is None:
        ranks = list(range(_N_AUTHORS))
        _ZIPF = _Weighted(ranks, [1.0 / (r + 1 + _ZIPF_Q) ** _ZIPF_S for r in ranks])
    return _ZIPF


def encode(event: dict[str, Any]) -> bytes:
    """Encode one event as a Kafka message value (orjson, UTF-8)."""
    return orjson.dumps(event)


@dataclass(frozen=True)
class WorkloadConfig:
    seed: int = 7
    start_ms: int = 1_767_225_600_000  # simulated event time origin (2026-01-01T00:00:00Z)
    publish_rate_per_min: float = 60.0  # baseline new videos per simulated minute (all content)
    stats_per_publish: float = 2.0  # mean number of later stats updates per video
    wave_topic: str = "resignation"
    wave_start_fraction: float = 0.55  # the wave begins this far into the run (by event count)
    wave_length_fraction: float = 0.2
    wave_multiplier: float = 8.0  # ... and multiplies that topic's publish rate
    bad_fraction: float = 0.0  # share of malformed raw messages (dead-letter path)
    duplicate_fraction: float = 0.0  # share of exact re-sent messages (same event_id)
    work_share: float = WORK_SHARE  # share of (non-wave) publishes that are work-related


@dataclass(slots=True)
class _Author:
    author_id: str
    lang: str
    country: str
    followers: int


# A published video awaiting stats updates (a tuple: cheaper than an object):
# (video_id, published_ms, final_views, tau_ms, like_rate, share_rate, comment_rate,
#  topics, pending update times latest first)
_Video = tuple[str, int, float, float, float, float, float, tuple[str, ...], list[int]]

_TWITTER_EPOCH_MS = 1_288_834_974_657
_STATS_MIN_DELAY_MS = 60_000
_STATS_MEAN_DELAY_MS = 15 * 60_000
_JITTER_SHARE = 0.15
_JITTER_MAX_MS = 4_000
_STRING_TIME_SHARE = 0.2
_COPYCAT_NEW_AUTHOR_SHARE = 0.7


class _Sim:
    """The valid event stream: one instance per call of `events`/`messages`."""

    def __init__(self, config: WorkloadConfig) -> None:
        self.cfg = config
        self.text = _text()
        self.zipf = _zipf()
        self.rng = random.Random(config.seed)
        self.now = float(config.start_ms)
        self.base_rate = config.publish_rate_per_min / 60_000.0  # per ms
        topic_rate = self.base_rate * config.work_share * TOPIC_WEIGHTS[config.wave_topic]
        self.extra_rate = topic_rate * max(config.wave_multiplier - 1.0, 0.0)
        self.wave_on = False
        self.next_pub = self.now + self.rng.expovariate(self.base_rate)
        self.heap: list[tuple[int, int, _Video]] = []
        self.poisson_limit = math.exp(-max(config.stats_per_publish, 0.0))
        self.seq = 0
        self.video_count = 0
        self.authors: dict[int, _Author] = {}
        self.new_authors: list[_Author] = []
        self.author_salt = (config.seed * 7_919 + 1) % 10**10
        h = f"{self.rng.getrandbits(80):020x}"
        self.id_prefix = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-"
        self.id_count = 0
        self.time_cache: dict[tuple[int, str], str] = {}

    # -- helpers ---------------------------------------------------------------------

    def _uuid(self) -> str:
        """A unique, random-looking UUID-shaped id: a per-run random prefix and a counter
        scrambled by an odd multiplier (a bijection modulo 2**48, so never a collision)."""
        self.id_count += 1
        return f"{self.id_prefix}{(self.id_count * 0x9E3779B97F4B) & 0xFFFFFFFFFFFF:012x}"

    def _make_author(self, index: int, followers_scale: float) -> _Author:
        rnd = self.rng.random
        lang = self.text.lang.pick(rnd())
        country = self.text.country[lang].pick(rnd())
        followers = int(min(2e8, followers_scale * self.rng.lognormvariate(0.0, 1.0)))
        # a bijection of the index (2654435761 is coprime with 10**10): unique ids
        aid = f"u{(index * 2_654_435_761 + self.author_salt) % 10**10:010d}"
        return _Author(aid, lang, country, followers)

    def _author(self) -> tuple[int, _Author]:
        rank = self.zipf.pick(self.rng.random())
        author = self.authors.get(rank)
        if author is None:
            author = self._make_author(rank, 3e6 * (rank + 1) ** -0.75)
            self.authors[rank] = author
        return rank, author

    def _copycat_author(self) -> _Author:
        if not self.new_authors or self.rng.random() < 0.8:
            index = _N_AUTHORS + len(self.new_authors)
            author = self._make_author(index, 800.0)
            self.new_authors.append(author)
            return author
        return self.new_authors[int(self.rng.random() * len(self.new_authors))]

    def _fill(self, template: _Template, slots: dict[str, list[str]], out: list[str]) -> None:
        rnd = self.rng.random
        for lit, slot in template:
            out.append(lit)
            if slot is not None:
                values = slots[slot]
                out.append(values[int(rnd() * len(values))])

    def _event_time(self, true_ms: int, country: str | None) -> int | str:
        rnd = self.rng.random
        u = rnd()
        ms = true_ms - int(u * (_JITTER_MAX_MS / _JITTER_SHARE)) if u < _JITTER_SHARE else true_ms
        u = rnd()
        if u >= _STRING_TIME_SHARE:
            return ms
        if country is not None and u < 0.6 * _STRING_TIME_SHARE:
            off, suffix = self.text.offsets[country]
        else:
            off, suffix = 0, "Z"
        local = ms + off
        minute = local // 60_000
        head = self.time_cache.get((minute, suffix))
        if head is None:
            t = time.gmtime(minute * 60)
            head = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            if len(self.time_cache) > 4096:
                self.time_cache.clear()
            self.time_cache[(minute, suffix)] = head
        rest = local % 60_000
        return f"{head}{rest // 1000:02d}.{rest % 1000:03d}{suffix}"

    # -- publish ---------------------------------------------------------------------

    def _caption(
        self, author: _Author, topic: str | None, copycat: bool
    ) -> tuple[str, list[str], tuple[str, ...]]:
        """Caption, hashtags and ground-truth topics of a new video."""
        rnd = self.rng.random
        text = self.text
        lang = author.lang
        slots = text.slots[lang]
        parts: list[str] = []
        tags: list[str] = []
        if topic is not None:
            if copycat and rnd() < 0.6:
                prefixes = text.copycat[lang]
                self._fill(prefixes[int(rnd() * len(prefixes))], slots, parts)
            choices = text.work[lang][topic]
            tpl = choices[int(rnd() * len(choices))]
            self._fill(tpl.template, slots, parts)
            topics = tpl.topics
            topic_tags = TOPIC_TAGS[lang][topic]
            n_topic_tags = (1 + int(rnd() * 3)) if copycat else int(rnd() * 3)
            if copycat:
                tags.append(topic_tags[0])
            for _ in range(n_topic_tags):
                tag = topic_tags[int(rnd() * len(topic_tags))]
                if tag not in tags:
                    tags.append(tag)
            if copycat and rnd() < 0.4:
                tags.append(TREND_TAGS[int(rnd() * len(TREND_TAGS))])
        else:
            topics = ()
            entries = text.nonwork[lang]
            cat, tpl_nw = entries[int(rnd() * len(entries))]
            if rnd() < 0.03:
                parts.clear()  # hashtags-only post
            else:
                self._fill(tpl_nw, slots, parts)
            cat_tags = CATEGORY_TAGS.get(lang, CATEGORY_TAGS["en"])[cat]
            for _ in range(int(rnd() * 3)):
                tag = cat_tags[int(rnd() * len(cat_tags))]
                if tag not in tags:
                    tags.append(tag)
        generic = GENERIC_TAGS[lang]
        for _ in range(int(rnd() * 3)):
            tag = generic[int(rnd() * len(generic))]
            if tag not in tags:
                tags.append(tag)
        caption = "".join(parts)
        if rnd() < 0.25:
            emojis = COMMON_SLOTS["e"]
            caption = f"{caption} {emojis[int(rnd() * len(emojis))]}".lstrip()
        if tags:
            u = rnd()
            if u < 0.4:  # hashtags both in the caption and in the array
                caption = f"{caption} {' '.join('#' + t for t in tags)}".lstrip()
            elif u < 0.6:  # only inline in the caption
                caption = f"{caption} {' '.join('#' + t for t in tags)}".lstrip()
                tags = []
        return caption, tags, topics

    def _publish(self, wave_extra: bool) -> tuple[dict[str, Any], tuple[str, ...]]:
        rng = self.rng
        rnd = rng.random
        cfg = self.cfg
        true_ms = int(self.now)
        if wave_extra:
            copycat = True
            topic: str | None = cfg.wave_topic
            if rnd() < _COPYCAT_NEW_AUTHOR_SHARE:
                author = self._copycat_author()
            else:
                _, author = self._author()
        else:
            copycat = False
            _, author = self._author()
            topic = self.text.topic.pick(rnd()) if rnd() < cfg.work_share else None
        caption, tags, topics = self._caption(author, topic, copycat)

        self.video_count += 1
        video_id = str(((true_ms - _TWITTER_EPOCH_MS) << 22) | (self.video_count & 0x3FFFFF))
        # reach: followers plus the feed's exposure; heavy-tailed
        if self.wave_on and cfg.wave_topic in topics:  # the trending topic gets pushed
            reach = (author.followers * 0.08 + 3_000.0) * (4.0 + 8.0 * rnd())
        else:
            reach = author.followers * 0.08 + 300.0
        final_views = reach * rng.lognormvariate(0.0, 1.2)
        if rnd() < 0.01:
            final_views *= 40.0  # the occasional viral hit
        # number of later stats updates: Poisson(stats_per_publish), by multiplication
        k = 0
        p = rnd()
        while p > self.poisson_limit:
            k += 1
            p *= rnd()
        if k:
            expo = rng.expovariate
            lam = 1.0 / _STATS_MEAN_DELAY_MS
            first = true_ms + _STATS_MIN_DELAY_MS
            times = [first + int(expo(lam)) for _ in range(k)]
            times.sort(reverse=True)  # pending update times, latest first
            video: _Video = (
                video_id,
                true_ms,
                final_views if final_views < 5e8 else 5e8,
                (10.0 + 40.0 * rnd()) * 60_000.0,
                0.02 + 0.08 * rnd(),
                0.001 + 0.005 * rnd(),
                0.002 + 0.01 * rnd(),
                topics,
                times,
            )
            self.seq += 1
            heapq.heappush(self.heap, (times[-1], self.seq, video))

        event: dict[str, Any] = {
            "event_id": self._uuid(),
            "kind": "publish",
            "video_id": video_id,
            "event_time": self._event_time(true_ms, author.country),
            "author_id": author.author_id,
        }
        if rnd() < 0.9:
            event["author_followers"] = author.followers
        event["caption"] = caption
        if tags:
            event["hashtags"] = tags
        if rnd() < 0.85:
            event["lang"] = author.lang
        if rnd() < 0.9:
            event["country"] = author.country
        if rnd() < 0.3:
            event["views"] = 0
            event["likes"] = 0
            event["shares"] = 0
            event["comments"] = 0
        return event, topics

    # -- stats -----------------------------------------------------------------------

    def _stats(self) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The next scheduled stats update. Counters follow ``final * (1 - exp(-age/tau))``:
        strictly increasing in age, and a video's updates pop in time order, so they are
        monotonic non-decreasing per video."""
        heap = self.heap
        t, _, video = heapq.heappop(heap)
        if t > self.now:
            self.now = t
        (
            video_id,
            published_ms,
            final_views,
            tau_ms,
            like_rate,
            share_rate,
            comment_rate,
            topics,
            times,
        ) = video
        times.pop()
        if times:
            self.seq += 1
            heapq.heappush(heap, (times[-1], self.seq, video))
        views = int(final_views * (1.0 - math.exp((published_ms - t) / tau_ms)))
        event: dict[str, Any] = {
            "event_id": self._uuid(),
            "kind": "stats",
            "video_id": video_id,
            "event_time": self._event_time(t, None),
            "views": views,
            "likes": int(views * like_rate),
        }
        if self.rng.random() < 0.9:
            event["shares"] = int(views * share_rate)
            event["comments"] = int(views * comment_rate)
        return event, topics

    # -- driver ----------------------------------------------------------------------

    def next(self, in_wave: bool) -> tuple[dict[str, Any], tuple[str, ...]]:
        if in_wave != self.wave_on:
            self.wave_on = in_wave
            rate = self.base_rate + (self.extra_rate if in_wave else 0.0)
            self.next_pub = self.now + self.rng.expovariate(rate)
        heap = self.heap
        if heap and heap[0][0] <= self.next_pub:
            return self._stats()
        self.now = self.next_pub
        rate = self.base_rate + (self.extra_rate if self.wave_on else 0.0)
        self.next_pub = self.now + self.rng.expovariate(rate)
        wave_extra = self.wave_on and self.rng.random() * rate < self.extra_rate
        return self._publish(wave_extra)


class Workload:
    """A deterministic synthetic workload. Each call of `events`/`messages` starts over."""

    def __init__(self, config: WorkloadConfig = WorkloadConfig()) -> None:
        if config.wave_topic not in TOPIC_WEIGHTS:
            raise ValueError(f"unknown wave_topic {config.wave_topic!r}; one of {TOPICS}")
        if config.publish_rate_per_min <= 0:
            raise ValueError("publish_rate_per_min must be > 0")
        if not 0.0 <= config.bad_fraction + config.duplicate_fraction <= 1.0:
            raise ValueError("bad_fraction + duplicate_fraction must be within [0, 1]")
        if not 0.0 <= config.work_share <= 1.0:
            raise ValueError("work_share must be within [0, 1]")
        self.config = config

    def wave_window(self, n: int) -> tuple[int, int]:
        """Index range ``[start, end)`` of the wave in a run of ``n`` events or messages."""
        cfg = self.config
        start = int(n * cfg.wave_start_fraction)
        end = int(n * (cfg.wave_start_fraction + cfg.wave_length_fraction))
        return start, max(start, min(end, n))

    def labelled_events(self, n: int) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
        """Like `events`, with each event's ground-truth topics (of its video) alongside.

        The topics are never part of the event itself.
        """
        sim = _Sim(self.config)
        ws, we = self.wave_window(n)
        for i in range(n):
            yield sim.next(ws <= i < we)

    def events(self, n: int) -> Iterator[dict[str, Any]]:
        """``n`` valid events (DESIGN.md contract) in send order."""
        sim = _Sim(self.config)
        ws, we = self.wave_window(n)
        step = sim.next
        for i in range(n):
            yield step(ws <= i < we)[0]

    def labelled_messages(self, n: int) -> Iterator[tuple[bytes, bytes, str]]:
        """Like `messages`, with a label per message: ``"valid"``, ``"duplicate"`` or
        ``"bad:<kind>"`` (kinds in `BAD_KINDS`)."""
        cfg = self.config
        sim = _Sim(cfg)
        mrng = random.Random(cfg.seed * 1_000_003 + 17)
        ws, we = self.wave_window(n)
        recent: deque[tuple[bytes, bytes]] = deque(maxlen=2_000)
        last: dict[str, dict[str, Any]] = {}
        bad, dup = cfg.bad_fraction, cfg.bad_fraction + cfg.duplicate_fraction
        for i in range(n):
            u = mrng.random() if dup > 0.0 else 1.0
            if u < bad:
                kind = BAD_KINDS[int(mrng.random() * len(BAD_KINDS))]
                if kind == ALREADY_PUBLISHED and "publish" not in last:
                    kind = "not_json"  # no video published yet to publish again
                key, value = _bad_message(kind, mrng, last)
                yield key, value, f"bad:{kind}"
                continue
            if u < dup and recent:
                key, value = recent[int(mrng.random() * len(recent))]
                yield key, value, "duplicate"
                continue
            event, _ = sim.next(ws <= i < we)
            last[event["kind"]] = event
            key, value = event["video_id"].encode(), orjson.dumps(event)
            if dup > 0.0:
                recent.append((key, value))
            yield key, value, "valid"

    def messages(self, n: int) -> Iterator[tuple[bytes, bytes]]:
        """Exactly ``n`` raw Kafka ``(key, value)`` pairs: valid events plus, per the
        configured fractions, malformed messages and exact re-sends of earlier ones."""
        for key, value, _ in self.labelled_messages(n):
            yield key, value


BAD_KINDS: tuple[str, ...] = (
    "not_json",
    "invalid_utf8",
    "not_object",
    "wrong_type",
    "missing_field",
    "unknown_kind",
    "negative_counter",
    "stats_no_counter",
    "oversized_caption",
    "bad_event_time",
    "empty",
    ALREADY_PUBLISHED,
)
"""Kinds of malformed messages `messages` produces (labels of `labelled_messages`). All
but the last are refused by the contract; the last, a second publish of a published video
(another event id), is a valid event that the pipeline dead-letters while processing."""


def _stub(kind: str, mrng: random.Random, last: dict[str, dict[str, Any]]) -> dict[str, Any]:
    base = last.get(kind)
    if base is None:
        base = {
            "kind": kind,
            "video_id": str(mrng.getrandbits(60)),
            "event_time": 1_767_225_600_000,
        }
        if kind == "publish":
            base["author_id"] = "u0000000000"
            base["caption"] = "hello"
        else:
            base["views"] = 10
    event = dict(base)
    h = f"{mrng.getrandbits(128):032x}"
    event["event_id"] = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"
    return event


def _bad_message(
    kind: str, mrng: random.Random, last: dict[str, dict[str, Any]]
) -> tuple[bytes, bytes]:
    """One malformed message of the given kind, derived from a recent valid event."""
    rnd = mrng.random
    if kind == ALREADY_PUBLISHED:  # the newest valid publish's video, published again
        event = _stub("publish", mrng, last)
        return str(event["video_id"]).encode(), orjson.dumps(event)
    pick = "publish" if rnd() < 0.6 else "stats"
    event = _stub(pick, mrng, last)
    key = str(event["video_id"]).encode()
    if kind == "not_json":
        value = orjson.dumps(event)
        options = [value[: max(1, len(value) // 2)], b"hello world", b"<html>502</html>",
                   value.replace(b'"', b"'"), value + b"}"]  # fmt: skip
        return key, options[int(rnd() * len(options))]
    if kind == "invalid_utf8":
        event["kind"] = "publish"
        event.setdefault("author_id", "u0000000000")
        event["caption"] = "Café au lait à volonté ☕"
        text = orjson.dumps(event).decode()
        return key, text.encode("latin-1", errors="replace")
    if kind == "not_object":
        options = [b"[]", b"null", b"42", b'"publish"', orjson.dumps([event])]
        return key, options[int(rnd() * len(options))]
    if kind == "wrong_type":
        choice = int(rnd() * 5)
        if choice == 0:
            event["views"] = str(event.get("views", 0) or 1200)
        elif choice == 1:
            event["video_id"] = int(event["video_id"]) if event["video_id"].isdigit() else 12345
        elif choice == 2:
            event["hashtags"] = "fyp,viral"
        elif choice == 3:
            event["event_time"] = [event["event_time"]]
        else:
            event["author_followers"] = "1.2k"
        return key, orjson.dumps(event)
    if kind == "missing_field":
        field = ("event_id", "kind", "video_id", "author_id")[int(rnd() * 4)]
        if field == "author_id":
            event["kind"] = "publish"
            for c in ("views", "likes", "shares", "comments"):
                event.pop(c, None)
        event.pop(field, None)
        return key, orjson.dumps(event)
    if kind == "unknown_kind":
        event["kind"] = ("delete", "update", "live_start")[int(rnd() * 3)]
        return key, orjson.dumps(event)
    if kind == "negative_counter":
        event["kind"] = "stats"
        event["views"] = -1 - int(rnd() * 1000)
        return key, orjson.dumps(event)
    if kind == "stats_no_counter":
        event["kind"] = "stats"
        for c in ("views", "likes", "shares", "comments"):
            event.pop(c, None)
        return key, orjson.dumps(event)
    if kind == "oversized_caption":
        event["kind"] = "publish"
        event.setdefault("author_id", "u0000000000")
        event["caption"] = ("so long " * (OVERSIZED_CAPTION_CHARS // 8 + 1))[
            :OVERSIZED_CAPTION_CHARS
        ]
        return key, orjson.dumps(event)
    if kind == "bad_event_time":
        event["event_time"] = ("yesterday", "", "2026-01-01 25:61", "2026-13-45T10:00:00Z")[
            int(rnd() * 4)
        ]
        return key, orjson.dumps(event)
    return key, b""  # empty
