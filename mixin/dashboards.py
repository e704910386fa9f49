"""The two Grafana dashboards, built with grafana-foundation-sdk (Grafana 11 line).

* "workpulse — pipeline": Prometheus, the health of the workers.
* "workpulse — work topics": ClickHouse (grafana-clickhouse-datasource v4), what the
  data says: topics over time with the spike detector's expected band, share of
  voice, spikes as annotations, top videos and creators, new authors, dead letters.

Conventions (OPS.md, Grafana's dashboard linter): a data-source variable that every
panel and target uses (`${datasource}`), a title, description and unit on every panel,
counters only inside rate()/increase(), `$__rate_interval` for range vectors, query
variables refreshed on time-range change, a uid per dashboard.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import (
    dashboard,
    prometheus,
    stat,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    DynamicConfigValue,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from mixin import rules as r
from mixin.config import (
    DATABASE,
    PIPELINE_TITLE,
    PIPELINE_UID,
    TAGS,
    TOPICS_TITLE,
    TOPICS_UID,
)
from mixin.rules import sel

PROMETHEUS = "prometheus"
CLICKHOUSE = "grafana-clickhouse-datasource"
DS_VAR = "${datasource}"
RATE = "$__rate_interval"


def _ds(kind: str) -> DataSourceRef:
    return DataSourceRef(type_val=kind, uid=DS_VAR)


def _datasource_variable(kind: str, label: str) -> dashboard.DatasourceVariable:
    return (
        dashboard.DatasourceVariable("datasource")
        .label(label)
        .type(kind)
        .description(f"The {label} data source the panels read.")
    )


class Layout:
    """Places panels left to right, `per_row` per row."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_h = 0

    def place(self, w: int, h: int) -> Any:
        from grafana_foundation_sdk.models.dashboard import GridPos

        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = GridPos(h=h, w=w, x=self.x, y=self.y)
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos


# ---------------------------------------------------------------- pipeline (Prometheus)


def _prom(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref)
        .datasource(_ds(PROMETHEUS))
        .range()
    )


def _series(
    layout: Layout,
    title: str,
    description: str,
    unit: str,
    targets: list[prometheus.Dataquery],
    w: int = 12,
    stack: bool = False,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(_ds(PROMETHEUS))
        .grid_pos(layout.place(w, 8))
        .fill_opacity(10 if not stack else 60)
        .min(0)
    )
    if stack:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    for t in targets:
        panel = panel.with_target(t)
    return panel


