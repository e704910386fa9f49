"""The worker's /healthz and /metrics, as WSGI (pure: no server)."""

from __future__ import annotations

from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from prometheus_client import CollectorRegistry

from workpulse.metrics import Metrics
from workpulse.worker.health import health_app


def get(app: Any, path: str) -> tuple[str, bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    seen: list[str] = []
    body = b"".join(app(environ, lambda status, headers: seen.append(status)))
    return seen[0], body


@pytest.mark.parametrize(
    ("beat_at", "now", "status", "body"),
    [
        (None, 1000.0, "200 OK", b"ok\n"),  # starting: the start has a probe of its own
        (990.0, 1000.0, "200 OK", b"ok\n"),
        (940.0, 1000.0, "200 OK", b"ok\n"),  # at the bound
        (930.0, 1000.0, "503 Service Unavailable", b"has not run for 70 s"),
    ],
)
def test_healthz_follows_the_loop_s_heartbeat(
    beat_at: float | None, now: float, status: str, body: bytes
) -> None:
    clock = [beat_at if beat_at is not None else now]
    metrics = Metrics(CollectorRegistry(), runtime_collectors=False, clock=lambda: clock[0])
    if beat_at is not None:
        metrics.beat()
    clock[0] = now
    got_status, got_body = get(
        health_app(metrics.registry, metrics.heartbeat_age, 60.0), "/healthz"
    )
    assert got_status == status
    assert body in got_body
    assert metrics.registry.get_sample_value("workpulse_heartbeat_age_seconds") == (
        0.0 if beat_at is None else now - beat_at
    )


def test_every_other_path_serves_the_metrics() -> None:
    metrics = Metrics(CollectorRegistry(), runtime_collectors=False)
    status, body = get(health_app(metrics.registry, metrics.heartbeat_age, 60.0), "/metrics")
    assert status.startswith("200")
    assert b"workpulse_events_total" in body
