"""Decoding and validation of raw input messages against the contract (DESIGN.md).

Pure: bytes in, an `Event` or a `Rejection` out. The JSON Schema
`schemas/video_event.schema.json` is the single source of truth for the contract. A
`Contract` compiles it twice:

- the **reference**: orjson, then fastjsonschema (`decode_event`), which gives every
  rejection its reason; ~8.5 µs per event;
- the **fast path** (`Contract.decode`): a msgspec type generated from the same schema
  (types, bounds, lengths, patterns, enums) decodes and validates in one pass (~1 µs per
  event). It only ever *accepts*: whatever it does not accept (a bad message, or
  something the schema allows but the generated type is stricter about, such as
  `5.0` for an integer, or a field the schema does not name: msgspec skips unknown
  fields without checking their UTF-8 or number range) goes to the reference, so the
  verdict and the reason are the reference's (tests/unit/test_contract_fast_path.py
  compares the two).

A few checks JSON Schema cannot express well (message size, UTF-8, real calendar dates,
the event-time window around the clock) are done here, on both paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import fastjsonschema
import msgspec
import orjson
from msgspec import UNSET, UnsetType

from workpulse.model.event import Event, Rejection
from workpulse.resources import contract_path

DEFAULT_MAX_BYTES = 256 * 1024
"""Messages larger than this are rejected as `oversized` without being parsed."""

COUNTER_MAX = 10**12
"""The contract's bound on counters (`maximum` in the schema): a thousand times the
most-viewed video's views. Near 2^63 a single counter fits a row but wraps the
per-topic Int64 sums of topic_counts_1m and its rollups (and their recount with them);
at 10^12, nine million videos at the bound still fit one sum."""
COUNTERS = ("author_followers", "views", "likes", "shares", "comments")
"""The integer fields a stored row carries (as UInt64, and their deltas as Int64)."""

EVENT_TIME_MIN_MS = 1_104_537_600_000  # 2005-01-01T00:00:00Z: before the platforms
EVENT_TIME_MAX_AHEAD_MS = 86_400_000  # one day ahead of the worker's clock
EVENT_TIME_LAST_MS = 4_294_967_295_999  # 2106-02-07T06:28:15.999Z: the rollups' DateTime ends
EVENT_TIME_FIRST_MS = 0  # 1970-01-01T00:00:00Z: and starts


@dataclass(frozen=True)
class EventTimeWindow:
    """The event times a worker accepts: not before `min_ms`, and not more than
    `max_ahead_ms` after the worker's clock. Outside it a message is dead-lettered as
    `bad_event_time`: a date in 9999 or 1970 is a producer's bug, and would move the
    event-time watermark absurdly."""

    min_ms: int = EVENT_TIME_MIN_MS
    max_ahead_ms: int = EVENT_TIME_MAX_AHEAD_MS

    def refuse(self, event_time_ms: int, now_ms: int | None) -> str | None:
        """Why `event_time_ms` is outside the window (None: inside). Whatever the window,
        never outside 1970–2106, the range of the DateTime the rollups count minutes in
        (a later event was counted in a minute of 2063 or 2106)."""
        first = max(self.min_ms, EVENT_TIME_FIRST_MS)
        if event_time_ms < first:
            return f"event_time {_iso(event_time_ms)} is before {_iso(first)}"
        if event_time_ms > EVENT_TIME_LAST_MS:
            return f"event_time {_iso(event_time_ms)} is after {_iso(EVENT_TIME_LAST_MS)}"
        if now_ms is not None and event_time_ms > now_ms + self.max_ahead_ms:
            ahead_h = (event_time_ms - now_ms) / 3_600_000
            return f"event_time {_iso(event_time_ms)} is {ahead_h:,.0f} h ahead of the clock"
        return None


def _iso(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms"


def load_schema(path: Path | None = None) -> dict[str, Any]:
    """The contract's JSON Schema (default: the packaged one)."""
    schema: dict[str, Any] = orjson.loads((path or contract_path()).read_bytes())
    return schema


