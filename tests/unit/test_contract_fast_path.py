"""The fast path (a msgspec type generated from the schema) gives the reference's verdict
(orjson + fastjsonschema) on every message: the same event, or the same reason."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from tests.unit.test_fuzz_ingest import PAYLOADS

from workpulse.dev.generator import Workload, WorkloadConfig
from workpulse.model.event import Event
from workpulse.processing.contract import (
    Contract,
    FastPath,
    SchemaNotSupported,
    decode_event,
    load_schema,
)

CONTRACT = Contract.load()
NOW = 1_767_225_600_000 + 3_600_000


def same(payload: bytes) -> tuple[Any, Any]:
    fast = CONTRACT.decode(payload, now_ms=NOW)
    reference = decode_event(payload, contract=CONTRACT, now_ms=NOW)
    for event in (fast, reference):
        if isinstance(event, Event):
            event.raw = {}  # the fast path does not keep the decoded object
    return fast, reference


def test_the_fast_path_is_built_from_the_packaged_schema() -> None:
    assert CONTRACT.fast is not None


def test_generator_messages() -> None:
    config = WorkloadConfig(seed=31, bad_fraction=0.05, duplicate_fraction=0.02)
    messages = [v for _, v in Workload(config).messages(20_000)]
    accepted_fast = 0
    for payload in messages:
        fast, reference = same(payload)
        assert fast == reference, payload[:200]
        assert CONTRACT.fast is not None
        try:
            CONTRACT.fast.decoder.decode(payload)
            accepted_fast += 1
        except Exception:
            pass
    # the fast path really is the path: it takes the valid events (~93 % here)
    assert accepted_fast > 0.9 * len(messages)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PAYLOADS)
def test_hostile_messages(payload: bytes) -> None:
    fast, reference = same(payload)
    assert fast == reference


@pytest.mark.parametrize(
    "changes",
    [
        {"views": 5.0},  # an integer to JSON Schema, a float to msgspec: the reference decides
        {"kind": "stats", "author_id": None, "views": 3},
        {"event_time": "2026-01-01T00:30:00+01:00"},
        {"event_time": 1},  # before the window
        {"event_time": 253402300799999},  # after it
        {"lang": "fr-CA", "country": "ca", "hashtags": ["QuitMyJob"]},
        {"unknown": {"nested": [1, 2]}},
        {"kind": "stats", "author_id": None},  # no counter
        {"author_id": None},  # publish without author
        {"caption": "x" * 20_001},
    ],
)
def test_cases(changes: dict[str, Any]) -> None:
    obj = {
        "event_id": "e",
        "kind": "publish",
        "video_id": "v",
        "event_time": 1_767_225_600_000,
        "author_id": "a",
    }
    obj.update(changes)
    payload = orjson.dumps({k: v for k, v in obj.items() if v is not None})
    fast, reference = same(payload)
    assert fast == reference


@pytest.mark.parametrize(
    "schema_change",
    [
        {"properties": {"x": {"type": "number"}}},
        {"properties": {"x": {"type": "string", "format": "email"}}},
        {"additionalProperties": False},
    ],
)
def test_a_schema_the_generator_cannot_express_is_refused(schema_change: dict[str, Any]) -> None:
    schema = load_schema()
    for key, value in schema_change.items():
        if isinstance(value, dict):
            schema[key] = {**schema[key], **value}
        else:
            schema[key] = value
    with pytest.raises(SchemaNotSupported):
        FastPath(schema)


_BASE = b'"event_id":"e","kind":"publish","video_id":"v","event_time":1767225600000,"author_id":"a"'


@pytest.mark.parametrize(
    "payload",
    [
        # `$` ends the input in JSON Schema; in a Python regex it also matches before a
        # final newline
        b"{" + _BASE + b',"lang":"en\\n"}',
        b"{" + _BASE + b',"country":"FR\\n"}',
        # null is not a value of any optional field (absent is)
        b"{" + _BASE + b',"caption":null}',
        b"{" + _BASE + b',"hashtags":null}',
        b"{" + _BASE + b',"lang":null}',
        b"{" + _BASE + b',"author_followers":null}',
        b'{"event_id":"e","kind":"stats","video_id":"v","event_time":1767225600000,'
        b'"views":null,"likes":3}',
        # what msgspec skips in unknown fields without checking it
        b"{" + _BASE + b',"x":"\xff"}',
        b"{" + _BASE + b',"\xff":1}',
        b"{" + _BASE + b',"x":1e400}',
        b"{" + _BASE + b',"x":1' + b"0" * 400 + b"}",
    ],
)
def test_raw_cases(payload: bytes) -> None:
    fast, reference = same(payload)
    assert fast == reference
