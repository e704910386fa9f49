"""The compiled engine gives exactly the Python engine's results (the reference).

Every topic and every `matched` label must be equal, on generator events, the labelled
eval sets (with and without language and hashtags), captions joined across sentence
breaks and hashtags, and random captions built from lexicon keys and awkward characters.
The engine's parts (normalisation, the key tree, the hashtag finder) are checked against
what they replace.
"""

from __future__ import annotations

import random

import ahocorasick
import orjson
import pytest
from tests.support.taggers import new_tagger
from tests.support.tagging_eval import eval_rows

from workpulse.dev.bench.tagging import _events
from workpulse.tagging import Tagger, TagResult, _engine
from workpulse.tagging import tagger as tagger_module

Item = tuple[str, tuple[str, ...], str | None]


@pytest.fixture(scope="module")
def compiled() -> Tagger:
    tagger = new_tagger()
    assert tagger.engine == "compiled"
    return tagger


@pytest.fixture(scope="module")
def python(compiled: Tagger) -> Tagger:
    return Tagger(compiled.lexicon, engine="python")


def _as_data(results: list[TagResult]) -> list[tuple[tuple[str, ...], list]]:
    # `matched` as an ordered list: its order is what `workpulse tag` writes
    return [(r.topics, list(r.matched.items())) for r in results]


def _assert_same(items: list[Item], compiled: Tagger, python: Tagger, batch: int = 500) -> None:
    differ = []
    for i in range(0, len(items), batch):
        chunk = items[i : i + batch]
        got = _as_data(compiled.tag_batch(chunk))
        want = _as_data(python.tag_batch(chunk))
        differ += [(item, g, w) for item, g, w in zip(chunk, got, want, strict=True) if g != w]
    assert not differ, f"{len(differ)} of {len(items)} differ, first: {differ[:3]}"


def test_same_results_on_generator_events(compiled: Tagger, python: Tagger) -> None:
    items = []
    for line in _events(12_000, 11)[0]:
        obj = orjson.loads(line)
        items.append((obj.get("caption") or "", obj.get("hashtags") or [], obj.get("lang")))
    _assert_same(items, compiled, python)


def test_same_results_on_the_eval_sets(compiled: Tagger, python: Tagger) -> None:
    items: list[Item] = []
    for row in eval_rows():
        caption, tags, lang = row["caption"], tuple(row["hashtags"]), row.get("lang")
        items += [
            (caption, tags, lang),
            (caption, tags, None),
            (caption, (), lang),
            ("", tags, lang),
        ]
    _assert_same(items, compiled, python)


def test_same_results_on_joined_captions_one_at_a_time(python: Tagger) -> None:
    """Joined across sentence breaks, newlines and hashtags; tagged one by one on a
    cold tagger (nothing cached yet)."""
    rows = eval_rows()
    rng = random.Random(5)
    items = []
    for _ in range(1500):
        a, b = rng.sample(rows, 2)
        sep = rng.choice([" ", ". ", "\n", " and ", " #", "\r\n", " … "])
        lang = rng.choice([a.get("lang"), None, "fr-CA", "ar_MA"])
        items.append(
            (a["caption"] + sep + b["caption"], (*a["hashtags"], *b["hashtags"][:1]), lang)
        )
    cold = new_tagger()
    got = _as_data([cold.tag(*item) for item in items])
    want = _as_data([python.tag(*item) for item in items])
    differ = [(i, g, w) for i, g, w in zip(items, got, want, strict=True) if g != w]
    assert not differ, f"{len(differ)} differ, first: {differ[:3]}"


_NOISE = [
    " ", " ", " ", "\n", "\r", "\t", ".", "!", "?", "…", "؟", "،", ",", "'", "’", "-", "_", "#",
    "＃", "@", "😀", "🔥", "\u200f", "\u0640", "\u064e", "\u0301", "É", "ß", "ﬁ", "Ⅻ", "²",
    "٣", "ة", "ى", "أ", "ال", "و", "ها", "ي", "ين", "ات", "JOB", "My", "quit", "Salaire",
    "#QuitMyJob", "#quit_my_job", "#layoffs2024", "#burnout", "#استقالة",
]  # fmt: skip


def _random_caption(rng: random.Random, keys: list[str]) -> str:
    parts = []
    for _ in range(rng.randint(0, 7)):
        if rng.random() < 0.55:
            key = rng.choice(keys).strip()
            if rng.random() < 0.3:
                key = key.upper() if rng.random() < 0.5 else key.title()
            parts.append(key)
        else:
            parts.append("".join(rng.choice(_NOISE) for _ in range(rng.randint(1, 4))))
        parts.append(rng.choice([" ", " ", "", "\n", ". "]))
    return "".join(parts)


def test_same_results_on_random_captions(compiled: Tagger, python: Tagger) -> None:
    rng = random.Random(17)
    keys = sorted(compiled.lexicon.automaton.keys())
    ctx = sorted(compiled.lexicon.context_automaton.keys())
    pool = keys + ctx * 5  # contexts often, so that rules are decided both ways
    tags = ["QuitMyJob", "burnout", "corporatelife", "fyp", "layoffs", "hatemyjob", "WFH",
            "استقالة", "Démission", "salarytransparency", "strike", "metoo"]  # fmt: skip
    items: list[Item] = []
    for _ in range(6000):
        caption = _random_caption(rng, pool)
        hashtags = tuple(rng.sample(tags, rng.randint(0, 3)))
        items.append((caption, hashtags, rng.choice([None, "en", "fr", "ar", "fr-CA", "xx"])))
    _assert_same(items, compiled, python, batch=300)


