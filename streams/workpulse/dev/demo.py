"""`workpulse demo`: the whole pipeline on embedded parts, with live progress.

Starts the embedded broker, the embedded ClickHouse (chDB, reset for the run), the
worker and its /metrics endpoint; streams the synthetic workload (or replays a
JSONL file, one raw Kafka message per line); shows progress; ends with a summary
checked against ClickHouse.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from workpulse.clickhouse import Database, apply_schema, connect
from workpulse.clickhouse.transports import remove_store
from workpulse.config import Settings
from workpulse.dev.broker import EmbeddedBroker
from workpulse.dev.generator import Workload, WorkloadConfig
from workpulse.dev.summary import Summary, read_summary
from workpulse.kafka.admin import create_topics
from workpulse.kafka.daemon_call import call_in_daemon_thread
from workpulse.kafka.producer import (
    MAX_REQUEST_BYTES,
    FileMessage,
    SendReport,
    TooLong,
    count_lines,
    file_messages,
    refusal,
    too_long,
)
from workpulse.report import collect, write_report
from workpulse.terminal import cell
from workpulse.worker.app import EMBEDDED_SESSION_TIMEOUT_S
from workpulse.worker.collector import GcThresholds, tune_gc
from workpulse.worker.minutes import read_observations
from workpulse.worker.runtime import (
    Worker,
    build_worker,
    die_of,
    install_stop_signals,
    spike_config,
    stop_saying_why,
)

log = logging.getLogger(__name__)

UNBOUNDED = 10**15
UNBOUNDED_WAVE_AT = 11_000
UNBOUNDED_WAVE_LENGTH = 4_000


@dataclass
class ProduceState:
    produced: int = 0
    """Messages sent (and, once they are awaited, acknowledged)."""
    report: SendReport = field(default_factory=SendReport)
    """The messages Kafka refused (too large): reported, not sent."""
    total: int | None = None
    done: bool = False
    started: float = field(default_factory=time.monotonic)


DRAIN_TIMEOUT_S = 60.0
MAX_IN_FLIGHT = 20_000
"""The demo's producer stays at most this many messages ahead of the worker, so it
neither starves the worker (same event loop) nor runs unboundedly ahead."""


READ_CHUNK = 1000


async def read_chunks(
    messages: Iterator[FileMessage], stop: asyncio.Event
) -> AsyncIterator[list[FileMessage]]:
    """`messages` in chunks read in a daemon thread, until they end or `stop` is set. Read
    on the event loop, a line without end (`--input /dev/zero`) or a FIFO without a
    writer held the loop, and the worker and the signal handlers with it; a daemon thread
    still reading is left behind at exit."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            read = asyncio.ensure_future(
                call_in_daemon_thread(lambda: list(itertools.islice(messages, READ_CHUNK)))
            )
            await asyncio.wait({read, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set() or not read.done():
                read.cancel()
                return
            chunk = read.result()
            if not chunk:
                return
            yield chunk
    finally:
        stopped.cancel()


async def produce(
    bootstrap: str,
    topic: str,
    messages: Iterator[FileMessage],
    state: ProduceState,
    stop: asyncio.Event,
    processed: Callable[[], int],
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=10,
        max_batch_size=256 * 1024,
        acks="all",
        max_request_size=MAX_REQUEST_BYTES,
    )

    async def delivered(pending: list[tuple[int, Any]]) -> None:
        results = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
        for (i, _), result in zip(pending, results, strict=True):
            if isinstance(result, KafkaError):  # refused by the broker: never processed
                state.report.failed.append((i, refusal(result, by_broker=True)))
                state.produced -= 1
            elif isinstance(result, BaseException):
                raise result
        pending.clear()

    await producer.start()
    try:
        pending: list[tuple[int, Any]] = []
        i = 0
        async for chunk in read_chunks(messages, stop):
            for message in chunk:
                if stop.is_set():
                    break
                i += 1
                if isinstance(message, TooLong):
                    state.report.failed.append((i, too_long(message.size)))
                    log.warning("message %d not sent: %s", i, too_long(message.size))
                    continue
                key, value = message
                try:
                    pending.append((i, await producer.send(topic, value=value, key=key)))
                except MessageSizeTooLargeError as exc:  # one bad line does not stop the demo
                    state.report.failed.append((i, refusal(exc)))
                    log.warning("message %d not sent: %s", i, refusal(exc))
                    continue
                state.produced += 1
                if len(pending) >= 1000:
                    await delivered(pending)
                    await asyncio.sleep(0)
                    while state.produced - processed() > MAX_IN_FLIGHT and not stop.is_set():
                        await asyncio.sleep(0.05)
        if pending:
            await delivered(pending)
        await producer.flush()
    finally:
        await producer.stop()
        state.done = True


def progress_view(worker: Worker, state: ProduceState, metrics_url: str | None) -> Group:
    p = worker.progress
    elapsed = max(time.monotonic() - state.started, 1e-6)
    head = Table.grid(padding=(0, 2))
    total = f"/{state.total:,}" if state.total else ""
    head.add_row("produced", f"{state.produced:,}{total}")
    head.add_row("processed", f"{p.processed:,}  ({p.processed / elapsed:,.0f} events/s)")
    head.add_row(
        "accepted / dead-lettered / duplicates",
        f"{p.accepted:,} / {p.rejected:,} / {p.duplicates:,}",
    )
    if p.replayed:
        head.add_row("replayed (already stored)", f"{p.replayed:,}")
    if metrics_url:
        head.add_row("metrics", cell(metrics_url))
    topics = Table(title="new videos per topic", show_edge=False)
    topics.add_column("topic")
    topics.add_column("videos", justify="right")
    for topic, n in sorted(p.topic_videos.items(), key=lambda kv: -kv[1]):
        topics.add_row(cell(topic), f"{n:,}")
    spikes = Table(title=f"spikes found: {len(p.spikes)}", show_edge=False)
    spikes.add_column("topic")
    spikes.add_column("minute (event time)")
    spikes.add_column("observed / expected", justify="right")
    for s in p.spikes[-5:]:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(s.window_start_ms / 1000))
        spikes.add_row(cell(s.topic), when, f"{s.observed:.0f} / {s.expected:.1f}")
    return Group(head, topics, spikes)


def embedded_worker_settings(settings: Settings, bootstrap: str) -> Settings:
    """The worker's settings on the embedded broker: its address, and the short group
    session timeout that makes joining quick there (unless one was configured)."""
    return settings.replace(
        kafka_bootstrap=bootstrap,
        kafka_session_timeout_s=settings.kafka_session_timeout_s or EMBEDDED_SESSION_TIMEOUT_S,
    )


def reset_embedded_database(settings: Settings) -> Database:
    remove_store(settings.chdb_path)  # not one in use: one clear line then
    db = connect(None, settings.data_dir)
    apply_schema(db, settings.schemas_dir)
    return db


async def run_demo(
    settings: Settings,
    console: Console,
    *,
    events: int | None,
    input_path: Path | None,
    seed: int = 7,
) -> Summary:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedBroker(log_path=settings.data_dir / "broker.log")
    db: Database | None = None
    worker: Worker | None = None
    stop = asyncio.Event()

    def exit_now(signum: int) -> None:
        console.show_cursor(True)  # the live view hides it; dying restores nothing
        console.print("workpulse demo: second signal, stopped at once", style="dim")
        die_of(signum)

    install_stop_signals(stop, exit_now)
    try:
        with console.status("starting the embedded broker and ClickHouse…"):
            await asyncio.to_thread(broker.start)
            topics = {settings.input_topic: settings.partitions}
            await call_in_daemon_thread(create_topics, broker.bootstrap, topics)
            db = await asyncio.to_thread(reset_embedded_database, settings)
            worker = build_worker(
                embedded_worker_settings(settings, broker.bootstrap),
                broker.bootstrap,
                db,
                on_batch=GcThresholds(settings.batch_size).batch,
            )
            tune_gc()
            await worker.start()

        state = ProduceState()
        if input_path is not None:
            state.total = count_lines(input_path)
            messages: Iterator[FileMessage] = file_messages(input_path)
        else:
            state.total = events
            n = events if events is not None else UNBOUNDED
            config = WorkloadConfig(seed=seed, bad_fraction=0.01, duplicate_fraction=0.01)
            if events is None:
                # Endless stream: the wave still comes after ~an hour of simulated time.
                config = dataclasses.replace(
                    config,
                    wave_start_fraction=UNBOUNDED_WAVE_AT / n,
                    wave_length_fraction=UNBOUNDED_WAVE_LENGTH / n,
                )
            messages = Workload(config).messages(n)
        producer = asyncio.create_task(
            produce(
                broker.bootstrap,
                settings.input_topic,
                messages,
                state,
                stop,
                lambda: worker.progress.processed if worker else 0,
            )
        )

        with Live(
            progress_view(worker, state, worker.metrics_url), console=console, refresh_per_second=4
        ) as live:
            while not stop.is_set():
                live.update(progress_view(worker, state, worker.metrics_url))
                worker.raise_failure()
                if producer.done() and producer.exception() is not None:
                    raise producer.exception()  # type: ignore[misc]
                if state.done and worker.progress.processed >= state.produced:
                    break
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.25)
            stop.set()
            await producer
            # Ctrl-C: no new messages, but those already sent are processed and
            # persisted before the summary (a few seconds at most).
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while worker.progress.processed < state.produced and time.monotonic() < deadline:
                worker.raise_failure()
                live.update(progress_view(worker, state, worker.metrics_url))
                await asyncio.sleep(0.25)
            # The counts agent finishes the last aggregates (and may find a spike in
            # them): the last frame must agree with the summary below it.
            await worker.wait_idle()
            live.update(progress_view(worker, state, worker.metrics_url))
        summary = await worker.sink.run(lambda: read_summary(db, worker.progress, state.produced))
        # The pictures for people without Grafana (workpulse report), named in the summary.
        report = await worker.sink.run(
            lambda: write_report(
                collect(db, read_observations, spike_config(settings)),
                settings.data_dir / "report.html",
            )
        )
        summary.report = str(report)
        if state.report.failed:
            summary.not_sent = len(state.report.failed)
            summary.not_sent_detail = state.report.failure_summary(
                "line" if input_path is not None else "message"
            )
        return summary
    finally:
        if worker is not None:
            await stop_saying_why(worker)
        if db is not None:
            db.close()
        broker.stop()
