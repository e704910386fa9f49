"""`workpulse spikes`: recompute spike alerts from ClickHouse alone and print them."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import click
import orjson

from workpulse.cli.options import (
    CLICKHOUSE,
    SPIKES,
    UserError,
    reader_may_leave,
    result_stream,
    settings_from,
    settings_options,
)

FORMATS = ("table", "json", "jsonl")
MINUTE_MS = 60_000


def parse_time(value: str, flag: str) -> int:
    """RFC 3339 / ISO 8601 (a date, a date and time, with an offset or `Z`; UTC when
    none) → epoch milliseconds."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UserError(f"{flag}: {value!r} is not a date or time like 2026-01-31T18:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    # Held to the times an event can have (1970-2106): `--to 9999-12-31T23:59-12:00`,
    # in year 10000 in UTC, ended in "year 10000 is out of range", naming no flag.
    from workpulse.processing.contract import EVENT_TIME_FIRST_MS, EVENT_TIME_LAST_MS

    return max(EVENT_TIME_FIRST_MS, min(int(when.timestamp() * 1000), EVENT_TIME_LAST_MS + 1))


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")


def _finite(value: float | None) -> float | None:
    """inf and nan are no number of hours (inf ended in "cannot convert float infinity
    to integer")."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of hours")
    return value


@click.command("spikes")
@click.option(
    "--from",
    "start",
    default=None,
    help="First window whose alerts are printed (e.g. 2026-01-31, 2026-01-31T18:00Z; UTC "
    "when no offset) [default: the first minute with data].",
)
@click.option(
    "--to",
    "end",
    default=None,
    help="End of the replay, exclusive [default: the minute after the last event].",
)
@click.option(
    "--history-hours",
    type=click.FloatRange(min=0.0),
    default=None,
    callback=lambda _ctx, _param, value: _finite(value),
    help="Feed the detector only this many hours before --from [default: all the data, "
    "as a worker that ran from the start].",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "--copycat/--no-copycat",
    default=False,
    help="Also print each wave's copycat index (table: after the alerts; json: a second document).",
)
@settings_options(*CLICKHOUSE, *SPIKES)
def command(
    start: str | None,
    end: str | None,
    history_hours: float | None,
    fmt: str,
    copycat: bool,
    **kwargs: Any,
) -> None:
    """Recompute the spike alerts of a period from ClickHouse alone.

    Reads the per-minute observations (new videos, view gains, new authors, who is
    behind them) from workpulse.video_events and workpulse.topic_author_first_seen and
    feeds them, minute by minute and topic by topic, to the same spike detector as the
    worker, configured by the same WORKPULSE_SPIKE_* settings. Writes nothing.
    """
    out = result_stream()
    from workpulse.clickhouse import DatabaseError, connect
    from workpulse.clickhouse.copycat import wave_uptake
    from workpulse.processing.spikes import SpikeDetector, replay
    from workpulse.worker.minutes import read_observations, time_range
    from workpulse.worker.runtime import spike_config

    settings = settings_from(kwargs)
    db = connect(settings.clickhouse_url_value, settings.data_dir, create=False)
    try:
        span = time_range(db)
        if span is None:
            raise UserError("no events in ClickHouse: nothing to replay")
        first_ms, last_ms = span
        end_ms = parse_time(end, "--to") if end else (last_ms // MINUTE_MS + 1) * MINUTE_MS
        report_ms = parse_time(start, "--from") if start else first_ms // MINUTE_MS * MINUTE_MS
        if report_ms >= end_ms:
            if end:
                raise UserError("--from must be before --to")
            raise UserError(f"--from {start} is after the last event ({iso(last_ms)})")
        feed_ms = first_ms // MINUTE_MS * MINUTE_MS
        if history_hours is not None:
            feed_ms = max(feed_ms, report_ms - int(history_hours * 3_600_000))
        observations = read_observations(db, feed_ms, end_ms)
        waves = wave_uptake(db) if copycat else []
    except DatabaseError as exc:
        if "UNKNOWN_DATABASE" in str(exc) or "UNKNOWN_TABLE" in str(exc):
            raise UserError("no workpulse schema here: run `workpulse init-db` first") from None
        raise
    finally:
        db.close()

    alerts = replay(
        SpikeDetector(spike_config(settings)),
        observations,
        until_ms=end_ms,
        report_from_ms=report_ms,
    )
    if fmt == "table":
        with reader_may_leave():
            _table(alerts, waves, report_ms, end_ms)
            out.flush()
        return
    docs: list[Any] = [[{"window_start": iso(s.window_start_ms), **s.to_dict()} for s in alerts]]
    if copycat:
        docs.append([w.to_dict() for w in waves])
    with reader_may_leave():
        for doc in docs:
            if fmt == "json":
                out.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
            else:
                for obj in doc:
                    out.write(orjson.dumps(obj).decode() + "\n")
        out.flush()


def _table(alerts: list[Any], waves: list[Any], report_ms: int, end_ms: int) -> None:
    from rich.console import Console
    from rich.table import Table

    from workpulse.terminal import cell

    table = Table(
        title=f"spike alerts {iso(report_ms)} – {iso(end_ms)} ({len(alerts)})", show_edge=False
    )
    for col in ("minute", "topic", "signal", "severity"):
        table.add_column(col)
    for col in ("observed/expected", "score", "authors (new)"):
        table.add_column(col, justify="right")
    table.add_column("top hashtags")
    for s in alerts:
        minutes = "" if s.windows == 1 else f" +{s.windows - 1}"
        table.add_row(
            iso(s.window_start_ms)[5:16].replace("T", " ") + minutes,
            cell(s.topic),
            cell(s.metric + (f"/{s.lang}" if s.lang else "")),
            s.severity,
            f"{s.observed:,.0f}/{s.expected:,.1f}",
            f"{s.score:.1f}",
            f"{s.distinct_authors:,} ({s.new_author_share:.0%})",
            cell(" ".join("#" + h.lstrip("#") for h, _ in s.top_hashtags[:2])),
        )
    console = Console(emoji=False, markup=False, highlight=False)
    console.print(table)
    if waves:
        copy = Table(title="copycat index per wave (24 h after its first alert)", show_edge=False)
        for col in ("wave start", "topic", "signature"):
            copy.add_column(col)
        for col in ("new authors", "adopters", "before/h", "index", "peak"):
            copy.add_column(col, justify="right")
        for w in waves:
            copy.add_row(
                w.wave_start.strftime("%m-%d %H:%M"),
                cell(w.topic),
                cell(" ".join("#" + h.lstrip("#") for h in w.signature[:3])),
                f"{w.new_authors:,}",
                f"{w.adopters:,}",
                f"{w.baseline_adopters_per_hour:.2f}",
                f"{w.copycat_index:.1f}",
                f"{w.peak_copycat_index:.1f}",
            )
        console.print(copy)
