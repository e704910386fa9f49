"""The Faust application: the counts agent (a thin loop around `steps.CountsStep`), its
changelogged table of per-topic windows and baselines, and the spikes topic.

The input topic is read by `worker.consumer.BatchConsumer` (whole batches, offsets
committed after the batch is durable), not through a Faust stream: see that module.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
import orjson

from workpulse.config import Settings
from workpulse.kafka.settings import connection, faust_options
from workpulse.worker.report_sequence import ReportSequence
from workpulse.worker.steps import CountsStep

log = logging.getLogger(__name__)


def faust_app_id(settings: Settings) -> str:
    """Faust's app id (its consumer group and the prefix of its internal topics); the
    input topic's consumer group is `settings.app_id` itself."""
    return f"{settings.app_id}-counts"


def watermarks_topic_name(settings: Settings) -> str:
    return f"{settings.app_id}-watermarks"


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
        "store": settings.table_store,
        "datadir": str(settings.data_dir / "faust"),
        "web_enabled": False,
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
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
    """`steps.StateTable` over a Faust table. Writes go through the table, in the context
    of the event being handled (Faust puts them in that event's changelog partition, and
    an on-disk store in that partition's database)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, key: str) -> Any:
        return self._table.get(key)

    def put(self, key: str, value: Any) -> None:
        self._table[key] = value


class FaustPublisher:
    """`worker.publisher.Publisher` over the Faust app's producer (topics created by the
    worker at start-up)."""

    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._topics: dict[str, Any] = {}

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> Awaitable[Any]:
        channel = self._topics.get(topic)
        if channel is None:
            channel = self._app.topic(topic, key_serializer="raw", value_serializer="raw")
            self._topics[topic] = channel
        # force: send now, not attached to the event being processed (Faust would
        # publish attachments only when that event's offset is committed).
        delivery: Awaitable[Any] = await channel.send(
            key=key, value=value, headers=list(headers or []), force=True
        )
        return delivery


@dataclass
class WorkerApp:
    app: faust.App
    windows: Any


def create_app(settings: Settings, bootstrap: str) -> WorkerApp:
    app = faust.App(faust_app_id(settings), **faust_settings(settings, bootstrap))
    windows = app.Table(
        "topic-windows",
        partitions=settings.partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
        help="Per topic: the input partitions' watermarks, the newest closed window and "
        "the spike baseline.",
    )
    return WorkerApp(app, windows)


def attach_counts_agent(
    worker: WorkerApp,
    settings: Settings,
    counts: CountsStep,
    on_failure: Callable[[str, BaseException], None] = lambda _what, _exc: None,
    offsets: Callable[[int], Awaitable[tuple[int | None, int]]] | None = None,
) -> None:
    """`offsets`: a partition of the reports' topic → (the counts group's committed
    offset or None, the earliest offset), for the check that no report is skipped
    (`worker.report_sequence`); without it only skips after a first report are caught."""
    app = worker.app
    watermarks = app.topic(
        watermarks_topic_name(settings),
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        internal=True,
    )
    sequence = ReportSequence()

    async def checked(message: Any) -> bool:
        """Whether this report's offset is checked; raises if reports before it were
        skipped."""
        generation = message.generation_id
        if generation is None or not sequence.current(generation):
            return False
        partition = message.partition
        if not sequence.knows(partition) and offsets is not None:
            try:
                committed, earliest = await offsets(partition)
            except Exception as exc:  # a backstop: not a reason to stop the worker
                log.warning(
                    "cannot look up where %s partition %d starts (checked from its next "
                    "report): %s",
                    watermarks_topic_name(settings),
                    partition,
                    exc,
                )
            else:
                sequence.start(generation, partition, committed, earliest)
        gap = sequence.check(partition, message.offset)
        if gap is not None:
            raise gap.error(watermarks_topic_name(settings))
        return True

    # One report at a time (the ingest step sends few: one per topic when a partition's
    # watermark enters a new minute), so that Faust knows the event each table write
    # belongs to; acked by hand once its effects are durable, so a crash replays it.
    @app.agent(watermarks, name="counts")
    async def counts_agent(stream: Any) -> None:
        manual = stream.noack()
        async for event in manual.events():
            message = event.message
            try:
                in_sequence = await checked(message)
                await counts.handle([(message.key.decode(), orjson.loads(message.value))])
            except Exception as exc:
                # Faust would log the crash and leave the agent dead, the pipeline
                # stalled behind its unacknowledged report: the worker stops instead,
                # and the report is replayed when it is restarted.
                on_failure("the counts agent", exc)
                raise
            await manual.ack(event)
            if in_sequence:
                sequence.handled(message.partition, message.offset)
