-- CLUSTER VARIANT of ../001_database.sql, kept side by side with it by hand (not generated):
-- same columns (tests/unit/test_clickhouse_schema.py checks), Replicated engines
-- and ON CLUSTER '{cluster}' DDL. <name>_local holds each shard's data; <name> is
-- a Distributed table over it, so analysts' SQL is the same as on one node.
-- Needs the {cluster}, {shard} and {replica} macros and ClickHouse Keeper.
CREATE DATABASE IF NOT EXISTS workpulse ON CLUSTER '{cluster}';
