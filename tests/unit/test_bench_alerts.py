"""`workpulse bench alerts`: the report's shape on a tiny run (no timing thresholds, no
quality thresholds: a few simulated hours say nothing about recall; the figures are
checked for consistency only)."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from workpulse.cli import main
from workpulse.dev.bench.alerts import PROFILES, SIGNALS, TARGETS, run_alerts_bench, wave_grid

TINY = {"null_weeks": 0.1, "wave_weeks": 0.1, "warmup_days": 0.1}
KEYS = {
    "recall_3x_20_authors",
    "false_alarms_per_topic_week",
    "detect_windows_p95",
    "single_account_alerts",
    "recall_3x_20_authors_from_onset",
    "recall_by_signal_3x_20_authors",
    "recall_by_shape_3x_20_authors",
    "recall_by_size",
    "single_video_surges",
    "targets",
    "seed",
    "seconds",
}


@pytest.fixture(scope="module")
def report() -> dict:
    return run_alerts_bench(**TINY, profiles=PROFILES[:2], jobs=1, seed=5)


def test_report_has_the_headline_keys(report: dict) -> None:
    assert set(report) >= KEYS
    assert report["targets"] == TARGETS
    assert report["topics"] == 2
    assert report["null_topic_weeks"] == pytest.approx(0.2, abs=0.01)


def test_figures_are_consistent(report: dict) -> None:
    assert report["false_alarms_per_topic_week"] >= 0
    assert isinstance(report["single_account_alerts"], int)
    waves = sum(v["waves"] for v in report["recall_by_size"].values())
    assert waves > 0
    for group in ("recall_by_signal_3x_20_authors", "recall_by_shape_3x_20_authors"):
        assert sum(v["waves"] for v in report[group].values()) == report["headline_waves"]
    for value in report["recall_by_size"].values():
        assert value["recall"] is None or 0 <= value["recall"] <= 1
    assert report["headline_detected_ever"] <= report["headline_waves"]
    assert report["bursts"] > 0


def test_same_seed_same_report_whatever_the_processes(report: dict) -> None:
    again = run_alerts_bench(**TINY, profiles=PROFILES[:2], jobs=2, seed=5)

    def figures(r: dict) -> dict:
        return {k: v for k, v in r.items() if k not in ("seconds", "jobs")}

    assert figures(again) == figures(report)


def test_the_wave_grid_covers_every_signal_shape_and_size() -> None:
    grid = wave_grid()
    assert {g[0] for g in grid} == {*SIGNALS, "single_video"}
    assert {(g[0], g[1], g[2]) for g in grid if g[0] != "single_video"} == {
        (s, shape, size)
        for s in SIGNALS
        for shape in ("step", "ramp", "spike")
        for size in (1.5, 2.0, 3.0, 5.0, 10.0)
    }


def test_command_prints_one_json_line_and_progress() -> None:
    result = CliRunner().invoke(
        main,
        ["bench", "alerts", "--null-weeks", "0.02", "--wave-weeks", "0.02",
         "--warmup-days", "0.05", "--jobs", "1", "--spike-max-langs", "0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    out = orjson.loads(lines[0])
    assert set(out) >= KEYS
    assert out["family_size"] == 9 * 3 * 1 * 2, "the spike settings reach the detector"
    assert "[1/18]" in result.stderr
