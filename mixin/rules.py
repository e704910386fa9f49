"""Prometheus recording and alert rules of workpulse, as data.

Every alert carries `severity` (critical, warning, info; the spike alert takes the
detector's own) and `alert_type` (`spike` for what the data says, `pipeline` for the
health of workpulse itself; Alertmanager routes on it), and the annotations OPS.md
asks for: a static `summary`, a templated `description`, and a `runbook_url` to the
alert's own section of docs/runbook.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mixin.config import GRAFANA_URL, JOB, RUNBOOK_URL, THRESHOLDS, TOPICS_UID

T = THRESHOLDS


def sel(metric: str, matchers: str = "") -> str:
    """`metric{job="workpulse", …}`: every selector is limited to the workers' job."""
    inner = f'job="{JOB}"' + (f", {matchers}" if matchers else "")
    return f"{metric}{{{inner}}}"


# Recording rules: expressions that the dashboards and alerts share.
EVENTS_RATE = "workpulse:events:rate5m"
INVALID_RATE = "workpulse:invalid_events:rate5m"
DEAD_LETTER_RATIO = "workpulse:dead_letter_ratio:rate5m"
LAG_SECONDS = "workpulse:consumer_lag_seconds:max"
LAG_MESSAGES = "workpulse:consumer_lag:max"
SINK_P99 = "workpulse:sink_seconds:p99_rate5m"
SINK_P50 = "workpulse:sink_seconds:p50_rate5m"
LATENCY_P99 = "workpulse:event_latency_seconds:p99_rate5m"
LATENCY_P50 = "workpulse:event_latency_seconds:p50_rate5m"

RECORDING_RULES: list[dict[str, str]] = [
    {
        "record": EVENTS_RATE,
        "expr": f"sum by (job, kind, outcome) (rate({sel('workpulse_events_total')}"
        f"[{T.rate_window}]))",
    },
    {
        "record": INVALID_RATE,
        "expr": f"sum by (job, reason) (rate({sel('workpulse_invalid_events_total')}"
        f"[{T.rate_window}]))",
    },
    {
        "record": DEAD_LETTER_RATIO,
        "expr": f"sum by (job) (rate({sel('workpulse_invalid_events_total')}[{T.rate_window}]))"
        f"\n/\nsum by (job) (rate({sel('workpulse_events_total')}[{T.rate_window}]))",
    },
    {
        "record": LAG_SECONDS,
        "expr": f"max by (job, partition) ({sel('workpulse_consumer_lag_seconds')})",
    },
    {
        "record": LAG_MESSAGES,
        "expr": f"max by (job, partition) ({sel('workpulse_consumer_lag')})",
    },
    {
        "record": SINK_P99,
        "expr": "histogram_quantile(0.99, sum by (job, table, le) "
        f"(rate({sel('workpulse_sink_seconds_bucket')}[{T.rate_window}])))",
    },
    {
        "record": SINK_P50,
        "expr": "histogram_quantile(0.5, sum by (job, table, le) "
        f"(rate({sel('workpulse_sink_seconds_bucket')}[{T.rate_window}])))",
    },
    {
        "record": LATENCY_P99,
        "expr": "histogram_quantile(0.99, sum by (job, le) "
        f"(rate({sel('workpulse_event_latency_seconds_bucket')}[{T.rate_window}])))",
    },
    {
        "record": LATENCY_P50,
        "expr": "histogram_quantile(0.5, sum by (job, le) "
        f"(rate({sel('workpulse_event_latency_seconds_bucket')}[{T.rate_window}])))",
    },
]


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    alert_type: str
    summary: str
    description: str
    extra_annotations: dict[str, str] = field(default_factory=dict)

    @property
    def runbook_url(self) -> str:
        return f"{RUNBOOK_URL}#{self.name.lower()}"

    def rule(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity, "alert_type": self.alert_type},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": self.runbook_url,
                **self.extra_annotations,
            },
        }


