"""`workpulse report`: a self-contained HTML page from ClickHouse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from workpulse.cli.options import (
    CLICKHOUSE,
    SPIKES,
    UserError,
    reader_may_leave,
    result_stream,
    settings_from,
    settings_options,
)


@click.command("report")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="HTML file to write, or - for stdout (default: report.html in the data directory).",
)
@settings_options(*CLICKHOUSE, *SPIKES)
def command(output: Path | None, **kwargs: Any) -> None:
    """Write an HTML report from ClickHouse: per-topic timelines with the spike
    detector's expected value and band and the alerts marked, share of voice by topic
    and language, top videos, the copycat index of each wave. One file, no network
    needed to view it."""
    from workpulse.clickhouse import DatabaseError, connect
    from workpulse.report import collect, render, write_report
    from workpulse.worker.minutes import read_observations
    from workpulse.worker.runtime import spike_config

    out = result_stream() if output == Path("-") else None
    settings = settings_from(kwargs)
    db = connect(settings.clickhouse_url_value, settings.data_dir, create=False)
    try:
        data = collect(db, read_observations, spike_config(settings))
    except DatabaseError as exc:
        if "UNKNOWN_DATABASE" in str(exc) or "UNKNOWN_TABLE" in str(exc):
            raise UserError(
                f"no workpulse data in {db.transport.describe()}: run `workpulse demo`, "
                "or `workpulse init-db` and a worker"
            ) from exc
        raise
    finally:
        db.close()
    if out is not None:
        with reader_may_leave():
            out.write(render(data))
            out.flush()
        return
    path = write_report(data, output or settings.data_dir / "report.html")
    click.echo(f"report written to {path}")
