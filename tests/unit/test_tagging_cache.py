"""The on-disk cache of compiled lexicons: a hit tags like a fresh compile, a changed
lexicon is never served from an old entry, a damaged entry is rebuilt, never trusted."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.test_tagging_reload import COMMON, write, write_lexicon

from workpulse.tagging import cache as cache_mod
from workpulse.tagging import load_tagger
from workpulse.tagging.cache import LexiconCache, cache_key


@pytest.fixture
def lexdir(tmp_path: Path) -> Path:
    directory = tmp_path / "lexicons"
    directory.mkdir()
    write_lexicon(directory)
    return directory


CASES = [
    ("I quit my job", ("resignation",)),
    ("I quit smoking", ()),
    ("nothing to see", ()),
]


def tags(tagger: object) -> list[tuple[str, ...]]:
    return [tagger.tag(caption).topics for caption, _ in CASES]  # type: ignore[attr-defined]


def test_second_load_is_a_hit_with_the_same_results(lexdir: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    first = load_tagger(lexdir, cache_dir=cache_dir)
    entry = LexiconCache(cache_dir).path(cache_key(lexdir))
    assert entry.exists()
    assert oct(cache_dir.stat().st_mode & 0o777) == "0o700"
    hit = LexiconCache(cache_dir).load(cache_key(lexdir))
    assert hit is not None
    second = load_tagger(lexdir, cache_dir=cache_dir)
    assert tags(first) == tags(second) == [topics for _, topics in CASES]
    assert second.engine == first.engine


def test_a_changed_lexicon_gets_a_new_key(lexdir: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    old_key = cache_key(lexdir)
    load_tagger(lexdir, cache_dir=cache_dir)
    write(lexdir, "job_search.json", {"topic": "job_search", "terms": {"en": ["we are hiring"]}})
    assert cache_key(lexdir) != old_key
    tagger = load_tagger(lexdir, cache_dir=cache_dir)
    assert tagger.tag("we are hiring").topics == ("job_search",)


def test_a_new_tagger_gets_a_new_key(lexdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_key = cache_key(lexdir)
    monkeypatch.setattr(cache_mod.workpulse, "__version__", "999.0")
    assert cache_key(lexdir) != old_key


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b[:-10] + b"0123456789",  # a changed byte
        lambda b: b"garbage",  # not an entry at all
        lambda b: b"",  # empty
    ],
    ids=["truncated", "changed", "garbage", "empty"],
)
def test_a_damaged_entry_is_rebuilt(lexdir: Path, tmp_path: Path, damage: object) -> None:
    cache_dir = tmp_path / "cache"
    load_tagger(lexdir, cache_dir=cache_dir)
    key = cache_key(lexdir)
    entry = LexiconCache(cache_dir).path(key)
    entry.write_bytes(damage(entry.read_bytes()))  # type: ignore[operator]
    assert LexiconCache(cache_dir).load(key) is None
    tagger = load_tagger(lexdir, cache_dir=cache_dir)
    assert tags(tagger) == [topics for _, topics in CASES]
    assert LexiconCache(cache_dir).load(key) is not None  # rewritten whole


def test_a_forged_entry_with_a_valid_checksum_is_not_served(lexdir: Path, tmp_path: Path) -> None:
    """An entry whose pickle is well-formed but holds something else is refused."""
    import hashlib
    import pickle

    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    key = cache_key(lexdir)
    body = pickle.dumps(({"not": "a lexicon"}, None))
    header = cache_mod.FORMAT + key.encode() + b"\n"
    checksum = hashlib.sha256(body).hexdigest().encode() + b"\n"
    LexiconCache(cache_dir).path(key).write_bytes(header + checksum + body)
    assert LexiconCache(cache_dir).load(key) is None
    assert tags(load_tagger(lexdir, cache_dir=cache_dir)) == [topics for _, topics in CASES]


def test_an_unwritable_cache_still_tags(lexdir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    tagger = load_tagger(lexdir, cache_dir=blocker / "cache")
    assert tags(tagger) == [topics for _, topics in CASES]


def test_old_entries_are_pruned(lexdir: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    for version in range(5):
        write(lexdir, "common.json", {**COMMON, "version": f"test.{version}"})
        load_tagger(lexdir, cache_dir=cache_dir)
    assert len(list(cache_dir.glob("lexicon-*.pickle"))) == 3