def kind_schema(schema: dict[str, Any], kind: str) -> dict[str, Any]:
    """The contract as it applies to events of one kind.

    Each rule of the schema's top-level ``allOf`` written as "if kind is X then S" is
    replaced by S for kind X and dropped for the other kinds. Validating with this
    schema gives the same verdict as the full schema for an event of that kind, without
    evaluating the conditions: fastjsonschema checks an ``if`` (or an ``anyOf`` branch)
    by raising and catching an exception, which cost ~12 µs per event, more than the
    rest of the validation.
    """
    rules = []
    for rule in schema.get("allOf", []):
        condition = rule.get("if", {})
        const = condition.get("properties", {}).get("kind", {}).get("const")
        if const is None or set(rule) - {"if", "then", "description"}:
            rules.append(rule)  # not a kind rule: keep it as it is
        elif const == kind:
            rules.append(rule.get("then", {}))
    out = {k: v for k, v in schema.items() if k != "allOf"}
    if rules:
        out["allOf"] = rules
    return out


_END_OF_INPUT = re.compile(r"(?<!\\)\$")
"""An unescaped `$`: the end of the input in JSON Schema (ECMA-262), where a Python
regex's `$` also matches before a final newline (so `"en\\n"` would pass `^[a-z]{2}$`)."""


def python_pattern(pattern: str) -> str:
    """A JSON Schema pattern as a Python regex with the same meaning (`$` → `\\Z`, as
    fastjsonschema does)."""
    return _END_OF_INPUT.sub(r"\\Z", pattern)


class SchemaNotSupported(ValueError):
    """The schema uses something the fast path cannot generate (extend `_wire_type`)."""


def _wire_type(spec: dict[str, Any], where: str) -> Any:
    """The msgspec type of one JSON Schema (the subset the contract uses)."""
    spec = {k: v for k, v in spec.items() if k not in ("description", "title")}
    if "enum" in spec:
        if set(spec) != {"enum"} or not all(isinstance(v, str) for v in spec["enum"]):
            raise SchemaNotSupported(f"{where}: enum")
        return Literal[tuple(spec["enum"])]
    if "anyOf" in spec:
        if set(spec) != {"anyOf"}:
            raise SchemaNotSupported(f"{where}: anyOf with siblings")
        return Union[tuple(_wire_type(s, where) for s in spec["anyOf"])]  # noqa: UP007
    kind = spec.get("type")
    if kind == "string":
        extra = set(spec) - {"type", "minLength", "maxLength", "pattern"}
        if extra:
            raise SchemaNotSupported(f"{where}: string with {sorted(extra)}")
        meta = msgspec.Meta(
            min_length=spec.get("minLength"),
            max_length=spec.get("maxLength"),
            pattern=python_pattern(spec["pattern"]) if "pattern" in spec else None,
        )
        return Annotated[str, meta]
    if kind == "integer":
        extra = set(spec) - {"type", "minimum", "maximum"}
        if extra:
            raise SchemaNotSupported(f"{where}: integer with {sorted(extra)}")
        return Annotated[int, msgspec.Meta(ge=spec.get("minimum"), le=spec.get("maximum"))]
    if kind == "array":
        extra = set(spec) - {"type", "items", "maxItems", "minItems"}
        if extra or "items" not in spec:
            raise SchemaNotSupported(f"{where}: array with {sorted(extra)}")
        item = _wire_type(spec["items"], where + "[]")
        return Annotated[
            list[item],  # type: ignore[valid-type]
            msgspec.Meta(min_length=spec.get("minItems"), max_length=spec.get("maxItems")),
        ]
    raise SchemaNotSupported(f"{where}: type {kind!r}")


@dataclass(frozen=True)
class _KindRule:
    required: tuple[str, ...]
    one_of: tuple[tuple[str, ...], ...]
    """Groups of which at least one field must be present."""

    def holds(self, wire: Any) -> bool:
        """The decoded event carries the fields its kind requires."""
        for name in self.required:
            if getattr(wire, name) is UNSET:
                return False
        for group in self.one_of:
            for name in group:
                if getattr(wire, name) is not UNSET:
                    break
            else:
                return False
        return True


def _kind_rules(schema: dict[str, Any]) -> dict[str, _KindRule]:
    """The schema's "if kind is X then …" rules as required fields per kind."""
    rules: dict[str, _KindRule] = {}
    for kind in schema["properties"]["kind"]["enum"]:
        required: list[str] = []
        one_of: list[tuple[str, ...]] = []
        for rule in kind_schema(schema, kind).get("allOf", []):
            rule = {k: v for k, v in rule.items() if k != "description"}
            if set(rule) == {"required"}:
                required += rule["required"]
            elif set(rule) == {"anyOf"} and all(set(r) == {"required"} for r in rule["anyOf"]):
                one_of.append(tuple(f for r in rule["anyOf"] for f in r["required"]))
            else:
                raise SchemaNotSupported(f"rule for kind {kind}: {sorted(rule)}")
        rules[kind] = _KindRule(tuple(required), tuple(one_of))
    return rules


