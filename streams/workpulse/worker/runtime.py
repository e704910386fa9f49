"""Assembles a worker from settings and runs it inside the caller's event loop.

Used by `workpulse worker` (production) and `workpulse demo` (embedded parts),
so both run exactly the same pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, start_http_server

from workpulse.clickhouse import Database
from workpulse.config import Settings
from workpulse.metrics import Metrics
from workpulse.processing.contract import Contract
from workpulse.processing.ingest import BatchProcessor
from workpulse.processing.spikes import SpikeDetector, SpikeDetectorConfig
from workpulse.resources import contract_path, lexicon_dir
from workpulse.sinks.clickhouse import Sink
from workpulse.tagging import TaggerReloader
from workpulse.worker.app import (
    FaustPublisher,
    FaustTable,
    WorkerApp,
    attach_agents,
    create_app,
    deltas_topic_name,
)
from workpulse.worker.faust_tuning import install_fast_drain
from workpulse.worker.offsets import DurableOffsetCache
from workpulse.worker.steps import CountsStep, IngestStep, Progress

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Worker:
    settings: Settings
    faust: WorkerApp
    sink: Sink
    metrics: Metrics
    progress: Progress
    tagger: TaggerReloader
    metrics_url: str | None = None
    _server: Any = field(default=None, repr=False)

    @property
    def app(self) -> Any:
        return self.faust.app

    async def start(self) -> None:
        await self.app.start()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.app.stop()
        self.sink.close()
        if self._server is not None:
            self._server.shutdown()

    async def wait_idle(self, timeout_s: float = 15.0) -> bool:
        """Until the counts agent has handled every aggregate the ingest agent sent."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.progress.deltas_handled >= self.progress.deltas_sent:
                return True
            await asyncio.sleep(0.1)
        return False


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


def build_worker(
    settings: Settings,
    bootstrap: str,
    db: Database,
    *,
    registry: CollectorRegistry | None = None,
    serve_metrics: bool = True,
    wall_clock: Callable[[], float] = time.time,
) -> Worker:
    # Faust's consumer loop spends most of its time creating tasks per message; the
    # patch delivers messages inline while the flow runs (docs/broker-and-faust.md).
    install_fast_drain()
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    registry = registry or CollectorRegistry()
    metrics = Metrics(registry)

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

    sink = Sink(db, metrics, retry_max_s=settings.sink_retry_max_s)
    progress = Progress()
    faust_app = create_app(settings, bootstrap)
    publisher = FaustPublisher(
        faust_app.app,
        {
            settings.dlq_topic: settings.partitions,
            settings.spikes_topic: 1,
            deltas_topic_name(settings): settings.partitions,
        },
    )

    ingest = IngestStep(
        processor=BatchProcessor(
            current_tagger,
            settings.max_message_bytes,
            Contract.load(contract_path(settings.schemas_dir)),
        ),
        sink=sink,
        offsets=DurableOffsetCache(db),
        videos=FaustTable(faust_app.videos),
        publisher=publisher,
        metrics=metrics,
        progress=progress,
        dlq_topic=settings.dlq_topic,
        deltas_topic=deltas_topic_name(settings),
        wall_clock=wall_clock,
    )
    counts = CountsStep(
        windows=FaustTable(faust_app.windows),
        detector=SpikeDetector(spike_config(settings)),
        sink=sink,
        publisher=publisher,
        metrics=metrics,
        progress=progress,
        spikes_topic=settings.spikes_topic,
        grace_ms=int(settings.window_grace_s * 1000),
        taxonomy_version=lambda: reloader.current().version,
        wall_clock=wall_clock,
    )
    attach_agents(faust_app, settings, ingest, counts)
    worker = Worker(settings, faust_app, sink, metrics, progress, reloader)
    if serve_metrics:
        server, _thread = start_http_server(
            settings.metrics_port, addr=settings.metrics_host, registry=registry
        )
        worker._server = server
        worker.metrics_url = f"http://{settings.metrics_host}:{server.server_port}/metrics"
    return worker


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


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def run_until(worker: Worker, stop: asyncio.Event) -> None:
    await worker.start()
    try:
        await stop.wait()
    finally:
        await worker.stop()
