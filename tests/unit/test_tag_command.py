"""`workpulse tag` core: JSONL events in, tagged JSONL out, bad lines reported."""

from __future__ import annotations

import io
import json

import orjson
import pytest
from tests.support.taggers import shared_tagger

from workpulse.processing.contract import DEFAULT_MAX_BYTES as LIMIT
from workpulse.processing.jsonl_tagging import BATCH_LINES, SKIP_CHUNK, run_tag, with_fields


@pytest.fixture(scope="module")
def tagger():
    return shared_tagger()


def publish(i: int, caption: str, hashtags: list[str] | None = None, **extra) -> dict:
    event = {
        "event_id": f"e{i}",
        "kind": "publish",
        "video_id": f"v{i}",
        "event_time": 1_767_225_600_000 + i,
        "author_id": f"a{i}",
        "caption": caption,
        "hashtags": hashtags or [],
        **extra,
    }
    return event


def run(tagger, data: bytes) -> tuple[int, list[dict], list[str]]:
    out, err = io.BytesIO(), io.StringIO()
    code = run_tag(io.BytesIO(data), out, err, tagger)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    return code, lines, err.getvalue().splitlines()


def test_tags_and_keeps_fields(tagger) -> None:
    event = publish(1, "I quit my job today", ["QuitMyJob"], lang="en", extra_field=[1, 2])
    code, lines, errors = run(tagger, orjson.dumps(event) + b"\n")
    assert code == 0 and errors == []
    (row,) = lines
    assert row["topics"] == ["resignation"]
    assert "quit my job" in row["matched"]["resignation"]
    assert {k: v for k, v in row.items() if k not in ("topics", "matched")} == event


# What the tool does not read comes out as it came in: decoding and encoding it again
# made an integer beyond 64 bits a float and dropped digits of a long decimal.
UNTOUCHED = [
    b'"x":123456789012345678901234567890',
    b'"x":1.0000000000000001',
    b'"x":-0.0,"y":1E+2,"z":1e-400',
    b'"x":"\\u00e9 \\ud83d\\ude00 \\/"',
    b'"x" : [ 1 , {"a" : null} ]',
]


@pytest.mark.parametrize("extra", UNTOUCHED)
@pytest.mark.parametrize("end", [b"", b"  ", b"\t \r"], ids=["bare", "spaces", "tab-cr"])
def test_fields_the_tool_does_not_read_come_out_byte_for_byte(
    tagger, extra: bytes, end: bytes
) -> None:
    head = orjson.dumps(publish(1, "I quit my job today"))[:-1]
    line = head + b"," + extra + b"}" + end
    out, err = io.BytesIO(), io.StringIO()
    run_tag(io.BytesIO(line + b"\n"), out, err, tagger)
    assert err.getvalue() == ""
    (written,) = out.getvalue().splitlines()
    row = json.loads(written)
    assert row["topics"] == ["resignation"]
    added = orjson.dumps({"topics": row["topics"], "matched": row["matched"]})
    assert written == head + b"," + extra + b"," + added[1:]


@pytest.mark.parametrize(
    ("line", "fields", "expected"),
    [
        (b'{"a":1}', b'{"t":[]}', b'{"a":1,"t":[]}'),
        (b'{"a":1} \t\r\n', b'{"t":[],"m":{}}', b'{"a":1,"t":[],"m":{}}'),
        (b'{ "a" : "}" }', b'{"t":1}', b'{ "a" : "}" ,"t":1}'),
    ],
)
def test_with_fields(line: bytes, fields: bytes, expected: bytes) -> None:
    assert with_fields(line, fields) == expected


def test_a_line_that_has_topics_already_gets_them_replaced(tagger) -> None:
    event = publish(1, "I quit my job today", topics=["made_up"], matched={"x": ["y"]})
    _, lines, _ = run(tagger, orjson.dumps(event) + b"\n")
    assert lines[0]["topics"] == ["resignation"] and "x" not in lines[0]["matched"]


def test_stats_events_get_empty_topics(tagger) -> None:
    stats = {
        "event_id": "s1",
        "kind": "stats",
        "video_id": "v1",
        "event_time": 1_767_225_600_000,
        "views": 10,
    }
    _, lines, _ = run(tagger, orjson.dumps(stats) + b"\n")
    assert lines[0]["topics"] == [] and lines[0]["matched"] == {}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"not json at all", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'{"kind": "publish"}', "missing_field"),
        (b'{"event_id": 1, "kind": "stats", "video_id": "v", "event_time": 1, "views": 1}', ""),
        (
            b'{"event_id": "x", "kind": "publish", "video_id": "v", "event_time": 1}',
            "missing_field",
        ),
        (b"\xff\xfe{}", "invalid_utf8"),
    ],
)
def test_invalid_lines_reported_with_line_numbers(tagger, bad: bytes, reason: str) -> None:
    good1 = orjson.dumps(publish(1, "Grève des profs", lang="fr"))
    good2 = orjson.dumps(publish(2, "Working from home again"))
    code, lines, errors = run(tagger, b"\n".join([good1, bad, good2]) + b"\n")
    assert code == 0
    assert [row["event_id"] for row in lines] == ["e1", "e2"]
    assert len(errors) == 1
    assert errors[0].startswith(f"line 2: {reason}")  # reason codes: workpulse.events


