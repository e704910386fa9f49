"""Hot reload of the lexicon without restarting the worker."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

from workpulse.resources import lexicon_dir
from workpulse.tagging.lexicon import iter_lexicon_mtimes
from workpulse.tagging.tagger import Tagger, freeze_lexicon_objects, load_tagger

__all__ = ["TaggerReloader"]

Stamp = tuple[tuple[str, int, int], ...]


def _load_frozen(path: Path, cache_dir: Path | None) -> Tagger:
    """`load_tagger`, then `freeze_lexicon_objects` (the tagger lives until a reload)."""
    tagger = load_tagger(path, cache_dir=cache_dir)
    freeze_lexicon_objects()
    return tagger


class TaggerReloader:
    """Holds the current `Tagger` and swaps in a new one when the lexicon files change.

    `maybe_reload()` is cheap enough to call once per batch: it looks at the files' mtimes
    and sizes at most every ``interval_s`` seconds of the injected ``clock``. When they
    changed it starts compiling the new lexicon in a background thread and returns at
    once; `current()` keeps returning the old tagger until the new one is ready, and the
    first `maybe_reload()` call after that installs it (and returns True). If compiling
    fails, the old tagger stays in service, the error is returned by that call (and
    passed to ``on_error``) and kept in `last_error`, and the same broken files are not
    retried until they change again. It never raises. ``force=True`` compiles
    synchronously (tests, CLI).

    Every lexicon it loads is frozen out of the cycle collector's scans
    (`freeze_lexicon_objects`): a reload is rare, and the replaced lexicon is acyclic,
    so reference counting still frees it. ``cache_dir``: the disk cache of compiled
    lexicons (`workpulse.tagging.cache`), or None.
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
        cache_dir: Path | None = None,
    ) -> None:
        self.path = lexicon_dir(path)
        self.cache_dir = cache_dir
        self.interval_s = interval_s
        self._clock = clock
        self._on_error = on_error
        self._on_reload = on_reload
        self._stamp = self._snapshot()
        self._tagger = tagger if tagger is not None else _load_frozen(self.path, self.cache_dir)
        self._next_check = clock() + interval_s
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done: Tagger | Exception | None = None  # outcome of the background compile
        self.last_error: Exception | None = None
        self.reloads = 0

    def current(self) -> Tagger:
        """The tagger in service."""
        return self._tagger

    @property
    def pending(self) -> bool:
        """A background compilation is running or its result is not installed yet."""
        return self._thread is not None

    def _snapshot(self) -> Stamp:
        try:
            return tuple(iter_lexicon_mtimes(self.path))
        except OSError:
            return ()

    def _compile(self) -> None:
        try:
            outcome: Tagger | Exception = _load_frozen(self.path, self.cache_dir)
        except Exception as exc:
            outcome = exc
        with self._lock:
            self._done = outcome

    def wait_pending(self, timeout: float | None = None) -> bool:
        """Wait until a background compilation has finished (its result is installed by
        the next `maybe_reload`). True when nothing is still compiling."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _install(self, outcome: Tagger | Exception) -> bool | Exception:
        if isinstance(outcome, Exception):
            self.last_error = outcome
            if self._on_error is not None:
                with contextlib.suppress(Exception):
                    self._on_error(outcome)
            return outcome
        self._tagger = outcome
        self.last_error = None
        self.reloads += 1
        if self._on_reload is not None:
            with contextlib.suppress(Exception):
                self._on_reload(outcome)
        return True

    def maybe_reload(self, force: bool = False) -> bool | Exception:
        """Reload if due and changed.

        Returns True on the call that installs a new tagger, False when nothing changed,
        the check was not due or a compilation is still running, or the Exception when
        the new lexicon was rejected.
        """
        if force:
            self.wait_pending()
            self._collect()  # drop a finished background result: this one is newer
            self._stamp = self._snapshot()
            self._next_check = self._clock() + self.interval_s
            try:
                outcome: Tagger | Exception = _load_frozen(self.path, self.cache_dir)
            except Exception as exc:
                outcome = exc
            return self._install(outcome)
        if self._thread is not None:
            done = self._collect()
            if done is None:
                return False  # still compiling: keep serving the old tagger
            return self._install(done)
        now = self._clock()
        if now < self._next_check:
            return False
        self._next_check = now + self.interval_s
        stamp = self._snapshot()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        thread = threading.Thread(
            target=self._compile, name="workpulse-lexicon-compile", daemon=True
        )
        self._thread = thread
        thread.start()
        return False

    def _collect(self) -> Tagger | Exception | None:
        """The finished background outcome (clearing it), or None if still running."""
        thread = self._thread
        if thread is None or thread.is_alive():
            return None
        thread.join()
        with self._lock:
            done, self._done = self._done, None
        self._thread = None
        return done
