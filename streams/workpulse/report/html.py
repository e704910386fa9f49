"""The report as one self-contained HTML file: the data inline as JSON, drawn into SVG
by a small script (no network, no library), so any browser shows it offline."""

from __future__ import annotations

import contextlib
import html
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from workpulse.report.data import ReportData

SIGNALS = {"videos": "new videos", "views": "views gained", "new_authors": "new authors"}

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: #667; margin-bottom: 16px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
.card { border: 1px solid #dde; border-radius: 6px; padding: 10px 12px; }
.card h3 { font-size: 14px; margin: 0 0 6px; }
.card p.alerts { font-size: 12px; color: #a01d2e; margin: 0 0 6px; }
svg.chart { width: 100%; height: auto; display: block; }
.legend { color: #556; font-size: 12px; }
.legend i { display: inline-block; width: 12px; height: 8px; margin: 0 4px 0 10px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eef; }
td.num, th.num { text-align: right; }
"""

SCRIPT = r"""
(function () {
  const DATA = JSON.parse(document.getElementById('report-data').textContent);
  const NS = 'http://www.w3.org/2000/svg';
  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmtTime(ms) { return new Date(ms).toISOString().slice(0, 16).replace('T', ' '); }
  function timeline(svg, tl) {
    const W = 560, H = 200, L = 40, R = 10, T = 10, B = 24;
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    const n = tl.videos.length;
    const ymax = Math.max(1, ...tl.videos, ...tl.upper) * 1.1;
    const x = i => L + (n > 1 ? i * (W - L - R) / (n - 1) : 0);
    const y = v => H - B - v * (H - T - B) / ymax;
    for (let k = 0; k <= 4; k++) {
      const v = ymax * k / 4;
      el('line', {x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: '#eef'}, svg);
      el('text', {x: L - 4, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 10, fill: '#778'},
         svg).textContent = v.toFixed(0);
    }
    const band = tl.upper.map((u, i) => `${x(i)},${y(u)}`)
      .concat(tl.lower.map((l, i) => [i, l]).reverse().map(([i, l]) => `${x(i)},${y(l)}`));
    el('polygon', {points: band.join(' '), fill: '#2e9e5b', 'fill-opacity': 0.18,
                   class: 'band'}, svg);
    const line = (vals, attrs) => el('path', Object.assign({
      d: vals.map((v, i) => (i ? 'L' : 'M') + x(i).toFixed(1) + ',' + y(v).toFixed(1)).join(''),
      fill: 'none'}, attrs), svg);
    line(tl.expected, {stroke: '#2e9e5b', 'stroke-dasharray': '4 3', class: 'expected'});
    line(tl.videos, {stroke: '#2b59c3', 'stroke-width': 1.5, class: 'observed'});
    for (const s of tl.spikes) {
      if (s.metric !== 'videos' || s.lang) continue;  // the chart is the topic's new videos
      const i = Math.round((s.t - tl.start_ms) / 60000);
      if (i < 0 || i >= n) continue;
      // on the minute's own count: an alert's `observed` may be a two-minute sum
      const c = el('circle', {cx: x(i), cy: y(tl.videos[i]), r: 5, fill: '#d7263d',
                              class: 'spike'}, svg);
      el('title', {}, c).textContent = `${s.severity} spike ${fmtTime(s.t)}: ${s.observed} ` +
        `new videos vs ${s.expected} expected${s.windows === 2 ? ' in two minutes' : ''} ` +
        `(score ${s.score}) #${s.hashtags.join(' #')}`;
    }
    el('text', {x: L, y: H - 6, 'font-size': 10, fill: '#778'}, svg)
      .textContent = fmtTime(tl.start_ms) + ' UTC';
    el('text', {x: W - R, y: H - 6, 'font-size': 10, fill: '#778', 'text-anchor': 'end'}, svg)
      .textContent = fmtTime(tl.start_ms + (n - 1) * 60000);
  }
  function bars(svg, entries) {
    const W = 560, row = 22, L = 130;
    const H = Math.max(1, entries.length) * row + 8;
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    const total = entries.reduce((a, [, v]) => a + v, 0) || 1;
    const max = Math.max(1, ...entries.map(([, v]) => v));
    entries.forEach(([name, v], i) => {
      const yy = 4 + i * row;
      el('text', {x: L - 6, y: yy + 14, 'text-anchor': 'end', 'font-size': 12}, svg)
        .textContent = name;
      el('rect', {x: L, y: yy + 3, height: row - 8, width: Math.max(1, v / max * (W - L - 90)),
                  fill: '#2b59c3', class: 'bar'}, svg);
      el('text', {x: L + v / max * (W - L - 90) + 6, y: yy + 14, 'font-size': 11, fill: '#445'},
         svg).textContent = `${v} (${(100 * v / total).toFixed(1)} %)`;
    });
  }
  let drawn = 0;
  for (const svg of document.querySelectorAll('svg.chart')) {
    try {
      if (svg.dataset.kind === 'timeline') {
        timeline(svg, DATA.timelines[Number(svg.dataset.index)]);
      } else {
        const src = DATA[svg.dataset.kind];
        bars(svg, Object.entries(src).sort((a, b) => b[1] - a[1]));
      }
      svg.dataset.rendered = 'yes';
      drawn++;
    } catch (e) {
      svg.dataset.error = String(e);
    }
  }
  document.body.dataset.charts = String(drawn);
})();
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def render(data: ReportData, generated_at: datetime | None = None) -> str:
    when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    # No "<" at all in the data block (JSON allows \u003c in its strings): "</script>"
    # would close it, and "<!--<script>" would keep its own end tag from closing it.
    payload = json.dumps(data.to_json(), ensure_ascii=False).replace("<", "\\u003c")
    spikes = sum(len(t.spikes) for t in data.timelines)
    cards = []
    for i, tl in enumerate(data.timelines):
        marks = ", ".join(
            f"{datetime.fromtimestamp(s['t'] / 1000, UTC):%H:%M} "
            f"{SIGNALS.get(s['metric'], s['metric'])}{' (' + s['lang'] + ')' if s['lang'] else ''}"
            f" {s['observed']:,.0f} vs {s['expected']:,.1f}"
            f"{' in 2 min' if s.get('windows') == 2 else ''} {s['severity']}"
            for s in tl.spikes
        )
        cards.append(
            f'<div class="card"><h3>{_e(tl.topic)} — {int(sum(tl.videos)):,} new videos</h3>'
            f"{'<p class=alerts>alerts: ' + _e(marks) + '</p>' if marks else ''}"
            f'<svg class="chart" data-kind="timeline" data-index="{i}" '
            f'role="img" aria-label="new videos per minute of {_e(tl.topic)}"></svg></div>'
        )
    rows = "".join(
        f"<tr><td>{_e(v['video_id'])}</td><td>{_e(v['author'])}</td><td>{_e(v['caption'])}</td>"
        f'<td>{_e(v["topics"])}</td><td class="num">{v["views"]:,}</td></tr>'
        for v in data.top_videos
    )
    copycat = "".join(
        f"<tr><td>{_e(w['topic'])}</td><td>{_e(w['wave_start'][:16].replace('T', ' '))}</td>"
        f"<td>{_e(' '.join('#' + h for h in w['signature']))}</td>"
        f'<td class="num">{w["new_authors"]:,}</td><td class="num">{w["adopters"]:,}</td>'
        f'<td class="num">{w["baseline_adopters_per_hour"]:.2f}</td>'
        f'<td class="num">{w["copycat_index"]:.1f}</td>'
        f'<td class="num">{w["peak_copycat_index"]:.1f}</td></tr>'
        for w in data.copycat
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>workpulse report</title><style>{STYLE}</style></head>
<body>
<h1>workpulse — work topics report</h1>
<div class="meta">Generated {when} from {_e(data.source)} ·
{len(data.timelines)} topics · {spikes} spikes</div>
<h2>New videos per minute, with the spike detector's expected value and band</h2>
<div class="legend"><i style="background:#2b59c3"></i>new videos
<i style="background:#2e9e5b;opacity:.5"></i>expected, and the band outside which one
minute alone would alert (the detector's daily-rhythm baseline and negative-binomial
test, as the worker's gauges) <i style="background:#d7263d"></i>new-videos alert. Each
card lists all its alerts (new videos, views gained, new authors; per language).</div>
<div class="grid">{"".join(cards) or "<p>No data.</p>"}</div>
<h2>Share of voice</h2>
<div class="grid">
<div class="card"><h3>By topic (new videos)</h3>
<svg class="chart" data-kind="topic_totals" role="img" aria-label="videos per topic"></svg></div>
<div class="card"><h3>By language (new videos with a work topic)</h3>
<svg class="chart" data-kind="languages" role="img" aria-label="videos per language"></svg></div>
</div>
<h2>Top videos by views</h2>
<table><thead><tr><th>video</th><th>author</th><th>caption</th><th>topics</th>
<th class="num">views</th></tr></thead><tbody>{rows}</tbody></table>
<h2>Copycat index: new authors taking up a wave's hashtags</h2>
<div class="legend">Per wave (a topic's first whole-topic alert after 6 hours without one),
over the 24 hours after it: authors new to the topic, those who used the wave's hashtags
(adopters), the adopters' hourly rate before the wave, and the index (adopters per hour +
1) / (rate before + 1): 1 is no uptake. Definition and limits: docs/spikes.md.</div>
<table class="copycat"><thead><tr><th>topic</th><th>wave (UTC)</th><th>hashtags</th>
<th class="num">new authors</th><th class="num">adopters</th>
<th class="num">before, per hour</th><th class="num">index</th><th class="num">peak hour</th>
</tr></thead><tbody>{copycat or '<tr><td colspan="8">No wave yet.</td></tr>'}</tbody></table>
<script type="application/json" id="report-data">{payload}</script>
<script>{SCRIPT}</script>
</body></html>
"""


def write_report(data: ReportData, path: Path) -> Path:
    """Write the page to `path` whole or not at all: written beside it, then renamed over
    it (a write that failed halfway left a cut page where the last one was)."""
    page = render(data).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(page)
        os.chmod(tmp, 0o644)  # (mkstemp makes it private; a report is for sharing)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
