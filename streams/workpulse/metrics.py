"""Every Prometheus metric of workpulse, declared once against an injected registry.

Names use the `workpulse_` prefix and base units (`_seconds`, `_total`). The standard
`process_*`, `python_gc_*` and `python_info` collectors are registered on the same
registry, so one scrape of /metrics shows the worker's CPU, memory and GC too.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

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
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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


E2E_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip
"""Fine around one second: the end-to-end latency target is p99 ≤ 1 s."""

EVENT_OUTCOMES: tuple[tuple[str, str], ...] = (
    *(
        (kind, outcome)
        for kind in ("publish", "stats")
        for outcome in ("accepted", "duplicate", "replayed")
    ),
    ("invalid", "rejected"),
    ("invalid", "replayed"),
)
"""The (kind, outcome) pairs of workpulse_events_total that the worker produces."""

SINK_TABLES: tuple[str, ...] = ("video_events", "dead_letters", "topic_spikes")
"""The tables the worker writes (the others are materialized views)."""


class BulkHistogram(Collector):
    """A histogram fed a whole batch of observations at once (sorted, then one bisect
    per bucket), for a value observed per message on the hot path: prometheus-client's
    `Histogram.observe` costs about a microsecond a call."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._counts = [0] * (len(self._bounds) + 1)  # per bucket, not cumulative
        self._sum = 0.0

    def observe_many(self, values: Iterable[float]) -> None:
        ordered = sorted(values)
        if not ordered:
            return
        counts = []
        below = 0
        for bound in self._bounds:
            upto = bisect.bisect_right(ordered, bound, lo=below)
            counts.append(upto - below)
            below = upto
        counts.append(len(ordered) - below)
        total = math.fsum(ordered)
        with self._lock:
            for i, n in enumerate(counts):
                self._counts[i] += n
            self._sum += total

    def describe(self) -> Iterator[HistogramMetricFamily]:
        # Names known at registration: duplicates are refused, and a scrape restricted
        # with `?name[]=…` (a restricted registry) finds this collector.
        yield HistogramMetricFamily(self._name, self._documentation)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            counts = list(self._counts)
            total = self._sum
        cumulative = 0
        buckets = []
        for bound, n in zip((*self._bounds, math.inf), counts, strict=True):
            cumulative += n
            buckets.append((floatToGoString(bound), cumulative))
        family = HistogramMetricFamily(self._name, self._documentation)
        family.add_metric([], buckets, total)
        yield family


