"""Every Prometheus metric of workpulse, declared once against an injected registry.

Names use the `workpulse_` prefix and base units (`_seconds`, `_total`). The standard
`process_*`, `python_gc_*` and `python_info` collectors are registered on the same
registry, so one scrape of /metrics shows the worker's CPU, memory and GC too.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Metrics:
    """The metric objects; one instance per process (or per test, with a fresh registry)."""

    def __init__(self, registry: CollectorRegistry, *, runtime_collectors: bool = True) -> None:
        self.registry = registry
        # The default registry has them already; an injected one gets its own.
        if runtime_collectors and registry is not REGISTRY:
            ProcessCollector(registry=registry)
            GCCollector(registry=registry)
            PlatformCollector(registry=registry)
        self.events = Counter(
            "workpulse_events_total",
            "Input messages processed, by event kind and outcome "
            "(accepted, rejected, duplicate, already_persisted).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.invalid_events = Counter(
            "workpulse_invalid_events_total",
            "Messages sent to the dead-letter topic and table, by reason.",
            ["reason"],
            registry=registry,
        )
        self.tagging_batch_seconds = Histogram(
            "workpulse_tagging_batch_seconds",
            "Time to decode, validate and tag one batch.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_events = Histogram(
            "workpulse_batch_events",
            "Messages per processing batch.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
            registry=registry,
        )
        self.topic_events = Counter(
            "workpulse_topic_events_total",
            "Accepted events per work topic (publish and stats).",
            ["topic", "kind"],
            registry=registry,
        )
        self.event_time_lag_seconds = Gauge(
            "workpulse_event_time_lag_seconds",
            "Wall clock minus the newest event time processed.",
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "workpulse_consumer_lag",
            "Messages between the consumer position and the end of each input partition.",
            ["partition"],
            registry=registry,
        )
        self.window_videos = Gauge(
            "workpulse_window_videos",
            "New videos per topic in the newest closed one-minute window.",
            ["topic"],
            registry=registry,
        )
        self.window_expected_videos = Gauge(
            "workpulse_window_expected_videos",
            "Baseline (expected) new videos per minute per topic.",
            ["topic"],
            registry=registry,
        )
        self.late_events = Counter(
            "workpulse_late_events_total",
            "Events that arrived after their window closed (still stored, not in live windows).",
            ["topic"],
            registry=registry,
        )
        self.spike_score = Gauge(
            "workpulse_spike_score",
            "Spike score of the newest closed window per topic (-log10 p-value).",
            ["topic"],
            registry=registry,
        )
        self.spikes = Counter(
            "workpulse_spikes_total",
            "Spikes detected per topic.",
            ["topic"],
            registry=registry,
        )
        # The three-signal detector (docs/spikes.md), per topic and signal (metric
        # label: videos, views, new_authors), whole topic only (no language label).
        self.window_observed = Gauge(
            "workpulse_window_observed",
            "Tested value of the newest closed one-minute window per topic and signal "
            "(videos and views author-capped).",
            ["topic", "metric"],
            registry=registry,
        )
        self.window_expected = Gauge(
            "workpulse_window_expected",
            "Spike detector's expected value of that window (daily-rhythm baseline).",
            ["topic", "metric"],
            registry=registry,
        )
        self.window_band_lower = Gauge(
            "workpulse_window_band_lower",
            "Lower edge of the detector's band for that window (values below are as "
            "unlikely as an alert's).",
            ["topic", "metric"],
            registry=registry,
        )
        self.window_band_upper = Gauge(
            "workpulse_window_band_upper",
            "Upper edge of the detector's band: the least value the test calls anomalous "
            "(an alert also needs author support).",
            ["topic", "metric"],
            registry=registry,
        )
        self.spike_alerts = Counter(
            "workpulse_spike_alerts_total",
            "Spike alerts per topic, signal, severity and scope (topic: the whole topic; "
            "language: one language of it).",
            ["topic", "metric", "severity", "scope"],
            registry=registry,
        )
        self.sink_rows = Counter(
            "workpulse_sink_rows_total",
            "Rows durably written to ClickHouse, by table.",
            ["table"],
            registry=registry,
        )
        self.sink_seconds = Histogram(
            "workpulse_sink_seconds",
            "Time of one successful ClickHouse insert, by table.",
            ["table"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.sink_failures = Counter(
            "workpulse_sink_failures_total",
            "Failed ClickHouse insert attempts (each is retried), by table.",
            ["table"],
            registry=registry,
        )
        self.sink_buffered_rows = Gauge(
            "workpulse_sink_buffered_rows",
            "Rows waiting to be written to ClickHouse.",
            registry=registry,
        )
        self.lexicon_reloads = Counter(
            "workpulse_lexicon_reloads_total",
            "Lexicon reload attempts, by result (ok, failed).",
            ["result"],
            registry=registry,
        )
        self.taxonomy = Info(
            "workpulse_taxonomy",
            "Taxonomy (lexicon) version in use.",
            registry=registry,
        )

    def initialise_detector(
        self, topics: Iterable[str], signals: Iterable[str], severities: Iterable[str]
    ) -> None:
        """Create the spike detector's children at 0 for every topic, signal (metric
        label) and severity, so that a band exists before the first window closes and
        the first alert is an increase from 0 (OPS.md). The caller passes the label
        values (`model.topics.TOPICS`, `processing.spikes.METRICS` and `SEVERITIES`):
        this module imports nothing of the package."""
        signals = list(signals)
        severities = list(severities)
        for topic in topics:
            for metric in signals:
                for gauge in (
                    self.window_observed,
                    self.window_expected,
                    self.window_band_lower,
                    self.window_band_upper,
                ):
                    gauge.labels(topic, metric)
                for severity in severities:
                    for scope in ("topic", "language"):
                        self.spike_alerts.labels(topic, metric, severity, scope)
