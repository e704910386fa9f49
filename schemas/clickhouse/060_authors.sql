-- New authors: an author is new in a topic in the window holding their first
-- published video in that topic. first_seen is min() of the publish times, so
-- it is exact at any moment once re-aggregated (min is also retry-proof).
CREATE TABLE IF NOT EXISTS workpulse.topic_author_first_seen
(
    topic       LowCardinality(String),
    author_id   String,
    first_seen  SimpleAggregateFunction(min, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (topic, author_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS workpulse.topic_author_first_seen_mv
TO workpulse.topic_author_first_seen
AS SELECT
    topic,
    author_id,
    min(event_time) AS first_seen
FROM workpulse.video_events
ARRAY JOIN topics AS topic
WHERE kind = 'publish' AND author_id != ''
GROUP BY topic, author_id;

CREATE VIEW IF NOT EXISTS workpulse.topic_new_authors_1m
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
