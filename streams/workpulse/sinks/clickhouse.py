"""The ClickHouse sink: durable, idempotent, patient, and never stuck on bad rows.

`write` returns only once the rows are in ClickHouse. A transient failure (see
`sinks.retry.classify`) is counted, logged in one line and retried with capped
exponential backoff for as long as it lasts: the worker awaiting it takes no new
messages (its partitions are in effect paused), so Kafka offsets are never committed
past rows that are not durable. Every attempt of one batch carries the same
deduplication token, so a retry after an insert that did land (but whose answer was
lost) is dropped by ClickHouse instead of counted twice.

A batch that ClickHouse (or the client encoding it) refuses raises `RowsRefused`
instead: retrying cannot help. `isolate` then finds the rows to blame by bisecting the
batch against the table's `<table>_probe` twin (engine Null: it parses and checks rows
like the table but stores nothing), so finding them has no side effect; the worker
dead-letters those rows and writes the rest.

`abort` (a callable) is checked before each retry: when the worker loses its partitions
during an outage, the write gives up (`WriteAborted`) instead of inserting rows that
another worker now owns.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.util
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from workpulse.clickhouse import Database
from workpulse.errors import first_line
from workpulse.metrics import Metrics
from workpulse.model.rows import TableModel
from workpulse.sinks.retry import REFUSED, Backoff, classify

log = logging.getLogger(__name__)

PROBE_SUFFIX = "_probe"


class RowsRefused(Exception):
    """ClickHouse refuses this batch as it is (not a transient failure)."""


class WriteAborted(Exception):
    """The write was given up (the worker no longer owns the rows' partitions)."""


def batch_token(table: str, ranges: Iterable[tuple[str, int, int, int]], rows: int = 0) -> str:
    """Deterministic token for `rows` rows of `table` built from these source offset
    ranges (topic, partition, first offset, last offset)."""
    spec = ";".join(f"{t}/{p}/{a}-{b}" for t, p, a, b in sorted(ranges))
    return f"{table}:" + hashlib.sha1(f"{spec}#{rows}".encode()).hexdigest()


MESSAGE_CHARS = 500
"""How much of ClickHouse's message an error keeps (it quotes the data it refused)."""


def _import_insert_modules() -> None:
    if importlib.util.find_spec("pandas") is not None:
        importlib.import_module("pandas")


class Sink:
    def __init__(
        self,
        db: Database,
        metrics: Metrics,
        *,
        retry_max_s: float = 30.0,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.perf_counter,
        abort: Callable[[], bool] = lambda: False,
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._retry_max_s = retry_max_s
        self._sleep = sleep
        self._clock = clock
        self.abort = abort
        # One thread: ClickHouse calls block (chDB runs in-process), and must not
        # stall the event loop that keeps the Kafka consumers' heartbeats going.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workpulse-sink")
        self.failing_since: float | None = None

    async def warm_up(self) -> None:
        """Load what the first insert would: clickhouse-connect imports pandas (when it
        is installed) on its first insert, ~0.3-0.6 s that the first batch would wait."""
        await self.run(_import_insert_modules)

    async def run(self, func: Callable[[], Any]) -> Any:
        """Run a blocking database call on the sink thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, func)

    async def call(self, what: str, func: Callable[[], Any]) -> Any:
        """Run a read on the sink thread, retrying transient failures like writes."""
        backoff = Backoff(cap_s=self._retry_max_s)
        while True:
            try:
                return await self.run(func)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._wait_after(what, exc, backoff)

    async def _wait_after(self, what: str, exc: BaseException, backoff: Backoff) -> None:
        self._metrics.sink_failures.labels(what).inc()
        if self.failing_since is None:
            self.failing_since = self._clock()
        if self.abort():
            raise WriteAborted(f"{what}: {first_line(exc, MESSAGE_CHARS)}") from exc
        delay = backoff.next_delay()
        log.warning(
            "ClickHouse %s failed (%s); retrying in %.1fs, offsets held",
            what,
            first_line(exc, MESSAGE_CHARS),
            delay,
        )
        await self._sleep(delay)
        if self.abort():
            raise WriteAborted(f"{what}: {first_line(exc, MESSAGE_CHARS)}") from exc

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
                    if classify(exc) == REFUSED:
                        # Not counted as a failure of ClickHouse (the alert on them says
                        # writes are failing): the caller dead-letters the rows to blame,
                        # or counts the refusal if it must retry.
                        raise RowsRefused(first_line(exc, MESSAGE_CHARS)) from exc
                    await self._wait_after(table, exc, backoff)
                    continue
                self.failing_since = None
                self._metrics.sink_seconds.labels(table).observe(self._clock() - started)
                self._metrics.sink_rows.labels(table).inc(len(rows))
                return
        finally:
            self._metrics.sink_buffered_rows.dec(len(rows))

    async def _probe(self, model: TableModel, rows: Sequence[Sequence[Any]]) -> str | None:
        """None if the probe table takes `rows`, else why it refuses them (transient
        failures of the probe are retried like writes)."""
        backoff = Backoff(cap_s=self._retry_max_s)
        while True:
            try:
                await self.run(
                    lambda: self._db.insert(
                        model.name + PROBE_SUFFIX, model.columns, rows, types=model.types
                    )
                )
                return None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if classify(exc) == REFUSED:
                    return first_line(exc, MESSAGE_CHARS)
                await self._wait_after(model.name + PROBE_SUFFIX, exc, backoff)

    async def isolate(self, model: TableModel, rows: Sequence[Sequence[Any]]) -> dict[int, str]:
        """The rows of a refused batch to blame: index → ClickHouse's message.

        Empty when the batch as a whole passes the probe (so the failure was not about
        these rows), or when every row fails alone (a problem of the table, not of the
        data): the caller then retries instead of dead-lettering good rows."""
        whole = await self._probe(model, rows)
        if whole is None:
            return {}
        blamed: dict[int, str] = {}

        async def bisect(lo: int, hi: int, why: str) -> None:
            if hi - lo == 1:
                blamed[lo] = why
                return
            mid = (lo + hi) // 2
            for a, b in ((lo, mid), (mid, hi)):
                reason = await self._probe(model, rows[a:b])
                if reason is not None:
                    await bisect(a, b, reason)

        await bisect(0, len(rows), whole)
        if len(blamed) == len(rows) and len(rows) > 1:
            return {}
        return blamed

    def close(self) -> None:
        self._executor.shutdown(wait=True)
