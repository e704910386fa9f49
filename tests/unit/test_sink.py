"""The sink retries until durable, with the same token, and counts failures."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from workpulse.metrics import Metrics
from workpulse.model.rows import TableModel
from workpulse.sinks.clickhouse import Sink, batch_token

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
