"""The HTML report of the demo run, opened in headless Chromium: every chart drew (an
SVG with its lines, band, bars), the wave's spike is marked, and the page needs no
network."""

from __future__ import annotations

import re
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.ops.conftest import DemoRun
from tests.support.browser import dump_dom, screenshot

pytestmark = pytest.mark.integration


class Charts(HTMLParser):
    """The rendered SVG charts and what they hold."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: list[dict[str, Any]] = []
        self.body: dict[str, str | None] = {}
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "svg" and "chart" in (a.get("class") or ""):
            self.charts.append({"attrs": a, "tags": []})
            self._depth = 1
        elif self._depth:
            self.charts[-1]["tags"].append((tag, a))
            if tag not in ("line", "polygon", "path", "circle", "rect"):
                self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self._depth and tag in ("svg", "text", "title", "g"):
            self._depth -= 1


@pytest.fixture(scope="module")
def rendered(demo_run: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Charts:
    dom = dump_dom(Path(demo_run.summary["report"]), tmp_path_factory.mktemp("chromium"))
    parser = Charts()
    parser.feed(dom)
    return parser


def test_every_chart_rendered(rendered: Charts, demo_run: DemoRun) -> None:
    topics = [t for t in demo_run.summary["topics"] if t["videos"] > 0]
    assert len(rendered.charts) == len(topics) + 2
    assert rendered.body.get("data-charts") == str(len(rendered.charts))
    for chart in rendered.charts:
        assert chart["attrs"].get("data-rendered") == "yes", chart["attrs"]
        assert "data-error" not in chart["attrs"]


def test_timelines_have_the_series_the_band_and_the_spike(rendered: Charts) -> None:
    timelines = [c for c in rendered.charts if c["attrs"]["data-kind"] == "timeline"]
    spikes = 0
    for chart in timelines:
        kinds = {(tag, a.get("class")) for tag, a in chart["tags"]}
        assert ("polygon", "band") in kinds and ("path", "observed") in kinds
        observed = next(a for tag, a in chart["tags"] if a.get("class") == "observed")
        assert len(re.findall(r"[ML]", observed["d"])) >= 30  # one point per minute
        spikes += sum(1 for tag, a in chart["tags"] if a.get("class") == "spike")
    assert spikes >= 1


def test_share_of_voice_bars(rendered: Charts) -> None:
    for kind in ("topic_totals", "languages"):
        chart = next(c for c in rendered.charts if c["attrs"]["data-kind"] == kind)
        assert sum(1 for tag, a in chart["tags"] if a.get("class") == "bar") >= 3


def test_the_report_is_self_contained(demo_run: DemoRun) -> None:
    text = Path(demo_run.summary["report"]).read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    assert "top videos" in text.lower()


def _png_pixels_differ(png: Path) -> int:
    """Distinct colours in the PNG's first rows (decoded by hand: no imaging library)."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width = struct.unpack(">I", chunk[:4])[0]
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    return len(set(raw[: (width * 4 + 1) * 400]))


def test_a_screenshot_shows_the_charts(demo_run: DemoRun, tmp_path: Path) -> None:
    png = screenshot(Path(demo_run.summary["report"]), tmp_path / "report.png", tmp_path / "p")
    assert _png_pixels_differ(png) > 20


def test_the_report_command(demo_run: DemoRun, tmp_path: Path) -> None:
    import subprocess
    import sys

    workpulse = Path(sys.executable).with_name("workpulse")
    out = tmp_path / "r.html"
    done = subprocess.run(
        [str(workpulse), "report", "--data-dir", str(demo_run.data_dir), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"report written to {out}"
    assert 'data-kind="timeline"' in out.read_text()
    empty = subprocess.run(
        [str(workpulse), "report", "--data-dir", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert empty.returncode == 1
    assert empty.stderr.count("\n") == 1 and "no workpulse data" in empty.stderr


def test_the_alerts_and_the_copycat_index_are_shown(demo_run: DemoRun) -> None:
    """Every stored alert is listed on its topic's card with its signal; the wave's
    copycat index (from workpulse.topic_copycat) is in the table."""
    page = Path(demo_run.summary["report"]).read_text()
    alerts = re.findall(r"<p class=alerts>alerts: ([^<]*)</p>", page)
    listed = sum(len(re.findall(r"(?:^|, )\d\d:\d\d ", a)) for a in alerts)
    assert listed == len(demo_run.summary["spikes"]) >= 1
    table = page.split('<table class="copycat">', 1)[1].split("</table>", 1)[0]
    waves = re.findall(r"<tr><td>([a-z_]+)</td>", table)
    assert "resignation" in waves, table
