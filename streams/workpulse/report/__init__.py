"""`workpulse report`: a self-contained HTML page from ClickHouse, for people who cannot
open Grafana: per-topic timelines with the spike detector's expected value and band and
the alerts marked, share of voice by topic and language, top videos, the copycat index
of each wave.

`collect(db, read_minutes)` reads the data (and replays the minutes' aggregates through
the spike detector to get its expected value and band for every minute, as the worker's
gauges show them); `render(data)` writes one HTML
file with the data inline and a small script that draws the charts as SVG (no
network, no library).
"""

from workpulse.report.data import ReportData, collect
from workpulse.report.html import render, write_report

__all__ = ["ReportData", "collect", "render", "write_report"]
