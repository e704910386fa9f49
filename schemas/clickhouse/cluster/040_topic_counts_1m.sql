-- CLUSTER VARIANT of ../040_topic_counts_1m.sql, kept side by side with it by hand (not generated):
-- same columns (tests/unit/test_clickhouse_schema.py checks), Replicated engines
-- and ON CLUSTER '{cluster}' DDL. <name>_local holds each shard's data; <name> is
-- a Distributed table over it, so analysts' SQL is the same as on one node.
-- Needs the {cluster}, {shard} and {replica} macros and ClickHouse Keeper.
CREATE TABLE IF NOT EXISTS workpulse.topic_counts_1m_local ON CLUSTER '{cluster}'
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
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/workpulse/topic_counts_1m', '{replica}')
PARTITION BY toYYYYMM(window_start)
ORDER BY (topic, window_start, lang, country)
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS workpulse.topic_counts_1m ON CLUSTER '{cluster}'
AS workpulse.topic_counts_1m_local
ENGINE = Distributed('{cluster}', workpulse, topic_counts_1m_local, cityHash64(topic));

CREATE MATERIALIZED VIEW IF NOT EXISTS workpulse.topic_counts_1m_mv ON CLUSTER '{cluster}'
TO workpulse.topic_counts_1m_local
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
FROM workpulse.video_events_local
ARRAY JOIN topics AS topic
GROUP BY topic, window_start, lang, country;

-- Analysts' entry point: finalised per-minute counts per topic.
CREATE VIEW IF NOT EXISTS workpulse.topic_minutes ON CLUSTER '{cluster}'
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
