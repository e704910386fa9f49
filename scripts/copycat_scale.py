"""Time `workpulse.topic_copycat` on a large synthetic `video_events` (embedded chDB), and
compare its rows with another version of the view, to show that a change of the view's
SQL changes no result.

    python scripts/copycat_scale.py --rows 1000000 --days 120 --wave-hours 72
    git show REV:schemas/clickhouse/090_copycat.sql > /tmp/old.sql
    python scripts/copycat_scale.py --rows 1000000 --against /tmp/old.sql

The rows are publish events spread evenly over `--days`, one author per five videos,
two hashtags each (one of ten work tags, one of five generic ones); a video's first tag
decides its topic four times in five (#quitmyjob: resignation, #layoffs: layoffs), the
rest fall in a topic at random or in none. Two topics get a whole-topic alert every
`--wave-hours` hours (each a wave when more than 6 apart; windows of ±24 h overlap
below 48). Built in the engine (`INSERT … SELECT FROM numbers()`): a million rows in a
few seconds. Prints one JSON line: the median time of `--repeat` runs per view, the row
count, and whether the rows are the same.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from workpulse.clickhouse import ClickHouse, apply_schema, connect
from workpulse.clickhouse.migrations import split_statements

EVENTS_SQL = """
INSERT INTO workpulse.video_events
SELECT
    concat('e', toString(number)), 'publish', concat('v', toString(number)),
    toDateTime64('2026-01-01 00:00:00', 3, 'UTC')
        + toIntervalSecond(intDiv(number * {days} * 86400, {rows})) AS event_time,
    concat('a', toString(cityHash64(number, 1) % {authors})), 0, 'en', 'US', '',
    [arrayElement(['quitmyjob', 'fyp', 'work', 'layoffs', 'burnout', 'strike', 'salary',
                   'metoo', 'greatresignation', 'job'], 1 + cityHash64(number, 2) % 10),
     arrayElement(['fyp', 'foryou', 'viral', 'trend', 'life'], 1 + cityHash64(number, 3) % 5)]
        AS hashtags,
    multiIf(hashtags[1] = 'quitmyjob' AND cityHash64(number, 4) % 5 != 0, ['resignation'],
            hashtags[1] = 'layoffs' AND cityHash64(number, 4) % 5 != 0, ['layoffs'],
            cityHash64(number, 4) % 7 = 0, ['resignation'],
            cityHash64(number, 4) % 7 = 1, ['layoffs'], []),
    map(), 0, 0, 0, 0, 0, 0, 0, 0, 't', event_time, 's', 0, number
FROM numbers({rows})
"""

ALERTS_SQL = """
INSERT INTO workpulse.topic_spikes (topic, window_start, metric, observed, expected, score,
    p_value, detected_at, top_videos, top_hashtags, languages, taxonomy_version, src_topic,
    src_partition, src_offset, lang)
SELECT topic, toDateTime('2026-01-02 12:00:00', 'UTC') + toIntervalHour({wave_hours} * d),
       'videos', 30, 3, 9, 1e-9, now(), [], tags, map(), 't', '', 0, 0, ''
FROM (SELECT arrayJoin([('resignation', ['quitmyjob', 'fyp']), ('layoffs', ['layoffs', 'work'])])
      AS x, x.1 AS topic, x.2 AS tags)
ARRAY JOIN range({waves}) AS d
"""


def fill(db: ClickHouse, rows: int, days: int, wave_hours: int) -> None:
    db.command(EVENTS_SQL.format(rows=rows, days=days, authors=max(rows // 5, 1)))
    db.command(ALERTS_SQL.format(wave_hours=wave_hours, waves=days * 24 // wave_hours))


def timed(db: ClickHouse, view: str, repeat: int) -> tuple[float, list[tuple[object, ...]]]:
    times, rows = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        rows = db.query(f"SELECT * FROM {view} ORDER BY topic, wave_start, hours_after").rows
        times.append(time.perf_counter() - start)
    return statistics.median(times), [tuple(r) for r in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--wave-hours", type=int, default=72)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--against", type=Path, help="another 090_copycat.sql to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = connect(None, Path(tmp))
        try:
            apply_schema(db)
            fill(db, args.rows, args.days, args.wave_hours)
            out: dict[str, object] = {"rows": args.rows, "days": args.days,
                                      "wave_hours": args.wave_hours}  # fmt: skip
            seconds, rows = timed(db, "workpulse.topic_copycat", args.repeat)
            out.update(view_s=round(seconds, 3), view_rows=len(rows))
            if args.against:
                text = args.against.read_text(encoding="utf-8")
                renamed = "CREATE VIEW workpulse.topic_copycat_against\n"
                for old in ("CREATE OR REPLACE VIEW", "CREATE VIEW IF NOT EXISTS"):
                    text = text.replace(f"{old} workpulse.topic_copycat\n", renamed)
                for statement in split_statements(text):
                    db.command(statement)
                seconds, other = timed(db, "workpulse.topic_copycat_against", args.repeat)
                out.update(against_s=round(seconds, 3), same_rows=other == rows)
        finally:
            db.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
