-- CLUSTER VARIANT of ../010_video_events.sql, kept side by side with it by hand (not generated):
-- same columns (tests/unit/test_clickhouse_schema.py checks), Replicated engines
-- and ON CLUSTER '{cluster}' DDL. <name>_local holds each shard's data; <name> is
-- a Distributed table over it, so analysts' SQL is the same as on one node.
-- Needs the {cluster}, {shard} and {replica} macros and ClickHouse Keeper.
CREATE TABLE IF NOT EXISTS workpulse.video_events_local ON CLUSTER '{cluster}'
(
    event_id          String,
    kind              LowCardinality(String),
    video_id          String,
    event_time        DateTime64(3, 'UTC'),
    author_id         String,
    author_followers  UInt64,
    lang              LowCardinality(String),
    country           LowCardinality(String),
    caption           String,
    hashtags          Array(String),
    topics            Array(LowCardinality(String)),
    matched           Map(String, Array(String)),
    views             UInt64,
    likes             UInt64,
    shares            UInt64,
    comments          UInt64,
    d_views           Int64,
    d_likes           Int64,
    d_shares          Int64,
    d_comments        Int64,
    taxonomy_version  LowCardinality(String),
    ingest_time       DateTime64(3, 'UTC'),
    src_topic         LowCardinality(String),
    src_partition     UInt32,
    src_offset        UInt64
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/workpulse/video_events', '{replica}')
PARTITION BY toYYYYMM(event_time)
ORDER BY (video_id, event_time, event_id)
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS workpulse.video_events ON CLUSTER '{cluster}'
AS workpulse.video_events_local
ENGINE = Distributed('{cluster}', workpulse, video_events_local, cityHash64(video_id));
