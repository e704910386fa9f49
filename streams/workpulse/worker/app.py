"""The Faust application: topics, tables and two thin agents.

The agents only move Faust events in and out of `steps.IngestStep` /
`steps.CountsStep`; everything they decide lives in pure modules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faust
import orjson
from faust.types import EventT

from workpulse.config import Settings
from workpulse.kafka.settings import connection, faust_options
from workpulse.metrics import Metrics
from workpulse.model.message import Message
from workpulse.worker.steps import CountsStep, IngestStep

log = logging.getLogger(__name__)


def deltas_topic_name(settings: Settings) -> str:
    return f"{settings.app_id}-topic-deltas"


EMBEDDED_SESSION_TIMEOUT_S = 2.0
CLUSTER_SESSION_TIMEOUT_S = 10.0


def session_timeout_s(settings: Settings) -> float:
    """The consumer group session timeout: short on the embedded broker, where joining a
    group takes about half of it (docs/broker-and-faust.md), safer on a real cluster."""
    if settings.kafka_session_timeout_s is not None:
        return settings.kafka_session_timeout_s
    return CLUSTER_SESSION_TIMEOUT_S


def faust_settings(settings: Settings, bootstrap: str) -> dict[str, Any]:
    """Faust App keyword arguments. Timeouts are tuned so that joining the consumer
    group is quick (see docs/broker-and-faust.md for the measurements)."""
    session = session_timeout_s(settings)
    return {
        **faust_options(connection(settings, bootstrap)),
        "store": "memory://",
        "datadir": str(settings.data_dir / "faust"),
        "web_enabled": False,
        "topic_partitions": settings.partitions,
        "topic_replication_factor": 1,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "broker_session_timeout": session,
        "broker_heartbeat_interval": max(0.1, session / 4),
        "broker_rebalance_timeout": session,
        "broker_commit_every": 1000,
        "broker_commit_interval": 1.0,
        "stream_buffer_maxsize": 8192,
        "table_standby_replicas": 0,
        "logging_config": None,
    }


class FaustTable:
    """`pipeline.StateTable` over a Faust table, writing each key's changelog to the
    partition of the source messages that changed it (a batch holds messages of
    several partitions, so Faust's "partition of the current event" would be wrong)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, key: str) -> Any:
        return self._table.data.get(key)

    def put(self, key: str, value: Any, partition: int) -> None:
        self._table.data[key] = value
        self._table.send_changelog(partition, key, value)


class FaustPublisher:
    """Sends raw messages to output topics, creating each (with the given
    partition count) on first use if it does not exist."""

    def __init__(self, app: faust.App, partitions: dict[str, int] | None = None) -> None:
        self._app = app
        self._partitions = partitions or {}
        self._topics: dict[str, Any] = {}

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        channel = self._topics.get(topic)
        if channel is None:
            channel = self._app.topic(
                topic,
                key_serializer="raw",
                value_serializer="raw",
                partitions=self._partitions.get(topic),
                internal=True,
            )
            await channel.maybe_declare()
            self._topics[topic] = channel
        await channel.send(key=key, value=value, headers=list(headers or []))


def to_message(event: EventT) -> Message:
    m = event.message
    return Message(
        m.topic, m.partition, m.offset, m.key, m.value or b"", int((m.timestamp or 0) * 1000)
    )


def report_consumer_lag(app: faust.App, events: Sequence[EventT], metrics: Metrics) -> None:
    """Messages between the batch's last offset and the end of each partition, and
    the position and lag in time (metrics.observe_partition)."""
    last: dict[Any, tuple[int, float]] = {}
    for event in events:
        last[event.message.tp] = (event.message.offset, event.message.timestamp or 0.0)
    for tp, (offset, timestamp) in last.items():
        highwater = app.consumer.highwater(tp)
        if highwater is not None:
            metrics.observe_partition(tp.partition, offset, highwater, timestamp)


@dataclass
class WorkerApp:
    app: faust.App
    videos: Any
    windows: Any


def create_app(settings: Settings, bootstrap: str) -> WorkerApp:
    app = faust.App(settings.app_id, **faust_settings(settings, bootstrap))
    videos = app.Table(
        "videos",
        partitions=settings.partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
        help="Per video: topics, author, language, last counters, recent event ids.",
    )
    windows = app.Table(
        "topic-windows",
        partitions=settings.partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
        help="Per topic: open one-minute windows and the spike baseline.",
    )
    return WorkerApp(app, videos, windows)


async def ack_all(stream: Any, events: Sequence[EventT]) -> None:
    """Mark a handled batch done: Faust commits offsets up to acked messages only."""
    for event in events:
        await stream.ack(event)


def attach_agents(
    worker: WorkerApp,
    settings: Settings,
    ingest: IngestStep,
    counts: CountsStep,
) -> None:
    app = worker.app
    input_topic = app.topic(settings.input_topic, key_serializer="raw", value_serializer="raw")
    deltas = app.topic(
        deltas_topic_name(settings),
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        internal=True,  # Faust creates it
    )

    # `noack_take`, not `take_events`: the latter acks a batch even when its handler
    # raised or was cancelled, and an acked offset is committed. Here a batch is acked
    # only once its rows are durable, so a crash or an outage replays it.
    @app.agent(input_topic, name="ingest")
    async def ingest_agent(stream: Any) -> None:
        async for events in stream.noack_take(settings.batch_size, within=settings.batch_timeout_s):
            await ingest.handle([to_message(e) for e in events])
            await ack_all(stream, events)
            report_consumer_lag(app, events, ingest.metrics)

    @app.agent(deltas, name="counts")
    async def counts_agent(stream: Any) -> None:
        async for events in stream.noack_take(settings.batch_size, within=settings.batch_timeout_s):
            items = [
                (e.message.key.decode(), e.message.partition, orjson.loads(e.message.value))
                for e in events
            ]
            await counts.handle(items)
            await ack_all(stream, events)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget_offsets(app: Any, revoked: Any, **kwargs: Any) -> None:
        # Another worker may write these partitions now: ask ClickHouse afresh later.
        ingest.offsets.clear()
        # ... and reports their lag: stop exposing ours, frozen.
        ingest.metrics.forget_partitions(
            tp.partition for tp in revoked if tp.topic == settings.input_topic
        )
