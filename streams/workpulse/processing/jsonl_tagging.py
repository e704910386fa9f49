"""`workpulse tag`: JSONL events in → the same objects with `topics` and `matched` out.

Streaming with constant memory: lines are read, validated and tagged in batches
(`Tagger.tag_batch` once per batch) and written in input order. Every valid line gives
one output line; an invalid line gives one line on the error stream
("line 17: not_json: ...") and nothing on the output. I/O errors propagate to the CLI.

An output line is its input line as it was, byte for byte, with the two fields added
before its closing brace: decoding and encoding it again would change what the tool
does not read (an integer beyond 64 bits became a float, `1.0000000000000001` became
`1.0`). Only a line that already has `topics` or `matched` is encoded again, with
those fields replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO, TextIO

import orjson

from workpulse.lines import SKIP_CHUNK, bounded_lines
from workpulse.model.event import Event, Rejection
from workpulse.processing.contract import DEFAULT_MAX_BYTES, decode_event
from workpulse.tagging import Tagger, freeze_lexicon_objects

BATCH_LINES = 100
"""Lines per `tag_batch` call. Small on purpose: a batch's decoded events must stay in the
CPU's per-core cache next to the tagger's tables. With 1000 lines (~1.5 MB of decoded
objects) decoding and encoding a batch evicted those tables, and the tag pass's cost beyond
plain decoding more than doubled (`workpulse bench tagging --batch 1000`;
docs/tagging.md#speed)."""

__all__ = ["BATCH_LINES", "SKIP_CHUNK", "run_tag", "with_fields"]


def _batches(lines: Iterable[bytes | int], size: int) -> Iterable[list[tuple[int, bytes | int]]]:
    batch: list[tuple[int, bytes | int]] = []
    for number, line in enumerate(lines, start=1):
        batch.append((number, line))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def with_fields(line: bytes, fields: bytes) -> bytes:
    """The JSON object `line` with the members of the JSON object `fields` added last,
    the rest of `line` untouched (`line` is a non-empty object; JSON whitespace may end
    it)."""
    body = line.rstrip(b" \t\r\n")
    return body[:-1] + b"," + fields[1:]


def run_tag(
    infile: BinaryIO,
    outfile: BinaryIO,
    errfile: TextIO,
    tagger: Tagger,
    clock: Callable[[], float] = time.time,
) -> int:
    """Tag every event of ``infile`` (JSONL) onto ``outfile``; report bad lines on ``errfile``.

    Returns 0 (bad lines are reported, not fatal). A blank line is reported like the
    empty Kafka message it stands for (`not_json`). Event times are checked against the
    contract's window around the clock (`clock`, seconds).
    """
    # The lexicon lives for the whole run: keep it out of the cycle collector's scans.
    freeze_lexicon_objects()
    dumps = orjson.dumps
    for batch in _batches(bounded_lines(infile, DEFAULT_MAX_BYTES), BATCH_LINES):
        now_ms = int(clock() * 1000)
        events: list[tuple[bytes, dict[str, Any], Event]] = []
        for number, raw in batch:
            if isinstance(raw, int):  # too long to read: its size only
                errfile.write(
                    f"line {number}: oversized: {raw} bytes > limit {DEFAULT_MAX_BYTES}\n"
                )
                continue
            line = raw.rstrip(b"\r\n")
            decoded = decode_event(line, now_ms=now_ms)
            if isinstance(decoded, Rejection):
                detail = f": {decoded.detail}" if decoded.detail else ""
                errfile.write(f"line {number}: {decoded.reason}{detail}\n")
                continue
            events.append((line, decoded.raw, decoded))
        if not events:
            continue
        results = tagger.tag_batch([(e.caption, e.hashtags, e.lang) for _, _, e in events])
        out = []
        for (line, obj, _), result in zip(events, results, strict=True):
            if "topics" in obj or "matched" in obj:
                obj["topics"] = result.topics
                obj["matched"] = result.matched
                out.append(dumps(obj))
            else:
                added = dumps({"topics": result.topics, "matched": result.matched})
                out.append(with_fields(line, added))
        out.append(b"")
        outfile.write(b"\n".join(out))
    outfile.flush()
    errfile.flush()
    return 0
