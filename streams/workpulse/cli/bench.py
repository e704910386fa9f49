"""`workpulse bench …`: the benchmarks; each prints one JSON line."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson

from workpulse.cli.options import (
    CLICKHOUSE,
    KAFKA,
    SPIKES,
    UserError,
    settings_from,
    settings_options,
)


@click.group("bench")
def command() -> None:
    """Benchmarks; each prints one JSON line with medians and a same-run baseline."""


@command.command("tagging")
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
    from workpulse.dev.bench.tagging import run_tagging_bench
    from workpulse.dev.generator import WORK_SHARE
    from workpulse.processing.jsonl_tagging import BATCH_LINES

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
        raise UserError(str(exc)) from None
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


@command.command("pipeline")
@click.option(
    "--events",
    type=click.IntRange(min=100),
    default=200_000,
    show_default=True,
    help="Backlog of the synthetic workload read by the raw consumer and the worker(s).",
)
@click.option(
    "--rate",
    type=click.IntRange(min=1),
    default=20_000,
    show_default=True,
    help="Paced producer's rate for the latency run (lowered to half the measured "
    "pipeline rate if that is lower; the rate used is in the output).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=1.0),
    default=30.0,
    show_default=True,
    help="Seconds of paced producing for the latency run.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=8),
    default=1,
    show_default=True,
    help="With 2 or more: also N worker processes in one group on one ClickHouse.",
)
@click.option("--partitions", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Worker batch size [default: the setting's, WORKPULSE_BATCH_SIZE].",
)
@settings_options(*KAFKA, *CLICKHOUSE)
def bench_pipeline(
    events: int,
    rate: int,
    duration: float,
    workers: int,
    partitions: int,
    seed: int,
    batch_size: int | None,
    **kwargs: Any,
) -> None:
    """The hot path at broker speed: a raw aiokafka consumer's rate on a backlog, one
    worker process's rate on the same backlog (rows durable in ClickHouse), p50/p99
    latency from send to durable under a paced producer, and with --workers 2 two worker
    processes on one ClickHouse with an exactness check; CPU per 1,000 events, peak RSS,
    video-state memory per 1M videos, the metrics' cost. One JSON line on stdout,
    progress on stderr. Uses the embedded broker and ClickHouse unless configured.
    """
    from workpulse.dev.bench.pipeline import PipelineBench, run_pipeline_bench

    if workers > partitions:
        raise click.BadParameter(
            f"{workers} workers need at least {workers} partitions (a worker without "
            "partitions measures nothing)",
            param_hint="--partitions",
        )
    settings = settings_from(kwargs)
    bench = PipelineBench(
        events=events,
        rate=rate,
        duration_s=duration,
        workers=workers,
        partitions=partitions,
        seed=seed,
        batch_size=batch_size,
    )
    result = run_pipeline_bench(bench, settings, lambda line: click.echo(line, err=True))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


@command.command("alerts")
@click.option(
    "--null-weeks",
    type=click.FloatRange(min=0.0),
    default=2.0,
    show_default=True,
    help="Simulated weeks per topic without waves (false alarms, single-account bursts).",
)
@click.option(
    "--wave-weeks",
    type=click.FloatRange(min=0.0),
    default=2.0,
    show_default=True,
    help="Simulated weeks per topic with a wave every ~6 hours (recall, delay).",
)
@click.option(
    "--warmup-days",
    type=click.FloatRange(min=0.0),
    default=2.0,
    show_default=True,
    help="Simulated days before each run is measured (the baselines learn the rhythm).",
)
@click.option("--seed", type=int, default=None, help="Seed [default: the bench's own, 90210].")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes running topics in parallel [default: one per CPU]; results do not "
    "depend on it.",
)
@settings_options(*SPIKES)
def bench_alerts(
    null_weeks: float,
    wave_weeks: float,
    warmup_days: float,
    seed: int | None,
    jobs: int | None,
    **kwargs: Any,
) -> None:
    """How far spike alerts can be trusted, on simulated weeks of the nine topics.

    Null weeks with a daily rhythm and single-account bursts, then weeks with injected
    waves (videos, views, new authors, one language; step, ramp, spike; 1.5-10 ×),
    fed to the spike detector configured by the spike settings. Prints one JSON line:
    recall_3x_20_authors, false_alarms_per_topic_week, detect_windows_p95,
    single_account_alerts, recall by signal, shape and size, and the targets; progress
    goes to stderr. docs/spikes.md explains every figure.
    """
    from workpulse.dev.bench.alerts import DEFAULT_SEED, run_alerts_bench, stderr_progress
    from workpulse.worker.runtime import spike_config

    settings = settings_from(kwargs)
    result = run_alerts_bench(
        null_weeks=null_weeks,
        wave_weeks=wave_weeks,
        warmup_days=warmup_days,
        seed=DEFAULT_SEED if seed is None else seed,
        config=spike_config(settings),
        jobs=jobs,
        progress=stderr_progress,
    )
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
