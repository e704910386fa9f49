"""The sink retries until durable, with the same token, and counts failures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from workpulse.metrics import Metrics
from workpulse.model.rows import TableModel
from workpulse.sinks.clickhouse import RowsRefused, Sink, WriteAborted, batch_token
from workpulse.sinks.retry import REFUSED, TRANSIENT, classify

TABLE = TableModel("t", tuple, ("a",), ("UInt8",))


class FlakyDatabase:
    """Fails the first `failures` inserts; records every attempt's token."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: list[str | None] = []
        self.rows: list[Sequence[Any]] = []

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        dedup_token: str | None = None,
        types: Sequence[str] | None = None,
    ) -> None:
        self.attempts.append(dedup_token)
        if len(self.attempts) <= self.failures:
            raise ConnectionError("Connection refused")
        self.rows.extend(rows)


@pytest.mark.parametrize("failures", [0, 1, 5])
def test_write_retries_until_durable(failures: int) -> None:
    db = FlakyDatabase(failures)
    metrics = Metrics(CollectorRegistry())
    sleeps: list[float] = []

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    sink = Sink(db, metrics, retry_max_s=1.0, sleep=fake_sleep)  # type: ignore[arg-type]
    try:
        asyncio.run(sink.write(TABLE, [(1,), (2,)], "tok"))
    finally:
        sink.close()
    assert db.rows == [(1,), (2,)]
    assert db.attempts == ["tok"] * (failures + 1)
    assert sleeps == [min(0.2 * 2**i, 1.0) for i in range(failures)]
    reg = metrics.registry
    assert (reg.get_sample_value("workpulse_sink_failures_total", {"table": "t"}) or 0) == failures
    assert reg.get_sample_value("workpulse_sink_rows_total", {"table": "t"}) == 2
    assert reg.get_sample_value("workpulse_sink_buffered_rows") == 0


class OverflowingDatabase(FlakyDatabase):
    def insert(self, *args: Any, **kwargs: Any) -> None:
        raise OverflowError("int too big to convert")


def test_rows_refused_are_not_counted_as_clickhouse_failing() -> None:
    # The caller dead-letters them: WorkpulseClickHouseWritesFailing (an outage, offsets
    # held) fired on a stream of events the database cannot hold.
    metrics = Metrics(CollectorRegistry())
    sink = Sink(OverflowingDatabase(0), metrics, retry_max_s=1.0)  # type: ignore[arg-type]
    try:
        with pytest.raises(RowsRefused):
            asyncio.run(sink.write(TABLE, [(1,)], "tok"))
    finally:
        sink.close()
    failures = metrics.registry.get_sample_value("workpulse_sink_failures_total", {"table": "t"})
    assert (failures or 0) == 0


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ([("in", 0, 1, 5)], [("in", 0, 1, 5)], True),
        ([("in", 0, 1, 5), ("in", 1, 0, 3)], [("in", 1, 0, 3), ("in", 0, 1, 5)], True),
        ([("in", 0, 1, 5)], [("in", 0, 1, 6)], False),
        ([("in", 0, 1, 5)], [("in", 1, 1, 5)], False),
    ],
)
def test_batch_token_is_deterministic(a: list, b: list, same: bool) -> None:
    assert (batch_token("video_events", a) == batch_token("video_events", b)) is same
    assert batch_token("video_events", a) != batch_token("dead_letters", a)


class FakeClickHouseError(Exception):
    pass


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ConnectionRefusedError("Connection refused"), TRANSIENT),
        (TimeoutError("timed out"), TRANSIENT),
        (FakeClickHouseError("Code: 241. DB::Exception: Memory limit exceeded"), TRANSIENT),
        (
            FakeClickHouseError("Code: 60. DB::Exception: Table doesn't exist (UNKNOWN_TABLE)"),
            TRANSIENT,
        ),
        (FakeClickHouseError("Code: 252. DB::Exception: Too many parts"), TRANSIENT),
        (FakeClickHouseError("Code: 53. DB::Exception: Type mismatch (TYPE_MISMATCH)"), REFUSED),
        (FakeClickHouseError("Code: 469. DB::Exception: Constraint violated"), REFUSED),
        (OverflowError("int too big to convert"), REFUSED),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), REFUSED),
        (TypeError("unsupported type"), REFUSED),
        (RuntimeError("something nobody foresaw"), TRANSIENT),  # hold offsets, don't guess
    ],
)
def test_classify(exc: BaseException, kind: str) -> None:
    assert classify(exc) == kind


def test_classify_looks_through_the_cause() -> None:
    try:
        try:
            raise OverflowError("int too big to convert")
        except OverflowError as inner:
            raise RuntimeError("insert into workpulse.video_events failed") from inner
    except RuntimeError as outer:
        assert classify(outer) == REFUSED


class RefusingDatabase:
    """Refuses any insert holding a row whose value is 'bad' (table and probe alike)."""

    def __init__(self, always: bool = False) -> None:
        self.always = always
        self.probes: list[str] = []

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        dedup_token: str | None = None,
        types: Sequence[str] | None = None,
    ) -> None:
        if table.endswith("_probe"):
            self.probes.append(table)
        if self.always or any(r[0] == "bad" for r in rows):
            raise FakeClickHouseError("Code: 53. DB::Exception: Type mismatch (TYPE_MISMATCH)")


@pytest.mark.parametrize(
    ("values", "blamed"),
    [
        (["ok"] * 10, set()),  # the batch passes the probe: not these rows' fault
        (["ok", "bad", "ok", "ok"], {1}),
        (["bad"] + ["ok"] * 30 + ["bad"], {0, 31}),
        (["bad"], {0}),
    ],
)
def test_isolate_finds_the_rows_to_blame(values: list[str], blamed: set[int]) -> None:
    db = RefusingDatabase()
    sink = Sink(db, Metrics(CollectorRegistry()))  # type: ignore[arg-type]
    rows = [(v,) for v in values]
    try:
        with pytest.raises(RowsRefused) if blamed else contextlib.nullcontext():
            asyncio.run(sink.write(TABLE, rows, "tok"))
        found = asyncio.run(sink.isolate(TABLE, rows))
    finally:
        sink.close()
    assert set(found) == blamed
    assert all("TYPE_MISMATCH" in why for why in found.values())
    assert set(db.probes) <= {"t_probe"}


def test_isolate_blames_nothing_when_every_row_fails() -> None:
    """Every row refused alone: a problem of the table, not of the data."""
    sink = Sink(RefusingDatabase(always=True), Metrics(CollectorRegistry()))  # type: ignore[arg-type]
    try:
        assert asyncio.run(sink.isolate(TABLE, [("ok",)] * 8)) == {}
    finally:
        sink.close()


def test_a_write_gives_up_when_aborted() -> None:
    db = FlakyDatabase(failures=100)

    async def no_sleep(_: float) -> None:
        return None

    aborted = [False]

    async def run() -> None:
        sink = Sink(db, Metrics(CollectorRegistry()), sleep=no_sleep, abort=lambda: aborted[0])  # type: ignore[arg-type]
        try:
            task = asyncio.create_task(sink.write(TABLE, [(1,)], "tok"))
            while len(db.attempts) < 3:
                await asyncio.sleep(0)
            aborted[0] = True
            with pytest.raises(WriteAborted):
                await task
        finally:
            sink.close()

    asyncio.run(run())
