"""The report's pure parts: the band is the spike detector's own, every alert is listed
with its signal, and the page escapes what it shows."""

from __future__ import annotations

import json

import pytest

from workpulse.model.aggregates import TopicMinute
from workpulse.processing.spikes import SpikeDetector, SpikeDetectorConfig, TopicBaseline
from workpulse.report.data import ReportData, Timeline, detector_band
from workpulse.report.html import render

MIN = 60_000


def _minutes(counts: list[int], start: int = 0) -> dict[int, TopicMinute]:
    out = {}
    for i, n in enumerate(counts):
        if n:
            minute = TopicMinute()
            for v in range(n):
                minute.add_publish(video_id=f"v{i}-{v}", author_id=f"a{v}", lang="en",
                                   country="", hashtags=[], new_author=False)  # fmt: skip
            out[start + i * MIN] = minute
    return out


def test_the_band_is_the_detectors_gauge_after_each_minute() -> None:
    config = SpikeDetectorConfig()
    counts = [0, 0] + [5] * 60 + [60] + [5] * 5
    minutes = _minutes(counts)
    expected, lower, upper = detector_band("salary", minutes, 0, len(counts), config)
    assert expected[:2] == lower[:2] == upper[:2] == [0.0, 0.0]  # before the first data
    # the worker's gauges: the detector fed the same minutes, read after each one
    detector, baseline = SpikeDetector(config), TopicBaseline()
    for i in range(2, len(counts)):
        detector.observe_window(baseline, "salary", i * MIN, minutes.get(i * MIN, TopicMinute()))
        assert expected[i] == baseline.series["videos"].expected
        assert (lower[i], upper[i]) == detector.band(baseline, "videos")
    assert all(lo <= e <= hi for lo, e, hi in zip(lower[2:], expected[2:], upper[2:], strict=True))
    assert abs(expected[61] - 5.0) < 0.5
    wave = 2 + 60
    assert counts[wave] > upper[wave]  # the wave is outside its band
    assert expected[wave + 2] < 5.0 + 0.2 * (upper[wave - 1] - 5.0)  # and barely moves it


def _data(spikes: list[dict], copycat: list[dict] | None = None) -> ReportData:
    return ReportData(
        [Timeline("salary", 0, [1.0], [1.0], [0.0], [3.0], spikes)],
        {"salary": 1},
        {"en": 1},
        [
            {
                "video_id": "v1",
                "author": "a",
                "caption": "<script>x</script>",
                "topics": "salary",
                "views": 3,
            }
        ],
        "test",
        copycat or [],
    )


def _spike(metric: str, lang: str = "", severity: str = "warning") -> dict:
    return {"t": 42 * MIN, "metric": metric, "lang": lang, "severity": severity,
            "observed": 1234.0, "expected": 56.7, "score": 9.1, "hashtags": ["a"]}  # fmt: skip


def test_render_escapes_captions_and_embedded_data() -> None:
    page = render(_data([]))
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert page.count("</script>") == 2  # the data block and the drawing script only


@pytest.mark.parametrize(
    ("spike", "listed"),
    [
        (_spike("videos"), "00:42 new videos 1,234 vs 56.7 warning"),
        (_spike("views", severity="critical"), "00:42 views gained 1,234 vs 56.7 critical"),
        (_spike("new_authors", "fr"), "00:42 new authors (fr) 1,234 vs 56.7 warning"),
        ({**_spike("videos"), "windows": 2}, "00:42 new videos 1,234 vs 56.7 in 2 min warning"),
    ],
)
def test_every_alert_is_listed_with_its_signal(spike: dict, listed: str) -> None:
    assert listed in render(_data([spike]))


def test_the_copycat_table_lists_each_wave_escaped() -> None:
    wave = {"topic": "resignation", "wave_start": "2026-01-01T00:42:00+00:00",
            "signature": ["quitmyjob", "<b>x</b>"], "hours": 2, "new_authors": 431,
            "adopters": 254, "baseline_adopters_per_hour": 2.04, "copycat_index": 83.8,
            "peak_copycat_index": 120.5}  # fmt: skip
    page = render(_data([], [wave]))
    assert "<td>resignation</td><td>2026-01-01 00:42</td>" in page
    assert "#quitmyjob #&lt;b&gt;x&lt;/b&gt;" in page
    assert '<td class="num">83.8</td><td class="num">120.5</td>' in page
    assert "No wave yet." in render(_data([]))


@pytest.mark.parametrize(
    "caption",
    [
        # "<!--<script>" puts the HTML parser in a state where the data block's own
        # </script> does not close it: the block swallowed the drawing script, no chart
        "<!--<script>",
        "</script><script>alert(1)</script>",
        "<!-- --> <b>&amp;</b>",
    ],
)
def test_embedded_data_has_no_markup_and_reads_back(caption: str) -> None:
    video = {"video_id": "v1", "author": "a", "caption": caption, "topics": "t", "views": 3}
    page = render(ReportData([Timeline("salary", 0, [1.0], [1.0])], {}, {}, [video], "test"))
    start = page.index('<script type="application/json" id="report-data">')
    block = page[page.index(">", start) + 1 : page.index("</script>", start)]
    assert "<" not in block
    assert json.loads(block)["top_videos"][0]["caption"] == caption


def test_a_report_is_written_whole_or_not_at_all(tmp_path, monkeypatch) -> None:
    """A write that failed halfway (a full disk) left a cut page where the last one was."""
    import os

    from workpulse.report import html as report_html
    from workpulse.report.html import write_report

    data = ReportData([Timeline("salary", 0, [1.0], [1.0])], {}, {}, [], "test")
    path = tmp_path / "report.html"
    path.write_text("the last report", encoding="utf-8")

    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, fd: int, mode: str) -> None:
            self.file = real_fdopen(fd, mode)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

        def write(self, data: bytes) -> int:
            self.file.write(data[: len(data) // 2])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_html.os, "fdopen", FullDisk)
    with pytest.raises(OSError, match="No space left"):
        write_report(data, path)
    assert path.read_text(encoding="utf-8") == "the last report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary left
    monkeypatch.undo()
    write_report(data, path)
    assert path.read_text(encoding="utf-8") == render(data)
    assert path.stat().st_mode & 0o777 == 0o644
