"""Hot reload of the lexicon with a temporary lexicon directory and a fake clock."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from workpulse.model.topics import TOPICS
from workpulse.tagging import LexiconError, TaggerReloader, load_tagger

COMMON = {
    "version": "test.1",
    "languages": {"en": {}, "fr": {}},
    "contexts": {"habits": {"en": ["smoking", "sugar"]}},
    "generic_hashtags": ["fyp"],
    "hashtag_words": ["life", "my"],
}
TOPIC = {
    "topic": "resignation",
    "terms": {"en": ["quit my job", {"term": "i quit", "unless": ["@habits"], "window": 3}]},
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write(directory: Path, name: str, data: object, bump: int = 0) -> None:
    path = directory / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    if bump:  # make sure the mtime moves even on coarse filesystems
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


def settle(reloader: TaggerReloader) -> bool | Exception:
    """Finish a reload started by `maybe_reload` (compiled in a background thread)."""
    assert reloader.wait_pending(timeout=60)
    return reloader.maybe_reload()


def write_lexicon(directory: Path) -> None:
    """COMMON, TOPIC, and every other topic's file with no terms."""
    write(directory, "common.json", COMMON)
    write(directory, "resignation.json", TOPIC)
    for topic in TOPICS:
        if topic != TOPIC["topic"]:
            write(directory, f"{topic}.json", {"topic": topic, "terms": {}})


@pytest.fixture
def lexdir(tmp_path: Path) -> Path:
    write_lexicon(tmp_path)
    return tmp_path


def test_load_temp_lexicon(lexdir: Path) -> None:
    tagger = load_tagger(lexdir)
    assert tagger.version == "test.1"
    assert tagger.tag("I quit my job").topics == ("resignation",)
    assert tagger.tag("I quit smoking").topics == ()


def test_reload_on_change_respects_interval(lexdir: Path) -> None:
    clock = FakeClock()
    reloader = TaggerReloader(lexdir, interval_s=10, clock=clock)
    first = reloader.current()
    assert first.tag("we are hiring").topics == ()

    job = {"topic": "job_search", "terms": {"en": ["we are hiring"]}}
    write(lexdir, "job_search.json", job, bump=5)
    write(lexdir, "common.json", {**COMMON, "version": "test.2"}, bump=5)

    clock.now += 5  # not due yet: no file system access, no change
    assert reloader.maybe_reload() is False
    assert reloader.current() is first

    clock.now += 6
    assert reloader.maybe_reload() is False  # compiling in the background
    assert reloader.current() is first  # the old tagger serves meanwhile
    assert settle(reloader) is True
    second = reloader.current()
    assert second is not first
    assert second.version == "test.2"
    assert second.tag("we are hiring").topics == ("job_search",)
    assert reloader.reloads == 1

    clock.now += 11  # due, but nothing changed
    assert reloader.maybe_reload() is False
    assert reloader.current() is second


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("common.json", "{not json"),
        ("resignation.json", json.dumps({"topic": "not_a_topic", "terms": {}})),
        ("resignation.json", json.dumps({"topic": "resignation", "terms": {"xx": ["a"]}})),
        (
            "resignation.json",
            json.dumps({"topic": "resignation", "terms": {"en": [{"term": "a", "if": ["@nope"]}]}}),
        ),
        ("resignation.json", json.dumps({"topic": "resignation", "terms": {"en": ["(a|b"]}})),
        ("common.json", json.dumps({**COMMON, "version": ""})),
    ],
)
def test_broken_lexicon_keeps_old_tagger(lexdir: Path, name: str, content: str) -> None:
    clock = FakeClock()
    errors: list[Exception] = []
    reloader = TaggerReloader(lexdir, interval_s=1, clock=clock, on_error=errors.append)
    old = reloader.current()

    (lexdir / name).write_text(content, encoding="utf-8")
    st = (lexdir / name).stat()
    os.utime(lexdir / name, ns=(st.st_atime_ns, st.st_mtime_ns + 3_000_000_000))
    clock.now += 2
    assert reloader.maybe_reload() is False
    outcome = settle(reloader)

    assert isinstance(outcome, LexiconError)
    assert errors == [outcome]
    assert reloader.last_error is outcome
    assert reloader.current() is old
    assert old.tag("I quit my job").topics == ("resignation",)

    clock.now += 2  # the same broken files are not compiled again
    assert reloader.maybe_reload() is False
    assert len(errors) == 1

    write(lexdir, "common.json", COMMON, bump=9)  # fixed again
    write(lexdir, "resignation.json", TOPIC, bump=9)
    clock.now += 2
    assert reloader.maybe_reload() is False
    assert settle(reloader) is True
    assert reloader.last_error is None


