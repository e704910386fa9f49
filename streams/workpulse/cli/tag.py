"""`workpulse tag`: offline tagging of JSONL events."""

from __future__ import annotations

import io
import os
import sys
from typing import Any

import click

from workpulse.cli.options import LEXICON, UserError, result_stream, settings_from, settings_options


class _Reports:
    """stderr for the bad lines' reports; once it is closed (`2>&1 >out | head -1`) the
    reports are dropped and tagging goes on: only a closed stdout ends the run."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.lost = stream is None  # started with stderr closed (`2>&-`)

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                self.stream.write(text)
            except (BrokenPipeError, ValueError):  # closed pipe, or closed file
                self.lost = True
        return len(text)

    def flush(self) -> None:
        if not self.lost:
            try:
                self.stream.flush()
            except (BrokenPipeError, ValueError):
                self.lost = True


@click.command("tag")
@click.argument("file", required=False, type=click.File("rb"))
@settings_options("schemas_dir", *LEXICON)
def command(file: io.BufferedReader | None, **kwargs: Any) -> None:
    """Tag JSONL events offline: FILE or stdin → the same objects with `topics` and
    `matched` added, on stdout. Invalid lines are reported on stderr with their number.

    The compiled lexicon is cached on disk (see --cache-dir), so after the first run
    tagging starts in well under a second."""
    from workpulse.processing.jsonl_tagging import run_tag
    from workpulse.resources import lexicon_dir
    from workpulse.tagging import load_tagger

    # Started with a standard stream closed (`>&-`, `<&-`), Python sets it to None.
    result_stream()
    if file is None and sys.stdin is None:
        raise UserError("no FILE given and stdin is closed: nothing to tag")
    settings = settings_from(kwargs)
    tagger = load_tagger(
        lexicon_dir(settings.lexicon_dir, settings.schemas_dir),
        cache_dir=settings.lexicon_cache_dir,
    )
    infile = file if file is not None else sys.stdin.buffer
    try:
        status = run_tag(infile, sys.stdout.buffer, _Reports(sys.stderr), tagger)  # type: ignore[arg-type]
    except BrokenPipeError:
        # `workpulse tag … | head` is fine.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 0
    except OSError as exc:
        raise UserError(f"I/O error: {exc}") from None
    sys.exit(status)