def pipeline_dashboard() -> dict[str, Any]:
    L = Layout()

    def m(metric: str, matchers: str = "") -> str:
        return sel(metric, matchers)

    panels: list[cogbuilder.Builder[Any]] = [
        _series(
            L,
            "Events per second by kind and outcome",
            "Input messages processed per second (workpulse_events_total): accepted, "
            "rejected (dead-lettered), duplicate, already persisted (replays).",
            "reqps",
            [
                _prom(
                    f"sum by (kind, outcome) (rate({m('workpulse_events_total')}[{RATE}]))",
                    "{{kind}} {{outcome}}",
                )
            ],
            stack=True,
        ),
        _series(
            L,
            "Dead letters per second by reason",
            "Messages sent to the dead-letter topic and table per second, by reason "
            "(workpulse_invalid_events_total). Their share of all messages is the next panel.",
            "reqps",
            [
                _prom(
                    f"sum by (reason) (rate({m('workpulse_invalid_events_total')}[{RATE}]))",
                    "{{reason}}",
                ),
            ],
            stack=True,
        ),
        _series(
            L,
            "Dead-letter ratio",
            "Dead-lettered / all messages over 5 minutes (recording rule "
            f"{r.DEAD_LETTER_RATIO}); the alert threshold is "
            f"{r.T.dead_letter_ratio:.0%}.",
            "percentunit",
            [_prom(r.DEAD_LETTER_RATIO, "dead-letter ratio")],
        ),
        _series(
            L,
            "Consumer lag in time per partition",
            "How far behind each input partition the workers are, in seconds: 0 when caught "
            "up, else the age of the last processed message (workpulse_consumer_lag_seconds, "
            "recording rule " + r.LAG_SECONDS + "). Grows one second per second when stalled.",
            "s",
            [_prom(r.LAG_SECONDS, "partition {{partition}}")],
        ),
        _series(
            L,
            "Consumer lag in messages per partition",
            "Messages between the workers' position and the end of each input partition "
            "(workpulse_consumer_lag).",
            "short",
            [_prom(r.LAG_MESSAGES, "partition {{partition}}")],
        ),
        _series(
            L,
            "Event-time lag",
            "Wall clock minus the newest event time processed "
            "(workpulse_event_time_lag_seconds): how old the newest data is.",
            "s",
            [
                _prom(
                    f"max by (instance) ({m('workpulse_event_time_lag_seconds')})",
                    "{{instance}}",
                )
            ],
        ),
        _series(
            L,
            "Tagging latency per batch (p50, p99)",
            "Time to decode, validate and tag one batch (workpulse_tagging_batch_seconds).",
            "s",
            [
                _prom(
                    "histogram_quantile(0.5, sum by (le) "
                    f"(rate({m('workpulse_tagging_batch_seconds_bucket')}[{RATE}])))",
                    "p50",
                ),
                _prom(
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate({m('workpulse_tagging_batch_seconds_bucket')}[{RATE}])))",
                    "p99",
                    "B",
                ),
            ],
        ),
        _series(
            L,
            "End-to-end latency (p50, p99)",
            "From a message's send (its Kafka timestamp) to its row durable in ClickHouse and "
            "its outputs acknowledged (workpulse_event_latency_seconds; recording rules "
            f"{r.LATENCY_P50}, {r.LATENCY_P99}). WorkpulseLatencyHigh fires when the p99 "
            f"stays above {r.T.latency_p99_seconds:g} s; a backlog being read shows here as "
            "its age.",
            "s",
            [_prom(r.LATENCY_P50, "p50"), _prom(r.LATENCY_P99, "p99", "B")],
        ),
        _series(
            L,
            "Batch size (p50, p99)",
            "Messages per processing batch (workpulse_batch_events): small batches at a "
            "high rate mean the worker keeps up; batches at the maximum mean it is behind.",
            "short",
            [
                _prom(
                    "histogram_quantile(0.5, sum by (le) "
                    f"(rate({m('workpulse_batch_events_bucket')}[{RATE}])))",
                    "p50",
                ),
                _prom(
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate({m('workpulse_batch_events_bucket')}[{RATE}])))",
                    "p99",
                    "B",
                ),
            ],
        ),
        _series(
            L,
            "ClickHouse insert latency (p50, p99)",
            "Time of one successful insert per table (workpulse_sink_seconds; recording "
            f"rules {r.SINK_P50}, {r.SINK_P99}).",
            "s",
            [
                _prom(r.SINK_P50, "p50 {{table}}"),
                _prom(r.SINK_P99, "p99 {{table}}", "B"),
            ],
        ),
        _series(
            L,
            "ClickHouse rows written per second",
            "Rows durably written per second, by table (workpulse_sink_rows_total).",
            "rowsps",
            [
                _prom(
                    f"sum by (table) (rate({m('workpulse_sink_rows_total')}[{RATE}]))",
                    "{{table}}",
                )
            ],
        ),
        _series(
            L,
            "ClickHouse failures and rows held back",
            "Failed insert attempts per second (each retried, workpulse_sink_failures_total) "
            "and rows waiting to be written (workpulse_sink_buffered_rows, right axis).",
            "short",
            [
                _prom(
                    f"sum by (table) (rate({m('workpulse_sink_failures_total')}[{RATE}]))",
                    "failures/s {{table}}",
                ),
                _prom(f"sum({m('workpulse_sink_buffered_rows')})", "rows held back", "B"),
            ],
        ),
        _series(
            L,
            "Events per topic per second",
            "Accepted events per work topic per second (workpulse_topic_events_total).",
            "reqps",
            [
                _prom(
                    f"sum by (topic) (rate({m('workpulse_topic_events_total')}[{RATE}]))",
                    "{{topic}}",
                )
            ],
        ),
        *(
            _series(
                L,
                f"Spike detector: {label} vs its band",
                f"The spike detector on {label} per topic, newest closed minute "
                f'(metric="{metric}"): the tested value (workpulse_window_observed), the '
                "expected value from the daily-rhythm baseline (workpulse_window_expected) and "
                "the band's upper edge (workpulse_window_band_upper): the least value the "
                "negative-binomial test calls anomalous. An alert also needs author support "
                "(docs/spikes.md).",
                "short",
                [
                    _prom(f"max by (topic) ({m('workpulse_window_observed', sig)})", "{{topic}}"),
                    _prom(
                        f"max by (topic) ({m('workpulse_window_expected', sig)})",
                        "expected {{topic}}",
                        "B",
                    ),
                    _prom(
                        f"max by (topic) ({m('workpulse_window_band_upper', sig)})",
                        "band {{topic}}",
                        "C",
                    ),
                ],
                w=8,
            )
            for metric, label in (
                ("videos", "new videos"),
                ("views", "views gained"),
                ("new_authors", "new authors"),
            )
            for sig in (f'metric="{metric}"',)
        ),
        _series(
            L,
            "Spikes and late events",
            "Spikes detected per topic (workpulse_spikes_total) and events that arrived after "
            "their live window closed (workpulse_late_events_total), counted over each "
            "point's rate interval.",
            "short",
            [
                _prom(
                    f"sum by (topic) (increase({m('workpulse_spikes_total')}[{RATE}]))",
                    "spikes {{topic}}",
                ),
                _prom(
                    f"sum by (topic) (increase({m('workpulse_late_events_total')}[{RATE}]))",
                    "late {{topic}}",
                    "B",
                ),
            ],
        ),
        _series(
            L,
            "Events keyed to another partition",
            "Accepted events whose Kafka key is not their video id, counted over each point's "
            "rate interval "
            "(workpulse_misrouted_events_total): a null or wrong key can put one video on two "
            "partitions, and with several workers its gains can count twice "
            "(WorkpulseMisroutedEvents). Zero when producers key by video id.",
            "short",
            [
                _prom(
                    f"sum by (instance) (increase({m('workpulse_misrouted_events_total')}"
                    f"[{RATE}]))",
                    "{{instance}}",
                )
            ],
        ),
        stat.Panel()
        .title("Lexicon version")
        .description("Taxonomy (lexicon) version each worker tags with (workpulse_taxonomy_info).")
        .unit("none")
        .datasource(_ds(PROMETHEUS))
        .grid_pos(L.place(6, 8))
        .text_mode(common.BigValueTextMode.NAME)
        .with_target(_prom(f"count by (version) ({m('workpulse_taxonomy_info')})", "{{version}}")),
        _series(
            L,
            "Lexicon reloads",
            "Lexicon reloads per result (workpulse_lexicon_reloads_total): ok, or failed (the "
            "previous lexicon stays in use).",
            "short",
            [
                _prom(
                    f"sum by (result) (increase({m('workpulse_lexicon_reloads_total')}[{RATE}]))",
                    "{{result}}",
                )
            ],
            w=6,
        ),
        _series(
            L,
            "Process CPU",
            "CPU seconds used per second by each worker (process_cpu_seconds_total).",
            "percentunit",
            [
                _prom(
                    f"rate({m('process_cpu_seconds_total')}[{RATE}])",
                    "{{instance}}",
                )
            ],
            w=6,
        ),
        _series(
            L,
            "Process memory",
            "Resident memory of each worker (process_resident_memory_bytes).",
            "bytes",
            [_prom(m("process_resident_memory_bytes"), "{{instance}}")],
            w=6,
        ),
    ]
    builder = (
        dashboard.Dashboard(PIPELINE_TITLE)
        .uid(PIPELINE_UID)
        .description(
            "Health of the workpulse workers: throughput, dead letters, lag, "
            "latencies, ClickHouse writes, lexicon, process."
        )
        .tags(TAGS)
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("utc")
        .with_variable(_datasource_variable(PROMETHEUS, "Prometheus"))
    )
    for panel in panels:
        builder = builder.with_panel(panel)
    out = _to_dict(builder)
    out["editable"] = False
    return out


