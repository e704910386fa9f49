"""Loading, validating and compiling the lexicon data in ``schemas/lexicons/``.

The data format is documented in ``schemas/lexicons/README.md``. This module turns it
into plain lookup structures for `workpulse.tagging.tagger.Tagger`:

* one Aho-Corasick automaton whose keys are normalised, space-padded term and context
  forms (" quit my job " — the padding makes every match a whole-token match, in any
  script); each key carries the topic rules and context sets it belongs to;
* a "compact" vocabulary (terms and words with their spaces removed) used to segment
  all-lowercase hashtags such as #quitmyjob;
* the generic hashtags that carry no topic.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ahocorasick
import orjson

from workpulse.model.topics import TOPICS
from workpulse.tagging.normalise import SENTENCE_CHARS, compact, normalise

COMMON_FILE = "common.json"
TERM_KEYS = frozenset(
    {"term", "terms", "if", "also_if", "unless", "window", "note", "exact", "not_lang"}
)
TOPIC_KEYS = frozenset({"topic", "about", "terms", "hashtags", "contexts", "note"})
COMMON_KEYS = frozenset(
    {
        "version",
        "note",
        "languages",
        "contexts",
        "generic_hashtags",
        "hashtag_words",
        "hashtag_affix_min",
    }
)
LANG_KEYS = frozenset(
    {"name", "note", "prefixes", "article", "article_prefixes", "suffixes", "stem_changes"}
)


class LexiconError(ValueError):
    """The lexicon data is invalid; the message names the file and the entry."""


# --------------------------------------------------------------------------------------
# Compiled form
# --------------------------------------------------------------------------------------

Hit = tuple[str, str]
"""(topic id, label) of an unconditional term."""


@dataclass(frozen=True, slots=True)
class CondRule:
    """A term that fires only if a needed context is near and no blocking one is."""

    topic: str
    label: str
    need: frozenset[int] | None
    block: frozenset[int] | None
    window: int | None  # max words between term and context; None: same sentence; -1: caption
    also_need: frozenset[int] | None = None
    not_langs: frozenset[str] | None = None  # primary language codes where it never fires


KeyValue = tuple[int, tuple[Hit, ...], tuple[CondRule, ...], frozenset[str] | None]
"""What the term automaton returns for a key: (key length, hits, conditional rules,
allowed endings of the last word or None when the key ends on a word boundary)."""

CtxValue = tuple[int, tuple[int, ...], frozenset[str] | None]
"""What the context automaton returns: (key length, context set ids, allowed endings)."""


@dataclass(slots=True)
class CompiledLexicon:
    version: str
    automaton: Any  # terms: key → KeyValue
    context_automaton: Any  # contexts: key → CtxValue
    compact_vocab: dict[str, str]  # compact form → spaced normalised form
    strong: frozenset[str]  # compact forms of long positive terms (hashtag affixes)
    hashtag_hits: dict[str, tuple[Hit, ...]]  # compact hashtag → direct topic hits
    generic_hashtags: frozenset[str]
    max_compact_len: int
    short_words: frozenset[str]  # 1-2 letter words a hashtag may be split into ("my", "i")
    stats: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# Expansion of the term notation
# --------------------------------------------------------------------------------------

_GROUP_RE = re.compile(r"\(([^()]*)\)")


def expand(pattern: str) -> list[str]:
    """Expand "(a|b) c (d|)" alternation groups into every combination.

    >>> expand("(quit|quitting) my (job|)")
    ['quit my job', 'quit my', 'quitting my job', 'quitting my']
    """
    if pattern.count("(") != pattern.count(")"):
        raise ValueError(f"unbalanced parentheses in {pattern!r}")
    pieces: list[list[str]] = []
    pos = 0
    for m in _GROUP_RE.finditer(pattern):
        pieces.append([pattern[pos : m.start()]])
        pieces.append(m.group(1).split("|"))
        pos = m.end()
    pieces.append([pattern[pos:]])
    if any("(" in p or ")" in p for alts in pieces for p in alts):
        raise ValueError(f"nested parentheses are not supported in {pattern!r}")
    out: dict[str, None] = {}
    for combo in itertools.product(*pieces):
        text = " ".join("".join(combo).split())
        if text:
            out[text] = None
    return list(out)


@dataclass(frozen=True, slots=True)
class Morphology:
    """Attached prefixes/suffixes of a language (Arabic clitics), all normalised."""

    prefixes: tuple[str, ...] = ()
    article: str = ""
    article_prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    stem_changes: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.prefixes or self.article_prefixes or self.suffixes)

    def first_word(self, word: str) -> set[str]:
        out = {word}
        bare = word
        if self.article and word.startswith(self.article) and len(word) > len(self.article) + 1:
            bare = word[len(self.article) :]
            out.add(bare)
        for p in self.prefixes:
            out.add(p + word)
            out.add(p + bare)
        for p in self.article_prefixes:
            out.add(p + bare)
        return out

    def last_word(self, word: str) -> list[tuple[str, frozenset[str]]]:
        """(stem, allowed endings) pairs: the word itself, or a changed stem + suffix."""
        endings = frozenset(("", *self.suffixes))
        out = [(word, endings)]
        for end, repl in self.stem_changes:
            if word.endswith(end) and len(word) > len(end):
                out.append((word[: -len(end)] + repl, frozenset(self.suffixes)))
        return out

    def variants(self, norm: str, wildcard: bool) -> list[tuple[str, frozenset[str] | None]]:
        """Surface forms of a normalised term: (text, allowed endings of its last word).

        Endings None: the text must be followed by a word boundary (or, for wildcard
        terms, anything). A set: the last word may continue with one of these endings.
        """
        if self.empty:
            return [(norm, None)]
        words = norm.split(" ")
        firsts = self.first_word(words[0])
        if wildcard or not self.suffixes:
            rest = " ".join(words[1:])
            return [((f + " " + rest) if rest else f, None) for f in sorted(firsts)]
        out: list[tuple[str, frozenset[str] | None]] = []
        if len(words) == 1:
            for f in sorted(firsts):
                out.extend(self.last_word(f))
            return out
        mid = " ".join(words[1:-1])
        lasts = self.last_word(words[-1])
        for f in sorted(firsts):
            head = f + " " + mid if mid else f
            out.extend((head + " " + stem, endings) for stem, endings in lasts)
        return out


def _morphology(lang: str, spec: Mapping[str, Any], where: str) -> Morphology:
    unknown = set(spec) - LANG_KEYS
    if unknown:
        raise LexiconError(f"{where}: language {lang!r}: unknown keys {sorted(unknown)}")

    def words(key: str) -> tuple[str, ...]:
        values = spec.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise LexiconError(f"{where}: language {lang!r}: {key} must be a list of strings")
        return tuple(dict.fromkeys(normalise(v) for v in values if normalise(v)))

    changes = spec.get("stem_changes", {})
    if not isinstance(changes, dict):
        raise LexiconError(f"{where}: language {lang!r}: stem_changes must be an object")
    article = spec.get("article", "")
    if not isinstance(article, str):
        raise LexiconError(f"{where}: language {lang!r}: article must be a string")
    return Morphology(
        prefixes=words("prefixes"),
        article=normalise(article),
        article_prefixes=words("article_prefixes"),
        suffixes=words("suffixes"),
        stem_changes=tuple((normalise(k), normalise(v)) for k, v in changes.items()),
    )


@dataclass(frozen=True, slots=True)
class Form:
    label: str  # as written in the lexicon, after group expansion
    norm: str  # normalised
    wildcard: bool


def _forms(pattern: str, where: str) -> list[Form]:
    try:
        expanded = expand(pattern)
    except ValueError as exc:
        raise LexiconError(f"{where}: {exc}") from None
    out = []
    for text in expanded:
        wildcard = text.endswith("*")
        body = text.rstrip("*")
        if "*" in body:
            raise LexiconError(f"{where}: '*' is only allowed at the end of a term: {text!r}")
        norm = normalise(body)
        if not norm:
            raise LexiconError(f"{where}: term {text!r} has no letters or digits")
        if any(tok in SENTENCE_CHARS for tok in norm.split(" ")):
            raise LexiconError(f"{where}: term {text!r} contains sentence punctuation")
        out.append(Form(text, norm, wildcard))
    return out


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise LexiconError(f"{path.name}: not valid JSON: {exc}") from None
    except OSError as exc:
        raise LexiconError(f"{path.name}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise LexiconError(f"{path.name}: top level must be a JSON object")
    return data


def lexicon_files(directory: Path) -> list[Path]:
    """The files that make up a lexicon: common.json and the topic files (*.json)."""
    return sorted(p for p in directory.glob("*.json") if p.is_file())


class _Builder:
    def __init__(self, common: dict[str, Any]) -> None:
        self.keys: dict[str, tuple[list[Hit], list[CondRule], set[int]]] = {}
        self.endings: dict[str, frozenset[str] | None] = {}
        self.ctx_ids: dict[str, int] = {}
        self.ctx_defs: dict[str, Any] = {}
        self.compact_vocab: dict[str, str] = {}
        self.strong: set[str] = set()
        self.hashtag_hits: dict[str, list[Hit]] = {}
        self.languages: dict[str, Morphology] = {}
        self.common = common
        self.n_terms = 0

    # keys ----------------------------------------------------------------------------
    def _slot(
        self, key: tuple[str, frozenset[str] | None]
    ) -> tuple[list[Hit], list[CondRule], set[int]]:
        text, endings = key
        slot = self.keys.get(text)
        if slot is None:
            slot = self.keys[text] = ([], [], set())
            self.endings[text] = endings
        elif text in self.endings:
            known = self.endings[text]
            # Merge: None (a plain boundary / wildcard key) is never combined with a set
            # because plain keys end with a space and suffix keys do not.
            if known is not None and endings is not None:
                self.endings[text] = known | endings
        return slot

    def _keys_for(
        self, form: Form, morph: Morphology, exact: bool
    ) -> list[tuple[str, frozenset[str] | None]]:
        """Automaton keys of a form: (" padded text", allowed endings or None)."""
        if exact:
            variants: list[tuple[str, frozenset[str] | None]] = [(form.norm, None)]
        else:
            variants = morph.variants(form.norm, form.wildcard)
        out: list[tuple[str, frozenset[str] | None]] = []
        for text, endings in variants:
            if endings is not None:
                out.append((" " + text, endings))
            else:
                out.append((" " + text + ("" if form.wildcard else " "), None))
        return out

    def _vocab(self, form: Form, positive: bool) -> None:
        words = form.norm.split(" ")
        whole = compact(form.norm)
        self.compact_vocab.setdefault(whole, form.norm)
        for w in words:
            self.compact_vocab.setdefault(w, w)
        if positive and len(whole) >= int(self.common.get("hashtag_affix_min", 6)):
            self.strong.add(whole)

    # contexts -----------------------------------------------------------------------
    def context_id(self, ref: str, where: str) -> int:
        if ref in self.ctx_ids:
            return self.ctx_ids[ref]
        if ref not in self.ctx_defs:
            raise LexiconError(f"{where}: unknown context set {ref!r}")
        cid = self.ctx_ids[ref] = len(self.ctx_ids)
        self._add_context_phrases(cid, self.ctx_defs[ref], f"context {ref!r}")
        return cid

    def _add_context_phrases(self, cid: int, spec: Any, where: str) -> None:
        by_lang: dict[str, Any]
        if isinstance(spec, list):
            by_lang = {"": spec}
        elif isinstance(spec, dict):
            by_lang = spec
        else:
            raise LexiconError(f"{where}: must be a list of phrases or an object by language")
        for lang, phrases in by_lang.items():
            morph = self._lang(lang, where) if lang else Morphology()
            if not isinstance(phrases, list):
                raise LexiconError(f"{where}: {lang}: must be a list of phrases")
            for phrase in phrases:
                if not isinstance(phrase, str):
                    raise LexiconError(f"{where}: phrases must be strings, got {phrase!r}")
                if phrase.startswith("@"):
                    # a set may include another set's phrases
                    inner = phrase[1:]
                    if inner not in self.ctx_defs:
                        raise LexiconError(f"{where}: unknown context set {inner!r}")
                    self._add_context_phrases(cid, self.ctx_defs[inner], f"context {inner!r}")
                    continue
                for form in _forms(phrase, where):
                    self._vocab(form, positive=False)
                    for key in self._keys_for(form, morph, exact=False):
                        self._slot(key)[2].add(cid)

    def inline_context(self, phrases: Any, where: str) -> frozenset[int]:
        if isinstance(phrases, str):
            phrases = [phrases]
        if not isinstance(phrases, list) or not phrases:
            raise LexiconError(f"{where}: 'if'/'unless' must be a non-empty list")
        ids = set()
        plain = []
        for p in phrases:
            if not isinstance(p, str):
                raise LexiconError(f"{where}: context entries must be strings, got {p!r}")
            if p.startswith("@"):
                ids.add(self.context_id(p[1:], where))
            else:
                plain.append(p)
        if plain:
            name = "\x00inline:" + "\x1f".join(sorted(plain))
            if name not in self.ctx_ids:
                cid = self.ctx_ids[name] = len(self.ctx_ids)
                self._add_context_phrases(cid, plain, where)
            ids.add(self.ctx_ids[name])
        return frozenset(ids)

    # languages ----------------------------------------------------------------------
    def _lang(self, lang: str, where: str) -> Morphology:
        if lang not in self.languages:
            raise LexiconError(
                f"{where}: language {lang!r} is not declared in {COMMON_FILE} 'languages'"
            )
        return self.languages[lang]

    # terms --------------------------------------------------------------------------
    def add_term(self, topic: str, lang: str, entry: Any, where: str) -> None:
        morph = self._lang(lang, where)
        if isinstance(entry, str):
            entry = {"term": entry}
        if not isinstance(entry, dict):
            raise LexiconError(f"{where}: a term is a string or an object, got {entry!r}")
        unknown = set(entry) - TERM_KEYS
        if unknown:
            raise LexiconError(f"{where}: unknown keys {sorted(unknown)} in {entry!r}")
        patterns = entry.get("terms", [])
        if "term" in entry:
            patterns = [entry["term"], *patterns]
        if not patterns or not all(isinstance(p, str) for p in patterns):
            raise LexiconError(f"{where}: entry needs 'term' (string) or 'terms' (list)")
        need = self.inline_context(entry["if"], where) if "if" in entry else None
        also = self.inline_context(entry["also_if"], where) if "also_if" in entry else None
        if also is not None and need is None:
            raise LexiconError(f"{where}: 'also_if' needs an 'if'")
        not_langs = None
        if "not_lang" in entry:
            langs = entry["not_lang"]
            if isinstance(langs, str):
                langs = [langs]
            if not isinstance(langs, list) or not all(isinstance(x, str) for x in langs):
                raise LexiconError(f"{where}: not_lang must be a language code or a list")
            not_langs = frozenset(x.lower() for x in langs)
        block = self.inline_context(entry["unless"], where) if "unless" in entry else None
        window = _window(entry.get("window", "sentence"), where)
        exact = bool(entry.get("exact", False))
        for pattern in patterns:
            for form in _forms(pattern, where):
                self.n_terms += 1
                self._vocab(form, positive=True)
                keys = self._keys_for(form, morph, exact)
                if need is None and block is None and not_langs is None:
                    hit = (topic, form.label)
                    for key in keys:
                        hits = self._slot(key)[0]
                        if hit not in hits:
                            hits.append(hit)
                else:
                    rule = CondRule(topic, form.label, need, block, window, also, not_langs)
                    for key in keys:
                        self._slot(key)[1].append(rule)

    def add_hashtag(self, topic: str, tag: Any, where: str) -> None:
        if not isinstance(tag, str) or not tag.strip("#"):
            raise LexiconError(f"{where}: hashtags must be non-empty strings")
        key = compact(normalise(tag))
        hit = (topic, "#" + tag.lstrip("#"))
        hits = self.hashtag_hits.setdefault(key, [])
        if hit not in hits:
            hits.append(hit)

    def build(
        self, version: str, generic: frozenset[str], short: frozenset[str]
    ) -> CompiledLexicon:
        # Two automata: the terms (run on every text) and the contexts (run only when a
        # conditional term fired) — most captions have no term and cost one scan.
        automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_STRING)
        contexts = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_STRING)
        for key, (hits, rules, ctx) in self.keys.items():
            endings = self.endings.get(key)
            hits, rules = _effective(hits, rules)
            if hits or rules:
                value: KeyValue = (len(key), tuple(hits), tuple(rules), endings)
                automaton.add_word(key, value)
            if ctx:
                contexts.add_word(key, (len(key), tuple(sorted(ctx)), endings))
        automaton.make_automaton()
        contexts.make_automaton()
        vocab = {k: v for k, v in self.compact_vocab.items() if k not in generic}
        return CompiledLexicon(
            version=version,
            automaton=automaton,
            context_automaton=contexts,
            compact_vocab=vocab,
            strong=frozenset(self.strong),
            hashtag_hits={k: tuple(v) for k, v in self.hashtag_hits.items()},
            generic_hashtags=generic,
            max_compact_len=max((len(k) for k in vocab), default=1),
            short_words=short,
            stats={
                "keys": len(self.keys),
                "term_keys": len(automaton),
                "context_keys": len(contexts),
                "terms": self.n_terms,
                "contexts": len(self.ctx_ids),
                "vocab": len(vocab),
            },
        )


def _effective(hits: list[Hit], rules: list[CondRule]) -> tuple[list[Hit], list[CondRule]]:
    """The hits and rules of one key that can change a result, in their order.

    All hits and rules of a key fire on the same span, and a result shows one label per
    maximal span and topic (the first one), so only the first unconditional hit of a
    topic counts; a rule of a topic that already has an unconditional hit never shows;
    and a rule with the same topic and conditions as an earlier one decides the same
    way and would not show either. Variants of one term ("burn-out", "burn out") share
    keys, so this removes most of the per-hit work of the tagger.
    """
    topics: set[str] = set()
    kept_hits = []
    for hit in hits:
        if hit[0] not in topics:
            topics.add(hit[0])
            kept_hits.append(hit)
    seen: set[tuple[Any, ...]] = set()
    kept_rules = []
    for rule in rules:
        sig = (rule.topic, rule.need, rule.block, rule.window, rule.also_need, rule.not_langs)
        if rule.topic not in topics and sig not in seen:
            seen.add(sig)
            kept_rules.append(rule)
    return kept_hits, kept_rules


def _window(value: Any, where: str) -> int | None:
    """ "sentence" (default) → None; "caption" → -1; n ≥ 0 → at most n words apart."""
    if value == "sentence":
        return None
    if value == "caption":
        return -1
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise LexiconError(f"{where}: window must be a number of words, 'sentence' or 'caption'")


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LexiconError(f"{where}: must be a list of strings")
    return value


def compile_lexicon(directory: Path) -> CompiledLexicon:
    """Read and compile every lexicon file of ``directory``; raise LexiconError if bad."""
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise LexiconError(f"lexicon directory {directory} {what}")
    files = lexicon_files(directory)
    common_path = directory / COMMON_FILE
    if common_path not in files:
        raise LexiconError(f"{directory}: {COMMON_FILE} is missing")
    common = _read_json(common_path)
    unknown = set(common) - COMMON_KEYS
    if unknown:
        raise LexiconError(f"{COMMON_FILE}: unknown keys {sorted(unknown)}")
    version = common.get("version")
    if not isinstance(version, str) or not version.strip():
        raise LexiconError(f"{COMMON_FILE}: 'version' must be a non-empty string")

    builder = _Builder(common)
    langs = common.get("languages")
    if not isinstance(langs, dict) or not langs:
        raise LexiconError(f"{COMMON_FILE}: 'languages' must be an object of languages")
    for lang, spec in langs.items():
        if not isinstance(spec, dict):
            raise LexiconError(f"{COMMON_FILE}: language {lang!r} must be an object")
        builder.languages[lang] = _morphology(lang, spec, COMMON_FILE)
    contexts = common.get("contexts", {})
    if not isinstance(contexts, dict):
        raise LexiconError(f"{COMMON_FILE}: 'contexts' must be an object")
    builder.ctx_defs.update(contexts)

    topic_docs: list[tuple[str, dict[str, Any]]] = []
    for path in files:
        if path == common_path:
            continue
        doc = _read_json(path)
        unknown = set(doc) - TOPIC_KEYS
        if unknown:
            raise LexiconError(f"{path.name}: unknown keys {sorted(unknown)}")
        topic = doc.get("topic")
        if topic not in TOPICS:
            raise LexiconError(f"{path.name}: 'topic' must be one of {', '.join(TOPICS)}")
        local = doc.get("contexts", {})
        if not isinstance(local, dict):
            raise LexiconError(f"{path.name}: 'contexts' must be an object")
        for name, spec in local.items():
            if name in builder.ctx_defs:
                raise LexiconError(f"{path.name}: context set {name!r} is defined twice")
            builder.ctx_defs[name] = spec
        topic_docs.append((path.name, doc))
    # A topic without its file would be tagged nowhere, under the same version: a file
    # renamed by an editor's save, or a config map swapped, while a reload reads.
    missing = [t for t in TOPICS if t not in {doc["topic"] for _, doc in topic_docs}]
    if missing:
        raise LexiconError(
            f"{directory}: no file for topic {', '.join(missing)}: every taxonomy topic "
            "needs one (its 'terms' may be empty)"
        )

    for name, doc in topic_docs:
        topic = doc["topic"]
        terms = doc.get("terms", {})
        if not isinstance(terms, dict):
            raise LexiconError(f"{name}: 'terms' must be an object keyed by language")
        for lang, entries in terms.items():
            if not isinstance(entries, list):
                raise LexiconError(f"{name}: terms.{lang} must be a list")
            for i, entry in enumerate(entries):
                builder.add_term(topic, lang, entry, f"{name}: terms.{lang}[{i}]")
        for i, tag in enumerate(doc.get("hashtags", [])):
            builder.add_hashtag(topic, tag, f"{name}: hashtags[{i}]")

    generic = frozenset(
        compact(normalise(t))
        for t in _string_list(common.get("generic_hashtags", []), "generic_hashtags")
    )
    short = set()
    for word in _string_list(common.get("hashtag_words", []), "hashtag_words"):
        norm = normalise(word)
        if norm:
            builder.compact_vocab.setdefault(compact(norm), norm)
            if len(compact(norm)) <= 2:
                short.add(compact(norm))
    return builder.build(version.strip(), generic, frozenset(short))


def iter_lexicon_mtimes(directory: Path) -> Iterable[tuple[str, int, int]]:
    """(name, mtime_ns, size) of each lexicon file: the change detector of hot reload."""
    for path in lexicon_files(directory):
        try:
            st = path.stat()
        except OSError:
            continue
        yield (path.name, st.st_mtime_ns, st.st_size)
