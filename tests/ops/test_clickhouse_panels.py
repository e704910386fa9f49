"""Every ClickHouse query of the work-topics dashboard (panels, variables, the spike
annotations), with the data source's macros and the dashboard variables expanded as
the plugin does (tests/support/grafana_macros.py), runs on chDB against the demo's data
and returns rows: with every variable at All, and with one topic, language and country
chosen."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.ops.conftest import DemoRun, run_sql_on_chdb
from tests.support.grafana_macros import ALL, TimeRange, expand

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = json.loads((ROOT / "dashboards" / "workpulse-topics.json").read_text())
VARIABLES = [v for v in DASHBOARD["templating"]["list"] if v["type"] == "query"]

pytestmark = pytest.mark.integration


def queries() -> list[tuple[str, str, bool]]:
    """(name, SQL, repeated per topic) for every ClickHouse query of the dashboard."""
    out = [(f"variable {v['name']}", v["query"], False) for v in VARIABLES]
    for p in DASHBOARD["panels"]:
        for t in p["targets"]:
            out.append((f"panel {p['title']} {t['refId']}", t["rawSql"], "repeat" in p))
    for a in DASHBOARD["annotations"]["list"]:
        if "target" in a:
            out.append((f"annotation {a['name']}", a["target"]["rawSql"], False))
    return out


@pytest.fixture(scope="module")
def expanded(demo_run: DemoRun) -> dict[str, Any]:
    # Event time of the demo starts at 2026-01-01; dead letters are stamped with the
    # wall clock when received: the range covers both.
    tr = TimeRange(datetime(2026, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1), 60)
    var_sql = [expand(v["query"], {}, tr) for v in VARIABLES]
    options = {
        v["name"]: [row[0] for row in res["rows"]]
        for v, res in zip(
            VARIABLES, run_sql_on_chdb(demo_run.data_dir / "chdb", var_sql), strict=True
        )
    }
    chosen = {"topic": "resignation", "lang": "en", "country": "US"}
    assert all(chosen[k] in options[k] for k in chosen), options
    cases: list[tuple[str, str]] = []
    for name, sql, repeated in queries():
        all_vars = {"topic": [ALL], "lang": [ALL], "country": [ALL]}
        if repeated:  # one panel per topic, each with a single value
            for topic in options["topic"]:
                cases.append(
                    (
                        f"{name} [topic={topic}]",
                        expand(sql, {**all_vars, "topic": topic}, tr, options),
                    )
                )
        else:
            cases.append((f"{name} [All]", expand(sql, all_vars, tr, options)))
        one = {k: [v] for k, v in chosen.items()}
        cases.append((f"{name} [{chosen}]", expand(sql, one, tr, options)))
    results = run_sql_on_chdb(demo_run.data_dir / "chdb", [sql for _, sql in cases])
    return {"cases": cases, "results": results, "options": options}


def test_there_are_panels_of_every_kind() -> None:
    names = [n for n, _, _ in queries()]
    assert len(names) >= 15
    assert any(n.startswith("annotation") for n in names)
    assert any(repeated for _, _, repeated in queries())


def test_every_query_runs_on_chdb_and_returns_rows(expanded: dict[str, Any]) -> None:
    failures = []
    for (name, sql), res in zip(expanded["cases"], expanded["results"], strict=True):
        if "error" in res:
            failures.append(f"{name}: {res['error']}\n{sql}")
        elif not res["rows"]:
            failures.append(f"{name}: no rows\n{sql}")
    assert not failures, "\n\n".join(failures)


def test_the_band_panel_returns_the_expected_band(expanded: dict[str, Any]) -> None:
    for (name, _), res in zip(expanded["cases"], expanded["results"], strict=True):
        if "reference band" in name and "topic=resignation" in name:
            assert res["columns"] == ["time", "videos", "expected", "upper", "lower"]
            rows = [[float(x) for x in r[1:]] for r in res["rows"] if r[2] != "None"]
            assert len(rows) == len(res["rows"]) - 1  # the first minute has no history
            assert all(lo <= e <= up for _, e, up, lo in rows)
            assert any(v > up for v, _, up, _ in rows)  # the wave leaves the band
            return
    raise AssertionError("no band panel for resignation")


def test_a_filter_changes_the_result(expanded: dict[str, Any]) -> None:
    by_name = {
        name: res for (name, _), res in zip(expanded["cases"], expanded["results"], strict=True)
    }
    all_rows = by_name["panel Share of voice by language A [All]"]["rows"]
    one = next(
        v for k, v in by_name.items() if k.startswith("panel Share of voice by language A [{")
    )
    assert len(one["rows"]) < len(all_rows)
