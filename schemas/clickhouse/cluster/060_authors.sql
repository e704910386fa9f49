-- CLUSTER VARIANT of ../060_authors.sql, kept side by side with it by hand (not generated):
-- same columns (tests/unit/test_clickhouse_schema.py checks), Replicated engines
-- and ON CLUSTER '{cluster}' DDL. <name>_local holds each shard's data; <name> is
-- a Distributed table over it, so analysts' SQL is the same as on one node.
-- Needs the {cluster}, {shard} and {replica} macros and ClickHouse Keeper.
CREATE TABLE IF NOT EXISTS workpulse.topic_author_first_seen_local ON CLUSTER '{cluster}'
(
    topic       LowCardinality(String),
    author_id   String,
    first_seen  SimpleAggregateFunction(min, DateTime64(3, 'UTC'))
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/workpulse/topic_author_first_seen', '{replica}')
ORDER BY (topic, author_id)
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS workpulse.topic_author_first_seen ON CLUSTER '{cluster}'
AS workpulse.topic_author_first_seen_local
ENGINE = Distributed('{cluster}', workpulse, topic_author_first_seen_local, cityHash64(topic, author_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS workpulse.topic_author_first_seen_mv ON CLUSTER '{cluster}'
TO workpulse.topic_author_first_seen_local
AS SELECT
    topic,
    author_id,
    min(event_time) AS first_seen
FROM workpulse.video_events_local
ARRAY JOIN topics AS topic
WHERE kind = 'publish' AND author_id != ''
GROUP BY topic, author_id;

CREATE VIEW IF NOT EXISTS workpulse.topic_new_authors_1m ON CLUSTER '{cluster}'
AS SELECT
    topic,
    toStartOfMinute(toDateTime(first_seen, 'UTC')) AS window_start,
    toUInt64(count()) AS new_authors
FROM
(
    SELECT topic, author_id, min(first_seen) AS first_seen
    FROM workpulse.topic_author_first_seen
    GROUP BY topic, author_id
)
GROUP BY topic, window_start;