# ---------------------------------------------------------------- topics (ClickHouse)


class ClickHouseQuery(cogvariants.Dataquery):
    """A grafana-clickhouse-datasource v4 SQL target (the SDK has no builder for it)."""

    def __init__(self, sql: str, query_type: str, ref_id: str = "A") -> None:
        self.sql = sql
        self.query_type = query_type
        self.ref_id = ref_id

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": {"type": CLICKHOUSE, "uid": DS_VAR},
            "editorType": "sql",
            "format": {"timeseries": 0, "table": 1, "logs": 2}[self.query_type],
            "queryType": self.query_type,
            "rawSql": self.sql,
            "refId": self.ref_id,
        }


class ClickHouseQueryBuilder(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, sql: str, query_type: str = "timeseries", ref_id: str = "A") -> None:
        self._q = ClickHouseQuery(sql.strip(), query_type, ref_id)

    def build(self) -> cogvariants.Dataquery:
        return self._q


def _filters(*columns: str) -> str:
    """Panel filters from the dashboard variables (All or empty: no filter)."""
    return " AND ".join(f"$__conditionalAll({c} IN (${{{c}:singlequote}}), ${c})" for c in columns)


T1M = f"{DATABASE}.topic_counts_1m"
VIDEO_EVENTS = f"{DATABASE}.video_events"
SPIKES = f"{DATABASE}.topic_spikes"
NEW_AUTHORS = f"{DATABASE}.topic_new_authors_1m"
DEAD_LETTERS = f"{DATABASE}.dead_letters"

