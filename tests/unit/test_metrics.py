"""Metric names follow Prometheus conventions and live in one registry per Metrics."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from workpulse.metrics import Metrics

DESIGN_METRICS = [
    "workpulse_events_total",  # events in by kind and outcome
    "workpulse_invalid_events_total",  # invalid events by reason
    "workpulse_tagging_batch_seconds",  # tagging batch latency
    "workpulse_topic_events_total",  # events per topic
    "workpulse_event_time_lag_seconds",
    "workpulse_consumer_lag",
    "workpulse_window_videos",
    "workpulse_spike_score",
    "workpulse_sink_rows_total",
    "workpulse_sink_seconds",
    "workpulse_sink_failures_total",
    "workpulse_sink_buffered_rows",
]


def metric_names(registry: CollectorRegistry) -> set[str]:
    names = set()
    for family in registry.collect():
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


@pytest.mark.parametrize("name", DESIGN_METRICS)
def test_design_metrics_exist(name: str) -> None:
    assert name in metric_names(Metrics(CollectorRegistry()).registry)


def test_names_use_prefix_and_base_units() -> None:
    for family in Metrics(CollectorRegistry(), runtime_collectors=False).registry.collect():
        assert family.name.startswith("workpulse_")
        assert not any(u in family.name for u in ("_ms", "_milliseconds", "_minutes"))
        if family.type == "histogram" and "seconds" not in family.name:
            assert family.name.endswith("_events")


def test_fresh_registries_are_independent() -> None:
    a, b = Metrics(CollectorRegistry()), Metrics(CollectorRegistry())
    a.events.labels("publish", "accepted").inc(3)
    assert (
        b.registry.get_sample_value(
            "workpulse_events_total", {"kind": "publish", "outcome": "accepted"}
        )
        is None
    )
    assert b"workpulse_events_total" in generate_latest(a.registry)


def test_process_and_gc_collectors_are_on_the_injected_registry() -> None:
    names = metric_names(Metrics(CollectorRegistry()).registry)
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names
    assert {"python_gc_collections_total", "python_info"} <= names


def test_initialise_creates_every_known_child_at_zero() -> None:
    from workpulse.model.event import REASONS
    from workpulse.model.topics import TOPICS

    m = Metrics(CollectorRegistry(), runtime_collectors=False)
    m.initialise(TOPICS, REASONS)
    sample = m.registry.get_sample_value
    for reason in REASONS:
        assert sample("workpulse_invalid_events_total", {"reason": reason}) == 0
    for topic in TOPICS:
        assert sample("workpulse_spikes_total", {"topic": topic}) == 0
        assert sample("workpulse_topic_events_total", {"topic": topic, "kind": "publish"}) == 0
    assert sample("workpulse_events_total", {"kind": "publish", "outcome": "accepted"}) == 0
    assert sample("workpulse_sink_failures_total", {"table": "video_events"}) == 0
    assert sample("workpulse_lexicon_reloads_total", {"result": "failed"}) == 0


def test_consumer_lag_in_time_is_computed_at_scrape_time() -> None:
    now = [1000.0]
    m = Metrics(CollectorRegistry(), runtime_collectors=False, clock=lambda: now[0])
    m.observe_partition(2, last_offset=9, highwater=15, message_time_s=990.0)
    m.observe_partition(3, last_offset=4, highwater=5, message_time_s=900.0)
    sample = m.registry.get_sample_value
    assert sample("workpulse_consumer_lag", {"partition": "2"}) == 5
    assert sample("workpulse_consumer_position", {"partition": "2"}) == 10
    assert sample("workpulse_consumer_lag_seconds", {"partition": "2"}) == 10.0
    assert sample("workpulse_consumer_lag_seconds", {"partition": "3"}) == 0.0  # caught up
    now[0] = 1030.0  # stuck: the lag in time keeps growing
    assert sample("workpulse_consumer_lag_seconds", {"partition": "2"}) == 40.0
    m.forget_partitions([2])
    assert sample("workpulse_consumer_lag_seconds", {"partition": "2"}) is None
    assert sample("workpulse_consumer_lag", {"partition": "2"}) is None
    assert sample("workpulse_consumer_position", {"partition": "3"}) == 5


def test_event_time_lag_is_computed_at_scrape_time() -> None:
    # Set per batch, it kept its last small value through a stall.
    now = [1000.0]
    m = Metrics(CollectorRegistry(), runtime_collectors=False, clock=lambda: now[0])
    sample = m.registry.get_sample_value
    assert sample("workpulse_event_time_lag_seconds") == 0.0  # nothing processed yet
    m.observe_newest_event(0, 995.0)
    m.observe_newest_event(0, 990.0)  # an older batch does not move it back
    m.observe_newest_event(1, 900.0)
    assert sample("workpulse_event_time_lag_seconds") == 5.0
    now[0] = 1060.0  # nothing processed since: the newest data keeps ageing
    assert sample("workpulse_event_time_lag_seconds") == 65.0
    m.forget_partitions([0])  # moved to another worker: not this one's to report
    assert sample("workpulse_event_time_lag_seconds") == 160.0
    m.forget_partitions([1])
    assert sample("workpulse_event_time_lag_seconds") == 0.0
    m.observe_newest_event(1, 1070.0)  # ahead of the clock: 0, never negative
    assert sample("workpulse_event_time_lag_seconds") == 0.0


def test_detector_gauges_and_alert_counter_exist_for_every_topic_and_signal() -> None:
    """Created for every known label value (OPS.md): the first alert is an increase
    from 0, and a band exists before the first window closes."""
    from workpulse.model.topics import TOPICS
    from workpulse.processing.spikes import METRICS, SEVERITIES

    metrics = Metrics(CollectorRegistry(), runtime_collectors=False)
    metrics.initialise_detector(TOPICS, METRICS, SEVERITIES)
    registry = metrics.registry
    for topic in TOPICS:
        for metric in METRICS:
            labels = {"topic": topic, "metric": metric}
            for name in ("observed", "expected", "band_lower", "band_upper"):
                assert registry.get_sample_value(f"workpulse_window_{name}", labels) == 0
            for severity in SEVERITIES:
                for scope in ("topic", "language"):
                    alerts = {**labels, "severity": severity, "scope": scope}
                    assert registry.get_sample_value("workpulse_spike_alerts_total", alerts) == 0


@pytest.mark.parametrize(
    "sample",
    [
        "workpulse_event_latency_seconds_bucket",
        "workpulse_consumer_lag_seconds",
        "workpulse_consumer_position",
        "workpulse_events_total",
    ],
)
def test_a_scrape_restricted_by_name_finds_every_metric(sample: str) -> None:
    """`/metrics?name[]=…` (prometheus-client's restricted registry, what the bench
    polls) finds the custom collectors too: they describe their names."""
    m = Metrics(CollectorRegistry(), runtime_collectors=False)
    m.events.labels("publish", "accepted").inc(3)
    m.event_latency_seconds.observe_many([0.1, 0.2, 0.5])
    m.observe_partition(1, last_offset=9, highwater=15, message_time_s=990.0)
    restricted = generate_latest(m.registry.restricted_registry([sample])).decode()
    lines = [line for line in restricted.splitlines() if not line.startswith("#")]
    assert lines and all(line.startswith(sample) for line in lines)


def test_custom_collectors_refuse_a_second_registration() -> None:
    m = Metrics(CollectorRegistry(), runtime_collectors=False)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        m.registry.register(m.event_latency_seconds)


def test_the_lag_loop_corrects_a_batch_s_lag_past_a_transaction_marker() -> None:
    """A partition ending with a commit marker: after its last batch, one offset looks
    left (no message will come for it); the consumer's position steps over it, and the
    lag loop's `observe_lag` says caught up, in messages and in time (else the
    falling-behind and stalled alerts fire on a quiet transactional partition)."""
    now = [1000.0]
    m = Metrics(CollectorRegistry(), runtime_collectors=False, clock=lambda: now[0])
    m.observe_partition(0, last_offset=9, highwater=11, message_time_s=990.0)
    sample = m.registry.get_sample_value
    assert sample("workpulse_consumer_lag", {"partition": "0"}) == 1
    assert sample("workpulse_consumer_lag_seconds", {"partition": "0"}) == 10.0
    m.observe_lag(0, position=11, lag=0)
    now[0] = 2000.0
    assert sample("workpulse_consumer_lag", {"partition": "0"}) == 0
    assert sample("workpulse_consumer_lag_seconds", {"partition": "0"}) == 0.0
    assert sample("workpulse_consumer_position", {"partition": "0"}) == 11
    m.observe_lag(3, position=5, lag=2)  # no batch seen yet: no time to tell, only the count
    assert sample("workpulse_consumer_lag", {"partition": "3"}) == 2
    assert sample("workpulse_consumer_lag_seconds", {"partition": "3"}) is None


def test_the_lag_loop_never_raises_a_lag_in_time() -> None:
    """A quiet partition (last message 10 minutes ago) gets a new message: the lag loop
    may see it fetched (lag 1) before its batch is handled; the lag in time stays 0
    until the batch says how old it is (with the older message's time it read 600 s)."""
    now = [400.0]
    m = Metrics(CollectorRegistry(), runtime_collectors=False)
    m.consumer._clock = lambda: now[0]
    m.observe_partition(0, last_offset=9, highwater=10, message_time_s=400.0)
    now[0] = 1000.0
    m.observe_lag(0, position=10, lag=1)
    sample = m.registry.get_sample_value
    assert sample("workpulse_consumer_lag_seconds", {"partition": "0"}) == 0.0
    assert sample("workpulse_consumer_lag", {"partition": "0"}) == 1  # the count, at once
    m.observe_partition(0, last_offset=10, highwater=11, message_time_s=999.0)
    assert sample("workpulse_consumer_lag_seconds", {"partition": "0"}) == 0.0
