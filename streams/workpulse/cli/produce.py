"""`workpulse produce`: send a JSONL file or the synthetic workload to Kafka."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from workpulse.cli.options import KAFKA, UserError, settings_from, settings_options


@click.command("produce")
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--events",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Generator: messages to send.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Generator seed.")
@click.option(
    "--bad-fraction",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Generator: share of malformed messages.",
)
@click.option(
    "--ack-timeout",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Longest wait, in seconds, for Kafka to acknowledge what was sent once every "
    "message is handed over; then the command says how many were acknowledged, exit 1.",
)
@settings_options(*KAFKA, "input_topic")
def command(
    file: Path | None,
    events: int,
    seed: int,
    bad_fraction: float,
    ack_timeout: float,
    **kwargs: Any,
) -> None:
    """Send events to Kafka: FILE (JSONL, one message per line) or the synthetic generator."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from workpulse.kafka.producer import (
        FileMessage,
        SendTimeout,
        count_lines,
        file_messages,
        send_messages,
    )
    from workpulse.kafka.settings import connection

    settings = settings_from(kwargs)
    if not settings.kafka_bootstrap:
        raise UserError("no Kafka: set --kafka-bootstrap or WORKPULSE_KAFKA_BOOTSTRAP")
    messages: Iterator[FileMessage]
    if file is not None:
        total = count_lines(file)
        messages = file_messages(file)
    else:
        from workpulse.dev.generator import Workload, WorkloadConfig

        total = events
        config = WorkloadConfig(seed=seed, bad_fraction=bad_fraction)
        messages = Workload(config).messages(events)
    columns = (TextColumn("producing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("produce", total=total)
        try:
            report = send_messages(
                connection(settings),
                settings.input_topic,
                messages,
                lambda n: bar.update(task, completed=n),
                flush_timeout_s=ack_timeout,
            )
        except (SendTimeout, KeyboardInterrupt) as exc:
            # A producer left with messages Kafka never acknowledged cannot be closed
            # (kafka-python raises, and again from its finaliser at exit, a traceback):
            # the process ends here, its output flushed.
            bar.stop()
            click.echo("aborted" if isinstance(exc, KeyboardInterrupt) else f"Error: {exc}",
                       err=True)  # fmt: skip
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130 if isinstance(exc, KeyboardInterrupt) else 1)
    click.echo(f"sent {report.sent:,} messages to {settings.input_topic}", err=True)
    if report.failed:  # the others were sent; the exit status says not all were
        raise UserError(report.failure_summary("line" if file is not None else "message"))
