"""One live run shared by the ops tests (session-scoped, it is the expensive part):

a real Prometheus (Debian's package) on a free loopback port, with the project's rules
and a 1 s scrape/evaluation interval, scrapes a running `workpulse demo` (the endless
synthetic stream, whose viral wave comes after ~11,000 events) and sends its alerts to a
real Alertmanager with the project's routing, whose receivers post to a webhook in this
process. The fixture waits for the wave's spike alert to fire (read from Prometheus's
API), records what the other tests check (alerts, a live scrape of /metrics, the
notifications), stops the demo with SIGTERM as a person's Ctrl-C would, and keeps its
data directory (chDB with the demo's data, the HTML report) for the ClickHouse tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from mixin.rules import ALERTS

from tests.support import services
from tests.support.services import free_port, http_json, prom_query, wait_until

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "workpulse.rules.yml"
AM_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
WORKPULSE = Path(sys.executable).with_name("workpulse")
SPIKE_ALERT = "WorkpulseTopicSpike"
WAVE_TOPIC = "resignation"  # the synthetic workload's viral wave is #QuitMyJob
PIPELINE_ALERTS = [a for a in ALERTS if a.alert_type == "pipeline"]
#: Grafana's $__rate_interval for a 1 s scrape interval: max(4 × scrape, step + scrape)
RATE = "10s"


def prometheus_panel_queries() -> list[tuple[str, str, str]]:
    """(title, refId, PromQL) of every panel target of the pipeline dashboard."""
    d = json.loads((ROOT / "dashboards" / "workpulse-pipeline.json").read_text())
    return [(p["title"], t["refId"], t["expr"]) for p in d["panels"] for t in p["targets"]]


class Webhook:
    """Alertmanager's receivers post here (never to the example URLs of the config)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def loopback_alertmanager_config(path: Path, webhook: Webhook) -> Path:
    """The project's Alertmanager config with each receiver's URL on the webhook."""
    config = yaml.safe_load(AM_CONFIG.read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook.url}/{receiver['name']}"
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class DemoRun:
    data_dir: Path
    summary: dict[str, Any]
    metrics_text: str
    check_metrics: subprocess.CompletedProcess[str]
    spike_alerts: list[dict[str, Any]]
    pipeline_alerts_seen: list[dict[str, Any]]
    pipeline_expressions: dict[str, list[dict[str, Any]]]
    notifications: list[tuple[str, dict[str, Any]]]
    seconds_to_spike: float
    seconds_total: float
    prometheus_log: str = ""
    pipeline_fired_ever: list[dict[str, Any]] = field(default_factory=list)
    panel_results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def _stop_demo(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    work = tmp_path_factory.mktemp("ops-e2e")
    data_dir = work / "demo"
    metrics_port = free_port()
    webhook = Webhook()
    am = services.alertmanager(loopback_alertmanager_config(work / "am.yml", webhook), work)
    prom_config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am.port}"]}]}]
        },
        "scrape_configs": [
            {
                "job_name": "workpulse",
                "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
            }
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
    prom = services.prometheus(work / "prometheus.yml", work)
    demo: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        am.start()
        prom.start()
        out, err = (work / "demo.out").open("wb"), (work / "demo.err").open("wb")
        demo = subprocess.Popen(
            [
                str(WORKPULSE),
                "demo",
                "--json",
                "--data-dir",
                str(data_dir),
                "--metrics-port",
                str(metrics_port),
            ],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )

        def spike_firing() -> list[dict[str, Any]]:
            assert demo is not None
            if demo.poll() is not None:
                raise AssertionError(f"demo exited: {(work / 'demo.err').read_text()[-2000:]}")
            alerts = http_json(f"{prom.url}/api/v1/alerts")["data"]["alerts"]
            firing = [
                a
                for a in alerts
                if a["labels"]["alertname"] == SPIKE_ALERT and a["state"] == "firing"
            ]
            return firing if any(a["labels"]["topic"] == WAVE_TOPIC for a in firing) else []

        spikes = wait_until(spike_firing, 300, "the wave's spike alert to fire", step_s=0.5)
        seconds_to_spike = time.monotonic() - started
        at = time.time()
        seen = prom_query(prom.url, 'ALERTS{alert_type="pipeline"}', at)
        expressions = {a.name: prom_query(prom.url, a.expr, at) for a in PIPELINE_ALERTS}

        def panel_results() -> dict[str, list[dict[str, Any]]]:
            now = time.time()
            return {
                f"{title} {ref}": prom_query(prom.url, expr.replace("$__rate_interval", RATE), now)
                for title, ref, expr in prometheus_panel_queries()
            }

        # Every panel once its recording rules have two samples of what they rate: the
        # demo starts fast enough that the spike may fire before some have (an insert
        # latency's 5m rate once two scrapes saw inserts). A panel still empty after
        # that is what the test reports.
        panels: dict[str, list[dict[str, Any]]] = {}

        def every_panel_has_series() -> bool:
            panels.update(panel_results())
            return all(panels.values())

        with contextlib.suppress(TimeoutError):
            wait_until(every_panel_has_series, 30, "every panel's series", step_s=1.0)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
            metrics_text = r.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz", timeout=10) as r:
            health = (r.status, r.read().decode())
        check = subprocess.run(
            [services.tool("promtool"), "check", "metrics"],
            input=metrics_text,
            capture_output=True,
            text=True,
            timeout=60,
        )
        # The spike reaches the "trends" receiver through Alertmanager (group_wait 10 s).
        wait_until(
            lambda: any(
                p == "/trends" and b["groupLabels"].get("topic") == WAVE_TOPIC
                for p, b in webhook.posts
            ),
            60,
            "the trends notification",
        )
        # Any pipeline alert that fired at any evaluation of the whole run so far.
        fired_ever = prom_query(
            prom.url, 'max_over_time(ALERTS{alert_type="pipeline", alertstate="firing"}[1h])'
        )
        _stop_demo(demo)
        summary = json.loads((work / "demo.out").read_text())
        yield DemoRun(
            data_dir=data_dir,
            summary=summary,
            metrics_text=metrics_text,
            check_metrics=check,
            spike_alerts=spikes,
            pipeline_alerts_seen=seen,
            pipeline_expressions=expressions,
            notifications=list(webhook.posts),
            seconds_to_spike=seconds_to_spike,
            seconds_total=time.monotonic() - started,
            prometheus_log=(work / "prometheus.log").read_text(),
            pipeline_fired_ever=fired_ever,
            panel_results=panels,
            extra={"healthz": health},
        )
    finally:
        if demo is not None:
            _stop_demo(demo)
        prom.stop()
        am.stop()
        webhook.stop()


@pytest.fixture(scope="session")
def demo_chdb_copy(demo_run: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo's chDB directory (chDB allows one process per directory)."""
    copy = tmp_path_factory.mktemp("demo-chdb-copy") / "chdb"
    shutil.copytree(demo_run.data_dir / "chdb", copy, symlinks=True)  # relative links
    return copy


def run_sql_on_chdb(chdb_dir: Path, queries: list[str]) -> list[dict[str, Any]]:
    """Each query on embedded chDB, in a child process (see tests/support/run_sql.py)."""
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.run_sql", str(chdb_dir)],
        input=json.dumps(queries),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: list[dict[str, Any]] = json.loads(out.stdout)
    return result
