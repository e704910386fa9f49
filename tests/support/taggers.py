"""One compiled lexicon per test session.

Compiling the lexicon takes seconds; tests that do not change it share one compiled
lexicon (and the compiled engine's tables) and make taggers from it: `shared_tagger()`
for tests that only read results, `new_tagger()` for tests that need a tagger of their
own (cold caches, another engine).
"""

from __future__ import annotations

import functools
from typing import Any

from workpulse.resources import lexicon_dir
from workpulse.tagging import Tagger
from workpulse.tagging.lexicon import CompiledLexicon, compile_lexicon


@functools.cache
def _compiled() -> tuple[CompiledLexicon, dict[str, Any] | None]:
    lexicon = compile_lexicon(lexicon_dir())
    return lexicon, Tagger(lexicon).engine_state()


def new_tagger(engine: str | None = None) -> Tagger:
    """A tagger of its own (empty caches) for the packaged lexicon."""
    lexicon, state = _compiled()
    return Tagger(lexicon, lexicon_dir(), engine, state if engine != "python" else None)


@functools.cache
def shared_tagger() -> Tagger:
    """The session's tagger for the packaged lexicon (do not change its caches' state
    in a way other tests could notice)."""
    return new_tagger()