#: The reference band of the topics dashboard (not the detector's, see its panel
#: description): a time-decayed average of the per-minute count with a per-minute decay
#: of 1 - alpha = exp(-1/tau), alpha = 0.1, and a Poisson band.
EWMA_TAU_MINUTES = 9.4912
BAND_SIGMAS = 3


def _per_topic_sum(column: str) -> str:
    return f"""
SELECT $__timeInterval(window_start) AS time, topic, sum({column}) AS {column}
FROM {T1M}
WHERE $__timeFilter(window_start) AND {_filters("topic", "lang", "country")}
GROUP BY time, topic
ORDER BY time
"""


SQL_VIDEOS = _per_topic_sum("videos")
SQL_VIEWS = _per_topic_sum("views")

SQL_BAND = f"""
SELECT time, videos, expected,
       expected + {BAND_SIGMAS} * sqrt(greatest(expected, 0.5)) AS upper,
       greatest(expected - {BAND_SIGMAS} * sqrt(greatest(expected, 0.5)), 0) AS lower
FROM
(
    SELECT window_start AS time, videos,
           ifNotFinite(
               exponentialTimeDecayedAvg({EWMA_TAU_MINUTES})(videos, toUInt32(window_start) / 60)
                   OVER (ORDER BY window_start ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
               NULL) AS expected
    FROM
    (
        SELECT window_start, sum(videos) AS videos
        FROM {T1M}
        WHERE topic = '${{topic}}'
          AND window_start >= $__fromTime - INTERVAL 6 HOUR AND window_start <= $__toTime
          AND {_filters("lang", "country")}
        GROUP BY window_start
        ORDER BY window_start WITH FILL STEP 60
    )
)
WHERE time >= $__fromTime
ORDER BY time
"""

SQL_SHARE_LANG = f"""
SELECT if(lang = '', '(unknown)', lang) AS language, sum(videos) AS videos,
       round(100 * videos / sum(videos) OVER (), 1) AS share_percent
FROM {T1M}
WHERE $__timeFilter(window_start) AND {_filters("topic", "country")}
GROUP BY language
ORDER BY videos DESC
"""

