-- CLUSTER VARIANT of ../020_dead_letters.sql, kept side by side with it by hand (not generated):
-- same columns (tests/unit/test_clickhouse_schema.py checks), Replicated engines
-- and ON CLUSTER '{cluster}' DDL. <name>_local holds each shard's data; <name> is
-- a Distributed table over it, so analysts' SQL is the same as on one node.
-- Needs the {cluster}, {shard} and {replica} macros and ClickHouse Keeper.
CREATE TABLE IF NOT EXISTS workpulse.dead_letters_local ON CLUSTER '{cluster}'
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
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/workpulse/dead_letters', '{replica}')
PARTITION BY toYYYYMM(received_at)
ORDER BY (received_at, src_topic, src_partition, src_offset)
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS workpulse.dead_letters ON CLUSTER '{cluster}'
AS workpulse.dead_letters_local
ENGINE = Distributed('{cluster}', workpulse, dead_letters_local, rand());
