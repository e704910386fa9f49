-- One row per alert. Retries of a batch are dropped by its dedup token; an
-- alert re-detected after a replay (same topic, window, metric, lang) collapses
-- to the latest detection on merge (ReplacingMergeTree); for an exact list at
-- any moment use FINAL or `LIMIT 1 BY topic, window_start, metric, lang`.
-- metric: videos | views | new_authors; lang: '' for the whole topic, else the
-- language slice that alerted. The context columns (severity, band, support,
-- top videos with their gains, countries) are described in docs/spikes.md;
-- 080_topic_spikes_context.sql adds them to tables created before they existed.
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
ENGINE = ReplacingMergeTree(detected_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (topic, window_start, metric, lang)
SETTINGS non_replicated_deduplication_window = 10000;
