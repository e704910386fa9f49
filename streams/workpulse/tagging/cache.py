"""The compiled lexicon, cached on disk so that a tagger starts in a fraction of a second.

Compiling the lexicon takes seconds (~130k automaton keys, and the compiled engine's
tables). The cache stores both, pickled, in one file named by a key: the SHA-256 of the
lexicon files (names and bytes) and of the tagger itself (the workpulse version, the
Python version and the bytes of the tagging code and of the compiled engine). A changed
lexicon or a new tagger gives a new key, so a stale entry is never read; an entry whose
checksum or contents do not hold up is rebuilt, never trusted.

The cache directory is created private (0700): pickle runs code on load, so it must
not be writable by others.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

import workpulse
from workpulse.tagging.lexicon import CompiledLexicon, lexicon_files

log = logging.getLogger(__name__)

FORMAT = b"workpulse-lexicon-cache 1\n"
_CODE = ("lexicon.py", "normalise.py", "language.py", "tagger.py", "cache.py")


def _code_files() -> list[Path]:
    here = Path(__file__).resolve().parent
    files = [here / name for name in _CODE]
    files += sorted(p for p in here.glob("_engine*") if p.suffix in (".so", ".pyd", ".pyx"))
    return files


def cache_key(directory: Path) -> str:
    """The key of the lexicon in `directory` compiled by this tagger."""
    digest = hashlib.sha256(FORMAT)
    digest.update(f"{workpulse.__version__} {sys.version}".encode())
    for path in _code_files():
        with contextlib.suppress(OSError):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for path in lexicon_files(directory):
        digest.update(b"lexicon:" + path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class LexiconCache:
    """Entries `lexicon-<key>.pickle` under `directory`; `load` and `store` never raise for
    cache trouble (a miss, a corrupt or unwritable entry): the caller compiles instead."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        return self.directory / f"lexicon-{key}.pickle"

    def load(self, key: str) -> tuple[CompiledLexicon, dict[str, Any] | None] | None:
        """The cached (lexicon, engine state) for `key`, or None."""
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except OSError:
            return None
        header = FORMAT + key.encode() + b"\n"
        body = blob[len(header) + 65 :]
        checksum = blob[len(header) : len(header) + 64]
        if not blob.startswith(header) or hashlib.sha256(body).hexdigest().encode() != checksum:
            log.warning("lexicon cache entry %s is corrupt: rebuilding it", path)
            return None
        # Unpickling makes ~1M objects: the cycle collector would scan them over and over.
        enabled = gc.isenabled()
        gc.disable()
        try:
            lexicon, state = pickle.loads(body)
        except Exception as exc:  # a broken entry: whatever unpickling raised
            log.warning("lexicon cache entry %s cannot be read (%s): rebuilding it", path, exc)
            return None
        finally:
            if enabled:
                gc.enable()
        if not isinstance(lexicon, CompiledLexicon) or not (
            state is None or isinstance(state, dict)
        ):
            log.warning("lexicon cache entry %s holds something else: rebuilding it", path)
            return None
        return lexicon, state

    def store(self, key: str, lexicon: CompiledLexicon, state: dict[str, Any] | None) -> None:
        """Write the entry atomically (a reader sees the old file or the whole new one)."""
        try:
            body = pickle.dumps((lexicon, state), protocol=pickle.HIGHEST_PROTOCOL)
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".lexicon-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(FORMAT + key.encode() + b"\n")
                    fh.write(hashlib.sha256(body).hexdigest().encode() + b"\n")
                    fh.write(body)
                os.replace(tmp, self.path(key))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            self._prune(keep=key)
        except Exception as exc:
            log.warning("cannot write the lexicon cache in %s: %s", self.directory, exc)

    def _prune(self, keep: str, max_entries: int = 3) -> None:
        """Keep the newest few entries (a lexicon being edited makes a new one each time)."""
        entries = sorted(
            (p for p in self.directory.glob("lexicon-*.pickle") if p != self.path(keep)),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in entries[max_entries - 1 :]:
            with contextlib.suppress(OSError):
                old.unlink()
