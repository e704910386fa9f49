"""`workpulse worker`: a production worker against the configured Kafka and ClickHouse."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from workpulse.cli.logs import setup_logging
from workpulse.cli.options import (
    CLICKHOUSE,
    KAFKA,
    LEXICON,
    SPIKES,
    UserError,
    settings_from,
    settings_options,
)


@click.command("worker")
@settings_options(
    *KAFKA,
    *CLICKHOUSE,
    "input_topic",
    "dlq_topic",
    "spikes_topic",
    "app_id",
    "kafka_session_timeout_s",
    "partitions",
    "metrics_host",
    "metrics_port",
    "batch_size",
    "batch_max_bytes",
    "batch_timeout_s",
    "window_grace_s",
    "max_message_bytes",
    "sink_retry_max_s",
    "schemas_dir",
    *LEXICON,
    "lexicon_reload_s",
    *SPIKES,
    "log_level",
)
def command(**kwargs: Any) -> None:
    """Run a production worker against the configured Kafka and ClickHouse.

    Run more workers with the same --app-id to share the partitions. Offsets are
    committed only after rows are durable in ClickHouse; SIGTERM (or Ctrl-C) stops
    cleanly, a second one exits at once (what was not committed is replayed).
    """
    from workpulse.clickhouse import connect, missing_tables
    from workpulse.worker.collector import GcThresholds, tune_gc
    from workpulse.worker.runtime import (
        build_worker,
        install_stop_signals,
        run_async,
        run_until,
    )

    settings = settings_from(kwargs)
    setup_logging(settings.log_level)
    if not settings.kafka_bootstrap:
        raise UserError("no Kafka: set --kafka-bootstrap or WORKPULSE_KAFKA_BOOTSTRAP")
    db = connect(settings.clickhouse_url_value, settings.data_dir, create=False)
    try:
        missing = missing_tables(db, settings.schemas_dir)
    except Exception:
        db.close()
        raise
    if missing:
        where = db.transport.describe()
        db.close()
        raise UserError(
            f"{where} has no workpulse tables ({', '.join(missing)}): run `workpulse init-db` "
            "with the same settings first"
        )

    async def run() -> None:
        gc_thresholds = GcThresholds(settings.batch_size)
        w = build_worker(settings, settings.kafka_bootstrap or "", db, on_batch=gc_thresholds.batch)
        tune_gc()
        click.echo(f"workpulse worker {settings.app_id}: metrics on {w.metrics_url}", err=True)
        stop = asyncio.Event()
        install_stop_signals(stop)
        await run_until(w, stop)

    try:
        run_async(run())
    finally:
        db.close()
