-- Migration of topic_spikes tables created before the three-signal detector: the
-- columns 030_topic_spikes.sql now creates, added in the same order, and `lang`
-- in the sorting key (an alert is one per topic, window, metric and language).
-- Idempotent: on a table that has them (fresh ones, or a second run) nothing
-- changes. MODIFY ORDER BY may only append columns added by the same ALTER, which
-- is why both are one statement.
ALTER TABLE workpulse.topic_spikes
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
