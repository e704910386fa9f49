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
            "Input messages processed, by event kind (publish, stats, invalid) and outcome "
            "(accepted, rejected, duplicate, replayed: already stored before a crash or "
            "rebalance).",
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
        self.video_states = Counter(
            "workpulse_video_states_total",
            "Video states a batch needed, by where they came from (memory, clickhouse: "
            "loaded from the stored rows, new: a video with no row yet).",
            ["source"],
            registry=registry,
        )
        self.video_states_cached = Gauge(
            "workpulse_video_states_cached",
            "Video states held in memory.",
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

    def initialise(self, topics: Iterable[str], reasons: Iterable[str]) -> None:
        """Create the children of every known label value, so that the first event is an
        increase from 0 (`rate()` and `increase()` see nothing of a series born at 1)."""
        for kind, outcome in OUTCOMES:
            self.events.labels(kind, outcome)
        for reason in reasons:
            self.invalid_events.labels(reason)
        for topic in topics:
            for kind in ("publish", "stats"):
                self.topic_events.labels(topic, kind)
            self.late_events.labels(topic)
            self.spikes.labels(topic)
        for source in ("memory", "clickhouse", "new"):
            self.video_states.labels(source)
        for result in ("ok", "failed"):
            self.lexicon_reloads.labels(result)


OUTCOMES: tuple[tuple[str, str], ...] = (
    ("publish", "accepted"),
    ("publish", "duplicate"),
    ("publish", "replayed"),
    ("stats", "accepted"),
    ("stats", "duplicate"),
    ("stats", "replayed"),
    ("invalid", "rejected"),
    ("invalid", "replayed"),
)
"""Every (kind, outcome) of `workpulse_events_total`."""
