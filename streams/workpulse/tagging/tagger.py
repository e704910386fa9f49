"""The tagger: caption + hashtags → work topics, with the terms that fired."""

from __future__ import annotations

import gc
import re
from bisect import bisect_right
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from workpulse.model.topics import TOPICS
from workpulse.resources import lexicon_dir
from workpulse.tagging.language import guess_lang, primary
from workpulse.tagging.lexicon import (
    CompiledLexicon,
    CondRule,
    Hit,
    KeyValue,
    compile_lexicon,
)
from workpulse.tagging.normalise import (
    SENTENCE_CHARS,
    compact,
    fold_code_point,
    normalise,
    normalise_word,
    sentence_break,
    split_hashtag,
)

try:  # the compiled engine (built by `pip install`; without it, the Python engine runs)
    from workpulse.tagging import _engine as _compiled
except ImportError:  # pragma: no cover - no C compiler where the package was installed
    _compiled = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from workpulse.tagging import _engine as _compiled_module

ENGINES = ("compiled", "python")
"""The tagging engines: the compiled one (the default when it is built) and the Python
reference, which gives the same results."""

__all__ = [
    "ENGINES",
    "TOPICS",
    "TagResult",
    "Tagger",
    "freeze_lexicon_objects",
    "load_tagger",
]

_HASHTAG_IN_TEXT = re.compile(r"[#＃]([^\W_]\w*)")
_ZONE = " \x1d "  # between the caption and its hashtags (never inside a token)
_HT_SEP = " . "  # between two hashtags: a term never spans two hashtags
_HASHTAG_CACHE_MAX = 200_000
# The longest hashtag segmented into words (the contract's limit on a hashtag): a longer
# run of letters after a '#' in a caption is no platform's hashtag; it is matched as one
# word, in time linear in its length.
SEGMENT_MAX_CHARS = 200
_RESULT_CACHE_MAX = 50_000
_WORD_CACHE_MAX = 500_000
_STAT_KEYS = (
    "result_lookups",
    "result_hits",
    "normalised_lookups",
    "normalised_hits",
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


_Key = tuple[str, tuple[str, ...], str | None]
"""(caption, hashtags, lang) of a video: the key of the result cache."""
_Segment = tuple[str, tuple[Hit, ...], str, tuple[str, ...], tuple[CondRule, ...]]
"""A hashtag: (normalised, segmented text; direct topic hits; compact key; the topics of
the unconditional terms in its text; the conditional rules of the terms in its text)."""
_NormKey = tuple[str, "_TagZone | None", str | None]
"""(normalised caption, hashtag zone, lang): the key of the normalised-result cache."""
_K = TypeVar("_K", bound=Hashable)
_Span = tuple[int, int, tuple[CondRule, ...]]
_CtxSpan = tuple[int, int, tuple[int, ...]]
_Fired = tuple[int, int, str]
"""(start, end, label) of a fired term; start -1: a hashtag named in the lexicon."""
_TagZone = tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]
"""Hashtags of a video: (text appended to the caption, the label ("#QuitMyJob") of each
hashtag text in it, direct (topic, label) hits). Equal zones give equal results."""
_ZoneRule = tuple[CondRule, str]
"""A conditional rule that hit inside a hashtag, and the hashtag's label."""
_ZoneEntry = tuple["_TagZone | None", tuple[tuple[str, str], ...], tuple[_ZoneRule, ...]]
"""What the hashtags of a video give, computed once per hashtag tuple: their zone (None:
no text to add), the (topic, hashtag label) pairs that fire whatever the caption says
(hashtags the lexicon names, unconditional terms inside hashtags), and the conditional
rules that hit inside them. A term inside a hashtag is named by its hashtag and its
contexts may be anywhere in the video, so only the rules need the caption."""
_NO_ZONE: _ZoneEntry = (None, (), ())


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
            phrase = text[cs : ce + 1].strip()  # the key's span (a wildcard key ends on a letter)
            return "#" + phrase if cs > zone else phrase
    return None