def test_beyond_the_limits_the_python_engine_tags(compiled: Tagger, python: Tagger) -> None:
    """A caption with NUL, more hits than the engine's fixed rows or more than 64
    hashtags: the Python engine tags the video; the result is the same, and counted."""
    many = " ".join(["quit my job", "burnout", "salary", "layoffs"] * 200)
    tags = (*(f"tag{i}" for i in range(70)), "QuitMyJob")
    items: list[Item] = [
        ("I quit my job\x00today", (), "en"),
        (many, ("QuitMyJob",), "en"),
        ("so tired of this job", tags, "en"),
    ]
    before = compiled.cache_stats()["python_fallbacks"]
    _assert_same(items, compiled, python)
    assert compiled.cache_stats()["python_fallbacks"] == before + 3


def test_normalisation_agrees_on_every_code_point(compiled: Tagger) -> None:
    """The engine folds code point by code point; `_normalise_captions` folds words."""
    engine = compiled._compiled
    differ = []
    for start in range(1, 0x30000, 512):
        chars = [chr(cp) for cp in range(start, min(start + 512, 0x30000))]
        captions = ["x" + c + "y " + c + c + "\u0301 z" for c in chars]
        want = compiled._normalise_captions(captions)
        differ += [c for c, w in zip(captions, want, strict=True) if engine.normalise(c) != w]
    assert not differ, [hex(ord(c[1])) for c in differ[:10]]


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("", " "),
        ("Je DÉMISSIONNE, j'en peux plus!", " je demissionne j en peux plus ! "),
        ("line one\nline two", " line one . line two "),
        ("wait…what", " wait . . . what "),
        ("الإرهاق الوظيفيّ", " الارهاق الوظيفي "),
        ("٢٠٢٤ layoffs", " 2024 layoffs "),
        ("ﬁred 🔥🔥 burn-out", " fired burn out "),
        ("nul\x00here", None),
    ],
)
def test_engine_normalisation_cases(compiled: Tagger, caption: str, expected: str | None) -> None:
    assert compiled._compiled.normalise(caption) == expected


def _trie(keys: list[str]) -> tuple[object, object]:
    ours = _engine.Trie()
    ref = ahocorasick.Automaton()
    for i, key in enumerate(keys):
        ours.add(key, i)
        ref.add_word(key, i)
    ours.build()
    ref.make_automaton()
    return ours, ref


@pytest.mark.parametrize(
    ("keys", "text"),
    [
        ([" ab "], " x ab ab abc "),
        ([" a", " ab "], " ab a abc "),
        ([" a", " abc "], " x ab abc ac a"),
        ([" ab ", " ac ", " ad ", " ae "], " ae ad ac ab af "),
        ([" ab ", " ac ", " ad ", " ae ", " af ", " ag "], " ag af ab "),
        ([" quit ", " quit my job ", " my job "], " i quit my job today "),
        ([" quit", " quit my job ", " my job "], " quitting my job "),
        ([" استقال", " الاستقالة "], " قررت الاستقالة واستقالت "),
        ([" a b c ", " b c ", " c "], " a b c "),
        ([" x "], ""),
    ],
)
def test_key_tree_reports_what_aho_corasick_reports(keys: list[str], text: str) -> None:
    ours, ref = _trie(keys)
    assert ours.hits(text) == list(ref.iter(text))


def test_key_tree_on_random_keys_and_texts() -> None:
    rng = random.Random(2)
    letters = "abcé ب"
    for _ in range(300):
        keys = sorted(
            {
                " " + "".join(rng.choice(letters) for _ in range(rng.randint(1, 7)))
                for _ in range(12)
            }
        )
        ours, ref = _trie(keys)
        for _ in range(5):
            text = " " + "".join(rng.choice(letters + "xy") for _ in range(rng.randint(0, 30)))
            assert ours.hits(text) == list(ref.iter(text)), (keys, text)


@pytest.mark.parametrize("key", ["quit ", "", " "])
def test_key_tree_wants_keys_that_start_with_a_space(key: str) -> None:
    with pytest.raises(ValueError, match="starts with a space"):
        _engine.Trie().add(key, 0)


def test_hashtags_in_captions_as_the_regex_finds_them() -> None:
    regex = tagger_module._HASHTAG_IN_TEXT
    rng = random.Random(4)
    alphabet = ["#", "＃", "_", "a", "é", "1", "٣", " ", "ب", "-", "\u0301", "😀", "Ⅻ", "²"]
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert _engine.hashtags_in(text) == regex.findall(text), text


def test_unknown_engine_is_refused(compiled: Tagger) -> None:
    with pytest.raises(ValueError, match="unknown tagging engine"):
        Tagger(compiled.lexicon, engine="fast")


def test_a_wildcard_context_is_named_whole() -> None:
    """A context written as a wildcard ("smok*") ends on a letter, not on a space: its
    name in the explanation is the matched text ("smok"), not one letter short ("smo"),
    in both engines (the Python one cut it before)."""
    text = " x smoking y "
    contexts = [(2, 6, (1,))]  # the key " smok": from its space to its last letter
    near = tagger_module._find_near(text, len(text), 0, 2, frozenset({1}), contexts, None, False)
    assert near == "smok"