def test_error_callback_failure_is_contained(lexdir: Path) -> None:
    clock = FakeClock()

    def explode(exc: Exception) -> None:
        raise RuntimeError("callback broke")

    reloader = TaggerReloader(lexdir, interval_s=1, clock=clock, on_error=explode)
    write(lexdir, "common.json", {"languages": {}}, bump=4)
    clock.now += 2
    reloader.maybe_reload()
    assert isinstance(settle(reloader), Exception)


def test_deleted_directory_keeps_old_tagger(lexdir: Path) -> None:
    clock = FakeClock()
    reloader = TaggerReloader(lexdir, interval_s=1, clock=clock)
    old = reloader.current()
    for path in lexdir.iterdir():
        path.unlink()
    clock.now += 2
    reloader.maybe_reload()
    assert isinstance(settle(reloader), LexiconError)
    assert reloader.current() is old


def test_force_reload(lexdir: Path) -> None:
    reloader = TaggerReloader(lexdir, interval_s=3600, clock=FakeClock())
    first = reloader.current()
    assert reloader.maybe_reload(force=True) is True
    assert reloader.current() is not first


def test_default_lexicon_directory_loads() -> None:
    reloader = TaggerReloader(interval_s=60, clock=FakeClock())
    assert reloader.current().version


def test_force_reload_errors_are_synchronous(lexdir: Path) -> None:
    reloader = TaggerReloader(lexdir, interval_s=3600, clock=FakeClock())
    old = reloader.current()
    (lexdir / "common.json").write_text("{broken", encoding="utf-8")
    assert isinstance(reloader.maybe_reload(force=True), LexiconError)
    assert reloader.current() is old


def test_reload_does_not_block_the_caller(lexdir: Path, monkeypatch) -> None:
    """The compilation runs in a thread: maybe_reload returns while it is still going."""
    import threading

    from workpulse.tagging import reload as reload_mod

    gate = threading.Event()
    real = reload_mod.load_tagger

    def slow(path, **kwargs):
        gate.wait(30)
        return real(path, **kwargs)

    clock = FakeClock()
    reloader = TaggerReloader(lexdir, interval_s=1, clock=clock)
    old = reloader.current()
    monkeypatch.setattr(reload_mod, "load_tagger", slow)
    write(lexdir, "common.json", {**COMMON, "version": "test.3"}, bump=7)
    clock.now += 2
    assert reloader.maybe_reload() is False
    assert reloader.pending
    assert reloader.maybe_reload() is False  # still compiling
    assert reloader.current() is old
    gate.set()
    assert settle(reloader) is True
    assert reloader.current().version == "test.3"
    assert not reloader.pending


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "does not exist"),
        # a file given as the directory was said not to exist
        (lambda p: p.write_text("{}"), "is not a directory"),
    ],
)
def test_a_lexicon_directory_that_is_not_one_is_named(tmp_path: Path, make, message) -> None:
    path = tmp_path / "lexicons"
    make(path)
    with pytest.raises(LexiconError, match=f"lexicon directory {path} {message}"):
        load_tagger(path)


def test_a_lexicon_without_a_topic_s_file_is_refused_and_the_last_one_kept(lexdir: Path) -> None:
    """salary.json renamed away (an editor's save, a config map swap): the reload took
    the rest, and salary was tagged nowhere from then on, under the same version."""
    clock = FakeClock()
    reloader = TaggerReloader(lexdir, interval_s=1, clock=clock)
    old = reloader.current()
    (lexdir / "salary.json").rename(lexdir / "salary.json.bak")
    with pytest.raises(LexiconError, match="no file for topic salary: every taxonomy topic"):
        load_tagger(lexdir)
    clock.now += 2
    assert reloader.maybe_reload() is False
    assert isinstance(settle(reloader), LexiconError)
    assert reloader.current() is old