SQL_SHARE_COUNTRY = f"""
SELECT if(country = '', '(unknown)', country) AS country_code, sum(videos) AS videos,
       round(100 * videos / sum(videos) OVER (), 1) AS share_percent
FROM {T1M}
WHERE $__timeFilter(window_start) AND {_filters("topic", "lang")}
GROUP BY country_code
ORDER BY videos DESC
LIMIT 20
"""

SQL_SHARE_TOPICS = f"""
SELECT $__timeInterval(window_start) AS time, topic,
       100 * sum(videos) / sum(sum(videos)) OVER (PARTITION BY time) AS share
FROM {T1M}
WHERE $__timeFilter(window_start) AND {_filters("lang", "country")}
GROUP BY time, topic
ORDER BY time
"""

SQL_SPIKES_TABLE = f"""
SELECT window_start AS time, topic, metric, lang, severity, observed,
       round(expected, 1) AS expected,
       round(score, 1) AS score, arrayStringConcat(top_videos, ', ') AS top_videos,
       arrayStringConcat(top_hashtags, ', ') AS top_hashtags,
       arrayStringConcat(arrayMap((k, v) -> concat(k, ' ', toString(v)),
                                  mapKeys(languages), mapValues(languages)), ', ') AS languages
FROM {SPIKES}
WHERE $__timeFilter(window_start) AND {_filters("topic")}
ORDER BY time DESC
LIMIT 1 BY topic, window_start, metric, lang
"""

SQL_SPIKE_ANNOTATIONS = f"""
SELECT toDateTime(window_start) AS time, toDateTime(window_start) + 60 AS timeEnd,
       concat(upper(severity), ' spike in ', topic, if(lang = '', '', concat(' (', lang, ')')),
              ': ', metric, ' ', toString(round(observed)), ' vs ',
              toString(round(expected, 1)), ' expected (score ', toString(round(score, 1)),
              '). Top videos: ', arrayStringConcat(top_videos, ', '),
              '. Hashtags: ', arrayStringConcat(top_hashtags, ', '),
              '. Languages: ', arrayStringConcat(mapKeys(languages), ', ')) AS text,
       topic AS tags
FROM {SPIKES}
WHERE $__timeFilter(window_start) AND {_filters("topic")}
LIMIT 1 BY topic, window_start, metric, lang
"""

SQL_TOP_VIDEOS = f"""
SELECT video_id, any(author_id) AS author, anyIf(caption, kind = 'publish') AS caption,
       arrayStringConcat(any(topics), ', ') AS topic_list,
       max(views) AS views, max(likes) AS likes, max(shares) AS shares
FROM {VIDEO_EVENTS}
WHERE video_id IN
(
    SELECT video_id FROM {VIDEO_EVENTS}
    WHERE kind = 'publish' AND $__timeFilter(event_time)
      AND hasAny(topics, [${{topic:singlequote}}]) AND {_filters("lang", "country")}
)
GROUP BY video_id
ORDER BY views DESC
LIMIT 20
"""

SQL_TOP_CREATORS = f"""
SELECT author_id AS creator, count() AS videos, max(author_followers) AS followers,
       sum(views) AS views
FROM
(
    SELECT video_id, any(author_id) AS author_id, max(author_followers) AS author_followers,
           max(views) AS views
    FROM {VIDEO_EVENTS}
    WHERE video_id IN
    (
        SELECT video_id FROM {VIDEO_EVENTS}
        WHERE kind = 'publish' AND $__timeFilter(event_time)
          AND hasAny(topics, [${{topic:singlequote}}]) AND {_filters("lang", "country")}
    )
    GROUP BY video_id
)
GROUP BY creator
ORDER BY views DESC
LIMIT 20
"""

SQL_NEW_AUTHORS = f"""
SELECT $__timeInterval(window_start) AS time, topic, sum(new_authors) AS new_authors
FROM {NEW_AUTHORS}
WHERE $__timeFilter(window_start) AND {_filters("topic")}
GROUP BY time, topic
ORDER BY time
"""

