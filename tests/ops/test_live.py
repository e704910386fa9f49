"""Against the live run of tests/ops/conftest.py: a real Prometheus scraping a running
`workpulse demo` with the project's rules, a real Alertmanager routing its alerts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.conftest import PIPELINE_ALERTS, SPIKE_ALERT, DemoRun

ROOT = Path(__file__).resolve().parents[2]
METRIC = re.compile(r"\b((?:workpulse|process|python)_[a-z0-9_]+)\b")

pytestmark = pytest.mark.integration


def used_metric_names() -> set[str]:
    """Every metric name that a dashboard panel or a rule (expressions and annotation
    templates) uses, read from the generated files."""
    texts = [(ROOT / "deploy" / "prometheus" / "workpulse.rules.yml").read_text()]
    for path in (ROOT / "dashboards").glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            texts.extend(t.get("expr", "") for t in panel.get("targets", []))
    return {m for text in texts for m in METRIC.findall(text)}


def exposed_sample_names(text: str) -> set[str]:
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_the_dashboards_and_rules_use_metrics() -> None:
    names = used_metric_names()
    assert {"workpulse_events_total", "workpulse_consumer_lag_seconds"} <= names
    assert "workpulse_sink_seconds_bucket" in names


def test_every_metric_used_is_exposed_by_the_running_worker(demo_run: DemoRun) -> None:
    exposed = exposed_sample_names(demo_run.metrics_text)
    missing = sorted(used_metric_names() - exposed)
    assert not missing, f"used by dashboards/rules, not on /metrics: {missing}"


def test_promtool_check_metrics_is_clean_on_the_live_scrape(demo_run: DemoRun) -> None:
    assert demo_run.check_metrics.returncode == 0, demo_run.check_metrics.stdout
    assert demo_run.check_metrics.stdout.strip() == "", demo_run.check_metrics.stdout


def test_every_topic_and_reason_exists_from_the_start(demo_run: DemoRun) -> None:
    from workpulse.model.event import REASONS
    from workpulse.model.topics import TOPICS

    families = {f.name: f for f in text_string_to_metric_families(demo_run.metrics_text)}
    spikes = {s.labels["topic"] for s in families["workpulse_spikes"].samples}
    reasons = {s.labels["reason"] for s in families["workpulse_invalid_events"].samples}
    assert spikes >= set(TOPICS)
    assert reasons >= set(REASONS)


def test_the_waves_spike_alert_fires(demo_run: DemoRun, figures: list[str]) -> None:
    spike_topics = {s["topic"] for s in demo_run.summary["spikes"]}
    fired = {
        (a["labels"]["topic"], a["labels"]["metric"], a["labels"]["scope"]): a
        for a in demo_run.spike_alerts
    }
    assert ("resignation", "videos", "topic") in fired  # the synthetic wave is #QuitMyJob
    assert {topic for topic, _, _ in fired} <= spike_topics
    alert = fired["resignation", "videos", "topic"]
    # The detector's own severity: the wave's ratio to its baseline.
    assert alert["labels"]["severity"] in {
        s["severity"]
        for s in demo_run.summary["spikes"]
        if s["topic"] == "resignation" and s["metric"] == "videos" and not s.get("lang")
    }
    assert alert["labels"]["alert_type"] == "spike"
    assert float(alert["value"]) > 6  # the score, -log10 p-value
    description = alert["annotations"]["description"]
    assert re.fullmatch(
        r"Topic resignation: \d+ new videos in a minute against [\d.]+ expected "
        r"\(score [\d.]+, -log10 p-value\)\.",
        description,
    ), description
    figures.append(
        f"ops e2e: spike alert firing {demo_run.seconds_to_spike:.0f} s after start; "
        f"whole live run {demo_run.seconds_total:.0f} s"
    )


def test_the_spike_reaches_the_trends_receiver_only(demo_run: DemoRun) -> None:
    trends = [body for path, body in demo_run.notifications if path == "/trends"]
    assert trends
    names = {a["labels"]["alertname"] for body in trends for a in body["alerts"]}
    assert names == {SPIKE_ALERT}
    groups = [body["groupLabels"] for body in trends]
    assert {"alertname": SPIKE_ALERT, "topic": "resignation"} in groups  # grouped by topic
    assert not [p for p, _ in demo_run.notifications if p == "/on-call"]


def test_no_pipeline_alert_on_the_healthy_run(demo_run: DemoRun) -> None:
    firing = [a for a in demo_run.pipeline_alerts_seen if a["metric"]["alertstate"] == "firing"]
    assert not firing
    assert not demo_run.pipeline_fired_ever  # at no evaluation of the whole run
    # Beyond `for:`: their conditions are false while the demo runs, except two that
    # may be true for a moment: the dead-letter ratio, whose threshold (1 %) is exactly
    # what the demo injects on purpose (1 % bad messages); and the stall, for a
    # partition seen a few seconds ago whose records wait behind other partitions' in
    # the fetch order (a batch takes up to 10,000 records partition by partition): its
    # position has not moved in its short history. Its `for: 5m` is there for that, and
    # `pipeline_fired_ever` above checks that it never fired.
    true_now = {
        name: result
        for name, result in demo_run.pipeline_expressions.items()
        if result and name not in ("WorkpulseDeadLetterRatioHigh", "WorkpulsePipelineStalled")
    }
    assert not true_now
    assert {a.name for a in PIPELINE_ALERTS} == set(demo_run.pipeline_expressions)


def test_the_demo_ended_cleanly_with_its_report(demo_run: DemoRun) -> None:
    s = demo_run.summary
    assert s["accounted"] and s["counts_match_recount"]
    assert Path(s["report"]) == demo_run.data_dir / "report.html"
    assert Path(s["report"]).stat().st_size > 10_000


def test_every_pipeline_panel_query_returns_series_from_prometheus(demo_run: DemoRun) -> None:
    """The pipeline dashboard's PromQL, run by the real Prometheus against the running
    demo ($__rate_interval as Grafana sets it for a 1 s scrape interval)."""
    from tests.ops.conftest import prometheus_panel_queries

    assert len(demo_run.panel_results) == len(prometheus_panel_queries()) >= 18
    empty = [name for name, result in demo_run.panel_results.items() if not result]
    assert not empty, f"no series: {empty}"


def test_the_liveness_endpoint_says_ok_while_the_worker_runs(demo_run: DemoRun) -> None:
    assert demo_run.extra["healthz"] == (200, "ok\n")
