"""The rules against the real promtool, and Alertmanager's config against amtool and a
running Alertmanager (Debian's packages)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.services import Service, alertmanager, http_json, tool, wait_until

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
AM_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"

pytestmark = pytest.mark.integration


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_promtool_check_rules() -> None:
    out = run(tool("promtool"), "check", "rules", str(PROM_DIR / "workpulse.rules.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_test_rules() -> None:
    out = run(tool("promtool"), "test", "rules", str(PROM_DIR / "workpulse.rules.test.yml"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_test_rules_fails_on_a_wrong_expectation(tmp_path: Path) -> None:
    """The rule tests can fail: the same file with one boundary moved by a minute."""
    text = (PROM_DIR / "workpulse.rules.test.yml").read_text()
    broken = text.replace(
        "      - eval_time: 16m\n        alertname: WorkpulseNoEvents",
        "      - eval_time: 15m\n        alertname: WorkpulseNoEvents",
        1,
    )
    assert broken != text
    (tmp_path / "workpulse.rules.yml").write_text((PROM_DIR / "workpulse.rules.yml").read_text())
    (tmp_path / "t.yml").write_text(broken)
    out = run(tool("promtool"), "test", "rules", str(tmp_path / "t.yml"))
    assert out.returncode != 0 and "WorkpulseNoEvents" in out.stdout + out.stderr


def test_amtool_check_config() -> None:
    out = run(tool("amtool"), "check-config", str(AM_CONFIG))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=WorkpulseTopicSpike", "alert_type=spike", "topic=salary"], "trends"),
        (["alertname=WorkpulseNoEvents", "alert_type=pipeline", "severity=critical"], "on-call"),
        (["alertname=Unrelated"], "on-call"),
    ],
)
def test_amtool_routes(labels: list[str], receiver: str) -> None:
    out = run(tool("amtool"), "config", "routes", "test", f"--config.file={AM_CONFIG}", *labels)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == receiver


@pytest.fixture(scope="module")
def running_alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = alertmanager(AM_CONFIG, tmp_path_factory.mktemp("alertmanager"))
    service.start()
    try:
        yield service
    finally:
        service.stop()


def test_alertmanager_inhibits_spikes_while_the_pipeline_is_critical(
    running_alertmanager: Service,
) -> None:
    now = datetime.now(UTC)
    window = {
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=10)).isoformat(),
    }
    alerts = [
        {
            "labels": {
                "alertname": "WorkpulseTopicSpike",
                "alert_type": "spike",
                "severity": "warning",
                "job": "workpulse",
                "topic": "salary",
            },
            **window,
        },
        {
            "labels": {
                "alertname": "WorkpulseTopicSpike",
                "alert_type": "spike",
                "severity": "warning",
                "job": "other",
                "topic": "salary",
            },
            **window,
        },
        {
            "labels": {
                "alertname": "WorkpulseTopicSpike",
                "alert_type": "spike",
                "severity": "warning",
                "job": "third",
                "topic": "salary",
            },
            **window,
        },
        {
            # One worker of several down: the others count correctly, spikes stay.
            "labels": {
                "alertname": "WorkpulseWorkerDown",
                "alert_type": "pipeline",
                "severity": "critical",
                "job": "third",
                "instance": "w1:9108",
            },
            **window,
        },
        {
            "labels": {
                "alertname": "WorkpulsePipelineStalled",
                "alert_type": "pipeline",
                "severity": "critical",
                "job": "workpulse",
                "partition": "0",
            },
            **window,
        },
    ]
    url = running_alertmanager.url + "/api/v2/alerts"
    http_json(url, json.dumps(alerts).encode())

    def states() -> dict[tuple[str, str], list[str]] | None:
        got = http_json(url)
        if len(got) < 5:
            return None
        return {
            (a["labels"]["alertname"], a["labels"]["job"]): a["status"]["inhibitedBy"] for a in got
        }

    result = wait_until(
        lambda: (s := states()) and s[("WorkpulseTopicSpike", "workpulse")] and s,
        20,
        "the inhibition",
    )
    assert result[("WorkpulseTopicSpike", "other")] == []  # another job: not inhibited
    assert result[("WorkpulseTopicSpike", "third")] == []  # a worker down: not inhibited
    assert result[("WorkpulsePipelineStalled", "workpulse")] == []
    receivers = {
        a["labels"]["job"] + "/" + a["labels"]["alertname"]: [r["name"] for r in a["receivers"]]
        for a in http_json(url)
    }
    assert receivers["other/WorkpulseTopicSpike"] == ["trends"]
    assert receivers["workpulse/WorkpulsePipelineStalled"] == ["on-call"]
