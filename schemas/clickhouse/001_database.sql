-- workpulse ClickHouse schema, single node (chDB or one ClickHouse server).
-- Files are applied in name order by `workpulse init-db`; every statement is
-- idempotent (IF NOT EXISTS). Targets: chDB 4.4 (engine 26.9) and ClickHouse
-- server >= 23.8 LTS. The cluster variant lives in cluster/ (same columns).
CREATE DATABASE IF NOT EXISTS workpulse;
