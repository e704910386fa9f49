-- One row per accepted event (publish or stats), written only by the worker.
-- A stats row carries the topics of its video, so a recount of this table
-- (ARRAY JOIN topics) equals topic_counts_1m by construction: the MVs in
-- 040/050/060 are fed from exactly these inserted blocks.
--
-- ORDER BY (video_id, event_time, event_id): the rows of one video (its publish
-- row and every stats update) sit together in time order, which is the access
-- path of per-video questions (timeline, latest counters) and compresses the
-- repeated caption/topics/hashtags of a video's stats rows very well. Per-topic
-- and per-time questions are answered by the aggregated tables, and monthly
-- partitions prune time ranges here.
--
-- Retries: every insert carries insert_deduplication_token (one deterministic
-- token per batch) and the table keeps the last 10000 tokens/block hashes, so a
-- retried batch is dropped on a non-replicated MergeTree too.
CREATE TABLE IF NOT EXISTS workpulse.video_events
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
ENGINE = MergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (video_id, event_time, event_id)
SETTINGS non_replicated_deduplication_window = 10000;
