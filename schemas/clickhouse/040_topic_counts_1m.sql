-- Per topic, minute, language and country, maintained by ClickHouse from the
-- blocks inserted into video_events (never written by the worker).
-- Counts are SimpleAggregateFunction(sum, ...): a plain sum(...) GROUP BY
-- topic, window_start is exact at any moment, before or after merges, no FINAL.
-- Inserts into video_events set deduplicate_blocks_in_dependent_materialized_views=1
-- and this table keeps its own dedup window, so a retried batch is dropped here too.
CREATE TABLE IF NOT EXISTS workpulse.topic_counts_1m
(
    topic         LowCardinality(String),
    window_start  DateTime('UTC'),
    lang          LowCardinality(String),
    country       LowCardinality(String),
    videos        SimpleAggregateFunction(sum, UInt64),
    views         SimpleAggregateFunction(sum, Int64),
    likes         SimpleAggregateFunction(sum, Int64),
    shares        SimpleAggregateFunction(sum, Int64),
    comments      SimpleAggregateFunction(sum, Int64),
    events        SimpleAggregateFunction(sum, UInt64),
    authors       AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (topic, window_start, lang, country)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS workpulse.topic_counts_1m_mv
TO workpulse.topic_counts_1m
AS SELECT
    topic,
    toStartOfMinute(toDateTime(event_time, 'UTC')) AS window_start,
    lang,
    country,
    toUInt64(countIf(kind = 'publish')) AS videos,
    sum(d_views) AS views,
    sum(d_likes) AS likes,
    sum(d_shares) AS shares,
    sum(d_comments) AS comments,
    toUInt64(count()) AS events,
    uniqExactStateIf(author_id, kind = 'publish') AS authors
FROM workpulse.video_events
ARRAY JOIN topics AS topic
GROUP BY topic, window_start, lang, country;

-- Analysts' entry point: finalised per-minute counts per topic.
CREATE VIEW IF NOT EXISTS workpulse.topic_minutes
AS SELECT
    topic,
    window_start,
    sum(videos) AS videos,
    sum(views) AS views,
    sum(likes) AS likes,
    sum(shares) AS shares,
    sum(comments) AS comments,
    sum(events) AS events,
    uniqExactMerge(authors) AS distinct_authors
FROM workpulse.topic_counts_1m
GROUP BY topic, window_start;