def _hashtag_label(tag: str) -> str:
    """How an explanation names a hashtag: as the video wrote it, with one '#'."""
    return "#" + tag.lstrip("#＃")


def _span_order(fired: _Fired) -> int:
    return fired[0] - fired[1]  # longest first


def _explain(fired: list[_Fired]) -> tuple[str, ...]:
    """The labels of one topic: each term once, only maximal caption spans, hashtags by
    name (their entries start at -1 and carry the hashtag's label)."""
    labels: set[str] = set()
    spans: list[_Fired] = []
    for entry in fired:
        if entry[0] < 0:
            labels.add(entry[2])
        else:
            spans.append(entry)
    if len(spans) > 1:
        spans.sort(key=_span_order)  # stable: equal spans keep their first label
    kept: list[tuple[int, int]] = []
    for s, e, label in spans:
        for ks, ke in kept:
            if ks <= s and e <= ke:
                break
        else:
            kept.append((s, e))
            labels.add(label)
    return tuple(sorted(labels))


def _covered(fired: list[_Fired], s: int, e: int) -> bool:
    """Does a fired span contain the caption span [s, e]? (Hashtag entries end at -1:
    they cannot.)"""
    return any(fs <= s and e <= fe for fs, fe, _ in fired)


def _result(found: dict[str, list[_Fired]]) -> TagResult:
    """The result for what fired; a topic with one entry needs no `_explain`."""
    topics = tuple(sorted(found))
    matched: dict[str, tuple[str, ...]] = {}
    for topic in topics:
        fired = found[topic]
        matched[topic] = (fired[0][2],) if len(fired) == 1 else _explain(fired)
    return TagResult(topics, matched)