SQL_NEW_AUTHOR_SHARE = f"""
SELECT n.time AS time, n.topic AS topic, 100 * n.new_authors / a.authors AS new_author_share
FROM
(
    SELECT $__timeInterval(window_start) AS time, topic, sum(new_authors) AS new_authors
    FROM {NEW_AUTHORS}
    WHERE $__timeFilter(window_start) AND {_filters("topic")}
    GROUP BY time, topic
) AS n
INNER JOIN
(
    SELECT $__timeInterval(window_start) AS time, topic, uniqExactMerge(authors) AS authors
    FROM {T1M}
    WHERE $__timeFilter(window_start) AND {_filters("topic")}
    GROUP BY time, topic
) AS a ON n.time = a.time AND n.topic = a.topic
WHERE a.authors > 0
ORDER BY time
"""

SQL_DEAD_LETTERS = f"""
SELECT $__timeInterval(received_at) AS time, reason, count() AS messages
FROM {DEAD_LETTERS}
WHERE $__timeFilter(received_at)
GROUP BY time, reason
ORDER BY time
"""

SQL_VAR_TOPIC = f"SELECT DISTINCT topic FROM {T1M} WHERE $__timeFilter(window_start) ORDER BY topic"
SQL_VAR_LANG = f"SELECT DISTINCT lang FROM {T1M} WHERE $__timeFilter(window_start) ORDER BY lang"
SQL_VAR_COUNTRY = (
    f"SELECT DISTINCT country FROM {T1M} WHERE $__timeFilter(window_start) ORDER BY country"
)


def _ch_series(
    layout: Layout,
    title: str,
    description: str,
    unit: str,
    sql: str,
    w: int = 12,
    h: int = 8,
) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(_ds(CLICKHOUSE))
        .grid_pos(layout.place(w, h))
        .fill_opacity(10)
        .min(0)
        .with_target(ClickHouseQueryBuilder(sql))
    )


def _ch_table(
    layout: Layout, title: str, description: str, unit: str, sql: str, w: int = 12
) -> table.Panel:
    return (
        table.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(_ds(CLICKHOUSE))
        .grid_pos(layout.place(w, 9))
        .with_target(ClickHouseQueryBuilder(sql, "table"))
    )


