"""The input contract: what is accepted, and the reason for what is not."""

from __future__ import annotations

import orjson
import pytest

from workpulse.model.event import REASONS, Event, Rejection
from workpulse.processing.contract import (
    EVENT_TIME_LAST_MS,
    EVENT_TIME_MIN_MS,
    Contract,
    EventTimeWindow,
    decode_event,
    kind_schema,
    load_schema,
    parse_event_time,
)

BASE = {
    "event_id": "e1",
    "kind": "publish",
    "video_id": "v1",
    "event_time": "2026-01-01T00:00:00Z",
    "author_id": "a1",
}


def enc(**changes: object) -> bytes:
    obj = {**BASE, **changes}
    return orjson.dumps({k: v for k, v in obj.items() if v is not DROP})


DROP = object()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not_json"),
        (b"", "not_json"),
        (b"\xff\xfe{}", "invalid_utf8"),
        (b'{"caption": "\xc3\x28"}', "invalid_utf8"),
        (b"[1, 2]", "not_object"),
        (b'"string"', "not_object"),
        (b"null", "not_object"),
        (enc(event_id=DROP), "missing_field"),
        (enc(video_id=DROP), "missing_field"),
        (enc(event_time=DROP), "missing_field"),
        (enc(author_id=DROP), "missing_field"),
        (enc(kind="stats", author_id=DROP), "missing_field"),
        (enc(event_id=1), "wrong_type"),
        (enc(hashtags="QuitMyJob"), "wrong_type"),
        (enc(views="12"), "wrong_type"),
        (enc(event_time=True), "wrong_type"),
        (enc(event_time=1.5), "wrong_type"),
        (enc(event_time="yesterday"), "wrong_type"),
        (enc(kind="delete"), "invalid_value"),
        (enc(kind=["publish"]), "invalid_value"),  # unhashable: no kind-specific validator
        (enc(kind=None), "invalid_value"),
        (enc(kind=DROP), "missing_field"),
        (enc(views=-1), "invalid_value"),
        # beyond the contract's bound (10^12): near 2^63 a counter fits a row but wraps
        # the per-topic sums of topic_counts_1m
        (enc(views=10**12 + 1), "invalid_value"),
        (enc(likes=2**63 - 1), "invalid_value"),
        (enc(author_followers=2**63), "invalid_value"),
        (enc(event_id=""), "invalid_value"),
        (enc(country="FRA"), "invalid_value"),
        (enc(event_time="2026-02-30T00:00:00Z"), "bad_event_time"),
        (enc(event_time="2026-01-01T12:00:60Z"), "bad_event_time"),  # not a leap second
        (enc(event_time="2016-12-31T23:59:61Z"), "bad_event_time"),
        # digits of other scripts (Python's `\d` and `int()` take them; RFC 3339 does not)
        (enc(event_time="\u0662\u0660\u0662\u0666-12-04T00:00:00Z"), "bad_event_time"),
        (enc(event_time="2026-\uff11\uff12-04T00:00:00Z"), "bad_event_time"),
        (enc(event_time="2026-12-04T00:00:00.\u0661\u0662Z"), "bad_event_time"),
        (enc(event_time="2026-12-04T00:00:00+\u0660\u0660:\u0660\u0660"), "bad_event_time"),
        (enc(event_time="2026-01-01T00:00:00"), "wrong_type"),
        (b"{" + b" " * 300_000 + b"}", "oversized"),
    ],
)
def test_rejections(payload: bytes, reason: str) -> None:
    result = decode_event(payload)
    assert isinstance(result, Rejection), result
    assert result.reason == reason
    assert result.reason in REASONS
    assert result.detail


@pytest.mark.parametrize(
    ("changes", "event_time_ms"),
    [
        ({}, 1_767_225_600_000),
        ({"event_time": 1_767_225_600_123}, 1_767_225_600_123),
        ({"event_time": "2026-01-01T01:00:00+01:00"}, 1_767_225_600_000),
        ({"event_time": "2026-01-01t00:00:00.5z"}, 1_767_225_600_500),
        ({"event_time": "2026-01-01T00:00:00.123456789Z"}, 1_767_225_600_123),
        ({"kind": "stats", "author_id": DROP, "views": 5}, 1_767_225_600_000),
        ({"kind": "stats", "author_id": DROP, "views": 10**12, "likes": 10**12}, 1_767_225_600_000),
        ({"unknown_field": {"nested": True}}, 1_767_225_600_000),
        ({"caption": "", "hashtags": [], "lang": "fr-CA", "country": "ca"}, 1_767_225_600_000),
    ],
)
def test_accepted(changes: dict[str, object], event_time_ms: int) -> None:
    result = decode_event(enc(**changes))
    assert isinstance(result, Event), result
    assert result.event_time_ms == event_time_ms


def test_every_counters_bound_is_the_documented_one() -> None:
    from workpulse.processing.contract import COUNTER_MAX, COUNTERS, load_schema

    props = load_schema()["properties"]
    assert {name: props[name]["maximum"] for name in COUNTERS} == dict.fromkeys(
        COUNTERS, COUNTER_MAX
    )
    # nine million videos at the bound still fit one Int64 sum of topic_counts_1m
    assert 9_000_000 * COUNTER_MAX < 2**63 - 1


