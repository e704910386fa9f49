"""The tagger: caption + hashtags → work topics, with the terms that fired."""

from __future__ import annotations

import os
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workpulse.tagging.lexicon import (
    TOPICS,
    CompiledLexicon,
    CondRule,
    Hit,
    KeyValue,
    compile_lexicon,
)
from workpulse.tagging.normalise import (
    SENTENCE_CHARS,
    compact,
    normalise,
    normalise_word,
    sentence_break,
    split_hashtag,
)

__all__ = ["TOPICS", "TagResult", "Tagger", "default_lexicon_dir", "guess_lang", "load_tagger"]

_HASHTAG_IN_TEXT = re.compile(r"[#＃]([^\W_]\w*)")
_ZONE = " \x1d "  # between the caption and its hashtags (never inside a token)
_HT_SEP = " . "  # between two hashtags: a term never spans two hashtags
_HASHTAG_CACHE_MAX = 200_000
_RESULT_CACHE_MAX = 50_000
_WORD_CACHE_MAX = 500_000
_STAT_KEYS = (
    "result_lookups",
    "result_hits",
    "word_lookups",
    "word_hits",
    "tags_lookups",
    "tags_hits",
)


@dataclass(frozen=True, slots=True)
class TagResult:
    """Topics of one video, and for each topic the lexicon terms that fired.

    Terms that fired inside a hashtag are prefixed with '#'. Results may be shared
    between videos (identical texts, the empty result): treat `matched` as read-only.
    """

    topics: tuple[str, ...]
    matched: dict[str, tuple[str, ...]]


EMPTY = TagResult((), {})
"""The result without topics (shared; do not mutate its `matched`)."""


def default_lexicon_dir() -> Path:
    """``schemas/lexicons`` of the checkout (honours WORKPULSE_SCHEMAS_DIR)."""
    override = os.environ.get("WORKPULSE_SCHEMAS_DIR")
    if override:
        return Path(override) / "lexicons"
    return Path(__file__).resolve().parents[3] / "schemas" / "lexicons"


_Segment = tuple[str, tuple[Hit, ...], str]
"""A hashtag: (normalised, segmented text; direct topic hits; compact key)."""
_Span = tuple[int, int, tuple[CondRule, ...]]
_CtxSpan = tuple[int, int, tuple[int, ...]]
_Fired = tuple[int, int, str]
"""(start, end, label) of a fired term; start -1: a hashtag named in the lexicon."""
_TagZone = tuple[str, tuple[int, ...], tuple[str, ...], tuple[tuple[str, str], ...]]
"""Hashtags of a video: (text appended to the caption, offsets of each hashtag's text
after the zone mark, the label of each ("#QuitMyJob"), direct (topic, label) hits)."""

_FRENCH_HINT = re.compile(
    r"\b(?:les|des|du|une|est|sont|avec|pour|dans|pas|mon|ma|mes|je|j|l|d|qu|c|n|au|aux"
    r"|nous|vous|ils|elles|leur|leurs|cette|chez|sur|tres|trop|mais|ou|ca|sa|son|ses|la|le"
    r"|de|et|un|ce|ces|qui|que|il|elle|tu|te|me|se|ne|tout|tous|plus|ai|suis|sans|contre)\b"
)
_ENGLISH_HINT = re.compile(
    r"\b(?:the|and|is|are|my|your|our|their|of|to|for|with|this|that|i|you|we|they|it|in|on"
    r"|at|was|were|be|been|what|how|why|not|from|by|an|a)\b"
)


def guess_lang(normalised: str) -> str | None:
    """A cheap language guess for captions without ``lang`` (used only by `not_lang`)."""
    if any("\u0600" <= ch <= "\u06ff" for ch in normalised):
        return "ar"
    fr = len(_FRENCH_HINT.findall(normalised))
    en = len(_ENGLISH_HINT.findall(normalised))
    if fr > en:
        return "fr"
    if en > fr:
        return "en"
    return None


def _primary(lang: str | None) -> str | None:
    """BCP 47 primary subtag, lower case: "fr-CA" → "fr"."""
    if not lang:
        return None
    return lang.replace("_", "-").split("-", 1)[0].lower()


