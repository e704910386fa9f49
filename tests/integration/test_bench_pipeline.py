"""`workpulse bench pipeline` end to end on a small backlog: the JSON it prints has every
figure, and the run it measured stored every event exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from workpulse.dev.chdb_http import ChdbHttpServer

pytestmark = pytest.mark.integration

KEYS = {
    "raw_consume_events_per_s",
    "pipeline_events_per_s",
    "ratio",
    "latency_p50_s",
    "latency_p99_s",
    "rate",
    "workers_2_events_per_s",
    "workers_2_cpu_s_per_1k_events",
    "workers_2_rss_mb_peak",
    "workers_2_vs_one",
    "workers_1_shared_events_per_s",
    "workers_2_cpu_vs_one",
    "workers_2_join_s",
    "workers_2_busy_cores",
    "workers_2_clickhouse_cpu_s_per_1k_events",
    "workers_2_broker_cpu_s_per_1k_events",
    "workers_1_shared_exact",
    "cpu_s_per_1k_events",
    "rss_mb_peak",
    "state_bytes_per_video",
    "state_mb_per_1m_videos",
    "metrics_us_per_event",
    "exact",
    "one_worker_exact",
    "machine",
    "events",
}


def bench(*args: str, **env: str) -> tuple[dict[str, Any], str]:
    """`workpulse bench pipeline ARGS` with no WORKPULSE_ setting but `env`: its report
    and its stderr."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WORKPULSE_")}
    result = subprocess.run(
        [sys.executable, "-m", "workpulse", "bench", "pipeline", *args],
        capture_output=True,
        env={**clean, **env},
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return json.loads(result.stdout), result.stderr.decode()


def test_bench_pipeline_prints_every_figure_and_is_exact() -> None:
    report, stderr = bench(
        "--events", "3000", "--duration", "2", "--rate", "1000", "--workers", "2"
    )
    assert set(report) >= KEYS, KEYS - set(report)
    assert report["exact"] is True and report["one_worker_exact"] is True
    assert report["workers_1_shared_exact"] is True
    assert report["events"] == 3000 and report["rate"] <= 1000
    assert report["raw_consume_events_per_s"] > 0 and report["pipeline_events_per_s"] > 0
    assert 0 < report["latency_p50_s"] <= report["latency_p99_s"]
    assert len(report["workers_2_rss_mb_peak"]) == 2
    # the shared ClickHouse and the broker are the bench's own here: their CPU is counted
    # (the broker's few ms on 3,000 events may round to 0 clock ticks)
    assert report["workers_2_clickhouse_cpu_s_per_1k_events"] > 0
    assert report["workers_2_broker_cpu_s_per_1k_events"] >= 0
    assert report["workers_2_bench_cpu_s_per_1k_events"] > 0  # it sent the backlog
    assert 0 < report["workers_2_busy_cores"] <= report["machine"]["cpus"] * 1.1
    assert report["machine"]["cpus"] >= 1
    assert "one worker" in stderr  # progress on stderr


def test_bench_runs_again_on_the_same_configured_clickhouse(tmp_path: Path) -> None:
    """A configured ClickHouse outlives the bench: a second bench on it must write videos
    of its own (a worker writes nothing for a video ClickHouse already holds, and the
    second run was not `exact`: failed before the workload was moved per invocation)."""
    server = ChdbHttpServer(tmp_path / "chdb", user="bench", password="bench")
    server.start()
    try:
        for _ in range(2):
            report, _ = bench("--events", "500", "--duration", "1", "--rate", "200",
                              "--data-dir", str(tmp_path / "data"),
                              WORKPULSE_CLICKHOUSE_URL=server.url_with_credentials())  # fmt: skip
            assert report["one_worker_exact"] is True and report["exact"] is True
    finally:
        server.stop()
