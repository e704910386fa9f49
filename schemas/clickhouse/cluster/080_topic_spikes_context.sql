-- CLUSTER VARIANT of ../080_topic_spikes_context.sql, kept side by side with it by hand (not generated):
-- the same columns added to the shard-local table (with its sorting key) and to the
-- Distributed table over it (which has no sorting key), ON CLUSTER '{cluster}'.
ALTER TABLE workpulse.topic_spikes_local ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS lang              LowCardinality(String) AFTER src_offset,
    ADD COLUMN IF NOT EXISTS severity          LowCardinality(String) AFTER lang,
    ADD COLUMN IF NOT EXISTS windows           UInt8 AFTER severity,
    ADD COLUMN IF NOT EXISTS lower             Float64 AFTER windows,
    ADD COLUMN IF NOT EXISTS upper             Float64 AFTER lower,
    ADD COLUMN IF NOT EXISTS distinct_authors  UInt64 AFTER upper,
    ADD COLUMN IF NOT EXISTS new_authors       UInt64 AFTER distinct_authors,
    ADD COLUMN IF NOT EXISTS new_author_share  Float64 AFTER new_authors,
    ADD COLUMN IF NOT EXISTS top_author_share  Float64 AFTER new_author_share,
    ADD COLUMN IF NOT EXISTS distinct_videos   UInt64 AFTER top_author_share,
    ADD COLUMN IF NOT EXISTS top_video_share   Float64 AFTER distinct_videos,
    ADD COLUMN IF NOT EXISTS top_video_gains   Array(Int64) AFTER top_video_share,
    ADD COLUMN IF NOT EXISTS countries         Map(String, UInt64) AFTER top_video_gains,
    MODIFY ORDER BY (topic, window_start, metric, lang);

ALTER TABLE workpulse.topic_spikes ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS lang              LowCardinality(String) AFTER src_offset,
    ADD COLUMN IF NOT EXISTS severity          LowCardinality(String) AFTER lang,
    ADD COLUMN IF NOT EXISTS windows           UInt8 AFTER severity,
    ADD COLUMN IF NOT EXISTS lower             Float64 AFTER windows,
    ADD COLUMN IF NOT EXISTS upper             Float64 AFTER lower,
    ADD COLUMN IF NOT EXISTS distinct_authors  UInt64 AFTER upper,
    ADD COLUMN IF NOT EXISTS new_authors       UInt64 AFTER distinct_authors,
    ADD COLUMN IF NOT EXISTS new_author_share  Float64 AFTER new_authors,
    ADD COLUMN IF NOT EXISTS top_author_share  Float64 AFTER new_author_share,
    ADD COLUMN IF NOT EXISTS distinct_videos   UInt64 AFTER top_author_share,
    ADD COLUMN IF NOT EXISTS top_video_share   Float64 AFTER distinct_videos,
    ADD COLUMN IF NOT EXISTS top_video_gains   Array(Int64) AFTER top_video_share,
    ADD COLUMN IF NOT EXISTS countries         Map(String, UInt64) AFTER top_video_gains;