class ConsumerProgress(Collector):
    """Per input partition: the position reached and how far behind it is, in time.

    `workpulse_consumer_lag_seconds` is computed at scrape time: 0 when the partition
    is caught up, otherwise the age of the last processed message (wall clock minus its
    Kafka timestamp), so it grows by one second per second while the worker is stuck
    and shrinks while it catches up (lag in time, as kafka-lag-exporter reports it).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._partitions: dict[str, tuple[int, int, float]] = {}

    def observe(self, partition: int, position: int, lag: int, message_time_s: float) -> None:
        with self._lock:
            self._partitions[str(partition)] = (position, lag, message_time_s)

    def update(self, partition: int, position: int, lag: int) -> None:
        """A partition's position and a lower lag between batches (past a transaction's
        marker); the time of its last message is kept. A higher lag waits for its batch:
        with the time of the message before it, the lag in time would read that message's
        age (minutes on a quiet partition) until the batch is handled. A partition not
        observed yet is left alone."""
        key = str(partition)
        with self._lock:
            known = self._partitions.get(key)
            if known is not None and lag <= known[1]:
                self._partitions[key] = (max(position, known[0]), lag, known[2])

    def forget(self, partitions: Iterable[int]) -> None:
        with self._lock:
            for partition in partitions:
                self._partitions.pop(str(partition), None)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        lag_s = GaugeMetricFamily(
            "workpulse_consumer_lag_seconds",
            "Time the worker is behind each input partition: 0 when caught up, else the "
            "age of the last processed message.",
            labels=["partition"],
        )
        position = GaugeMetricFamily(
            "workpulse_consumer_position",
            "Offset of the next message the worker will process, per input partition.",
            labels=["partition"],
        )
        return lag_s, position

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()  # see BulkHistogram.describe

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self._clock()
        lag_s, position = self._families()
        with self._lock:
            items = sorted(self._partitions.items())
        for partition, (pos, lag, ts) in items:
            lag_s.add_metric([partition], max(0.0, now - ts) if lag > 0 else 0.0)
            position.add_metric([partition], pos)
        yield lag_s
        yield position


class Metrics:
    """The metric objects; one instance per process (or per test, with a fresh registry)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        runtime_collectors: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self._clock = clock
        self._newest_event_s: dict[int, float] = {}
        """Per input partition held: the newest event time processed (seconds)."""
        self._last_beat: float | None = None
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
            "Wall clock minus the newest event time processed from the input partitions this "
            "worker holds (0 before the first, or holding none).",
            registry=registry,
        )
        # At scrape time, so that it grows while nothing is processed (set per batch, it
        # kept its last small value through a stall).
        self.event_time_lag_seconds.set_function(self._event_time_lag)
        self.heartbeat_age_seconds = Gauge(
            "workpulse_heartbeat_age_seconds",
            "Seconds since the worker's event loop last ticked (once a second when it runs; "
            "0 before the worker has started).",
            registry=registry,
        )
        self.heartbeat_age_seconds.set_function(lambda: self.heartbeat_age() or 0.0)
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
        self.misrouted_events = Counter(
            "workpulse_misrouted_events_total",
            "Accepted events whose Kafka key is not their video id (the contract's key): "
            "with several workers, a video on two partitions may have its gains counted "
            "twice.",
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
        self.event_latency_seconds = BulkHistogram(
            "workpulse_event_latency_seconds",
            "From a message's Kafka timestamp (its producer's send) to the end of its batch: "
            "its row durable in ClickHouse and its Kafka outputs acknowledged.",
            E2E_BUCKETS,
        )
        registry.register(self.event_latency_seconds)
        self.watermark_reports = Counter(
            "workpulse_watermark_reports_total",
            "Watermark reports sent by the ingest step and handled by the counts agent "
            "(sent - handled: reports the counts agent has not caught up with).",
            ["side"],
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
        # The newest spike per topic, signal and scope (topic: the whole topic; language:
        # one language of it), for the alert's text (the window's own gauges move on).
        self.last_spike_observed = Gauge(
            "workpulse_last_spike_observed",
            "The tested value in the window of the newest spike (new videos, views gained "
            "or new authors in a minute) per topic, signal (metric) and scope.",
            ["topic", "metric", "scope"],
            registry=registry,
        )
        self.last_spike_expected = Gauge(
            "workpulse_last_spike_expected",
            "The expected value (the baseline) in the window of the newest spike per topic, "
            "signal (metric) and scope.",
            ["topic", "metric", "scope"],
            registry=registry,
        )
        self.last_spike_score = Gauge(
            "workpulse_last_spike_score",
            "Score (-log10 p-value) of the newest spike per topic, signal (metric), scope and "
            "severity.",
            ["topic", "metric", "scope", "severity"],
            registry=registry,
        )
        self.consumer = ConsumerProgress(clock)
        registry.register(self.consumer)

    def initialise(
        self,
        topics: Iterable[str],
        reasons: Iterable[str],
        *,
        outcomes: Iterable[tuple[str, str]] = EVENT_OUTCOMES,
        tables: Iterable[str] = SINK_TABLES,
    ) -> None:
        """Create every known label value's child at 0, so that rate()/increase() see the
        first event as an increase and "metric exists" checks are honest (OPS.md)."""
        for kind, outcome in outcomes:
            self.events.labels(kind, outcome)
        for reason in reasons:
            self.invalid_events.labels(reason)
        for topic in topics:
            for kind in ("publish", "stats"):
                self.topic_events.labels(topic, kind)
            self.late_events.labels(topic)
            self.spikes.labels(topic)
        for table in tables:
            self.sink_rows.labels(table)
            self.sink_seconds.labels(table)
            self.sink_failures.labels(table)
        for result in ("ok", "failed"):
            self.lexicon_reloads.labels(result)
        for source in ("memory", "clickhouse", "new"):
            self.video_states.labels(source)
        for side in ("sent", "handled"):
            self.watermark_reports.labels(side)

    def observe_partition(
        self, partition: int, last_offset: int, highwater: int, message_time_s: float
    ) -> None:
        """After a batch: the last offset processed on a partition, the partition's end
        (high watermark) and the Kafka timestamp of that last message."""
        lag = max(0, highwater - last_offset - 1)
        self.consumer_lag.labels(str(partition)).set(lag)
        self.consumer.observe(partition, last_offset + 1, lag, message_time_s)

    def observe_lag(self, partition: int, position: int, lag: int) -> None:
        """Between batches (the worker's lag loop): a partition's next offset and the
        offsets left before its end, as the consumer sees them (past a transaction's
        marker, which is no message): a partition that ends with one is caught up."""
        self.consumer_lag.labels(str(partition)).set(lag)
        self.consumer.update(partition, position, lag)

    def forget_partitions(self, partitions: Iterable[int]) -> None:
        """Partitions revoked from this worker: another one reports them now."""
        parts = list(partitions)
        for partition in parts:
            with contextlib.suppress(KeyError):
                self.consumer_lag.remove(str(partition))
            self._newest_event_s.pop(partition, None)
        self.consumer.forget(parts)

    def beat(self) -> None:
        """The worker's event loop ran (its lag reporter calls this once a second)."""
        self._last_beat = self._clock()

    def heartbeat_age(self) -> float | None:
        """Seconds since the loop's last beat; None before the first."""
        last = self._last_beat
        return None if last is None else max(0.0, self._clock() - last)

    def observe_newest_event(self, partition: int, event_time_s: float) -> None:
        """The newest event time processed from an input partition (seconds)."""
        if event_time_s > self._newest_event_s.get(partition, -math.inf):
            self._newest_event_s[partition] = event_time_s

    def _event_time_lag(self) -> float:
        """Of the partitions held: 0 with none (another worker reports them)."""
        newest = max(self._newest_event_s.values(), default=None)
        return 0.0 if newest is None else max(0.0, self._clock() - newest)

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
