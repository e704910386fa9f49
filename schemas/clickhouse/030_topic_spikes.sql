-- One row per alert. Retries of a batch are dropped by its dedup token; an
-- alert re-detected after a replay (same topic, window, metric) collapses to
-- the latest detection on merge (ReplacingMergeTree); for an exact list at any
-- moment use FINAL or `LIMIT 1 BY topic, window_start, metric`.
CREATE TABLE IF NOT EXISTS workpulse.topic_spikes
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
    src_offset        UInt64
)
ENGINE = ReplacingMergeTree(detected_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (topic, window_start, metric)
SETTINGS non_replicated_deduplication_window = 10000;