def test_event_fields() -> None:
    e = decode_event(enc(caption="I quit", hashtags=["QuitMyJob"], views=3, lang="en"))
    assert isinstance(e, Event)
    assert (e.caption, e.hashtags, e.views, e.likes, e.lang) == (
        "I quit",
        ["QuitMyJob"],
        3,
        None,
        "en",
    )


def test_max_bytes_is_configurable() -> None:
    assert isinstance(decode_event(enc(caption="x" * 100), max_bytes=50), Rejection)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:01.000+00:00", 1000),
        (42, 42),
        # milliseconds a float product would lose (…999.99 truncated)
        ("2038-06-01T12:00:00.996Z", 2_159_006_400_996),
        ("2026-01-01T00:00:00.003+01:00", 1_767_222_000_003),
        ("2026-01-01T00:00:00.123456789Z", 1_767_225_600_123),
        ("1999-12-31T23:59:59.999-00:30", 946_686_599_999),
        # a leap second (RFC 3339 allows 60 at 23:59 UTC) is the next second, as in POSIX
        ("2016-12-31T23:59:60Z", 1_483_228_800_000),
        ("2016-12-31T23:59:60.5Z", 1_483_228_800_500),
        ("2017-01-01T05:29:60+05:30", 1_483_228_800_000),
    ],
)
def test_parse_event_time(text: str | int, ms: int) -> None:
    assert parse_event_time(text) == ms


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"author_id": DROP}, "publish event needs author_id"),
        ({"kind": "stats", "author_id": DROP}, "stats event carries no counter"),
        ({"kind": "stats"}, "stats event carries no counter"),
        ({"kind": "delete"}, "kind must be one of ['publish', 'stats']"),
    ],
)
def test_kind_rule_details(changes: dict[str, object], detail: str) -> None:
    result = decode_event(enc(**changes))
    assert isinstance(result, Rejection)
    assert result.detail == detail


@pytest.mark.parametrize(
    ("kind", "required_by_kind_rules"),
    [
        ("publish", [["author_id"]]),
        ("stats", [None]),  # the counters rule is an anyOf
    ],
)
def test_kind_schema_keeps_only_that_kinds_rules(
    kind: str, required_by_kind_rules: list[list[str] | None]
) -> None:
    schema = load_schema()
    specialised = kind_schema(schema, kind)
    rules = specialised["allOf"]
    assert [r.get("required") for r in rules] == required_by_kind_rules
    assert all("if" not in r for r in rules)
    assert {k: v for k, v in specialised.items() if k != "allOf"} == {
        k: v for k, v in schema.items() if k != "allOf"
    }


def test_kind_schema_keeps_rules_that_are_not_about_kind() -> None:
    schema = {
        "type": "object",
        "allOf": [
            {"required": ["a"]},
            {"if": {"properties": {"kind": {"const": "x"}}}, "then": {"required": ["b"]}},
            {"if": {"properties": {"n": {"const": 1}}}, "then": {"required": ["c"]}},
        ],
    }
    assert kind_schema(schema, "y")["allOf"] == [schema["allOf"][0], schema["allOf"][2]]
    assert kind_schema(schema, "x")["allOf"] == [
        schema["allOf"][0],
        {"required": ["b"]},
        schema["allOf"][2],
    ]


NOW_MS = 1_796_342_400_000  # 2026-12-04T00:00:00Z
WIDE = EventTimeWindow(min_ms=-(10**12), max_ahead_ms=10**15)  # 1938 .. ~33,700 years ahead


@pytest.mark.parametrize(
    ("window", "event_time_ms", "refused"),
    [
        (EventTimeWindow(), NOW_MS, None),
        (EventTimeWindow(), NOW_MS + 86_400_001, "ahead of the clock"),
        (EventTimeWindow(), EVENT_TIME_MIN_MS - 1, "is before 2005-01-01"),
        # whatever the settings, only what the rollups' DateTime holds (1970-2106): an
        # event of 2200 was counted in a minute of 2063, one of 9999 in 2106
        (WIDE, EVENT_TIME_LAST_MS, None),
        (WIDE, EVENT_TIME_LAST_MS + 1, "is after 2106-02-07T06:28:15Z"),
        (WIDE, 7_258_118_400_000, "is after 2106"),  # 2200-01-01
        (WIDE, 253_402_300_799_999, "is after 2106"),  # 9999-12-31T23:59:59.999
        (WIDE, 0, None),
        (WIDE, -1, "is before 1970-01-01"),
    ],
)
def test_the_event_time_window(
    window: EventTimeWindow, event_time_ms: int, refused: str | None
) -> None:
    said = window.refuse(event_time_ms, NOW_MS)
    assert (said is None) if refused is None else (said is not None and refused in said), said


@pytest.mark.parametrize(
    "event_time", ["2200-01-01T00:00:00Z", "9999-12-31T23:59:59Z", 253402300799999]
)
def test_an_event_after_2106_is_dead_lettered_on_both_paths(event_time: str | int) -> None:
    contract = Contract.load(window=WIDE)
    payload = enc(event_time=event_time)
    for verdict in (contract.decode(payload, now_ms=NOW_MS),
                    decode_event(payload, contract=contract, now_ms=NOW_MS)):  # fmt: skip
        assert isinstance(verdict, Rejection) and verdict.reason == "bad_event_time", verdict