def test_blank_lines_are_reported_like_empty_kafka_messages(tagger) -> None:
    """A blank line is an empty message: Kafka's would be dead-lettered as not_json, so
    `workpulse tag` reports it the same way instead of skipping it silently."""
    data = orjson.dumps(publish(1, "laid off")) + b"\r\n\r\n" + orjson.dumps(publish(2, "wfh"))
    code, lines, errors = run(tagger, data)
    assert code == 0
    assert [row["topics"] for row in lines] == [["layoffs"], ["remote_work"]]
    assert len(errors) == 1 and errors[0].startswith("line 2: not_json")


def test_streaming_order_across_batches(tagger) -> None:
    captions = ["I quit my job", "my dog learned a trick", "Teachers on strike", ""]
    n = BATCH_LINES * 2 + 37
    broken = {BATCH_LINES // 2, BATCH_LINES + 3, 2 * BATCH_LINES}  # in three batches
    parts = []
    for i in range(n):
        if i in broken:
            parts.append(b"{broken")
        else:
            parts.append(orjson.dumps(publish(i, captions[i % len(captions)])))
    code, lines, errors = run(tagger, b"\n".join(parts) + b"\n")
    assert code == 0
    expected_ids = [f"e{i}" for i in range(n) if i not in broken]
    assert [row["event_id"] for row in lines] == expected_ids
    assert [e.split(":")[0] for e in errors] == [f"line {i + 1}" for i in sorted(broken)]
    assert errors[0].startswith(f"line {BATCH_LINES // 2 + 1}: not_json")
    by_caption = {row["caption"]: row["topics"] for row in lines}
    assert by_caption["I quit my job"] == ["resignation"]
    assert by_caption["Teachers on strike"] == ["labor_action"]
    assert by_caption["my dog learned a trick"] == []


def test_reads_lazily(tagger) -> None:
    """The input is consumed batch by batch, not read whole."""

    class Lines(io.RawIOBase):
        def __init__(self) -> None:
            self.served = 0

        def readline(self, size: int | None = -1, /) -> bytes:
            if self.served == 3 * BATCH_LINES:
                return b""
            self.served += 1
            return orjson.dumps(publish(self.served, "hybrid work")) + b"\n"

    source = Lines()
    out = io.BytesIO()
    writes: list[int] = []

    class Out(io.BytesIO):
        def write(self, data) -> int:  # type: ignore[override]
            writes.append(source.served)
            return out.write(data)

    assert run_tag(source, Out(), io.StringIO(), tagger) == 0  # type: ignore[arg-type]
    assert writes[0] <= BATCH_LINES + 1  # first batch written before the rest was read
    assert len(out.getvalue().splitlines()) == 3 * BATCH_LINES


class _Reads(io.BytesIO):
    """A file that records the largest read it was asked for."""

    largest = 0

    def readline(self, size: int | None = -1, /) -> bytes:
        line = super().readline(size)
        self.largest = max(self.largest, len(line))
        return line


@pytest.mark.parametrize(
    ("extra", "reported"),
    [
        (0, None),  # at the limit: read and tagged
        (1, LIMIT + 1),  # a byte over: oversized, its size
        (5_000_000, LIMIT + 5_000_000),  # 5 MB over: skipped in chunks
    ],
)
@pytest.mark.parametrize("end", [b"\n", b""], ids=["newline", "at-eof"])
def test_a_long_line_is_never_read_whole(
    tagger, extra: int, reported: int | None, end: bytes
) -> None:
    """A line is read to at most the contract's limit (+ its end): a longer one is
    skipped in chunks and reported `oversized` with its size. It was read whole first
    (a 300 MB line took 750 MB; /dev/zero, all there was)."""
    caption = "I quit my job"
    event = orjson.dumps(publish(1, caption))
    padded = event[:-1] + b" " * (LIMIT + extra - len(event)) + b"}"
    assert len(padded) == LIMIT + extra
    good = orjson.dumps(publish(2, "laid off"))
    data = _Reads(good + b"\n" + padded + end if end else good + b"\n" + padded)
    out, err = io.BytesIO(), io.StringIO()
    assert run_tag(data, out, err, tagger) == 0
    tagged = [json.loads(line)["event_id"] for line in out.getvalue().splitlines()]
    errors = err.getvalue().splitlines()
    if reported is None:
        assert tagged == ["e2", "e1"] and errors == []
    else:
        assert tagged == ["e2"]
        assert errors == [f"line 2: oversized: {reported} bytes > limit {LIMIT}"]
    assert data.largest <= max(LIMIT + 2, SKIP_CHUNK)
