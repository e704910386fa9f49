"""Assembles a worker from settings and runs it inside the caller's event loop.

Used by `workpulse worker` (production) and `workpulse demo` (embedded parts),
so both run exactly the same pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from prometheus_client import CollectorRegistry

from workpulse.clickhouse import Database
from workpulse.config import Settings
from workpulse.errors import first_line
from workpulse.kafka.admin import AdminError, create_topics, topic_configs
from workpulse.kafka.daemon_call import call_in_daemon_thread
from workpulse.kafka.group_offsets import GroupOffsets
from workpulse.kafka.settings import connection, kafka_python_options
from workpulse.metrics import Metrics
from workpulse.model.event import REASONS
from workpulse.model.topics import TOPICS
from workpulse.processing.contract import Contract, EventTimeWindow
from workpulse.processing.ingest import (
    BatchProcessor,
    dead_letter_batch_bytes,
    dead_letter_cut_bytes,
)
from workpulse.processing.spikes import METRICS, SEVERITIES, SpikeDetector, SpikeDetectorConfig
from workpulse.resources import contract_path, lexicon_dir
from workpulse.sinks.clickhouse import Sink
from workpulse.tagging import TaggerReloader
from workpulse.worker.app import (
    FaustPublisher,
    FaustTable,
    WorkerApp,
    attach_counts_agent,
    create_app,
    faust_app_id,
    session_timeout_s,
    watermarks_topic_name,
)
from workpulse.worker.consumer import BatchConsumer
from workpulse.worker.faust_tuning import install_fast_drain, install_seek_fence
from workpulse.worker.health import HEALTH_MAX_AGE_S, health_app, serve
from workpulse.worker.offsets import DurableOffsetCache
from workpulse.worker.publisher import KafkaPublisher
from workpulse.worker.report_sequence import REPORTS_TOPIC_CONFIGS, cleanup_policy_problem
from workpulse.worker.steps import CountsStep, IngestStep, Progress
from workpulse.worker.video_states import VideoStateCache

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 30.0
"""Longest wait for the Faust app to stop (it waits for unacknowledged events)."""
STOP_HINT_S = 5.0
"""A stop that takes longer says what it waits for and how to stop at once."""
T = TypeVar("T")


class Closable(Protocol):
    def close(self) -> None: ...


def dead_letter_topic_configs(max_message_bytes: int) -> dict[str, str]:
    """How the worker creates the dead-letter topic: it takes a dead letter's value and
    key of up to `max_message_bytes` each, and its headers (Kafka's default limit, ~1 MB,
    is kept when that is more)."""
    return {"max.message.bytes": str(max(1_048_588, 2 * max_message_bytes + 64 * 1024))}


@dataclass
class Worker:
    """One worker: the ingest consumer and its step, the Faust app with the counts
    agent, the sink, the metrics endpoint."""

    settings: Settings
    faust: WorkerApp
    consumer: BatchConsumer
    publisher: KafkaPublisher
    ingest: IngestStep
    sink: Sink
    counts_sink: Sink
    metrics: Metrics
    progress: Progress
    tagger: TaggerReloader
    topics: dict[str, int]
    kafka_admin: dict[str, Any]
    reports_topic: str
    metrics_url: str | None = None
    clients: list[Closable] = field(default_factory=list)
    """The worker's further clients (ClickHouse, the report check's Kafka client), closed
    when it stops (the caller closes its own ClickHouse client)."""
    failure: str | None = None
    """Why the worker must stop (a part of it failed), or None."""
    failed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _server: Any = field(default=None, repr=False)
    _lag_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    def fail(self, what: str, exc: BaseException) -> None:
        """A part of the worker failed for good: the worker stops, with this reason
        (a restart replays what was not committed)."""
        if self.failure is None:
            said = first_line(exc) if str(exc).strip() else ""
            self.failure = f"{what} failed: {type(exc).__name__}" + (f": {said}" if said else "")
            log.error("%s; the worker stops", self.failure, exc_info=exc)
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            self.failed.set()
        else:  # called from one of Faust's threads
            loop.call_soon_threadsafe(self.failed.set)

    def _watch(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()  # retrieved in every case: no "never retrieved" warning
        if exc is not None and not self.consumer.stopping:  # a write given up at shutdown
            self.fail("the ingest consumer", exc)  # is no failure

    @property
    def app(self) -> Any:
        return self.faust.app

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await call_in_daemon_thread(
            create_topics,
            self.kafka_admin,
            self.topics,
            replication_factor=self.settings.replication_factor,
            configs={
                self.reports_topic: REPORTS_TOPIC_CONFIGS,
                self.settings.dlq_topic: dead_letter_topic_configs(self.settings.max_message_bytes),
            },
        )
        # The two topics' configs the worker depends on, in one request.
        wanted = {
            self.reports_topic: "cleanup.policy",
            self.settings.dlq_topic: "max.message.bytes",
        }
        try:
            configs = await call_in_daemon_thread(topic_configs, self.kafka_admin, wanted)
        except AdminError as exc:
            log.warning(
                "%s; the reports' cleanup.policy and the dead letters' size are not checked", exc
            )
            configs = dict.fromkeys(wanted)
        self._check_reports_topic(configs[self.reports_topic])
        self._fit_dead_letters(configs[self.settings.dlq_topic])
        await self.publisher.start()
        await self.sink.warm_up()
        # The ingest first: Faust's start returns once the counts agent has recovered
        # its table (a fixed 1 s wait, its group join, the seek of its partitions: ~3.5 s
        # here, longer with a big changelog), and the ingest needs none of it (its
        # watermark reports wait in Kafka meanwhile).
        await self.consumer.start()
        self.consumer.add_done_callback(self._watch)
        await self.app.start()
        self._lag_task = asyncio.create_task(self._report_lag(), name="workpulse-lag")

    def _check_reports_topic(self, policy: str | None) -> None:
        """Refuses a compacted reports' topic (one made before workpulse created it with
        `cleanup.policy=delete`, or changed since): the report check would stop the
        worker at every start. A broker that does not say (or cannot be asked) is no
        reason not to start: the worker starts unchecked."""
        problem = cleanup_policy_problem(self.reports_topic, policy)
        if problem is not None:
            raise ReportsTopicUnusable(problem)

    def _fit_dead_letters(self, value: str | None) -> None:
        """A dead-letter topic made before (by hand, or by a worker with a lower
        max_message_bytes) may take smaller messages (its max.message.bytes: `value`)
        than a dead letter of up to max_message_bytes: the broker would refuse one, and
        the worker stop on it at every restart. Its dead letters are cut to fit then (a
        warning says how to raise the topic's limit), and the producer's batches, which
        a broker checks whole, kept within it. A broker that does not say: nothing is
        changed."""
        try:
            topic_max = int(value) if value is not None else None
        except ValueError:  # not a number: as if the broker did not say
            topic_max = None
        # Dead letters share the producer's batches, checked whole against the limit.
        self.publisher.max_batch_bytes = dead_letter_batch_bytes(
            self.publisher.max_batch_bytes, topic_max
        )
        wanted = self.settings.max_message_bytes
        cut = dead_letter_cut_bytes(wanted, topic_max)
        if cut < wanted:
            log.warning(
                "the dead-letter topic %s takes messages of up to %s bytes: its dead "
                "letters keep at most %d bytes of a message's value and of its key (header "
                "truncated_from: the whole size), not max_message_bytes (%d); set its "
                "max.message.bytes to %s to keep them",
                self.settings.dlq_topic,
                topic_max,
                cut,
                wanted,
                dead_letter_topic_configs(wanted)["max.message.bytes"],
            )
            self.ingest.dead_letter_max_bytes = cut

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise WorkerFailed(f"{self.failure} (see the log)")

    async def _report_lag(self) -> None:
        while True:
            self.metrics.beat()  # /healthz: the loop runs
            for partition, (position, lag) in self.consumer.lag().items():
                self.metrics.observe_lag(partition, position, lag)
            self.metrics.video_states_cached.set(len(self.ingest.states))
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()
        with contextlib.suppress(Exception):
            await self.consumer.stop()  # (it sends what the ingest step held back)
        if self.failure is not None:
            # A failed worker's unacknowledged events may never be acknowledged (a crashed
            # agent's are not): Faust would wait for them (`wait_empty`) until
            # STOP_TIMEOUT_S. It commits up to the first unacknowledged event either way;
            # the restart replays the rest.
            self.app.conf.stream_wait_empty = False
        # Faust waits for a crashed agent's unacknowledged events for ever (and does not
        # end on cancellation then): waited for at most STOP_TIMEOUT_S, then left
        stopping = asyncio.ensure_future(self.app.stop())
        await asyncio.wait([stopping], timeout=STOP_TIMEOUT_S)
        if not stopping.done():
            log.warning("the Faust app did not stop in %.0fs: left behind", STOP_TIMEOUT_S)
        elif not stopping.cancelled() and stopping.exception() is not None:
            log.warning("the Faust app stopped with an error: %s", stopping.exception())
        with contextlib.suppress(Exception):
            await self.publisher.stop()
        # In a thread: a sink waits here for its call in flight (as long as a hung
        # server's send_receive_timeout), and the loop must stay free to take a second
        # signal meanwhile.
        await asyncio.to_thread(self.close_clients)
        if self._server is not None:
            self._server.shutdown()

    def close_clients(self) -> None:
        """Release the sinks' threads and the worker's further ClickHouse clients (at
        stop, or when building the worker fails before it starts)."""
        for sink in (self.sink, self.counts_sink, self.ingest.reads):
            with contextlib.suppress(Exception):
                sink.close()
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.close()

    async def wait_idle(self, timeout_s: float = 15.0) -> bool:
        """Until the counts agent has handled every watermark report the ingest step sent."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.raise_failure()
            if self.progress.watermarks_handled >= self.progress.watermarks_sent:
                return True
            await asyncio.sleep(0.1)
        return False


class MetricsUnavailable(RuntimeError):
    """The /metrics endpoint cannot listen where it is configured to."""


class ReportsTopicUnusable(RuntimeError):
    """The watermark reports' topic is configured so that the worker cannot use it."""


class WorkerFailed(RuntimeError):
    """A part of the worker failed for good (the message says which and why)."""

    hard_exit = True
    """The CLI exits at once after its error line: threads of a failed Faust app may
    never end, and everything durable is already stored (as after a kill)."""


def spike_config(settings: Settings) -> SpikeDetectorConfig:
    """The spike detector's parameters from the settings (every `spike_*` setting)."""
    return SpikeDetectorConfig(
        alpha=settings.spike_alpha,
        season_gamma=settings.spike_season_gamma,
        dispersion_alpha=settings.spike_dispersion_alpha,
        dispersion_prior=settings.spike_dispersion_prior,
        min_dispersion=settings.spike_min_dispersion,
        learn_sigmas=settings.spike_learn_sigmas,
        outlier_sigmas=settings.spike_outlier_sigmas,
        expected_floor=settings.spike_expected_floor,
        views_floor=settings.spike_views_floor,
        min_history=settings.spike_min_history,
        two_window_test=settings.spike_two_window_test,
        family_alpha=settings.spike_family_alpha,
        min_count=settings.spike_min_count,
        min_ratio=settings.spike_min_ratio,
        min_authors=settings.spike_min_authors,
        author_cap=settings.spike_author_cap,
        views_author_cap=settings.spike_views_author_cap,
        single_video_ratio=settings.spike_single_video_ratio,
        single_video_alerts=settings.spike_single_video_alerts,
        max_langs=settings.spike_max_langs,
        lang_min_videos=settings.spike_lang_min_videos,
        cooldown_windows=settings.spike_cooldown_windows,
        regrowth=settings.spike_regrowth,
        warning_ratio=settings.spike_warning_ratio,
        critical_ratio=settings.spike_critical_ratio,
    )


def contract_for(settings: Settings) -> Contract:
    window = EventTimeWindow(
        min_ms=int(settings.event_time_min.timestamp() * 1000),
        max_ahead_ms=int(settings.event_time_max_ahead_s * 1000),
    )
    return Contract.load(contract_path(settings.schemas_dir), window)


def build_worker(
    settings: Settings,
    bootstrap: str,
    db: Database,
    *,
    registry: CollectorRegistry | None = None,
    serve_metrics: bool = True,
    wall_clock: Callable[[], float] = time.time,
    on_batch: Callable[[int], None] = lambda _size: None,
) -> Worker:
    """`on_batch`: told the size of each input batch as it is handled (the worker
    process's `GcThresholds.batch`)."""
    # The counts agent reads through Faust's consumer loop, which spends most of its
    # time creating tasks per message; the patch delivers messages inline.
    install_fast_drain()
    install_seek_fence()
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    registry = registry or CollectorRegistry()
    metrics = Metrics(registry)
    metrics.initialise(topics=TOPICS, reasons=REASONS)
    metrics.initialise_detector(TOPICS, METRICS, SEVERITIES)

    def reloaded(tagger: Any) -> None:
        metrics.lexicon_reloads.labels("ok").inc()
        metrics.taxonomy.info({"version": tagger.version})
        log.warning("lexicon reloaded: taxonomy version %s", tagger.version)

    def reload_failed(exc: Exception) -> None:
        metrics.lexicon_reloads.labels("failed").inc()
        log.error("new lexicon rejected, keeping the current one: %s", exc)

    reloader = TaggerReloader(
        lexicon_dir(settings.lexicon_dir, settings.schemas_dir),
        interval_s=settings.lexicon_reload_s,
        on_reload=reloaded,
        on_error=reload_failed,
        cache_dir=settings.lexicon_cache_dir,
    )
    metrics.taxonomy.info({"version": reloader.current().version})

    def current_tagger() -> Any:
        reloader.maybe_reload()
        return reloader.current()

    conn = connection(settings, bootstrap)
    progress = Progress()
    faust_app = create_app(settings, bootstrap)
    publisher = KafkaPublisher(conn, client_id=f"{settings.app_id}-ingest")
    watermarks = watermarks_topic_name(settings)
    grace_ms = int(settings.window_grace_s * 1000)
    consumer_box: list[BatchConsumer] = []

    def giving_up() -> bool:
        # A write stuck in an outage gives up when the partitions move or on shutdown.
        return bool(consumer_box) and (consumer_box[0].revoking or consumer_box[0].stopping)

    sink = Sink(db, metrics, retry_max_s=settings.sink_retry_max_s, abort=giving_up)
    # The next batch's reads (video states, durable offsets) go through a client and a
    # thread of their own, so that they run while the sink inserts the batch before.
    reads_db = db.another()
    reads = Sink(reads_db, metrics, retry_max_s=settings.sink_retry_max_s, abort=giving_up)
    ingest = IngestStep(
        processor=BatchProcessor(
            current_tagger, settings.max_message_bytes, contract_for(settings)
        ),
        sink=sink,
        db=db,
        reads=reads,
        reads_db=reads_db,
        offsets=DurableOffsetCache(reads_db),
        states=VideoStateCache(settings.video_cache_size, settings.video_state_ttl_s),
        publisher=publisher,
        metrics=metrics,
        progress=progress,
        dlq_topic=settings.dlq_topic,
        watermarks_topic=watermarks,
        partition_count=lambda: consumer_box[0].partition_count() if consumer_box else 0,
        grace_ms=grace_ms,
        wall_clock=wall_clock,
        highwater=lambda p: consumer_box[0].highwater(p) if consumer_box else None,
    )

    async def forget(partitions: list[int]) -> None:
        ingest.forget()
        # Another worker reports these partitions now: stop exposing our frozen view.
        metrics.forget_partitions(partitions)

    async def idle(status: dict[int, bool]) -> None:
        await ingest.idle(settings.input_topic, status)

    async def handle(messages: Any, prepared: Any) -> bool:
        on_batch(len(messages))
        await ingest.handle(messages, prepared)
        last: dict[int, tuple[int, float]] = {}
        for m in messages:
            last[m.partition] = (m.offset, m.timestamp_ms / 1000)
        for partition, (offset, timestamp) in last.items():
            high = consumer_box[0].highwater(partition)
            if high is not None:
                metrics.observe_partition(partition, offset, high, timestamp)
        return not ingest.reports_held

    consumer = BatchConsumer(
        conn,
        settings.input_topic,
        settings.app_id,
        handle,
        on_revoked=forget,
        on_idle=idle,
        prepare=ingest.prepare,
        release=ingest.flush_reports,
        max_records=settings.batch_size,
        max_bytes=settings.batch_max_bytes,
        timeout_s=settings.batch_timeout_s,
        session_timeout_s=session_timeout_s(settings),
        idle_after_s=settings.idle_partition_s,
    )
    consumer_box.append(consumer)
    # The counts agent has its own sink (thread): its reads and spike writes must not give
    # up when the ingest consumer's partitions move; Faust cancels it on shutdown. And its
    # own client: its reads do not wait for the ingest sink's inserts.
    counts_db = db.another()
    counts_sink = Sink(counts_db, metrics, retry_max_s=settings.sink_retry_max_s)
    counts = CountsStep(
        windows=FaustTable(faust_app.windows),
        detector=SpikeDetector(spike_config(settings)),
        sink=counts_sink,
        db=counts_db,
        publisher=FaustPublisher(faust_app.app),
        metrics=metrics,
        progress=progress,
        spikes_topic=settings.spikes_topic,
        grace_ms=grace_ms,
        taxonomy_version=lambda: reloader.current().version,
        wall_clock=wall_clock,
    )
    worker_box: list[Worker] = []  # the agent reports a failure to the worker built below
    report_offsets = GroupOffsets(kafka_python_options(conn), faust_app_id(settings), watermarks)
    attach_counts_agent(
        faust_app,
        settings,
        counts,
        lambda what, exc: worker_box[0].fail(what, exc),
        offsets=lambda partition: call_in_daemon_thread(report_offsets.lookup, partition),
    )
    topics = {
        settings.dlq_topic: settings.partitions,
        settings.spikes_topic: 1,
        watermarks: settings.partitions,
    }
    worker = Worker(
        settings,
        faust_app,
        consumer,
        publisher,
        ingest,
        sink,
        counts_sink,
        metrics,
        progress,
        reloader,
        topics,
        kafka_python_options(conn),
        watermarks,
        clients=[reads_db, counts_db, report_offsets],
    )
    if serve_metrics:
        try:
            app = health_app(registry, metrics.heartbeat_age, HEALTH_MAX_AGE_S)
            server, _thread = serve(app, settings.metrics_host, settings.metrics_port)
        except OSError as exc:
            worker.close_clients()
            where = f"{host_in_url(settings.metrics_host)}:{settings.metrics_port}"
            # a port in use or privileged, or an address this host cannot take (a name
            # that does not resolve, not one of its addresses): each names its setting
            hint = (
                "another worker on this host? set WORKPULSE_METRICS_PORT, 0 for any free port"
                if exc.errno in (errno.EADDRINUSE, errno.EACCES)
                else "set WORKPULSE_METRICS_HOST to an address of this host"
            )
            raise MetricsUnavailable(
                f"cannot serve /metrics on {where}: {exc.strerror or exc} ({hint})"
            ) from exc
        worker._server = server
        worker.metrics_url = (
            f"http://{host_in_url(settings.metrics_host)}:{server.server_port}/metrics"
        )
    worker_box.append(worker)
    return worker


def host_in_url(host: str) -> str:
    """A host as a URL writes it: an IPv6 address in brackets (`http://[::1]:9108/`)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def run_async(main: Coroutine[Any, Any, T], cleanup_timeout_s: float = 5.0) -> T:
    """Like asyncio.run, but never hangs on exit: tasks left behind by Faust/mode
    services that ignore cancellation get `cleanup_timeout_s`, then the loop closes."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main)
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            waiter = asyncio.wait(pending, timeout=cleanup_timeout_s)
            with contextlib.suppress(Exception):
                loop.run_until_complete(waiter)
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def die_of(signum: int) -> None:
    """Exit at once, as if killed by `signum` (a shell shows 128 + its number, and a
    script running us stops too), after flushing the log and the standard streams."""
    logging.shutdown()  # neither a signal's death nor os._exit flushes anything
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # not reached: the default action of SIGINT/SIGTERM ends us


def install_stop_signals(stop: asyncio.Event, exit_now: Callable[[int], object] = die_of) -> None:
    """SIGINT and SIGTERM stop cleanly (`stop`); a second one exits at once (`die_of`).
    Exiting at once loses nothing: offsets are committed only after rows are durable, so
    the next owner of the partitions replays what was not committed, as after kill -9. A
    clean stop can wait on ClickHouse: an insert in flight to a server that accepts
    connections but never answers waits for the client's send_receive_timeout (300 s
    unless the URL sets it). The signals are counted here, not read off `stop`: the demo
    sets `stop` itself when its run is done, and a first Ctrl-C then is still a first."""
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        if len(received) == 1:
            stop.set()
            return
        log.warning(
            "second %s: exiting now without waiting; what was not committed is replayed",
            signal.Signals(signum).name,
        )
        exit_now(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)


async def stop_saying_why(worker: Worker, hint_after_s: float = STOP_HINT_S) -> None:
    """`worker.stop()`; if it takes longer than `hint_after_s`, say so once, with the way
    out."""
    stopping = asyncio.ensure_future(worker.stop())
    done, _ = await asyncio.wait([stopping], timeout=hint_after_s)
    if not done:
        log.warning(
            "still stopping after %.0fs (a ClickHouse call in flight, or the Kafka group, "
            "is slow to answer); send SIGTERM or press Ctrl-C again to exit now: what "
            "was not committed is replayed",
            hint_after_s,
        )
    await stopping


async def run_until(worker: Worker, stop: asyncio.Event) -> None:
    """Run until `stop` is set (then exit cleanly) or a part of the worker fails (then
    raise `WorkerFailed`: a supervisor restarts the process, which replays what was not
    committed). A stop asked for, or a failure (the ingest runs already), while the worker
    starts ends the start there (Faust's start waits for the counts agent's recovery, as
    long as its changelog takes to read: the first SIGTERM went unheard until then), and
    the worker stops what it started."""
    starting = asyncio.ensure_future(worker.start())
    asked = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(worker.failed.wait())]
    await asyncio.wait([starting, *asked], return_when=asyncio.FIRST_COMPLETED)
    for task in asked:
        task.cancel()
    if not starting.done():
        starting.cancel()
        # Whatever the cancelled start ends with (a part may turn the cancellation into
        # an error of its own), what started is stopped.
        (ended,) = await asyncio.gather(starting, return_exceptions=True)
        await stop_saying_why(worker)
        worker.raise_failure()
        if isinstance(ended, Exception) and not isinstance(ended, asyncio.CancelledError):
            log.warning("the start ended with an error when stopped: %s", first_line(ended))
        return
    if starting.exception() is not None and worker.consumer.running:
        # Faust's start failed after the ingest's: the ingest leaves its group and sends
        # and commits what it holds back, as at any stop (the error is raised after).
        await stop_saying_why(worker)
    starting.result()  # a start that failed raises
    waits = [asyncio.create_task(stop.wait()), asyncio.create_task(worker.failed.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
        await stop_saying_why(worker)
    worker.raise_failure()
