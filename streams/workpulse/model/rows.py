"""One row model per ClickHouse table the worker writes: column names, Python types and
ClickHouse types, in the DDL's order.

Each model is a NamedTuple whose fields are annotated with their ClickHouse type, so a
row is a plain tuple for the insert. `DateTime64` columns carry epoch milliseconds as
integers (what the column stores: no datetime object per row on the hot path).
`TableModel` reads the names and types off the NamedTuple: the row builders, the sink
and the tests all use it, and a test compares it with `DESCRIBE TABLE` of the DDL in
`schemas/clickhouse/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, NamedTuple, get_args, get_type_hints

SOURCE_COLUMNS = ("src_topic", "src_partition", "src_offset")
"""Where a row came from (Kafka topic, partition, offset); every worker table has them."""


class VideoEventRow(NamedTuple):
    """`video_events`: one row per accepted event (publish or stats)."""

    event_id: Annotated[str, "String"]
    kind: Annotated[str, "LowCardinality(String)"]
    video_id: Annotated[str, "String"]
    event_time: Annotated[int, "DateTime64(3, 'UTC')"]  # epoch ms
    author_id: Annotated[str, "String"]
    author_followers: Annotated[int, "UInt64"]
    lang: Annotated[str, "LowCardinality(String)"]
    country: Annotated[str, "LowCardinality(String)"]
    caption: Annotated[str, "String"]
    hashtags: Annotated[list[str], "Array(String)"]
    topics: Annotated[list[str], "Array(LowCardinality(String))"]
    matched: Annotated[dict[str, list[str]], "Map(String, Array(String))"]
    views: Annotated[int, "UInt64"]
    likes: Annotated[int, "UInt64"]
    shares: Annotated[int, "UInt64"]
    comments: Annotated[int, "UInt64"]
    d_views: Annotated[int, "Int64"]
    d_likes: Annotated[int, "Int64"]
    d_shares: Annotated[int, "Int64"]
    d_comments: Annotated[int, "Int64"]
    taxonomy_version: Annotated[str, "LowCardinality(String)"]
    ingest_time: Annotated[int, "DateTime64(3, 'UTC')"]  # epoch ms
    src_topic: Annotated[str, "LowCardinality(String)"]
    src_partition: Annotated[int, "UInt32"]
    src_offset: Annotated[int, "UInt64"]


class DeadLetterRow(NamedTuple):
    """`dead_letters`: every rejected message with its raw bytes."""

    received_at: Annotated[int, "DateTime64(3, 'UTC')"]  # epoch ms
    reason: Annotated[str, "LowCardinality(String)"]
    detail: Annotated[str, "String"]
    payload: Annotated[bytes, "String"]
    src_topic: Annotated[str, "LowCardinality(String)"]
    src_partition: Annotated[int, "UInt32"]
    src_offset: Annotated[int, "UInt64"]
    key: Annotated[bytes, "String"]


class SpikeRow(NamedTuple):
    """`topic_spikes`: one row per alert, with its context.

    The columns after `src_offset` came with the three-signal detector (schema file
    080 adds them to existing tables, in this order); they have defaults so that a row
    built with the original columns only stays valid (the counts agent before it
    passes the detector's whole alert through `processing.spikes.spike_row`)."""

    topic: Annotated[str, "LowCardinality(String)"]
    window_start: Annotated[datetime, "DateTime('UTC')"]
    metric: Annotated[str, "LowCardinality(String)"]
    observed: Annotated[float, "Float64"]
    expected: Annotated[float, "Float64"]
    score: Annotated[float, "Float64"]
    p_value: Annotated[float, "Float64"]
    detected_at: Annotated[datetime, "DateTime64(3, 'UTC')"]
    top_videos: Annotated[list[str], "Array(String)"]
    top_hashtags: Annotated[list[str], "Array(String)"]
    languages: Annotated[dict[str, int], "Map(String, UInt64)"]
    taxonomy_version: Annotated[str, "LowCardinality(String)"]
    src_topic: Annotated[str, "LowCardinality(String)"]
    src_partition: Annotated[int, "UInt32"]
    src_offset: Annotated[int, "UInt64"]
    lang: Annotated[str, "LowCardinality(String)"] = ""  # '' = the whole topic
    severity: Annotated[str, "LowCardinality(String)"] = ""
    windows: Annotated[int, "UInt8"] = 1  # observed/expected are sums over this many minutes
    lower: Annotated[float, "Float64"] = 0.0
    upper: Annotated[float, "Float64"] = 0.0
    distinct_authors: Annotated[int, "UInt64"] = 0
    new_authors: Annotated[int, "UInt64"] = 0
    new_author_share: Annotated[float, "Float64"] = 0.0
    top_author_share: Annotated[float, "Float64"] = 0.0
    distinct_videos: Annotated[int, "UInt64"] = 0
    top_video_share: Annotated[float, "Float64"] = 0.0
    top_video_gains: Annotated[list[int], "Array(Int64)"] = []  # noqa: RUF012 (never mutated)
    countries: Annotated[dict[str, int], "Map(String, UInt64)"] = {}  # noqa: RUF012


@dataclass(frozen=True)
class TableModel:
    """A ClickHouse table as the worker writes it: name, columns, ClickHouse types."""

    name: str
    row: type[tuple[Any, ...]]
    columns: tuple[str, ...]
    types: tuple[str, ...]

    @classmethod
    def of(cls, name: str, row: type[tuple[Any, ...]]) -> TableModel:
        hints = get_type_hints(row, include_extras=True)
        fields: tuple[str, ...] = row._fields  # type: ignore[attr-defined]
        types = tuple(str(get_args(hints[f])[1]) for f in fields)
        return cls(name, row, fields, types)

    def index(self, column: str) -> int:
        return self.columns.index(column)

    @property
    def source_index(self) -> int:
        """Position of `src_topic` (followed by `src_partition`, `src_offset`)."""
        return self.index(SOURCE_COLUMNS[0])


VIDEO_EVENTS = TableModel.of("video_events", VideoEventRow)
DEAD_LETTERS = TableModel.of("dead_letters", DeadLetterRow)
TOPIC_SPIKES = TableModel.of("topic_spikes", SpikeRow)
WORKER_TABLES: tuple[TableModel, ...] = (VIDEO_EVENTS, DEAD_LETTERS, TOPIC_SPIKES)