def _near(
    text: str, zone: int, s: int, e: int, cs: int, ce: int, window: int | None, blocking: bool
) -> bool:
    """Is a context at [cs, ce] near a term at [s, e] for this rule's window?"""
    if window == -1 or s > zone:  # "caption" window, or a hashtag term: the whole video
        return True
    if cs > zone:
        # A caption term with a context in the hashtags: a blocking context always counts;
        # a needed one only for wide windows (not "leave" ... #hatemyjob).
        return blocking or window is None or window >= 6
    if cs >= e:
        lo, hi = e, cs
    elif s >= ce:
        lo, hi = ce, s
    else:  # overlapping: blocks ("salary cap"), but a term is not its own evidence
        return blocking
    if sentence_break(text, lo, hi) is not None:
        return False
    return window is None or text.count(" ", lo, hi) <= window


def _find_near(
    text: str,
    zone: int,
    s: int,
    e: int,
    ids: frozenset[int],
    contexts: list[_CtxSpan],
    window: int | None,
    blocking: bool,
) -> str | None:
    """The first context of ``ids`` near the term at [s, e] (its text), or None."""
    for cs, ce, cids in contexts:
        if not ids.isdisjoint(cids) and _near(text, zone, s, e, cs, ce, window, blocking):
            phrase = text[cs + 1 : ce].strip()
            return "#" + phrase if cs > zone else phrase
    return None


def _explain(fired: list[_Fired], zone: int, tagzone: _TagZone | None) -> tuple[str, ...]:
    """The labels of one topic: each term once, only maximal spans, hashtags by name."""
    if len(fired) == 1:
        s, _, label = fired[0]
        if s <= zone or tagzone is None:
            return (label,)
    labels: set[str] = set()
    kept: list[tuple[int, int]] = []
    if len(fired) > 1:
        fired = sorted(fired, key=lambda f: f[0] - f[1])  # longest first (stable)
    for s, e, label in fired:
        if s < 0:  # a hashtag the lexicon names
            labels.add(label)
        elif s > zone and tagzone is not None:  # inside a hashtag: name the hashtag
            labels.add(tagzone[2][bisect_right(tagzone[1], s - zone + 1) - 1])
        else:
            for ks, ke in kept:
                if ks <= s and e <= ke:
                    break
            else:
                kept.append((s, e))
                labels.add(label)
    return tuple(sorted(labels))


