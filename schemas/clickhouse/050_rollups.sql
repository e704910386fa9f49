-- Hourly and daily rollups, same columns and semantics as topic_counts_1m.
-- Each is fed directly from the inserted video_events blocks (not cascaded
-- from topic_counts_1m): one level of MVs, every target deduplicated by the
-- same derived insert token, and each rollup is a recount of video_events.
CREATE TABLE IF NOT EXISTS workpulse.topic_counts_1h
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

CREATE MATERIALIZED VIEW IF NOT EXISTS workpulse.topic_counts_1h_mv
TO workpulse.topic_counts_1h
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
FROM workpulse.video_events
ARRAY JOIN topics AS topic
GROUP BY topic, window_start, lang, country;

CREATE TABLE IF NOT EXISTS workpulse.topic_counts_1d
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
PARTITION BY toYear(window_start)
ORDER BY (topic, window_start, lang, country)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS workpulse.topic_counts_1d_mv
TO workpulse.topic_counts_1d
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
FROM workpulse.video_events
ARRAY JOIN topics AS topic
GROUP BY topic, window_start, lang, country;
