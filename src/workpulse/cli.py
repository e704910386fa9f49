"""The `workpulse` command line.

Every verb reads its settings through `config.load_settings` (flags, then
WORKPULSE_* variables, then defaults). Errors a person sees are one line;
WORKPULSE_DEBUG=1 shows the traceback.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from workpulse import __version__
from workpulse.config import Settings, load_settings, settings_options

CONNECTION = ("clickhouse_url", "data_dir")
KAFKA = (
    "kafka_bootstrap",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_ssl_cafile",
)


class UserError(click.ClickException):
    """An error with a one-line explanation for the person at the terminal."""


def settings_from(kwargs: dict[str, Any]) -> Settings:
    overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in Settings.__dataclass_fields__}
    return load_settings(overrides)


def setup_logging(level: str, file: Path | None = None) -> None:
    """Log to stderr, or to `file` (the demo keeps the terminal for its live view)."""
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        filename=file,
    )
    # Faust and aiokafka are chatty at INFO; keep them to warnings unless asked.
    if level.upper() != "DEBUG":
        for name in ("faust", "mode", "aiokafka", "kafka"):
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="workpulse")
def main() -> None:
    """workpulse: watch a short-video stream for work topics (#QuitMyJob, layoffs,
    salary, burnout, strikes…), count them per minute, detect viral spikes.

    Start with `workpulse demo`. Every option can also be set with the
    WORKPULSE_* variable shown in each command's --help.
    """


@main.command()
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
    "data_dir", "metrics_port", "metrics_host", "partitions", "batch_size", "log_level"
)
def demo(
    events: int | None, input_path: Path | None, seed: int, as_json: bool, **kwargs: Any
) -> None:
    """Run the whole pipeline on embedded parts and stream a synthetic workload.

    Starts the embedded Kafka-compatible broker (Tansu) on a free port, the Faust
    worker, the embedded ClickHouse (chDB under the data directory, reset for the
    run) and /metrics; shows live progress; Ctrl-C stops everything. Ends with a
    summary read back from ClickHouse. Query it afterwards with `workpulse query`.
    """
    from rich.console import Console

    from workpulse.demo import run_demo
    from workpulse.runtime import run_async

    settings = settings_from(kwargs)
    log_file = settings.data_dir / "demo.log"
    setup_logging(settings.log_level, log_file)
    console = Console(stderr=as_json)
    console.print(f"[dim]workpulse demo: logs in {log_file}, Ctrl-C stops[/dim]")
    summary = run_async(
        run_demo(settings, console, events=events, input_path=input_path, seed=seed)
    )
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        console.print(summary.render())
    if not summary.accounted or not summary.counts_match_recount:
        raise UserError("the summary does not add up (see above)")


@main.command()
@settings_options(
    *KAFKA,
    *CONNECTION,
    "input_topic",
    "dlq_topic",
    "spikes_topic",
    "app_id",
    "kafka_session_timeout_s",
    "partitions",
    "metrics_host",
    "metrics_port",
    "batch_size",
    "batch_timeout_s",
    "window_grace_s",
    "max_message_bytes",
    "sink_retry_max_s",
    "lexicon_dir",
    "log_level",
)
def worker(**kwargs: Any) -> None:
    """Run a production worker against the configured Kafka and ClickHouse.

    Run more workers with the same --app-id to share the partitions. Offsets are
    committed only after rows are durable in ClickHouse; SIGTERM stops cleanly.
    """
    from workpulse.clickhouse import connect
    from workpulse.runtime import build_worker, install_stop_signals, run_async, run_until

    settings = settings_from(kwargs)
    setup_logging(settings.log_level)
    if not settings.kafka_bootstrap:
        raise UserError("no Kafka: set --kafka-bootstrap or WORKPULSE_KAFKA_BOOTSTRAP")
    db = connect(settings.clickhouse_url, settings.data_dir)

    async def run() -> None:
        w = build_worker(settings, settings.kafka_bootstrap or "", db)
        click.echo(f"workpulse worker {settings.app_id}: metrics on {w.metrics_url}", err=True)
        stop = asyncio.Event()
        install_stop_signals(stop)
        await run_until(w, stop)

    try:
        run_async(run())
    finally:
        db.close()


@main.command()
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
@settings_options(*KAFKA, "input_topic")
def produce(file: Path | None, events: int, seed: int, bad_fraction: float, **kwargs: Any) -> None:
    """Send events to Kafka: FILE (JSONL, one message per line) or the synthetic generator."""
    from workpulse.producer import produce_messages

    settings = settings_from(kwargs)
    if not settings.kafka_bootstrap:
        raise UserError("no Kafka: set --kafka-bootstrap or WORKPULSE_KAFKA_BOOTSTRAP")
    sent = produce_messages(
        settings, file=file, events=events, seed=seed, bad_fraction=bad_fraction
    )
    click.echo(f"sent {sent:,} messages to {settings.input_topic}", err=True)


@main.command()
@click.argument("file", required=False, type=click.File("rb"))
@settings_options("lexicon_dir")
def tag(file: io.BufferedReader | None, **kwargs: Any) -> None:
    """Tag JSONL events offline: FILE or stdin → the same objects with `topics` and
    `matched` added, on stdout. Invalid lines are reported on stderr with their number."""
    from workpulse.tag_command import run_tag
    from workpulse.tagging import load_tagger

    settings = settings_from(kwargs)
    tagger = load_tagger(settings.lexicon_dir)
    infile = file if file is not None else sys.stdin.buffer
    try:
        status = run_tag(infile, sys.stdout.buffer, sys.stderr, tagger)
    except BrokenPipeError:
        # `workpulse tag … | head` is fine.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 0
    except OSError as exc:
        raise UserError(f"I/O error: {exc}") from None
    sys.exit(status)


FORMATS = ("table", "csv", "json", "jsonl")


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


@main.command()
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@settings_options(*CONNECTION)
def query(sql: str, fmt: str, **kwargs: Any) -> None:
    """Run SQL on the configured ClickHouse (embedded chDB by default) and print it.

    Tables live in the `workpulse` database, e.g.
    workpulse query "SELECT topic, sum(videos) FROM workpulse.topic_counts_1m GROUP BY topic"
    """
    from workpulse.clickhouse import DatabaseError, connect

    settings = settings_from(kwargs)
    db = connect(settings.clickhouse_url, settings.data_dir)
    try:
        result = db.query(sql)
    except DatabaseError as exc:
        if "UNKNOWN_DATABASE" in str(exc):
            raise UserError(
                "no workpulse database here: run `workpulse init-db` (or `workpulse demo`) first"
            ) from None
        raise
    finally:
        db.close()
    cols, rows = result.column_names, result.rows
    out = sys.stdout
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(cols)
        writer.writerows([[_jsonable(v) for v in r] for r in rows])
    elif fmt in ("json", "jsonl"):
        objs = [dict(zip(cols, (_jsonable(v) for v in r), strict=True)) for r in rows]
        opts = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
        if fmt == "json":
            out.write(
                orjson.dumps(objs, default=str, option=opts | orjson.OPT_INDENT_2).decode() + "\n"
            )
        else:
            for obj in objs:
                out.write(orjson.dumps(obj, default=str, option=opts).decode() + "\n")
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(show_edge=False)
        for c in cols:
            table.add_column(c)
        for r in rows:
            table.add_row(*(str(_jsonable(v)) for v in r))
        Console().print(table)
        click.echo(f"{len(rows)} row{'s' if len(rows) != 1 else ''}", err=True)


@main.command("init-db")
@click.option(
    "--cluster", is_flag=True, help="Apply the cluster variant (Replicated + Distributed tables)."
)
@settings_options(*CONNECTION)
def init_db(cluster: bool, **kwargs: Any) -> None:
    """Create or migrate the ClickHouse schema (idempotent) from schemas/clickhouse/."""
    from workpulse.clickhouse import apply_schema, connect

    settings = settings_from(kwargs)
    db = connect(settings.clickhouse_url, settings.data_dir)
    try:
        applied = apply_schema(db, cluster=cluster)
    finally:
        db.close()
    click.echo(f"schema applied: {len(applied)} files ({', '.join(applied)})", err=True)


@main.group()
def bench() -> None:
    """Benchmarks; each prints one JSON line with medians and a same-run baseline."""


@bench.command("tagging")
@click.option("--events", type=click.IntRange(min=100), default=50_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--work-share",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Share of published videos (outside the viral wave) that are about work "
    "[default: the demo workload's, 0.35]; a platform's whole stream has far fewer.",
)
@click.option(
    "--engine",
    # tagging.ENGINES, written out so that the CLI starts without importing the tagger
    type=click.Choice(["compiled", "python"]),
    default=None,
    help="Tagging engine [default: the compiled one when it is built]; both give the same "
    "results, the Python one is the reference.",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=None,
    help="Events per tag_batch call [default: `workpulse tag`'s, 100]; larger batches "
    "evict the tagger's tables from the CPU caches.",
)
def bench_tagging(
    events: int, seed: int, work_share: float | None, engine: str | None, batch: int | None
) -> None:
    """Decode + tag + encode vs plain orjson decode + encode of the same events.

    Prints one JSON line: the median rates of 7 paired passes (decode, then tag with
    emptied caches), `ratio` (median of the pair ratios; the target is 0.5), the cost
    per event of decoding, of the pass around the tagger and of the tagger per publish
    event, the engine, cache hit rates, how many events got a topic, and the machine.
    """
    from workpulse.bench_tagging import run_tagging_bench
    from workpulse.generator import WORK_SHARE
    from workpulse.tag_command import BATCH_LINES

    share = WORK_SHARE if work_share is None else work_share
    try:
        result = run_tagging_bench(
            events,
            seed=seed,
            work_share=share,
            engine=engine,
            batch=BATCH_LINES if batch is None else batch,
        )
    except RuntimeError as exc:  # the compiled engine was asked for but is not built
        raise click.ClickException(str(exc)) from None
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


def run() -> None:
    """Entry point with one-line errors."""
    try:
        main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        if os.environ.get("WORKPULSE_DEBUG"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        click.echo(f"workpulse: error: {message} (WORKPULSE_DEBUG=1 shows the traceback)", err=True)
        sys.exit(1)