def _spike_value(metric: str, fmt: str) -> str:
    """A template fragment: the value of `metric` for the alert's job, topic, signal
    (metric label) and scope."""
    query = f"max({metric}{{job='%s', topic='%s', metric='%s', scope='%s'}})"
    labels = "$labels.job $labels.topic $labels.metric $labels.scope"
    return (
        f'{{{{ with printf "{query}" {labels} | query }}}}'
        f'{{{{ . | first | value | printf "{fmt}" }}}}{{{{ end }}}}'
    )


SPIKE_LABELS = "job, topic, metric, scope, severity"
#: The detector's signals (metric label) as the alert's text names them.
SIGNAL_WORDS = (
    '{{ if eq $labels.metric "videos" }}new videos{{ else if eq $labels.metric "views" }}'
    "views gained{{ else }}new authors{{ end }}"
)

FAILED_RELOADS = sel("workpulse_lexicon_reloads_total", 'result="failed"')

ALERTS: list[Alert] = [
    Alert(
        # One alert per topic, signal, scope and severity, with the detector's own
        # severity (info: a single video's surge; warning, critical: by the ratio to the
        # baseline) and its figures; the score is the value.
        name="WorkpulseTopicSpike",
        expr=f"max by ({SPIKE_LABELS}) ({sel('workpulse_last_spike_score')})\n"
        f"and on ({SPIKE_LABELS})\n"
        f"sum by ({SPIKE_LABELS}) (increase({sel('workpulse_spike_alerts_total')}"
        f"[{T.spike_keep}])) > 0",
        for_=T.spike_for,
        severity="{{ $labels.severity }}",
        alert_type="spike",
        summary="A work topic is spiking: far more new videos, views or new authors than its "
        "baseline.",
        description=(
            "Topic {{ $labels.topic }}"
            '{{ if eq $labels.scope "language" }} (one language of it){{ end }}: '
            + _spike_value("workpulse_last_spike_observed", "%.0f")
            + f" {SIGNAL_WORDS} in a minute against "
            + _spike_value("workpulse_last_spike_expected", "%.1f")
            + ' expected (score {{ $value | printf "%.1f" }}, -log10 p-value).'
        ),
        extra_annotations={
            "dashboard_url": f"{GRAFANA_URL}/d/{TOPICS_UID}?var-topic={{{{ $labels.topic }}}}",
        },
    ),
    Alert(
        name="WorkpulseFallingBehind",
        expr=f"{LAG_SECONDS} > {T.lag_seconds:g}\nand on (job, partition)\n"
        f"deriv({LAG_SECONDS}[{T.lag_window}]) >= 0",
        for_=T.lag_for,
        severity="warning",
        alert_type="pipeline",
        summary="Workers are behind their input and the lag is not decreasing.",
        description=(
            "Partition {{ $labels.partition }} of job {{ $labels.job }} is "
            "{{ $value | humanizeDuration }} behind and the lag has not decreased for "
            f"{T.lag_window}."
        ),
    ),
    Alert(
        name="WorkpulsePipelineStalled",
        expr=f"{LAG_MESSAGES} > 0\nand on (job, partition)\n"
        f"max by (job, partition) (changes({sel('workpulse_consumer_position')}"
        f"[{T.stall_window}])) == 0",
        for_=T.stall_for,
        severity="critical",
        alert_type="pipeline",
        summary="A partition has messages waiting and its worker has not moved.",
        description=(
            "Partition {{ $labels.partition }} of job {{ $labels.job }} has {{ $value }} "
            f"messages waiting and its position has not moved for {T.stall_window}."
        ),
    ),
    Alert(
        name="WorkpulseDeadLetterRatioHigh",
        expr=f"{DEAD_LETTER_RATIO} > {T.dead_letter_ratio:g}",
        for_=T.dead_letter_for,
        severity="warning",
        alert_type="pipeline",
        summary="More than the usual share of input messages is dead-lettered.",
        description=(
            "{{ $value | humanizePercentage }} of the messages of job {{ $labels.job }} "
            f"went to the dead-letter topic over the last {T.rate_window} "
            f"(threshold {T.dead_letter_ratio:.0%})."
        ),
    ),
    Alert(
        name="WorkpulseClickHouseWritesFailing",
        expr=f"sum by (job, table) (increase({sel('workpulse_sink_failures_total')}"
        f"[{T.sink_failure_window}])) > 0",
        for_=T.sink_failure_for,
        severity="critical",
        alert_type="pipeline",
        summary="Writes to ClickHouse keep failing; consumption is paused meanwhile.",
        description=(
            '{{ $value | printf "%.0f" }} inserts into {{ $labels.table }} failed in the '
            f"last {T.sink_failure_window} (job {{{{ $labels.job }}}}); they are retried and "
            "the worker does not consume meanwhile."
        ),
    ),
    Alert(
        name="WorkpulseNoEvents",
        expr=f"sum by (job) (rate({sel('workpulse_events_total')}[{T.no_events_window}])) == 0",
        for_=T.no_events_for,
        severity="critical",
        alert_type="pipeline",
        summary="Workers are up but process no events at all.",
        description=(
            f"Job {{{{ $labels.job }}}} processed no message in the last {T.no_events_window}: "
            "producers stopped, the input topic is wrong, or the consumers are stuck."
        ),
    ),
    Alert(
        name="WorkpulseLatencyHigh",
        expr=f"{LATENCY_P99} > {T.latency_p99_seconds:g}",
        for_=T.latency_for,
        severity="warning",
        alert_type="pipeline",
        summary="Events take long from their producer to ClickHouse.",
        description=(
            "99 % of the events of job {{ $labels.job }} reached ClickHouse within "
            '{{ $value | printf "%.1f" }} s of their send over the last '
            f"{T.rate_window} (threshold {T.latency_p99_seconds:g} s)."
        ),
    ),
    Alert(
        name="WorkpulseLexiconReloadFailed",
        expr=f"sum by (job, instance) (increase({FAILED_RELOADS}[{T.lexicon_window}])) > 0",
        for_=T.lexicon_for,
        severity="warning",
        alert_type="pipeline",
        summary="An edited lexicon was rejected; the previous one stays in use.",
        description=(
            "{{ $labels.instance }} rejected a new lexicon in the last "
            f"{T.lexicon_window} and keeps tagging with the previous version."
        ),
    ),
    Alert(
        name="WorkpulseMisroutedEvents",
        expr=f"sum by (job) (increase({sel('workpulse_misrouted_events_total')}"
        f"[{T.misrouted_window}])) > 0\nand on (job)\ncount by (job) ({sel('up')} == 1) > 1",
        for_=T.misrouted_for,
        severity="warning",
        alert_type="pipeline",
        summary="Producers send events keyed to another partition than their video's, and "
        "several workers run: a video's gains can count twice.",
        description=(
            '{{ $value | printf "%.0f" }} events of job {{ $labels.job }} in the last '
            f"{T.misrouted_window} had a Kafka key other than their video id (null or "
            "wrong): their video can sit on two partitions owned by two workers, each "
            "with its own state of it."
        ),
    ),
    Alert(
        name="WorkpulseWorkerDown",
        expr=f"{sel('up')} == 0",
        for_=T.worker_down_for,
        severity="critical",
        alert_type="pipeline",
        summary="Prometheus cannot scrape a workpulse worker.",
        description=(
            f"{{{{ $labels.instance }}}} of job {{{{ $labels.job }}}} has been down for "
            f"{T.worker_down_for} or more."
        ),
    ),
    Alert(
        name="WorkpulseWorkersAbsent",
        expr=f"absent({sel('up')})",
        for_=T.workers_absent_for,
        severity="critical",
        alert_type="pipeline",
        summary="Prometheus has no workpulse worker to scrape at all.",
        description=(
            "No target of job {{ $labels.job }} has been scraped for "
            f"{T.workers_absent_for}: the workers are scaled to zero, gone from service "
            "discovery, or Prometheus lost its configuration; every other alert of the job "
            "is silent meanwhile."
        ),
    ),
]


def rule_groups() -> dict[str, Any]:
    # One group: rules of a group are evaluated in order, so the alerts always see the
    # recording rules of the same evaluation (two groups run independently, and an alert
    # would see the previous evaluation's value half of the time).
    return {
        "groups": [{"name": "workpulse", "rules": [*RECORDING_RULES, *(a.rule() for a in ALERTS)]}]
    }
