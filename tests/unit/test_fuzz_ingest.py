"""Hostile input through decode → validate → tag → rows (Hypothesis).

Whatever the bytes: no exception; every message gets exactly one outcome; a rejection
has a known reason and a detail; every row built fits its ClickHouse column (integers in
range, text that encodes as UTF-8, dates ClickHouse can hold), so nothing that passes
validation can make an insert fail.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.taggers import shared_tagger

from workpulse.model.event import REASONS
from workpulse.model.message import Message
from workpulse.model.rows import DEAD_LETTERS, VIDEO_EVENTS, TableModel
from workpulse.processing.ingest import BatchProcessor

NOW = 1_767_225_600_000 + 3_600_000
PROCESSOR = BatchProcessor(shared_tagger)  # type: ignore[arg-type]

# -- values at the extremes ------------------------------------------------------------
NASTY_TEXT = st.sampled_from(
    [
        "",
        "\x00",
        "\u200b\u200d\ufeff",  # zero-width
        "\u202eevil\u202c",  # bidi override
        "\x1b[2J\x07",  # terminal control
        "[bold]x[/] :x:",
        "a" * 30_000,  # beyond the caption limit
        "🙂" * 5_000,
        "I quit my job #QuitMyJob",
        "استقالة" * 100,
    ]
)
TEXT = st.one_of(NASTY_TEXT, st.text(max_size=300))
INTS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**64 + 5]),
)
JSON_NUMBERS = st.one_of(
    INTS.map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-0", "5.0", "1e3", "0.5"]),
)
TIMES = st.one_of(
    JSON_NUMBERS,
    st.sampled_from(
        [
            '"9999-12-31T23:59:59Z"',
            '"1970-01-01T00:00:00Z"',
            '"2026-02-30T00:00:00Z"',
            '"2026-01-01T00:00:00"',
            '"2026-01-01T00:00:00.123456789+14:00"',
            '"2026-01-01T00:00:00Z"',
            '"0000-01-01T00:00:00Z"',
            '""',
        ]
    ),
    st.just("1767225600000"),
)


def json_string(text: str) -> str:
    return orjson.dumps(text).decode()


RAW_STRINGS = st.one_of(
    TEXT.map(json_string),
    st.sampled_from(['"\\ud800"', '"a\\udfff"', '"\\u0000"', '"\\ud83d\\ude00"']),
)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


ANY_VALUE = st.one_of(
    RAW_STRINGS,
    JSON_NUMBERS,
    st.sampled_from(
        ["true", "false", "null", "{}", "[]", nested(5000), '{"a":' * 300 + "1" + "}" * 300]
    ),
    st.lists(RAW_STRINGS, max_size=120).map(lambda xs: "[" + ",".join(xs) + "]"),
)

FIELDS = {
    "event_id": RAW_STRINGS,
    "kind": st.sampled_from(['"publish"', '"stats"', '"delete"', "1", "null"]),
    "video_id": RAW_STRINGS,
    "event_time": TIMES,
    "author_id": RAW_STRINGS,
    "author_followers": JSON_NUMBERS,
    "caption": RAW_STRINGS,
    "hashtags": st.lists(RAW_STRINGS, max_size=120).map(lambda xs: "[" + ",".join(xs) + "]"),
    "lang": st.sampled_from(['"en"', '"fr-CA"', '"zz-ZZZZZZZZZ"', '"x"', "7"]),
    "country": st.sampled_from(['"FR"', '"fra"', '""', "null"]),
    "views": JSON_NUMBERS,
    "likes": JSON_NUMBERS,
    "shares": JSON_NUMBERS,
    "comments": JSON_NUMBERS,
}


@st.composite
def hostile_object(draw: Any) -> bytes:
    """A JSON object (as raw text, so it can hold what encoders refuse) whose fields are
    the contract's, some missing, some duplicated, most at their extremes."""
    parts = []
    for name, values in FIELDS.items():
        if draw(st.integers(0, 9)) == 0:
            continue  # missing
        value = draw(st.one_of(values, ANY_VALUE) if draw(st.booleans()) else values)
        parts.append(f"{json_string(name)}:{value}")
        if draw(st.integers(0, 19)) == 0:  # a duplicate key
            parts.append(f"{json_string(name)}:{draw(ANY_VALUE)}")
    if draw(st.booleans()):
        parts.append(f"{json_string(draw(st.text(max_size=20)))}:{draw(ANY_VALUE)}")
    return ("{" + ",".join(parts) + "}").encode("utf-8", "surrogatepass")