class Tagger:
    """Tags captions with the topics of TAXONOMY.md using a compiled lexicon.

    Immutable after construction apart from its internal caches, so one instance can be
    shared; build a new one (see `TaggerReloader`) to change the lexicon.

    The hot path is `tag_batch`: the batch's new captions are normalised with C-level
    string operations and a word cache, the whole batch is scanned in one Aho-Corasick
    pass, and Python-level work is only spent on captions where a term fired.
    """

    __slots__ = (
        "_ac_iter",
        "_ctx_iter",
        "_generic",
        "_ht_cache",
        "_ht_hits",
        "_maxlen",
        "_results",
        "_short",
        "_strong",
        "_tags_cache",
        "_vocab",
        "_words",
        "lexicon",
        "path",
        "stats",
        "version",
    )

    def __init__(self, lexicon: CompiledLexicon, path: Path | None = None) -> None:
        self.lexicon = lexicon
        self.path = path
        self.version: str = lexicon.version
        self._ac_iter = lexicon.automaton.iter
        self._ctx_iter = lexicon.context_automaton.iter
        self._vocab = lexicon.compact_vocab
        self._strong = lexicon.strong
        self._ht_hits = lexicon.hashtag_hits
        self._generic = lexicon.generic_hashtags
        self._maxlen = lexicon.max_compact_len
        self._short = lexicon.short_words
        self._ht_cache: dict[str, _Segment] = {}
        self._tags_cache: dict[tuple[str, ...], _TagZone] = {}
        self._words: dict[str, str] = {"\x00": "\x00"}
        self._results: dict[tuple[str, tuple[str, ...], str | None], TagResult] = {}
        self.stats: dict[str, int] = dict.fromkeys(_STAT_KEYS, 0)
        """Counters of the caches (for benchmarks): lookups and hits."""

    # Public API ------------------------------------------------------------------------
    def tag(self, caption: str, hashtags: Sequence[str] = (), lang: str | None = None) -> TagResult:
        """Topics of one video.

        Every language's terms always apply (captions code-switch, hashtags are often
        English); ``lang`` only decides the few terms marked ``not_lang`` (guessed from
        the text when absent).
        """
        if not caption and not hashtags:
            return EMPTY
        return self.tag_batch(((caption, hashtags, lang),))[0]

    def tag_batch(self, items: Sequence[tuple[str, Sequence[str], str | None]]) -> list[TagResult]:
        """`tag` for many videos at once (the fast path).

        Items without caption and hashtags (stats events) cost one test each. Repeated
        (caption, hashtags, lang) inputs are answered from a bounded cache; the new
        captions are normalised together and scanned in one automaton pass.
        """
        results: list[TagResult] = [EMPTY] * len(items)
        cache = self._results
        todo: dict[tuple[str, tuple[str, ...], str | None], list[int]] = {}
        looked = 0
        for i, (caption, tags, lang) in enumerate(items):
            if caption or tags:
                looked += 1
                key = (caption, tags if type(tags) is tuple else tuple(tags), lang)
                hit = cache.get(key)
                if hit is not None:
                    results[i] = hit
                    continue
                slots = todo.get(key)
                if slots is None:
                    todo[key] = [i]
                else:
                    slots.append(i)
        stats = self.stats
        stats["result_lookups"] += looked
        stats["result_hits"] += looked - sum(len(v) for v in todo.values())
        if not todo:
            return results
        keys = list(todo)
        if len(cache) + len(keys) > _RESULT_CACHE_MAX:
            cache.clear()
        for key, result in zip(keys, self._tag_new(keys), strict=True):
            cache[key] = result
            for i in todo[key]:
                results[i] = result
        return results

    def clear_caches(self) -> None:
        """Forget cached results, words and hashtag segmentations (benchmarks, tests)."""
        self._results.clear()
        self._ht_cache.clear()
        self._tags_cache.clear()
        self._words.clear()
        self._words["\x00"] = "\x00"
        for k in self.stats:
            self.stats[k] = 0

    def hashtag_text(self, tag: str) -> str:
        """The normalised, segmented text a hashtag is matched as (for tests and docs)."""
        return self._hashtag(tag)[0]

    # Internals -------------------------------------------------------------------------
    def _normalise_captions(self, captions: list[str]) -> list[str]:
        """Each caption normalised and padded with one space on each side.

        One C-level pass over the batch: split on whitespace, map every word through a
        cache of normalised words (new words are normalised once), join, cut back into
        captions. Equivalent to `normalise` (sentence breaks that are whitespace, such as
        newlines, become ".").
        """
        joined = "\x00 " + " \x00 ".join(captions) + " \x00"
        if joined.count("\x00") != len(captions) + 1:  # a caption contains NUL
            return [" " + normalise(c) + " " for c in captions]
        if "\n" in joined or "\r" in joined:
            joined = joined.replace("\n", " . ").replace("\r", " . ")
        words = joined.split()
        cache = self._words
        missing = set(words).difference(cache)
        stats = self.stats
        stats["word_lookups"] += len(words)
        stats["word_hits"] += len(words) - len(missing)
        if missing:
            if len(cache) + len(missing) > _WORD_CACHE_MAX:
                cache.clear()
                cache["\x00"] = "\x00"
            for word in missing:
                cache[word] = normalise_word(word)
        out = " ".join(filter(None, map(cache.__getitem__, words))).split("\x00")
        if len(out) != len(captions) + 2:  # pragma: no cover - folding produced a NUL
            return [" " + normalise(c) + " " for c in captions]
        return out[1:-1]

    def _tag_zone(self, tags: tuple[str, ...]) -> _TagZone:
        """The hashtag part of the scanned text for these hashtags (cached per tuple)."""
        zone = self._tags_cache.get(tags)
        self.stats["tags_lookups"] += 1
        if zone is not None:
            self.stats["tags_hits"] += 1
            return zone
        ht_cache = self._ht_cache
        parts: list[str] = []
        starts: list[int] = []
        labels: list[str] = []
        direct: list[tuple[str, str]] = []
        first: dict[str, str] = {}  # compact key -> first spelling (the label)
        pos = 2  # after "\x1d "
        for tag in dict.fromkeys(tags):
            seg = ht_cache.get(tag)
            if seg is None:
                seg = self._hashtag(tag)
            text, hits, key = seg
            if not key:
                continue
            label = first.get(key)
            if label is None:
                label = first[key] = "#" + tag.lstrip("#＃")
                for topic, _ in hits:
                    direct.append((topic, label))
            if text and text not in parts:
                parts.append(text)
                starts.append(pos)
                labels.append(label)
                pos += len(text) + len(_HT_SEP)
        body = ("\x1d " + _HT_SEP.join(parts) + " ") if parts else ""
        zone = (body, tuple(starts), tuple(labels), tuple(direct))
        if len(self._tags_cache) >= _HASHTAG_CACHE_MAX:
            self._tags_cache.clear()
        self._tags_cache[tags] = zone
        return zone

    def _tag_new(self, keys: list[tuple[str, tuple[str, ...], str | None]]) -> list[TagResult]:
        norms = self._normalise_captions([key[0] for key in keys])
        texts: list[str] = []
        zones: list[_TagZone | None] = []
        tag_zone = self._tag_zone
        for (caption, tags, _), norm in zip(keys, norms, strict=True):
            if "#" in caption or "＃" in caption:
                tags = (*tags, *_HASHTAG_IN_TEXT.findall(caption))
            if tags:
                zone = tag_zone(tags)
                if zone[0] or zone[3]:
                    texts.append(norm + zone[0])
                    zones.append(zone)
                    continue
            texts.append(norm)
            zones.append(None)
        results: list[TagResult] = [EMPTY] * len(keys)
        # One automaton pass over the batch; hits arrive in order of their end offset
        # and are handed to the caption they fall in (texts are separated by NUL, which
        # no key contains, and each text starts and ends with a space).
        big = "\x00".join(texts)
        bounds: list[int] = []
        pos = 0
        for text in texts:
            pos += len(text)
            bounds.append(pos)
            pos += 1
        groups: list[tuple[int, list[tuple[int, KeyValue]]]] = []
        limit = -1
        base = 0
        cur: list[tuple[int, KeyValue]] = []
        for end, value in self._ac_iter(big):
            if end >= limit:
                j = bisect_right(bounds, end)
                limit = bounds[j]
                base = limit - len(texts[j])
                cur = []
                groups.append((j, cur))
            cur.append((end - base, value))
        seen: set[int] = set()
        for j, hits in groups:
            seen.add(j)
            results[j] = self._match(texts[j], len(norms[j]), hits, zones[j], keys[j][2])
        for j, tz in enumerate(zones):  # direct hashtag hits without any term
            if tz is not None and tz[3] and j not in seen:
                results[j] = self._match(texts[j], len(norms[j]), [], tz, keys[j][2])
        return results

    def _match(
        self,
        text: str,
        zone: int,
        hits: list[tuple[int, KeyValue]],
        tagzone: _TagZone | None,
        lang: str | None,
    ) -> TagResult:
        found: dict[str, list[_Fired]] = {}
        pending: list[_Span] | None = None
        for end, (klen, uhits, rules, endings) in hits:
            start = end - klen + 1
            if endings is not None:  # an attached suffix (Arabic): check the word's rest
                nxt = text.find(" ", end)
                if text[end + 1 : nxt] not in endings:
                    continue
                end = nxt
            if uhits:
                for topic, label in uhits:
                    fired = found.get(topic)
                    if fired is None:
                        found[topic] = [(start, end, label)]
                    else:
                        fired.append((start, end, label))
            if rules:
                if pending is None:
                    pending = [(start, end, rules)]
                else:
                    pending.append((start, end, rules))
        if pending is not None:
            self._conditional(text, zone, pending, self._contexts(text), found, _primary(lang))
        if tagzone is not None:
            for topic, label in tagzone[3]:
                fired = found.get(topic)
                if fired is None:
                    found[topic] = [(-1, -1, label)]
                else:
                    fired.append((-1, -1, label))
        if not found:
            return EMPTY
        topics = tuple(sorted(found))
        return TagResult(topics, {t: _explain(found[t], zone, tagzone) for t in topics})

    def _contexts(self, text: str) -> list[_CtxSpan]:
        out = []
        for end, (klen, ids, endings) in self._ctx_iter(text):
            start = end - klen + 1
            if endings is not None:
                nxt = text.find(" ", end)
                if text[end + 1 : nxt] not in endings:
                    continue
                end = nxt
            out.append((start, end, ids))
        return out

    @staticmethod
    def _conditional(
        text: str,
        zone: int,
        pending: list[_Span],
        contexts: list[_CtxSpan],
        found: dict[str, list[_Fired]],
        lang: str | None,
    ) -> None:
        guessed = False
        for s, e, rules in pending:
            for rule in rules:
                if rule.not_langs is not None:
                    if lang is None and not guessed:
                        lang, guessed = guess_lang(text), True
                    if lang in rule.not_langs:
                        continue
                window = rule.window
                block = rule.block
                if block is not None and _find_near(
                    text, zone, s, e, block, contexts, window, True
                ):
                    continue
                label = rule.label
                need = rule.need
                if need is not None:
                    why = _find_near(text, zone, s, e, need, contexts, window, False)
                    if why is None:
                        continue
                    need = rule.also_need
                    if need is not None:
                        also = _find_near(text, zone, s, e, need, contexts, window, False)
                        if also is None:
                            continue
                        why = why + ", " + also if also != why else why
                    label = label + " (if " + why + ")"
                fired = found.get(rule.topic)
                if fired is None:
                    found[rule.topic] = [(s, e, label)]
                else:
                    fired.append((s, e, label))

    # Hashtags --------------------------------------------------------------------------
    def _hashtag(self, tag: str) -> _Segment:
        norm = normalise(split_hashtag(tag))
        key = compact(norm)
        for ch in SENTENCE_CHARS:
            key = key.replace(ch, "")
        if not key or key in self._generic:
            seg: _Segment = ("", (), "")
        else:
            hits = self._ht_hits.get(key, ())
            if " " in norm:
                # #MeToo → "me too metoo": its words, and its one-word form
                words = " ".join(w for w in norm.split(" ") if w not in SENTENCE_CHARS)
                seg = (words + " " + key, hits, key)
            else:
                seg = (self._segment(norm) or norm, hits, key)
        cache = self._ht_cache
        if len(cache) >= _HASHTAG_CACHE_MAX:
            cache.clear()
        cache[tag] = seg
        return seg

    def _dp(self, t: str) -> list[str] | None:
        """Fewest-pieces split of ``t`` into lexicon words/phrases (or digit runs)."""
        vocab, maxlen, n, short = self._vocab, self._maxlen, len(t), self._short
        best: list[list[str] | None] = [None] * (n + 1)
        best[0] = []
        for i in range(n):
            done = best[i]
            if done is None:
                continue
            for j in range(min(n, i + maxlen), i, -1):
                piece = t[i:j]
                spaced = vocab.get(piece)
                if spaced is None:
                    if not piece.isdigit():
                        continue
                elif j - i <= 2 and piece not in short:  # "re" + "union" is not a split
                    continue
                cand = [*done, spaced or piece]
                prev = best[j]
                if prev is None or len(cand) < len(prev):
                    best[j] = cand
        return best[n]

    def _segment(self, t: str) -> str | None:
        """Segment a one-word hashtag: #quitmyjob → "quit my job".

        Either the whole hashtag splits into known words/phrases, or it contains a long,
        specific term (e.g. "layoffs" in #googlelayoffs) and the rest is kept around it
        as unknown words. Otherwise None: the hashtag is matched as one word.
        """
        spaced = self._vocab.get(t)
        if spaced is not None:
            return spaced
        pieces = self._dp(t)
        if pieces is not None:
            return " ".join(pieces)
        n, strong = len(t), self._strong
        for size in range(n - 1, 5, -1):
            for start in range(0, n - size + 1):
                piece = t[start : start + size]
                if piece in strong:
                    left, right = t[:start], t[start + size :]
                    out = [
                        " ".join(self._dp(left) or [left]) if left else "",
                        self._vocab.get(piece, piece),
                        " ".join(self._dp(right) or [right]) if right else "",
                    ]
                    return " ".join(p for p in out if p)
        return None


def load_tagger(path: Path | None = None) -> Tagger:
    """Compile the lexicon in ``path`` (default: the repository's schemas/lexicons).

    Raises `workpulse.tagging.lexicon.LexiconError` if the lexicon data is invalid.
    """
    directory = path if path is not None else default_lexicon_dir()
    return Tagger(compile_lexicon(directory), directory)
