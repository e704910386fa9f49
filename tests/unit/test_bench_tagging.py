"""`workpulse bench tagging`: the report's shape and its figures' consistency (no timing
thresholds: the machine is shared)."""

from __future__ import annotations

import pytest
from tests.support.taggers import new_tagger

from workpulse.dev.bench.tagging import run_tagging_bench
from workpulse.processing.jsonl_tagging import BATCH_LINES


@pytest.fixture(scope="module")
def report() -> dict:
    return run_tagging_bench(600, seed=3, repeats=3, tagger=new_tagger())


def test_report_names_the_run(report) -> None:
    assert report["n"] == 600
    assert report["source"] == "generator"
    assert report["work_share"] == 0.35  # the demo's workload
    assert report["machine"]["cpu_count"] >= 1
    assert report["taxonomy_version"] == new_tagger().version


def test_rates_and_ratio_come_from_the_same_paired_runs(report) -> None:
    assert len(report["decode_runs"]) == len(report["tag_runs"]) == len(report["ratio_runs"]) == 3
    assert all(r > 0 for r in report["decode_runs"] + report["tag_runs"])
    assert min(report["ratio_runs"]) <= report["ratio"] <= max(report["ratio_runs"])
    assert report["decode_events_per_s"] > 0 and report["tag_events_per_s"] > 0


def test_cost_model_parts(report) -> None:
    """ratio = D / (D + H + p·T): the bench reports D, H and T (µs)."""
    assert report["decode_us_per_event"] > 0
    assert report["tagger_us_per_publish_event"] > 0
    assert isinstance(report["pass_overhead_us_per_event"], float)


def test_workload_and_cache_figures(report) -> None:
    assert 0 < report["publish_events"] < report["n"]
    assert 0 < report["events_with_topics"] <= report["publish_events"]
    rates = report["cold_pass_cache_hit_rates"]
    assert set(rates) == {"hashtag", "result"}  # digests of hashtags, shared results
    assert all(rate is None or 0.0 <= rate <= 1.0 for rate in rates.values())
    assert report["engine"] == "compiled"
    assert report["python_fallbacks"] == 0


def test_the_python_engine_can_be_measured(report) -> None:
    """The reference engine's figures: its own caches, the same topics."""
    python = run_tagging_bench(600, seed=3, repeats=1, tagger=new_tagger(engine="python"))
    assert python["engine"] == "python"
    assert set(python["cold_pass_cache_hit_rates"]) == {"normalised", "result", "tags", "word"}
    assert python["events_with_topics"] == report["events_with_topics"]


def test_work_share_changes_the_workload() -> None:
    few = run_tagging_bench(600, seed=3, repeats=1, tagger=new_tagger(), work_share=0.0)
    assert few["work_share"] == 0.0
    assert few["events_with_topics"] < few["publish_events"] * 0.1


def test_batch_is_workpulse_tags_unless_given(report) -> None:
    """The tag pass calls tag_batch as `workpulse tag` does; --batch changes it."""
    assert report["batch"] == BATCH_LINES
    other = run_tagging_bench(600, seed=3, repeats=1, tagger=new_tagger(), batch=1000)
    assert other["batch"] == 1000
    assert other["events_with_topics"] == report["events_with_topics"]
    with pytest.raises(ValueError, match="batch"):
        run_tagging_bench(600, repeats=1, tagger=new_tagger(), batch=0)
