"""Lines of a byte stream, each read to a bounded size: a line longer than any use has
for it is skipped in chunks and stands as its length, so that memory stays bounded
whatever the input (a 300 MB line took 750 MB; `/dev/zero`, all there was). Used by
`workpulse tag`, `produce` and `demo --input`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

SKIP_CHUNK = 1 << 20
"""Bytes read at a time while skipping a line that is too long."""


def bounded_lines(infile: BinaryIO, max_bytes: int) -> Iterator[bytes | int]:
    """The lines of `infile` with their line ends, each read to at most `max_bytes` + 2
    bytes (a line of `max_bytes`, CR and LF, is whole); a longer line stands as its
    length without the line feed (an int)."""
    while True:
        line = infile.readline(max_bytes + 2)
        if not line:
            return
        if len(line) <= max_bytes or line.endswith(b"\n"):
            yield line
            continue
        size = len(line)
        while not line.endswith(b"\n"):
            line = infile.readline(SKIP_CHUNK)
            if not line:
                break
            size += len(line)
        yield size - (1 if line.endswith(b"\n") else 0)


def count_lines(infile: BinaryIO) -> int:
    """The lines of `infile`, read in chunks (a last line without a line feed counts)."""
    count, last = 0, b"\n"
    while chunk := infile.read(SKIP_CHUNK):
        count += chunk.count(b"\n")
        last = chunk[-1:]
    return count + (last != b"\n")
