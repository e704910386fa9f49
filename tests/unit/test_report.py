"""The report's pure parts: the expected band is the spike detector's own baseline, and
the page escapes what it shows."""

from __future__ import annotations

import json

import pytest

from workpulse.processing.spikes import SpikeDetectorConfig
from workpulse.report.data import ReportData, Timeline, expected_series
from workpulse.report.html import render


def test_expected_series_is_the_detectors_baseline_before_each_minute() -> None:
    config = SpikeDetectorConfig()
    counts = [5.0] * 40 + [60.0] + [5.0] * 5
    expected = expected_series(counts, 0, config)
    assert expected[0] == config.expected_floor  # no history yet
    assert abs(expected[39] - 5.0) < 1e-9
    # the wave minute is clipped into the baseline (no self-pollution): it moves little
    assert expected[41] < 5.0 + 0.1 * (5.0 + 3 * 5**0.5)


def test_band_is_around_the_expected_value() -> None:
    t = Timeline("salary", 0, [4.0, 9.0], [4.0, 4.0])
    upper, lower = t.band(3.0)
    assert upper == [10.0, 10.0] and lower == [0.0, 0.0]


def test_render_escapes_captions_and_embedded_data() -> None:
    data = ReportData(
        [Timeline("salary", 0, [1.0], [1.0])],
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
    )
    page = render(data)
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert page.count("</script>") == 2  # the data block and the drawing script only


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
