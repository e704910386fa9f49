"""Every threshold, duration, name and link of the mixin: change them here, then run
`make mixin`. Alert expressions, rule tests and dashboards read them from here."""

from __future__ import annotations

from dataclasses import dataclass

#: Prometheus scrape job of the workers (the `job` label of their series).
JOB = "workpulse"
#: Where the runbook is published; each alert links to its own section (anchor = the
#: alert name in lower case).
RUNBOOK_URL = "https://workpulse.example.org/docs/runbook.md"
#: Grafana's base URL, for the links in alert annotations.
GRAFANA_URL = "https://grafana.example.org"

PIPELINE_UID = "workpulse-pipeline"
TOPICS_UID = "workpulse-topics"
PIPELINE_TITLE = "workpulse — pipeline"
TOPICS_TITLE = "workpulse — work topics"
TAGS = ["workpulse"]

#: The ClickHouse database the topics dashboard reads.
DATABASE = "workpulse"


@dataclass(frozen=True)
class Thresholds:
    # viral spike: fires when a topic had a spike in the last `spike_keep`
    spike_keep: str = "15m"
    spike_for: str = "0m"
    # falling behind: lag in time above this and not decreasing
    lag_seconds: float = 120.0
    lag_window: str = "10m"
    lag_for: str = "15m"
    # stalled: messages waiting and the position did not move for `stall_window`
    stall_window: str = "10m"
    stall_for: str = "5m"
    # dead letters / all messages
    dead_letter_ratio: float = 0.01
    dead_letter_for: str = "15m"
    # ClickHouse writes failing (each failure is retried; rows wait meanwhile)
    sink_failure_window: str = "5m"
    sink_failure_for: str = "10m"
    # no events at all
    no_events_window: str = "10m"
    no_events_for: str = "15m"
    # a lexicon reload was rejected (the old lexicon stays in use)
    lexicon_window: str = "30m"
    lexicon_for: str = "0m"
    # events keyed to another partition than their video's, while several workers run
    misrouted_window: str = "15m"
    misrouted_for: str = "5m"
    # the scrape of a worker fails
    worker_down_for: str = "5m"
    # no worker is a scrape target at all (scaled to 0, removed from discovery)
    workers_absent_for: str = "5m"
    # p99 from a message's send to its row durable in ClickHouse
    latency_p99_seconds: float = 10.0
    latency_for: str = "15m"
    # rate window of recording rules and alerts
    rate_window: str = "5m"


THRESHOLDS = Thresholds()