class FastPath:
    """The contract as one msgspec type (generated from the schema) plus its kind rules."""

    def __init__(self, schema: dict[str, Any]) -> None:
        if schema.get("type") != "object" or schema.get("additionalProperties", True) is False:
            raise SchemaNotSupported("the top level must be an object allowing other fields")
        required = set(schema.get("required", ()))
        fields: list[Any] = []
        for name, spec in schema["properties"].items():
            wire = _wire_type(spec, name)
            if name in required:
                fields.append((name, wire))
            else:  # absent is UNSET; null is no value of the schema's types: refused
                fields.append((name, wire | UnsetType, UNSET))
        self.names = tuple(schema["properties"])
        # Unknown fields go to the reference: msgspec skips them unchecked (invalid
        # UTF-8, numbers beyond a double), where orjson refuses the message.
        self.wire = msgspec.defstruct("EventWire", fields, kw_only=True, forbid_unknown_fields=True)
        self.decoder = msgspec.json.Decoder(self.wire)
        self.rules = _kind_rules(schema)


@dataclass(frozen=True)
class Contract:
    """The compiled contract: the fast path, and the reference (one fastjsonschema
    validator per event kind, and the full schema's for objects whose kind is missing
    or wrong: their rejection reason comes from it)."""

    by_kind: dict[str, Any]
    full: Any
    window: EventTimeWindow = EventTimeWindow()
    fast: FastPath | None = None

    @classmethod
    def load(cls, path: Path | None = None, window: EventTimeWindow | None = None) -> Contract:
        schema = load_schema(path)
        kinds = schema["properties"]["kind"]["enum"]
        try:
            fast: FastPath | None = FastPath(schema)
        except SchemaNotSupported:
            fast = None  # a schema the generator cannot express: the reference alone
        return cls(
            {kind: fastjsonschema.compile(kind_schema(schema, kind)) for kind in kinds},
            fastjsonschema.compile(schema),
            window or EventTimeWindow(),
            fast,
        )

    def validate(self, obj: dict[str, Any]) -> None:
        kind = obj.get("kind")
        validator = self.by_kind.get(kind) if type(kind) is str else None
        (validator or self.full)(obj)

    def decode(
        self, payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES, now_ms: int | None = None
    ) -> Event | Rejection:
        """`decode_event` (same verdicts and reasons), through the fast path when it
        accepts the message. The event's `raw` object is left empty on the fast path."""
        fast = self.fast
        if fast is None or len(payload) > max_bytes:
            return decode_event(payload, max_bytes, self, now_ms)
        try:
            wire: Any = fast.decoder.decode(payload)
        except Exception:  # whatever the fast path does not accept: the reference decides
            return decode_event(payload, max_bytes, self, now_ms)
        rule = fast.rules.get(wire.kind)
        if rule is None or not rule.holds(wire):
            return decode_event(payload, max_bytes, self, now_ms)
        event_time = wire.event_time
        try:
            event_time_ms = event_time if type(event_time) is int else parse_event_time(event_time)
        except (ValueError, OverflowError):
            return decode_event(payload, max_bytes, self, now_ms)
        if self.window.refuse(event_time_ms, now_ms) is not None:
            return decode_event(payload, max_bytes, self, now_ms)
        # Positional (Event's fields in order): keywords cost 1.5 µs per event, this 0.5.
        return Event(
            wire.event_id,
            wire.kind,
            wire.video_id,
            event_time_ms,
            wire.author_id or "",  # UNSET is false
            wire.author_followers or 0,
            wire.caption or "",
            wire.hashtags or [],
            wire.lang or None,  # never "" (the pattern needs two letters)
            wire.country or None,
            None if wire.views is UNSET else wire.views,
            None if wire.likes is UNSET else wire.likes,
            None if wire.shares is UNSET else wire.shares,
            None if wire.comments is UNSET else wire.comments,
        )


