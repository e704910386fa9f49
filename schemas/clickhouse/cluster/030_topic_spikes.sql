-- CLUSTER VARIANT of ../030_topic_spikes.sql, kept side by side with it by hand (not generated):
-- same columns (tests/unit/test_clickhouse_schema.py checks), Replicated engines
-- and ON CLUSTER '{cluster}' DDL. <name>_local holds each shard's data; <name> is
-- a Distributed table over it, so analysts' SQL is the same as on one node.
-- Needs the {cluster}, {shard} and {replica} macros and ClickHouse Keeper.
CREATE TABLE IF NOT EXISTS workpulse.topic_spikes_local ON CLUSTER '{cluster}'
(
    topic             LowCardinality(String),
    window_start      DateTime('UTC'),
    metric            LowCardinality(String),
    observed          Float64,
    expected          Float64,
    score             Float64,
    p_value           Float64,
    detected_at       DateTime64(3, 'UTC'),
    top_videos        Array(String),
    top_hashtags      Array(String),
    languages         Map(String, UInt64),
    taxonomy_version  LowCardinality(String),
    src_topic         LowCardinality(String),
    src_partition     UInt32,
    src_offset        UInt64,
    lang              LowCardinality(String),
    severity          LowCardinality(String),
    windows           UInt8,
    lower             Float64,
    upper             Float64,
    distinct_authors  UInt64,
    new_authors       UInt64,
    new_author_share  Float64,
    top_author_share  Float64,
    distinct_videos   UInt64,
    top_video_share   Float64,
    top_video_gains   Array(Int64),
    countries         Map(String, UInt64)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/workpulse/topic_spikes', '{replica}', detected_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (topic, window_start, metric, lang)
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS workpulse.topic_spikes ON CLUSTER '{cluster}'
AS workpulse.topic_spikes_local
ENGINE = Distributed('{cluster}', workpulse, topic_spikes_local, cityHash64(topic));
