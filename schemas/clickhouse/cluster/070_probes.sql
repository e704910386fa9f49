-- A twin of video_events that stores nothing (engine Null), on every node: see the
-- single-node file. The worker inserts into it only to find the rows of a refused batch.
CREATE TABLE IF NOT EXISTS workpulse.video_events_probe ON CLUSTER '{cluster}'
AS workpulse.video_events_local ENGINE = Null;