def _through_cache(
    keys: Sequence[_K | None],
    cache: dict[_K, TagResult],
    compute: Callable[[list[_K]], list[TagResult]],
) -> tuple[list[TagResult], int, int]:
    """The result of each key (None: `EMPTY`): from ``cache``, else computed once per
    distinct new key by one ``compute`` call and remembered (the cache is emptied when
    full). Also returns the number of lookups and of cache hits."""
    results: list[TagResult] = [EMPTY] * len(keys)
    todo: dict[_K, list[int]] = {}
    looked = 0
    for i, key in enumerate(keys):
        if key is None:
            continue
        looked += 1
        hit = cache.get(key)
        if hit is not None:
            results[i] = hit
            continue
        slots = todo.get(key)
        if slots is None:
            todo[key] = [i]
        else:
            slots.append(i)
    hits = looked - sum(map(len, todo.values()))
    if todo:
        new = list(todo)
        if len(cache) + len(new) > _RESULT_CACHE_MAX:
            cache.clear()
        for key, result in zip(new, compute(new), strict=True):
            cache[key] = result
            for i in todo[key]:
                results[i] = result
    return results, looked, hits


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
        "_compiled",
        "_ctx_iter",
        "_generic",
        "_ht_cache",
        "_ht_hits",
        "_maxlen",
        "_norm_results",
        "_results",
        "_short",
        "_strong",
        "_strong_maxlen",
        "_tags_cache",
        "_vocab",
        "_words",
        "engine",
        "lexicon",
        "path",
        "stats",
        "version",
    )

    def __init__(
        self,
        lexicon: CompiledLexicon,
        path: Path | None = None,
        engine: str | None = None,
        engine_state: dict[str, Any] | None = None,
    ) -> None:
        """``engine``: "compiled", "python", or None for the compiled one when it is
        built (see `ENGINES`). ``engine_state``: the compiled engine's `state()` for this
        lexicon (from the disk cache), to skip building it."""
        if engine not in (None, *ENGINES):
            raise ValueError(f"unknown tagging engine {engine!r}: one of {', '.join(ENGINES)}")
        if engine == "compiled" and _compiled is None:
            raise RuntimeError("the compiled tagging engine is not built (pip install -e .)")
        self.lexicon = lexicon
        self.path = path
        self.version: str = lexicon.version
        self._ac_iter = lexicon.automaton.iter
        self._ctx_iter = lexicon.context_automaton.iter
        self._vocab = lexicon.compact_vocab
        self._strong = lexicon.strong
        self._strong_maxlen = max(map(len, lexicon.strong), default=0)
        self._ht_hits = lexicon.hashtag_hits
        self._generic = lexicon.generic_hashtags
        self._maxlen = lexicon.max_compact_len
        self._short = lexicon.short_words
        self._ht_cache: dict[str, _Segment] = {}
        self._tags_cache: dict[tuple[str, ...], _ZoneEntry] = {}
        self._words: dict[str, str] = {"\x00": "\x00"}
        self._results: dict[_Key, TagResult] = {}
        self._norm_results: dict[_NormKey, TagResult] = {}
        self.stats: dict[str, int] = dict.fromkeys(_STAT_KEYS, 0)
        """Counters of the Python engine's caches (for benchmarks): lookups and hits."""
        self._compiled: _compiled_module.Engine | None = None
        if engine != "python" and _compiled is not None:
            self._compiled = self._build_compiled(engine_state)
        self.engine: str = "compiled" if self._compiled is not None else "python"
        """The engine that tags ("compiled" or "python")."""

    def _build_compiled(self, state: dict[str, Any] | None) -> _compiled_module.Engine:
        assert _compiled is not None
        if state is not None:
            try:
                return self._new_engine((), (), state)
            except (ValueError, KeyError, TypeError, MemoryError):
                pass  # a state of another build: build from the lexicon
        return self._new_engine(
            self.lexicon.automaton.items(), self.lexicon.context_automaton.items(), None
        )

    def _new_engine(
        self, terms: Any, contexts: Any, state: dict[str, Any] | None
    ) -> _compiled_module.Engine:
        assert _compiled is not None
        return _compiled.Engine(
            terms,
            contexts,
            sorted(TOPICS),
            fold_entry=fold_code_point,
            sentence_chars=SENTENCE_CHARS,
            empty=EMPTY,
            result_type=TagResult,
            primary=primary,
            guess_lang=guess_lang,
            digest_of=self._compiled_digest,
            digests_max=_HASHTAG_CACHE_MAX,
            state=state,
        )

    def engine_state(self) -> dict[str, Any] | None:
        """The compiled engine's tables as plain data (for the disk cache), or None."""
        return self._compiled.state() if self._compiled is not None else None

    def _compiled_digest(self, tag: str) -> _compiled_module.TagDigest:
        """A hashtag as the compiled engine uses it (see `_engine.TagDigest`)."""
        text, hits, key, topics, rules = self._hashtag_seg(tag)
        assert self._compiled is not None and _compiled is not None
        topic_ids, rule_ids = self._compiled.topic_ids, self._compiled.rule_ids
        return _compiled.TagDigest(
            key,
            text,
            _hashtag_label(tag),
            tuple(topic_ids[topic] for topic, _ in hits),
            tuple(topic_ids[topic] for topic in topics),
            tuple(rule_ids[rule] for rule in rules),
        )

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

        The compiled engine tags each item on C data (see `_engine.pyx`), handing the
        rare item beyond its fixed limits to the Python engine; the Python engine (the
        reference, `engine="python"`) answers repeated inputs from bounded caches and
        normalises and scans the new captions together.
        """
        engine = self._compiled
        if engine is not None:
            fallbacks = engine.n_fallbacks
            results: list[TagResult | None] = engine.tag_batch(items)
            if engine.n_fallbacks != fallbacks:
                for i, result in enumerate(results):
                    if result is None:  # beyond the compiled engine's limits
                        results[i] = self._tag_python((items[i],))[0]
            return results  # type: ignore[return-value]
        return self._tag_python(items)

    def _tag_python(
        self, items: Sequence[tuple[str, Sequence[str], str | None]]
    ) -> list[TagResult]:
        """`tag_batch` on the Python engine (the reference)."""
        keys: list[_Key | None] = [
            (caption, tags if type(tags) is tuple else tuple(tags), lang)
            if caption or tags
            else None
            for caption, tags, lang in items
        ]
        results, looked, hits = _through_cache(keys, self._results, self._tag_new)
        self.stats["result_lookups"] += looked
        self.stats["result_hits"] += hits
        return results

    def clear_caches(self) -> None:
        """Forget cached results, words and hashtag segmentations (benchmarks, tests)."""
        self._results.clear()
        self._norm_results.clear()
        self._ht_cache.clear()
        self._tags_cache.clear()
        self._words.clear()
        self._words["\x00"] = "\x00"
        for k in self.stats:
            self.stats[k] = 0
        if self._compiled is not None:
            self._compiled.clear()

    def cache_stats(self) -> dict[str, int]:
        """The engine's cache counters: ``<cache>_lookups`` and ``<cache>_hits`` pairs (and,
        for the compiled engine, how many videos the Python engine had to tag)."""
        if self._compiled is not None:
            return dict(self._compiled.stats)
        return dict(self.stats)

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

    def _tag_zone(self, tags: tuple[str, ...]) -> _ZoneEntry:
        """`_zone_entry`, remembered in ``_tags_cache`` (the caller looks there first)."""
        entry = self._zone_entry(tags)
        if len(self._tags_cache) >= _HASHTAG_CACHE_MAX:
            self._tags_cache.clear()
        self._tags_cache[tags] = entry
        return entry

    def _zone_entry(self, tags: tuple[str, ...]) -> _ZoneEntry:
        """Build the hashtag part of a video's text and what its hashtags give, from each
        hashtag's cached digest.

        Hashtags with the same compact form count once, named by their first spelling;
        a text already in the zone is not repeated (its terms keep the first name).
        """
        parts: list[str] = []
        labels: list[str] = []
        direct: list[tuple[str, str]] = []
        pairs: dict[tuple[str, str], None] = {}
        rules: dict[_ZoneRule, None] = {}
        first: dict[str, str] = {}  # compact key -> first spelling (the label)
        for tag in dict.fromkeys(tags):
            text, hits, key, topics, key_rules = self._hashtag_seg(tag)
            if not key:
                continue
            label = first.get(key)
            if label is None:
                label = first[key] = _hashtag_label(tag)
                for topic, _ in hits:
                    direct.append((topic, label))
            if text and text not in parts:
                parts.append(text)
                labels.append(label)
                for topic in topics:
                    pairs[topic, label] = None
                for rule in key_rules:
                    rules[rule, label] = None
        body = ("\x1d " + _HT_SEP.join(parts) + " ") if parts else ""
        zone = (body, tuple(labels), tuple(direct)) if body or direct else None
        return (zone, (*direct, *pairs), tuple(rules))

    def _live(self, tags: tuple[str, ...]) -> bool:
        """Could one of these hashtags give a hit (a term in its text, or a hashtag the
        lexicon names)? False means that the hashtags add nothing to the video."""
        for tag in tags:
            seg = self._hashtag_seg(tag)
            if seg[1] or seg[3] or seg[4]:
                return True
        return False

    def _tag_new(self, keys: list[_Key]) -> list[TagResult]:
        """Tag inputs the result cache does not hold.

        The captions are normalised and scanned in one automaton pass first. A video
        without a hit in its caption and whose hashtags cannot give one is done (most
        videos are: no hashtag zone is built for them). The others get their hashtag
        zone (cached per hashtag tuple, see `_tag_zone`); inputs that only differ in
        case, accents, emoji, punctuation or generic hashtags give the same normalised
        key and are matched once (a second, bounded cache keyed by the normalised
        caption, the hashtag zone and the language).
        """
        norms = self._normalise_captions([key[0] for key in keys])
        caption_hits = {j: (base, hits) for j, base, hits in self._scan(norms)}
        nkeys: list[_NormKey | None] = [None] * len(keys)
        todo: dict[_NormKey, tuple[tuple[int, Sequence[tuple[int, KeyValue]]], _ZoneEntry]] = {}
        tags_cache = self._tags_cache
        find_tags = _HASHTAG_IN_TEXT.findall
        n_zones = n_new = 0
        for j, (caption, tags, lang) in enumerate(keys):
            if "#" in caption or "＃" in caption:
                tags = (*tags, *find_tags(caption))
            found = caption_hits.get(j)
            entry = _NO_ZONE
            if tags:
                n_zones += 1
                cached = tags_cache.get(tags)
                if cached is None:
                    if found is None and not self._live(tags):
                        continue  # no term anywhere in this video
                    n_new += 1
                    cached = self._tag_zone(tags)
                entry = cached
                if found is None and not entry[1] and not entry[2]:
                    continue
            elif found is None:
                continue
            nkey = nkeys[j] = (norms[j], entry[0], lang)
            if nkey not in todo:
                todo[nkey] = (found if found is not None else (0, ()), entry)
        self.stats["tags_lookups"] += n_zones
        self.stats["tags_hits"] += n_zones - n_new
        results, looked, reused = _through_cache(
            nkeys, self._norm_results, lambda new: self._tag_normalised(new, todo)
        )
        self.stats["normalised_lookups"] += looked
        self.stats["normalised_hits"] += reused
        return results

    def _tag_normalised(
        self,
        nkeys: list[_NormKey],
        found: dict[_NormKey, tuple[tuple[int, Sequence[tuple[int, KeyValue]]], _ZoneEntry]],
    ) -> list[TagResult]:
        """Tag (normalised caption, hashtag zone, lang) keys from the automaton hits of
        their caption (offsets relative to ``base``) and what their hashtags give."""
        match = self._match
        out = []
        for nkey in nkeys:
            norm, zone, lang = nkey
            (base, hits), entry = found[nkey]
            text = norm + zone[0] if zone is not None else norm
            out.append(match(text, base, len(norm), hits, entry, lang))
        return out

    def _scan(self, texts: list[str]) -> list[tuple[int, int, list[tuple[int, KeyValue]]]]:
        """One automaton pass over all texts: (index, offset, hits) of each text with a hit.

        The texts are joined with NUL (no key contains it, and each text starts and ends
        with a space); hits arrive in order of their end offset (relative to the joined
        string: subtract the text's offset) and are handed to the text they fall in.
        """
        ends = list(accumulate(map((1).__add__, map(len, texts))))  # just past each NUL
        groups: list[tuple[int, int, list[tuple[int, KeyValue]]]] = []
        append = groups.append
        limit = -1
        cur: list[tuple[int, KeyValue]] = []
        for hit in self._ac_iter("\x00".join(texts)):
            if hit[0] >= limit:
                j = bisect_right(ends, hit[0])
                limit = ends[j]
                cur = [hit]
                append((j, limit - len(texts[j]) - 1, cur))
            else:
                cur.append(hit)
        return groups

    def _match(
        self,
        text: str,
        base: int,
        zone: int,
        hits: Sequence[tuple[int, KeyValue]],
        entry: _ZoneEntry,
        lang: str | None,
    ) -> TagResult:
        """The result of one video from its caption's automaton hits (offsets ``base`` +
        position) and what its hashtags give."""
        found: dict[str, list[_Fired]] = {}
        pending: list[_Span] | None = None
        for end, (klen, uhits, rules, endings) in hits:
            end -= base
            start = end - klen + 1
            if endings is not None:  # an attached suffix (Arabic): check the word's rest
                nxt = text.find(" ", end)
                if text[end + 1 : nxt] not in endings:
                    continue
                end = nxt
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
        _, pairs, zone_rules = entry
        if pending is not None or zone_rules:
            self._conditional(text, zone, pending or (), zone_rules, found, lang)
        for topic, label in pairs:
            fired = found.get(topic)
            if fired is None:
                found[topic] = [(-1, -1, label)]
            else:
                fired.append((-1, -1, label))
        if not found:
            return EMPTY
        return _result(found)

    def _contexts(self, text: str) -> tuple[list[_CtxSpan], set[int]]:
        """The context phrases in ``text`` (in order of their end) and the set ids seen."""
        out = []
        seen: set[int] = set()
        for end, (klen, ids, endings) in self._ctx_iter(text):
            start = end - klen + 1
            if endings is not None:
                nxt = text.find(" ", end)
                if text[end + 1 : nxt] not in endings:
                    continue
                end = nxt
            out.append((start, end, ids))
            seen.update(ids)
        return out, seen

    def _conditional(
        self,
        text: str,
        zone: int,
        pending: Sequence[_Span],
        zone_rules: tuple[_ZoneRule, ...],
        found: dict[str, list[_Fired]],
        lang: str | None,
    ) -> None:
        """Fire the conditional rules of ``pending`` (caption spans) and ``zone_rules``
        (inside hashtags) whose contexts allow it, into ``found``.

        The context scan is run only when a rule needs it, and a rule is not evaluated
        when its label could not show: its topic already fired on a caption span that
        contains this one (`_explain` keeps maximal spans only).
        """
        contexts: list[_CtxSpan] | None = None
        seen: set[int] = set()
        primary_lang: str | None = primary(lang)
        guessed = False
        for s, e, rules in pending:
            in_caption = s <= zone
            for rule in rules:
                fired = found.get(rule.topic)
                if fired is not None and in_caption and _covered(fired, s, e):
                    continue
                if rule.not_langs is not None:
                    if primary_lang is None and not guessed:
                        primary_lang, guessed = guess_lang(text), True
                    if primary_lang in rule.not_langs:
                        continue
                label = rule.label
                block, need = rule.block, rule.need
                if block is not None or need is not None:
                    if contexts is None:
                        contexts, seen = self._contexts(text)
                    window = rule.window
                    if (
                        block is not None
                        and not block.isdisjoint(seen)
                        and _find_near(text, zone, s, e, block, contexts, window, True) is not None
                    ):
                        continue
                    if need is not None:
                        if need.isdisjoint(seen):
                            continue
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
                if fired is None:
                    found[rule.topic] = [(s, e, label)]
                else:
                    fired.append((s, e, label))
        # Inside a hashtag, a context anywhere in the video counts (and blocks), and the
        # hashtag names the term: only whether the rule fires matters.
        for rule, label in zone_rules:
            if rule.not_langs is not None:
                if primary_lang is None and not guessed:
                    primary_lang, guessed = guess_lang(text), True
                if primary_lang in rule.not_langs:
                    continue
            if rule.block is not None or rule.need is not None:
                if contexts is None:
                    contexts, seen = self._contexts(text)
                if rule.block is not None and not rule.block.isdisjoint(seen):
                    continue
                if rule.need is not None and rule.need.isdisjoint(seen):
                    continue
                if rule.also_need is not None and rule.also_need.isdisjoint(seen):
                    continue
            fired = found.get(rule.topic)
            if fired is None:
                found[rule.topic] = [(-1, -1, label)]
            else:
                fired.append((-1, -1, label))

    # Hashtags --------------------------------------------------------------------------
    def _hashtag_seg(self, tag: str) -> _Segment:
        """A hashtag's segment, from the cache or made now (see `_hashtag`)."""
        seg = self._ht_cache.get(tag)
        return seg if seg is not None else self._hashtag(tag)

    def _hashtag(self, tag: str) -> _Segment:
        norm = normalise(split_hashtag(tag))
        key = compact(norm)
        for ch in SENTENCE_CHARS:
            key = key.replace(ch, "")
        if not key or key in self._generic:
            seg: _Segment = ("", (), "", (), ())
        else:
            hits = self._ht_hits.get(key, ())
            if " " in norm:
                # #MeToo → "me too metoo": its words, and its one-word form
                words = " ".join(w for w in norm.split(" ") if w not in SENTENCE_CHARS)
                text = words + " " + key
            elif len(tag) <= SEGMENT_MAX_CHARS and len(norm) <= 4 * SEGMENT_MAX_CHARS:
                # the contract's limit is on the hashtag as sent; normalising may lengthen
                # it (ﬃ → ffi), within bounds that keep segmenting cheap
                text = self._segment(norm) or norm
            else:
                text = norm
            # In a zone the text stands between spaces, and no key holds a sentence
            # break, so its hits there are the hits of " text ".
            topics, rules = self._digest(" " + text + " ")
            seg = (text, hits, key, topics, rules)
        cache = self._ht_cache
        if len(cache) >= _HASHTAG_CACHE_MAX:
            cache.clear()
        cache[tag] = seg
        return seg

    def _digest(self, text: str) -> tuple[tuple[str, ...], tuple[CondRule, ...]]:
        """The topics of the unconditional terms in ``text`` and the conditional rules of
        its terms, each once, in order."""
        topics: dict[str, None] = {}
        rules: dict[CondRule, None] = {}
        for end, (_, uhits, key_rules, endings) in self._ac_iter(text):
            if endings is not None and text[end + 1 : text.find(" ", end)] not in endings:
                continue
            for topic, _ in uhits:
                topics[topic] = None
            for rule in key_rules:
                rules[rule] = None
        return tuple(topics), tuple(rules)

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
        # Sizes up to the longest strong term only: the search was over every size up to
        # the hashtag's, cubic in its length (a 20,000-character hashtag written in a
        # caption took four minutes and held the worker).
        n, strong = len(t), self._strong
        for size in range(min(n - 1, self._strong_maxlen), 5, -1):
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


