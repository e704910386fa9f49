-- Every rejected message, with its raw bytes (String holds arbitrary bytes,
-- invalid UTF-8 included) and where it came from.
CREATE TABLE IF NOT EXISTS workpulse.dead_letters
(
    received_at    DateTime64(3, 'UTC'),
    reason         LowCardinality(String),
    detail         String,
    payload        String,
    src_topic      LowCardinality(String),
    src_partition  UInt32,
    src_offset     UInt64,
    key            String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (received_at, src_topic, src_partition, src_offset)
SETTINGS non_replicated_deduplication_window = 10000;
