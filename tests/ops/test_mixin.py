"""The mixin's generated files are up to date, and lint-clean under OPS.md's rules
(Grafana's dashboard linter, the monitoring-mixins' alert conventions)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from mixin import generate
from mixin.config import PIPELINE_UID, TOPICS_UID
from mixin.rules import ALERTS

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
RULES = ROOT / "deploy" / "prometheus" / "workpulse.rules.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in dashboard["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return [p for p in out if p["type"] != "row"]


def test_committed_files_are_what_the_code_generates() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, text in generate.outputs().items()
        if not path.exists() or path.read_text() != text
    ]
    assert not stale, f"run `make mixin`: {stale}"


def test_the_check_mode_notices_an_edited_file(tmp_path: Path, monkeypatch: Any) -> None:
    files = generate.outputs()
    path = next(iter(files))
    copy = tmp_path / path.name
    copy.write_text(files[path] + " ")
    monkeypatch.setattr(generate, "outputs", lambda: {copy: files[path]})
    assert generate.main(["--check"]) == 1


def test_two_dashboards_with_uids_and_titles() -> None:
    uids = {load(p)["uid"] for p in DASHBOARDS}
    assert uids == {PIPELINE_UID, TOPICS_UID}
    for path in DASHBOARDS:
        d = load(path)
        assert d["title"].startswith("workpulse — ")
        assert d["editable"] is False  # provisioned read-only


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_lint(path: Path) -> None:
    d = load(path)
    variables = {v["name"]: v for v in d["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource"
    for v in variables.values():
        if v["type"] == "query":
            assert v["refresh"] == 2, v["name"]  # on time range change
            assert v["datasource"]["uid"] == "${datasource}"
    for p in panels(d):
        name = p.get("title")
        assert name, p
        assert p.get("description"), name
        assert p["fieldConfig"]["defaults"].get("unit"), name
        assert p["datasource"] == {"type": ds["query"], "uid": "${datasource}"}, name
        assert p["targets"], name
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", name
    for a in d.get("annotations", {}).get("list", []):
        if not a.get("builtIn"):
            assert a["datasource"]["uid"] == "${datasource}"


COUNTER = re.compile(r"\b([a-z_:]+_total)\b")
RANGE = re.compile(r"\[([^\]]+)\]")


def test_prometheus_panel_queries_use_counters_only_in_rates() -> None:
    d = load(ROOT / "dashboards" / "workpulse-pipeline.json")
    for p in panels(d):
        for t in p["targets"]:
            expr = t["expr"]
            for m in COUNTER.finditer(expr):
                before = expr[: m.start()]
                assert re.search(r"\b(rate|irate|increase)\($", before), (p["title"], expr)
            for window in RANGE.findall(expr):
                assert window == "$__rate_interval", (p["title"], expr)


def test_the_reference_band_shades_between_upper_and_lower() -> None:
    d = load(ROOT / "dashboards" / "workpulse-topics.json")
    band = next(p for p in panels(d) if "reference band" in p["title"])
    upper = next(o for o in band["fieldConfig"]["overrides"] if o["matcher"]["options"] == "upper")
    props = {x["id"]: x["value"] for x in upper["properties"]}
    assert props["custom.fillBelowTo"] == "lower"
    sql = band["targets"][0]["rawSql"]
    assert " AS upper" in sql and " AS lower" in sql


def test_alerts_follow_the_conventions() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} == {a.name for a in ALERTS}
    anchors = set(re.findall(r"^## (\w+)", RUNBOOK.read_text(), re.M))
    for a in alerts:
        name = a["alert"]
        assert re.fullmatch(r"Workpulse(?:[A-Z][a-z0-9]*|[A-Z]+(?=[A-Z]|$))+", name), name
        assert len(name) <= 40
        severity = a["labels"]["severity"]
        if a["labels"]["alert_type"] == "spike":  # the detector's own, from the series
            assert severity == "{{ $labels.severity }}", name
            assert "severity" in a["expr"], name
        else:
            assert severity in {"critical", "warning", "info"}, name
        assert a["labels"]["alert_type"] in {"spike", "pipeline"}
        ann = a["annotations"]
        summary = ann["summary"]
        assert summary[0].isupper() and summary.endswith(".") and "{{" not in summary, name
        assert "{{" in ann["description"], name
        assert ann["runbook_url"].endswith("#" + name.lower())
        assert name in anchors, f"docs/runbook.md has no section '## {name}'"
    spike = next(a for a in alerts if a["labels"]["alert_type"] == "spike")
    assert "topic" in spike["expr"] and "dashboard_url" in spike["annotations"]


def test_every_alert_has_a_rule_test_on_both_sides_of_its_boundary() -> None:
    tests = yaml.safe_load((RULES.parent / "workpulse.rules.test.yml").read_text())["tests"]
    seen: dict[str, set[bool]] = {}
    for case in tests:
        for check in case.get("alert_rule_test", []):
            seen.setdefault(check["alertname"], set()).add(bool(check["exp_alerts"]))
    for alert in ALERTS:
        assert seen.get(alert.name) == {True, False}, alert.name


def test_recording_rules_used_by_dashboards_exist() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    d = load(ROOT / "dashboards" / "workpulse-pipeline.json")
    used = {
        name
        for p in panels(d)
        for t in p["targets"]
        for name in re.findall(r"\bworkpulse:[a-z0-9_:]+", t["expr"])
    }
    assert used and used <= recorded, used - recorded


def test_the_detectors_band_is_on_the_pipeline_dashboard() -> None:
    """One panel per signal with the tested value, the expected value and the band's
    upper edge, each selected on its signal."""
    d = load(ROOT / "dashboards" / "workpulse-pipeline.json")
    for metric in ("videos", "views", "new_authors"):
        wanted = f'(metric="{metric}")'
        panel = next(p for p in panels(d) if wanted in p.get("description", ""))
        exprs = [t["expr"] for t in panel["targets"]]
        for gauge in ("workpulse_window_observed", "workpulse_window_expected",
                      "workpulse_window_band_upper"):  # fmt: skip
            assert any(gauge + "{" in e and f'metric="{metric}"' in e for e in exprs), exprs