def freeze_lexicon_objects() -> None:
    """Take the objects alive now — above all a loaded lexicon — out of the cycle GC's scans.

    Call it once a tagger is loaded (the CLI, the benchmark and the reloader do). A
    compiled lexicon is ~80k long-lived GC-tracked objects (automaton values, rules,
    context sets) plus an automaton the collector traverses: each full collection, which
    the allocations of ordinary event decoding trigger every few thousand events, costs
    ~40 ms with them and ~10 µs once they are frozen (`gc.freeze`).

    Frozen objects are never examined by the cycle collector again, only freed by
    reference counting. A lexicon is acyclic and is freed normally when a reload drops
    it; anything else caught in a cycle at freeze time would leak, so garbage is
    collected first and freezing happens only at load and at the (rare) reloads.
    """
    gc.collect()
    gc.freeze()


def load_tagger(
    path: Path | None = None, engine: str | None = None, *, cache_dir: Path | None = None
) -> Tagger:
    """A tagger for the lexicon in ``path`` (default: the packaged schemas/lexicons).

    ``engine``: see `Tagger`. ``cache_dir``: where compiled lexicons are cached
    (`workpulse.tagging.cache`); None compiles every time. Raises
    `workpulse.tagging.lexicon.LexiconError` if the lexicon data is invalid.
    """
    directory = lexicon_dir(path)
    if cache_dir is None:
        return Tagger(compile_lexicon(directory), directory, engine)
    from workpulse.tagging.cache import LexiconCache, cache_key

    cache = LexiconCache(cache_dir)
    key = cache_key(directory)
    hit = cache.load(key)
    if hit is not None:
        lexicon, state = hit
        tagger = Tagger(lexicon, directory, engine, state)
        if state is None and tagger.engine_state() is not None:
            cache.store(key, lexicon, tagger.engine_state())  # stored by a Python engine
        return tagger
    tagger = Tagger(compile_lexicon(directory), directory, engine)
    # Store it only if the files did not change while it compiled.
    if cache_key(directory) == key:
        cache.store(key, tagger.lexicon, tagger.engine_state())
    return tagger
