"""Hot reload of the lexicon without restarting the worker."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from workpulse.tagging.lexicon import iter_lexicon_mtimes
from workpulse.tagging.tagger import Tagger, default_lexicon_dir, load_tagger

__all__ = ["TaggerReloader"]

Stamp = tuple[tuple[str, int, int], ...]


class TaggerReloader:
    """Holds the current `Tagger` and swaps in a new one when the lexicon files change.

    `maybe_reload()` is cheap enough to call once per batch: it looks at the files' mtimes
    and sizes at most every ``interval_s`` seconds of the injected ``clock``. When they
    changed it compiles the new lexicon; if that fails, the old tagger stays in service,
    the error is returned (and passed to ``on_error``) and kept in `last_error`, and the
    same broken files are not retried until they change again. It never raises.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        on_error: Callable[[Exception], None] | None = None,
        on_reload: Callable[[Tagger], None] | None = None,
        tagger: Tagger | None = None,
    ) -> None:
        self.path = path if path is not None else default_lexicon_dir()
        self.interval_s = interval_s
        self._clock = clock
        self._on_error = on_error
        self._on_reload = on_reload
        self._stamp = self._snapshot()
        self._tagger = tagger if tagger is not None else load_tagger(self.path)
        self._next_check = clock() + interval_s
        self.last_error: Exception | None = None
        self.reloads = 0

    def current(self) -> Tagger:
        """The tagger in service."""
        return self._tagger

    def _snapshot(self) -> Stamp:
        try:
            return tuple(iter_lexicon_mtimes(self.path))
        except OSError:
            return ()

    def maybe_reload(self, force: bool = False) -> bool | Exception:
        """Reload if due and changed.

        Returns True when a new tagger was installed, False when nothing changed (or the
        check was not due), or the Exception when the new lexicon was rejected.
        """
        now = self._clock()
        if not force and now < self._next_check:
            return False
        self._next_check = now + self.interval_s
        stamp = self._snapshot()
        if stamp == self._stamp and not force:
            return False
        self._stamp = stamp
        try:
            tagger = load_tagger(self.path)
        except Exception as exc:
            self.last_error = exc
            if self._on_error is not None:
                with contextlib.suppress(Exception):
                    self._on_error(exc)
            return exc
        self._tagger = tagger
        self.last_error = None
        self.reloads += 1
        if self._on_reload is not None:
            with contextlib.suppress(Exception):
                self._on_reload(tagger)
        return True
