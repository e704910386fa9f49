-- CLUSTER VARIANT of ../090_copycat.sql, kept side by side with it by hand (not generated):
-- the same view ON CLUSTER '{cluster}', over the Distributed tables (the whole data).
CREATE OR REPLACE VIEW workpulse.topic_copycat ON CLUSTER '{cluster}'
AS
WITH
    alerts AS
    (
        SELECT topic, window_start, argMax(top_hashtags, score) AS top_hashtags
        FROM workpulse.topic_spikes
        WHERE lang = ''
        GROUP BY topic, window_start
    ),
    waves AS
    (
        SELECT topic, window_start AS wave_start, top_hashtags
        FROM
        (
            SELECT
                topic,
                window_start,
                top_hashtags,
                lagInFrame(window_start, 1, toDateTime(0, 'UTC')) OVER (
                    PARTITION BY topic ORDER BY window_start
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
                ) AS previous
            FROM alerts
        )
        WHERE dateDiff('second', previous, window_start) > 6 * 3600
    ),
    -- the hours within 24 hours of a wave's start: the only publish rows read
    wave_hours AS
    (
        SELECT DISTINCT toStartOfHour(wave_start) - toIntervalHour(24) + toIntervalHour(h) AS hour
        FROM waves
        ARRAY JOIN range(49) AS h
    ),
    candidates AS
    (
        SELECT topic, wave_start, arrayJoin(arrayDistinct(arrayMap(h -> lowerUTF8(h), top_hashtags))) AS tag
        FROM waves
    ),
    tag_videos AS
    (
        SELECT c.topic AS topic, c.wave_start AS wave_start, c.tag AS tag,
               countIf(has(v.topics, c.topic)) / count() AS specificity
        FROM
        (
            SELECT lowerUTF8(h) AS tag, event_time, topics
            FROM workpulse.video_events
            ARRAY JOIN hashtags AS h
            WHERE kind = 'publish'
              AND event_time >= (SELECT min(hour) FROM wave_hours)
              AND event_time < (SELECT max(hour) FROM wave_hours) + INTERVAL 1 HOUR
              AND toStartOfHour(event_time) GLOBAL IN (SELECT hour FROM wave_hours)
              AND lowerUTF8(h) GLOBAL IN (SELECT tag FROM candidates)
        ) AS v
        INNER JOIN candidates AS c ON c.tag = v.tag
        WHERE v.event_time >= c.wave_start - INTERVAL 24 HOUR
          AND v.event_time < c.wave_start + INTERVAL 24 HOUR
        GROUP BY c.topic, c.wave_start, c.tag
    ),
    signatures AS
    (
        SELECT topic, wave_start, arraySort(groupArray(tag)) AS signature
        FROM tag_videos
        WHERE specificity >= 0.5
        GROUP BY topic, wave_start
    ),
    -- authors new to a topic within 24 hours of one of its waves (first_seen: the time
    -- of their first published video in the topic, as topic_author_first_seen keeps it)
    newcomers AS
    (
        SELECT f.topic AS topic, f.author_id AS author_id, f.first_seen AS first_seen,
               s.wave_start AS wave_start, s.signature AS signature
        FROM
        (
            SELECT topic, author_id, min(first_seen) AS first_seen
            FROM workpulse.topic_author_first_seen
            WHERE topic GLOBAL IN (SELECT topic FROM waves)
            GROUP BY topic, author_id
        ) AS f
        INNER JOIN signatures AS s ON s.topic = f.topic
        WHERE f.first_seen >= s.wave_start - INTERVAL 24 HOUR
          AND f.first_seen < s.wave_start + INTERVAL 24 HOUR
    ),
    -- the hashtags of those first videos
    first_tags AS
    (
        SELECT topic, author_id, arrayMap(h -> lowerUTF8(h), argMin(hashtags, (event_time, event_id))) AS first_tags
        FROM workpulse.video_events
        ARRAY JOIN topics AS topic
        WHERE kind = 'publish' AND author_id != ''
          AND event_time >= (SELECT min(hour) FROM wave_hours)
          AND event_time < (SELECT max(hour) FROM wave_hours) + INTERVAL 1 HOUR
          AND toStartOfHour(event_time) GLOBAL IN (SELECT hour FROM wave_hours)
          AND (topic, author_id, event_time) GLOBAL IN (SELECT topic, author_id, first_seen FROM newcomers)
        GROUP BY topic, author_id
    ),
    per_wave AS
    (
        SELECT
            n.topic AS topic,
            n.wave_start AS wave_start,
            n.signature AS signature,
            n.first_seen AS first_seen,
            hasAny(t.first_tags, n.signature) AS adopter
        FROM newcomers AS n
        INNER JOIN first_tags AS t ON t.topic = n.topic AND t.author_id = n.author_id
    ),
    -- per wave: the new authors and adopters of each hour after its start, and of the
    -- 24 hours before it (`before`), whose adopters make the baseline
    hourly AS
    (
        SELECT
            topic,
            wave_start,
            first_seen < wave_start AS before,
            if(before, 0, toUInt32(intDiv(dateDiff('second', wave_start, first_seen), 3600))) AS hours_after,
            any(signature) AS signature,
            count() AS new_authors,
            countIf(adopter) AS adopters
        FROM per_wave
        GROUP BY topic, wave_start, before, hours_after
    )
SELECT
    topic,
    wave_start,
    signature,
    hours_after,
    wave_start + toIntervalHour(hours_after) AS window_start,
    new_authors,
    adopters,
    baseline_adopters_per_hour,
    adopters / new_authors AS adoption_share,
    (adopters + 1) / (baseline_adopters_per_hour + 1) AS copycat_index
FROM
(
    SELECT
        *,
        sum(if(before, adopters, 0)) OVER (PARTITION BY topic, wave_start) / 24
            AS baseline_adopters_per_hour
    FROM hourly
)
WHERE NOT before
ORDER BY topic, wave_start, hours_after;
