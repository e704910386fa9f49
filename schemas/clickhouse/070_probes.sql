-- A twin of video_events that stores nothing (engine Null): inserting into it parses and
-- checks rows exactly like video_events, with no side effect (no rows, no materialized
-- views). When ClickHouse refuses a batch, the worker bisects the batch against this twin
-- to find the rows to blame, dead-letters them and stores the rest.
CREATE TABLE IF NOT EXISTS workpulse.video_events_probe AS workpulse.video_events ENGINE = Null;