def _query_variable(name: str, label: str, sql: str) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .description(f"Filter by {label.lower()} (All: no filter).")
        .datasource(_ds(CLICKHOUSE))
        .query(sql)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def topics_dashboard() -> dict[str, Any]:
    L = Layout()
    band = (
        timeseries.Panel()
        .title("New videos of $topic with a reference band")
        .description(
            "New videos per minute of the topic (one panel per selected topic) and, to "
            "browse history from ClickHouse alone, a reference: an exponentially weighted "
            f"mean of the previous minutes, shaded {BAND_SIGMAS} Poisson sigmas either side. "
            "It is not the detector's band: the detector follows the daily rhythm, tests "
            "with a negative binomial over one and two minutes and needs author support "
            "(docs/spikes.md). Its own band is on the pipeline dashboard "
            "(workpulse_window_band_upper) and in each alert's lower/upper; its alerts are "
            "the annotations."
        )
        .unit("short")
        .datasource(_ds(CLICKHOUSE))
        .grid_pos(L.place(24, 9))
        .repeat("topic")
        .max_per_row(2)
        .min(0)
        .with_target(ClickHouseQueryBuilder(SQL_BAND))
        .override_by_name(
            "upper",
            [
                DynamicConfigValue("custom.fillBelowTo", "lower"),
                DynamicConfigValue("custom.lineWidth", 0),
                DynamicConfigValue("custom.fillOpacity", 20),
                DynamicConfigValue("color", {"mode": "fixed", "fixedColor": "green"}),
            ],
        )
        .override_by_name(
            "lower",
            [
                DynamicConfigValue("custom.lineWidth", 0),
                DynamicConfigValue("color", {"mode": "fixed", "fixedColor": "green"}),
            ],
        )
        .override_by_name(
            "expected",
            [
                DynamicConfigValue("custom.lineStyle", {"fill": "dash", "dash": [10, 10]}),
                DynamicConfigValue("color", {"mode": "fixed", "fixedColor": "green"}),
            ],
        )
    )
    panels: list[cogbuilder.Builder[Any]] = [
        _ch_series(
            L,
            "New videos per topic",
            "New videos published per topic and interval (topic_counts_1m, filtered by the "
            "language and country variables).",
            "short",
            SQL_VIDEOS,
        ),
        _ch_series(
            L,
            "Views per topic",
            "Views gained per topic and interval (sum of the view deltas, topic_counts_1m).",
            "short",
            SQL_VIEWS,
        ),
        band,
        _ch_series(
            L,
            "Share of voice per topic",
            "Each topic's share of the new work videos per interval, in percent.",
            "percent",
            SQL_SHARE_TOPICS,
        ),
        _ch_series(
            L,
            "New authors per topic (copycat signal)",
            "Authors publishing in a topic for the first time, per interval "
            "(topic_new_authors_1m): a wave that spreads brings many new authors.",
            "short",
            SQL_NEW_AUTHORS,
        ),
        _ch_table(
            L,
            "Share of voice by language",
            "New videos of the selected topics per language, and the share of each.",
            "short",
            SQL_SHARE_LANG,
            w=8,
        ),
        _ch_table(
            L,
            "Share of voice by country",
            "New videos of the selected topics per country (top 20), and the share of each.",
            "short",
            SQL_SHARE_COUNTRY,
            w=8,
        ),
        _ch_series(
            L,
            "Share of new authors",
            "New authors / distinct authors per topic and interval, in percent: high in a "
            "copycat wave.",
            "percent",
            SQL_NEW_AUTHOR_SHARE,
            w=8,
        ),
        _ch_table(
            L,
            "Spikes",
            "Spikes found by the detector with their context: observed and expected new "
            "videos, score (-log10 p-value), top videos, hashtags and languages.",
            "short",
            SQL_SPIKES_TABLE,
            w=24,
        ),
        _ch_table(
            L,
            "Top videos of $topic",
            "Videos published in the time range in the selected topics, by views.",
            "short",
            SQL_TOP_VIDEOS,
        ),
        _ch_table(
            L,
            "Top creators of $topic",
            "Authors of the selected topics' videos in the time range, by views.",
            "short",
            SQL_TOP_CREATORS,
        ),
        _ch_series(
            L,
            "Dead letters by reason",
            "Rejected messages per interval by reason (dead_letters).",
            "short",
            SQL_DEAD_LETTERS,
            w=24,
        ),
    ]
    builder = (
        dashboard.Dashboard(TOPICS_TITLE)
        .uid(TOPICS_UID)
        .description(
            "What the stream says: work topics over time with the expected band, share of "
            "voice, spikes and their context, top videos and creators, new authors."
        )
        .tags(TAGS)
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("1m")
        .time("now-24h", "now")
        .timezone("utc")
        .with_variable(_datasource_variable(CLICKHOUSE, "ClickHouse"))
        .with_variable(_query_variable("topic", "Topic", SQL_VAR_TOPIC))
        .with_variable(_query_variable("lang", "Language", SQL_VAR_LANG))
        .with_variable(_query_variable("country", "Country", SQL_VAR_COUNTRY))
    )
    for panel in panels:
        builder = builder.with_panel(panel)
    out = _to_dict(builder)
    out["editable"] = False
    out["annotations"] = {
        "list": [
            {
                "builtIn": 1,
                "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": True,
                "hide": True,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard",
            },
            {
                "datasource": {"type": CLICKHOUSE, "uid": DS_VAR},
                "enable": True,
                "iconColor": "red",
                "name": "Spikes",
                "target": ClickHouseQuery(SQL_SPIKE_ANNOTATIONS.strip(), "table", "Anno").to_json(),
            },
        ]
    }
    return out


def _to_dict(builder: dashboard.Dashboard) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return result


def all_dashboards() -> dict[str, dict[str, Any]]:
    """File name under dashboards/ → dashboard JSON model."""
    return {
        "workpulse-pipeline.json": pipeline_dashboard(),
        "workpulse-topics.json": topics_dashboard(),
    }
