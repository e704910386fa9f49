-- CLUSTER VARIANT of ../090_copycat.sql, kept side by side with it by hand (not generated):
-- the same view ON CLUSTER '{cluster}', over the Distributed tables (the whole data).
CREATE VIEW IF NOT EXISTS workpulse.topic_copycat ON CLUSTER '{cluster}'
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
    candidates AS
    (
        SELECT topic, wave_start, arrayJoin(arrayDistinct(arrayMap(h -> lowerUTF8(h), top_hashtags))) AS tag
        FROM waves
    ),
    tag_videos AS
    (
        SELECT c.topic AS topic, c.wave_start AS wave_start, c.tag AS tag,
               countIf(has(v.topics, c.topic)) / count() AS specificity
        FROM candidates AS c
        INNER JOIN
        (
            SELECT lowerUTF8(h) AS tag, event_time, topics
            FROM workpulse.video_events
            ARRAY JOIN hashtags AS h
            WHERE kind = 'publish'
        ) AS v ON v.tag = c.tag
        WHERE v.event_time >= c.wave_start - INTERVAL 24 HOUR
          AND v.event_time < c.wave_start + INTERVAL 24 HOUR
        GROUP BY c.topic, c.wave_start, c.tag
    ),
    signatures AS
    (
        SELECT topic, wave_start, groupArray(tag) AS signature
        FROM tag_videos
        WHERE specificity >= 0.5
        GROUP BY topic, wave_start
    ),
    firsts AS
    (
        SELECT topic, author_id, min(event_time) AS first_seen,
               arrayMap(h -> lowerUTF8(h), argMin(hashtags, event_time)) AS first_tags
        FROM workpulse.video_events
        ARRAY JOIN topics AS topic
        WHERE kind = 'publish' AND author_id != ''
        GROUP BY topic, author_id
    ),
    per_wave AS
    (
        SELECT
            s.topic AS topic,
            s.wave_start AS wave_start,
            s.signature AS signature,
            f.first_seen AS first_seen,
            hasAny(f.first_tags, s.signature) AS adopter
        FROM signatures AS s
        INNER JOIN firsts AS f ON f.topic = s.topic
        WHERE f.first_seen >= s.wave_start - INTERVAL 24 HOUR
          AND f.first_seen < s.wave_start + INTERVAL 24 HOUR
    ),
    baseline AS
    (
        SELECT topic, wave_start, countIf(adopter AND first_seen < wave_start) / 24 AS per_hour
        FROM per_wave
        GROUP BY topic, wave_start
    )
SELECT
    p.topic AS topic,
    p.wave_start AS wave_start,
    any(p.signature) AS signature,
    toUInt32(intDiv(dateDiff('second', p.wave_start, p.first_seen), 3600)) AS hours_after,
    p.wave_start + toIntervalHour(hours_after) AS window_start,
    count() AS new_authors,
    countIf(p.adopter) AS adopters,
    any(b.per_hour) AS baseline_adopters_per_hour,
    adopters / new_authors AS adoption_share,
    (adopters + 1) / (baseline_adopters_per_hour + 1) AS copycat_index
FROM per_wave AS p
INNER JOIN baseline AS b ON b.topic = p.topic AND b.wave_start = p.wave_start
WHERE p.first_seen >= p.wave_start
GROUP BY p.topic, p.wave_start, hours_after
ORDER BY topic, wave_start, hours_after;
