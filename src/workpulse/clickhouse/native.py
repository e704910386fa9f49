"""Row preparation and ClickHouse Native encoding shared by both backends.

The Native encoder reuses clickhouse-connect's column serializers (the same code
that writes a server insert), so Map, Array, LowCardinality, DateTime64 and raw
bytes in String columns are encoded identically for chDB and for a server.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from clickhouse_connect.datatypes.base import ClickHouseType
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.common import write_leb128
from clickhouse_connect.driver.insert import InsertContext


def _utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def to_columns(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], type_names: Sequence[str]
) -> list[list[Any]]:
    """Transpose rows to columns; naive datetimes in DateTime columns are UTC."""
    width = len(columns)
    for row in rows:
        if len(row) != width:
            raise ValueError(f"row has {len(row)} values, expected {width} ({', '.join(columns)})")
    data = [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in columns]
    for i, type_name in enumerate(type_names):
        if "DateTime" in type_name and not type_name.startswith(("Array", "Map")):
            data[i] = [_utc(v) for v in data[i]]
    return data


def ch_types(type_names: Sequence[str]) -> list[ClickHouseType]:
    return [get_from_name(name) for name in type_names]


def encode_native(
    table: str,
    columns: Sequence[str],
    types: Sequence[ClickHouseType],
    data: Sequence[Sequence[Any]],
) -> bytes:
    """Column-oriented data -> a ClickHouse Native stream (no INSERT prefix)."""
    ctx = InsertContext(table, list(columns), list(types), data=data, column_oriented=True)
    out = bytearray()
    for block in ctx.next_block():
        write_leb128(block.column_count, out)
        write_leb128(block.row_count, out)
        for name, ch_type, col in zip(
            block.column_names, block.column_types, block.column_data, strict=True
        ):
            encoded = name.encode()
            write_leb128(len(encoded), out)
            out += encoded
            encoded = ch_type.insert_name.encode()
            write_leb128(len(encoded), out)
            out += encoded
            ctx.start_column(name)
            ch_type.write_column(col, out, ctx)
    return bytes(out)