def valid_base(**changes: Any) -> bytes:
    obj = {
        "event_id": "e",
        "kind": "publish",
        "video_id": "v",
        "event_time": 1_767_225_600_000,
        "author_id": "a",
        "caption": "I quit my job",
    }
    obj.update(changes)
    return orjson.dumps(obj)


PAYLOADS = st.one_of(
    hostile_object(),
    st.binary(max_size=400),
    st.binary(min_size=1, max_size=50).map(lambda b: b'{"event_id":"' + b + b'"}'),
    st.builds(valid_base, caption=TEXT, hashtags=st.lists(TEXT, max_size=5)),
)

# -- what a ClickHouse column can hold -------------------------------------------------
_INT_RANGES = {"UInt64": (0, 2**64 - 1), "Int64": (-(2**63), 2**63 - 1), "UInt32": (0, 2**32 - 1)}
_DT_MIN = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
_DT_MAX = dt.datetime(2299, 12, 31, tzinfo=dt.UTC)
_DT_MIN_MS = int(_DT_MIN.timestamp() * 1000)
_DT_MAX_MS = int(_DT_MAX.timestamp() * 1000)


def _text_ok(value: Any) -> bool:
    if isinstance(value, bytes):
        return True
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def fits(type_name: str, value: Any) -> bool:
    base = type_name
    if base.startswith("LowCardinality("):
        base = base.removeprefix("LowCardinality(").removesuffix(")")
    if base in _INT_RANGES:
        lo, hi = _INT_RANGES[base]
        return type(value) is int and lo <= value <= hi
    if base.startswith("DateTime64"):  # rows carry epoch milliseconds
        return type(value) is int and _DT_MIN_MS <= value <= _DT_MAX_MS
    if base.startswith("DateTime"):
        return isinstance(value, dt.datetime) and _DT_MIN <= value <= _DT_MAX
    if base == "String":
        return _text_ok(value)
    if base == "Float64":
        return isinstance(value, float) and math.isfinite(value)
    if base.startswith("Array("):
        return isinstance(value, list) and all(_text_ok(v) for v in value)
    if base.startswith("Map(String, Array(String))"):
        return isinstance(value, dict) and all(
            _text_ok(k) and isinstance(v, list) and all(_text_ok(x) for x in v)
            for k, v in value.items()
        )
    raise AssertionError(f"no check for {type_name}")


def assert_storable(model: TableModel, row: tuple[Any, ...]) -> None:
    for name, type_name, value in zip(model.columns, model.types, row, strict=True):
        assert fits(type_name, value), f"{model.name}.{name} {type_name} cannot hold {value!r:.80}"


@settings(
    max_examples=400,
    deadline=None,  # no timing in unit tests; sizes are bounded by the contract instead
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(PAYLOADS, min_size=1, max_size=8))
def test_hostile_batches(payloads: list[bytes]) -> None:
    messages = [Message("in", i % 2, i, None, p) for i, p in enumerate(payloads)]
    out = PROCESSOR.process(messages, {}, {}, NOW)
    assert out.processed == len(messages)
    for _, rejection in out.dlq:
        assert rejection.reason in REASONS and rejection.detail
        assert _text_ok(rejection.detail)
    for row in out.video_rows:
        assert_storable(VIDEO_EVENTS, row)
    for row in out.dead_rows:
        assert_storable(DEAD_LETTERS, row)
    assert len(out.video_rows) + len(out.dead_rows) + out.outcomes[("publish", "duplicate")] + (
        out.outcomes[("stats", "duplicate")]
    ) == len(messages)


def test_the_checker_catches_what_clickhouse_would_refuse() -> None:
    assert not fits("UInt64", 2**64)
    assert not fits("Int64", 2**63)
    assert not fits("UInt64", 5.0)
    assert not fits("String", "\ud800")
    assert not fits("DateTime64(3, 'UTC')", 253_402_300_799_999)  # year 9999, in ms
    assert not fits("DateTime('UTC')", dt.datetime(9999, 1, 1, tzinfo=dt.UTC))
    assert fits("Array(LowCardinality(String))", ["a"])