@lru_cache(maxsize=1)
def default_contract() -> Contract:
    """The packaged contract, compiled once per process."""
    return Contract.load()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def parse_event_time(value: str | int | float) -> int:
    """RFC 3339 (with offset) or epoch milliseconds → epoch milliseconds.

    Raises ValueError for impossible dates (the schema only checks the shape). An
    integral float (JSON `1767225600000.0`, which JSON Schema calls an integer) is
    taken as its integer.
    """
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"event_time {value!r} is not a whole number of milliseconds")
        return int(value)
    text = value.replace("z", "Z").replace("t", "T")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python <3.12 accepts at most 6 fractional digits: trim nanoseconds.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = rest[:-6]
        text = f"{head}.{digits[:6]}{rest[-6:]}"
    # A leap second (RFC 3339: second 60, at 23:59 UTC) is the next second, as in POSIX
    # time; datetime knows no second 60.
    leap = text[16:19] == ":60"
    if leap:
        text = text[:17] + "59" + text[19:]
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("event_time has no UTC offset")
    # in integers: `timestamp() * 1000` loses a millisecond to float rounding (….996 s)
    ms = (parsed - _EPOCH) // _MILLISECOND
    if leap:
        if ms // 1000 % 86_400 != 86_399:
            raise ValueError("second 60 is a leap second, only at 23:59:60 UTC")
        ms += 1000
    return ms


def _classify_schema_error(
    exc: fastjsonschema.JsonSchemaValueException, obj: dict[str, Any]
) -> Rejection:
    name = (exc.name or "data").removeprefix("data.").removeprefix("data")
    rule = exc.rule or ""
    if rule == "required":
        if "'author_id'" in exc.message:  # the publish rule (the base list lacks it)
            return Rejection("missing_field", "publish event needs author_id")
        return Rejection("missing_field", exc.message.removeprefix("data "))
    if rule == "anyOf" and name == "":  # the only top-level anyOf: the counters rule
        return Rejection("missing_field", "stats event carries no counter")
    if rule == "type" or (rule == "anyOf" and name == "event_time"):
        return Rejection("wrong_type", f"{name or 'event'}: {exc.message.removeprefix('data.')}")
    return Rejection("invalid_value", exc.message.removeprefix("data."))


def decode_event(
    payload: bytes,
    max_bytes: int = DEFAULT_MAX_BYTES,
    contract: Contract | None = None,
    now_ms: int | None = None,
) -> Event | Rejection:
    """Decode one raw Kafka message value into an `Event`, or say why not. `now_ms`: the
    worker's clock, for the event-time window (None: no upper bound)."""
    if len(payload) > max_bytes:
        return Rejection("oversized", f"{len(payload)} bytes > limit {max_bytes}")
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        # orjson rejects invalid UTF-8 as a decode error; tell the two apart.
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as uexc:
            return Rejection("invalid_utf8", f"invalid UTF-8 at byte {uexc.start}")
        return Rejection("not_json", str(exc).split(":", 1)[0])
    if not isinstance(obj, dict):
        return Rejection("not_object", f"top-level JSON {type(obj).__name__}, expected object")
    return event_from_object(obj, contract, now_ms)


def _whole(value: Any) -> int | None:
    """A validated counter as an int (JSON `5.0` is an integer to JSON Schema)."""
    return value if value is None or type(value) is int else int(value)


def event_from_object(
    obj: dict[str, Any], contract: Contract | None = None, now_ms: int | None = None
) -> Event | Rejection:
    """Validate an already decoded JSON object against the contract."""
    contract = contract or default_contract()
    try:
        contract.validate(obj)
    except fastjsonschema.JsonSchemaValueException as exc:
        return _classify_schema_error(exc, obj)
    get = obj.get
    for name in COUNTERS:
        value = get(name)
        if type(value) is float and not value.is_integer():
            return Rejection("wrong_type", f"{name}: must be a whole number, got {value!r}")
    try:
        event_time_ms = parse_event_time(obj["event_time"])
    except (ValueError, OverflowError) as exc:
        return Rejection("bad_event_time", str(exc))
    refused = contract.window.refuse(event_time_ms, now_ms)
    if refused is not None:
        return Rejection("bad_event_time", refused)
    return Event(
        event_id=obj["event_id"],
        kind=obj["kind"],
        video_id=obj["video_id"],
        event_time_ms=event_time_ms,
        author_id=get("author_id") or "",
        author_followers=_whole(get("author_followers")) or 0,
        caption=get("caption") or "",
        hashtags=get("hashtags") or [],
        lang=get("lang"),
        country=get("country"),
        views=_whole(get("views")),
        likes=_whole(get("likes")),
        shares=_whole(get("shares")),
        comments=_whole(get("comments")),
        raw=obj,
    )
