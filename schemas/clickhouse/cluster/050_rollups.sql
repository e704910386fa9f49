-- CLUSTER VARIANT of ../050_rollups.sql, kept side by side with it by hand (not generated):
-- same columns (tests/unit/test_clickhouse_schema.py checks), Replicated engines
-- and ON CLUSTER '{cluster}' DDL. <name>_local holds each shard's data; <name> is
-- a Distributed table over it, so analysts' SQL is the same as on one node.
-- Needs the {cluster}, {shard} and {replica} macros and ClickHouse Keeper.
CREATE TABLE IF NOT EXISTS workpulse.topic_counts_1h_local ON CLUSTER '{cluster}'
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
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/workpulse/topic_counts_1h', '{replica}')
PARTITION BY toYYYYMM(window_start)
ORDER BY (topic, window_start, lang, country)
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS workpulse.topic_counts_1h ON CLUSTER '{cluster}'
AS workpulse.topic_counts_1h_local
ENGINE = Distributed('{cluster}', workpulse, topic_counts_1h_local, cityHash64(topic));

CREATE MATERIALIZED VIEW IF NOT EXISTS workpulse.topic_counts_1h_mv ON CLUSTER '{cluster}'
TO workpulse.topic_counts_1h_local
AS SELECT
    topic,
    toStartOfHour(toDateTime(event_time, 'UTC')) AS window_start,
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

CREATE TABLE IF NOT EXISTS workpulse.topic_counts_1d_local ON CLUSTER '{cluster}'
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
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/workpulse/topic_counts_1d', '{replica}')
PARTITION BY toYear(window_start)
ORDER BY (topic, window_start, lang, country)
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS workpulse.topic_counts_1d ON CLUSTER '{cluster}'
AS workpulse.topic_counts_1d_local
ENGINE = Distributed('{cluster}', workpulse, topic_counts_1d_local, cityHash64(topic));

CREATE MATERIALIZED VIEW IF NOT EXISTS workpulse.topic_counts_1d_mv ON CLUSTER '{cluster}'
TO workpulse.topic_counts_1d_local
AS SELECT
    topic,
    toStartOfDay(toDateTime(event_time, 'UTC')) AS window_start,
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
