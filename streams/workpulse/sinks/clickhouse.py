"""The ClickHouse sink: durable, idempotent, patient.

`write` returns only once the rows are in ClickHouse. A failure is counted, logged
in one line and retried with capped exponential backoff, forever: the agent that
awaits it stops taking messages, so Kafka offsets are never committed past rows
that are not durable. Every attempt of one batch carries the same deduplication
token, so a retry after an insert that did land (but whose answer was lost) is
dropped by ClickHouse instead of counted twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from workpulse.clickhouse import Database
from workpulse.metrics import Metrics
from workpulse.model.rows import TableModel
from workpulse.sinks.retry import Backoff

log = logging.getLogger(__name__)


def batch_token(table: str, ranges: Iterable[tuple[str, int, int, int]]) -> str:
    """Deterministic token for the rows of `table` built from these source offset
    ranges (topic, partition, first offset, last offset)."""
    spec = ";".join(f"{t}/{p}/{a}-{b}" for t, p, a, b in sorted(ranges))
    return f"{table}:" + hashlib.sha1(spec.encode()).hexdigest()


class Sink:
    def __init__(
        self,
        db: Database,
        metrics: Metrics,
        *,
        retry_max_s: float = 30.0,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._retry_max_s = retry_max_s
        self._sleep = sleep
        self._clock = clock
        # One thread: ClickHouse calls block (chDB runs in-process), and must not
        # stall the event loop that keeps the Kafka consumer's heartbeats going.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workpulse-sink")
        self.failing_since: float | None = None

    async def run(self, func: Callable[[], Any]) -> Any:
        """Run a blocking database call on the sink thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, func)

    async def write(self, model: TableModel, rows: Sequence[Sequence[Any]], token: str) -> None:
        """Insert `rows` of `model`'s table; returns once they are durable."""
        if not rows:
            return
        table = model.name
        self._metrics.sink_buffered_rows.inc(len(rows))
        backoff = Backoff(cap_s=self._retry_max_s)
        try:
            while True:
                started = self._clock()
                try:
                    await self.run(
                        lambda: self._db.insert(
                            table, model.columns, rows, dedup_token=token, types=model.types
                        )
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._metrics.sink_failures.labels(table).inc()
                    if self.failing_since is None:
                        self.failing_since = self._clock()
                    delay = backoff.next_delay()
                    log.warning(
                        "ClickHouse insert into %s failed (%s); retrying in %.1fs, offsets held",
                        table,
                        str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__,
                        delay,
                    )
                    await self._sleep(delay)
                    continue
                self.failing_since = None
                self._metrics.sink_seconds.labels(table).observe(self._clock() - started)
                self._metrics.sink_rows.labels(table).inc(len(rows))
                return
        finally:
            self._metrics.sink_buffered_rows.dec(len(rows))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
