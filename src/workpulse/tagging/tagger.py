"""The tagger: caption + hashtags → work topics, with the terms that fired."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workpulse.tagging.lexicon import (
    TOPICS,
    CompiledLexicon,
    CondRule,
    Hit,
    compile_lexicon,
)
from workpulse.tagging.normalise import (
    SENTENCE_CHARS,
    compact,
    normalise,
    normalise_many,
    sentence_break,
    split_hashtag,
)

__all__ = ["TOPICS", "TagResult", "Tagger", "default_lexicon_dir", "guess_lang", "load_tagger"]

_HASHTAG_IN_TEXT = re.compile(r"[#＃]([^\W_]\w*)")
_ZONE = " \x1d "  # between the caption and its hashtags (never inside a token)
_HT_SEP = " . "  # between two hashtags: a term never spans two hashtags
_HASHTAG_CACHE_MAX = 200_000
_RESULT_CACHE_MAX = 50_000


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


_Segment = tuple[str, tuple[Hit, ...]]
_Span = tuple[int, int, tuple[CondRule, ...]]
_CtxSpan = tuple[int, int, tuple[int, ...]]

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


def _any_near(
    text: str,
    zone: int,
    s: int,
    e: int,
    ids: frozenset[int],
    contexts: list[_CtxSpan],
    window: int | None,
    blocking: bool,
) -> bool:
    for cs, ce, cids in contexts:
        if not ids.isdisjoint(cids) and _near(text, zone, s, e, cs, ce, window, blocking):
            return True
    return False


class Tagger:
    """Tags captions with the topics of TAXONOMY.md using a compiled lexicon.

    Immutable after construction apart from its internal caches, so one instance can be
    shared; build a new one (see `TaggerReloader`) to change the lexicon.
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
        "_vocab",
        "lexicon",
        "path",
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
        self._results: dict[tuple[str, tuple[str, ...], str | None], TagResult] = {}

    # Public API ------------------------------------------------------------------------
    def tag(self, caption: str, hashtags: Sequence[str] = (), lang: str | None = None) -> TagResult:
        """Topics of one video.

        Every language's terms always apply (captions code-switch, hashtags are often
        English); ``lang`` only decides the few terms marked ``not_lang`` (guessed from
        the text when absent).
        """
        if not caption and not hashtags:
            return EMPTY
        key = (caption, tuple(hashtags), lang)
        result = self._results.get(key)
        if result is None:
            result = self._tag_one(normalise(caption) if caption else "", caption, hashtags, lang)
            self._remember(key, result)
        return result

    def tag_batch(self, items: Sequence[tuple[str, Sequence[str], str | None]]) -> list[TagResult]:
        """`tag` for many videos at once: one normalisation pass over the batch's new
        captions; repeated (caption, hashtags, lang) inputs are answered from a cache."""
        results: list[TagResult] = [EMPTY] * len(items)
        cache = self._results
        todo: list[int] = []
        keys: list[tuple[str, tuple[str, ...], str | None]] = []
        for i, (caption, tags, lang) in enumerate(items):
            if caption or tags:
                key = (caption, tuple(tags), lang)
                hit = cache.get(key)
                if hit is None:
                    todo.append(i)
                    keys.append(key)
                else:
                    results[i] = hit
        if todo:
            norms = normalise_many([key[0] for key in keys])
            run = self._tag_one
            for i, key, norm in zip(todo, keys, norms, strict=True):
                result = results[i] = run(norm, key[0], key[1], key[2])
                self._remember(key, result)
        return results

    def _remember(self, key: tuple[str, tuple[str, ...], str | None], result: TagResult) -> None:
        cache = self._results
        if len(cache) >= _RESULT_CACHE_MAX:
            cache.clear()
        cache[key] = result

    def clear_caches(self) -> None:
        """Forget cached results and hashtag segmentations (benchmarks, tests)."""
        self._results.clear()
        self._ht_cache.clear()

    def hashtag_text(self, tag: str) -> str:
        """The normalised, segmented text a hashtag is matched as (for tests and docs)."""
        return self._hashtag(tag)[0]

    # Internals -------------------------------------------------------------------------
    def _tag_one(
        self, norm: str, caption: str, hashtags: Sequence[str], lang: str | None
    ) -> TagResult:
        if "#" in caption or "＃" in caption:
            hashtags = [*hashtags, *_HASHTAG_IN_TEXT.findall(caption)]
        direct: list[Hit] | None = None
        if hashtags:
            cache = self._ht_cache
            parts = []
            for tag in hashtags:
                seg = cache.get(tag)
                if seg is None:
                    seg = self._hashtag(tag)
                if seg[0]:
                    parts.append(seg[0])
                if seg[1]:
                    if direct is None:
                        direct = []
                    direct.extend(seg[1])
            text = " " + norm + _ZONE + _HT_SEP.join(parts) + " "
        else:
            text = " " + norm + " "
        return self._match(text, len(norm) + 2, direct, lang)

    def _match(self, text: str, zone: int, direct: list[Hit] | None, lang: str | None) -> TagResult:
        found: dict[str, set[str]] | None = None
        pending: list[_Span] | None = None
        for end, (klen, hits, rules, endings) in self._ac_iter(text):
            start = end - klen + 1
            if endings is not None:  # an attached suffix (Arabic): check the word's rest
                nxt = text.find(" ", end)
                if text[end + 1 : nxt] not in endings:
                    continue
                end = nxt
            if hits:
                if found is None:
                    found = {}
                for topic, label in hits:
                    if end > zone:
                        label = "#" + label
                    labels = found.get(topic)
                    if labels is None:
                        found[topic] = {label}
                    else:
                        labels.add(label)
            if rules:
                if pending is None:
                    pending = [(start, end, rules)]
                else:
                    pending.append((start, end, rules))
        if pending is not None:
            if found is None:
                found = {}
            self._conditional(text, zone, pending, self._contexts(text), found, _primary(lang))
        if direct:
            if found is None:
                found = {}
            for topic, label in direct:
                labels = found.get(topic)
                if labels is None:
                    found[topic] = {label}
                else:
                    labels.add(label)
        if not found:
            return EMPTY
        topics = tuple(sorted(found))
        return TagResult(topics, {t: tuple(sorted(found[t])) for t in topics})

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
        found: dict[str, set[str]],
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
                need = rule.need
                if need is not None and not _any_near(
                    text, zone, s, e, need, contexts, window, False
                ):
                    continue
                need = rule.also_need
                if need is not None and not _any_near(
                    text, zone, s, e, need, contexts, window, False
                ):
                    continue
                block = rule.block
                if block is not None and _any_near(text, zone, s, e, block, contexts, window, True):
                    continue
                label = "#" + rule.label if e > zone else rule.label
                labels = found.get(rule.topic)
                if labels is None:
                    found[rule.topic] = {label}
                else:
                    labels.add(label)

    # Hashtags --------------------------------------------------------------------------
    def _hashtag(self, tag: str) -> _Segment:
        norm = normalise(split_hashtag(tag))
        key = compact(norm)
        for ch in SENTENCE_CHARS:
            key = key.replace(ch, "")
        if not key or key in self._generic:
            seg: _Segment = ("", ())
        else:
            hits = self._ht_hits.get(key, ())
            if " " in norm:
                # #MeToo → "me too metoo": its words, and its one-word form
                words = " ".join(w for w in norm.split(" ") if w not in SENTENCE_CHARS)
                seg = (words + " " + key, hits)
            else:
                seg = (self._segment(norm) or norm, hits)
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
