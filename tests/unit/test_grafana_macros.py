"""The test helper that expands grafana-clickhouse-datasource's macros and Grafana's
variables, as OPS.md describes them (the ClickHouse panel tests rely on it)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.support.grafana_macros import ALL, TimeRange, expand

TR = TimeRange(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, 12, tzinfo=UTC), 30)
FROM, TO = 1767225600, 1767355200


def test_time_macros() -> None:
    sql = "$__timeFilter(t) | $__timeFilter_ms(t) | $__fromTime $__toTime | $__interval_s"
    assert expand(sql, {}, TR) == (
        f"t >= toDateTime({FROM}) AND t <= toDateTime({TO}) | "
        f"t >= fromUnixTimestamp64Milli({FROM * 1000}) AND "
        f"t <= fromUnixTimestamp64Milli({TO * 1000}) | "
        f"toDateTime({FROM}) toDateTime({TO}) | 30"
    )
    assert expand("$__timeInterval(window_start)", {}, TR) == (
        "toStartOfInterval(toDateTime(window_start), INTERVAL 30 second)"
    )
    assert expand("$__dateFilter(d)", {}, TR) == (
        "d >= toDate('2026-01-01') AND d <= toDate('2026-01-02')"
    )


def test_conditional_all_and_variables() -> None:
    sql = "WHERE $__conditionalAll(topic IN (${topic:singlequote}), $topic) AND x = '$lang'"
    assert expand(sql, {"topic": [ALL], "lang": "fr"}, TR) == "WHERE 1=1 AND x = 'fr'"
    assert expand(sql, {"topic": ["salary", "layoffs"], "lang": "fr"}, TR) == (
        "WHERE topic IN ('salary','layoffs') AND x = 'fr'"
    )
    assert expand("${topic:singlequote}", {"topic": [ALL]}, TR, {"topic": ["a", "b"]}) == "'a','b'"


def test_an_unknown_macro_is_an_error() -> None:
    with pytest.raises(ValueError):
        expand("$__unixEpochFilter(t)", {}, TR)
