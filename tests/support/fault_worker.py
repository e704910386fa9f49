"""`workpulse worker`, killed with SIGKILL at a chosen point (for the fault tests).

    WORKPULSE_TEST_CRASH_AT=<point>:<n> python -m tests.support.fault_worker

kills the process the n-th time it reaches <point>:
- `batch`: a batch was fetched, nothing of it is done;
- `dead_letters`: its dead letters are durable (a batch that had some), nothing else
  (they are written first);
- `video_rows`: its video_events rows are durable too, Kafka not sent;
- `kafka`: its dead letters and watermarks are acknowledged by Kafka (the batch was
  handled), offsets not committed;
- `commit`: offsets are committed (the n-th commit: while the ingest step holds a
  backlog's watermark reports back, a commit covers several batches);
- `spike`: the counts agent wrote a spike (ClickHouse and Kafka), its table not updated;
- `counts_error`: the counts step raises (a bug, or data it cannot take) instead of
  dying: the worker must stop with one error line, not stall.
Without the variable it is a plain worker. Test support only: the product has no hooks.

Two more variables widen a race of Faust's recovery (the seek fence in
`workpulse.worker.faust_tuning`): `WORKPULSE_TEST_SEEK_DELAY_S` waits that long after
each seek of Faust's consumer to the committed offsets, and `WORKPULSE_TEST_COUNTS_DELAY_S`
before each report the counts agent handles (its queue fills meanwhile).
`WORKPULSE_TEST_TABLES_DELAY_S` holds the start of Faust's tables that long (the
counts agent's start and recovery wait for it).
`WORKPULSE_TEST_SKIP_REPORTS=<n>` makes Faust's consumer lose the first n watermark
reports it reads (read, never delivered: a drop by the stream framework, as the race
above made one); the counts agent's report check must catch it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from workpulse.cli import run
from workpulse.model.rows import DEAD_LETTERS
from workpulse.worker import consumer, steps

POINTS = ("batch", "video_rows", "dead_letters", "kafka", "commit", "spike", "counts_error")


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _after(owner: Any, name: str, point: str, n: int, hits: list[int],
           when: Callable[..., bool] = lambda *a, **k: True) -> None:  # fmt: skip
    original = getattr(owner, name)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        if when(*args, **kwargs):
            hits[0] += 1
            if hits[0] == n:
                _die()
        return result

    setattr(owner, name, wrapper)


def _before(owner: Any, name: str, n: int, hits: list[int]) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        hits[0] += 1
        if hits[0] == n:
            _die()
        return await original(*args, **kwargs)

    setattr(owner, name, wrapper)


def _raise_in(owner: Any, name: str, n: int, hits: list[int]) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        hits[0] += 1
        if hits[0] == n:
            raise OverflowError("math range error (injected)")
        return await original(*args, **kwargs)

    setattr(owner, name, wrapper)


def _delay_after(owner: Any, name: str, seconds: float) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        await asyncio.sleep(seconds)
        return result

    setattr(owner, name, wrapper)


def _delay_before(owner: Any, name: str, seconds: float) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(seconds)
        return await original(*args, **kwargs)

    setattr(owner, name, wrapper)


def install_delays(seek_s: float, counts_s: float, tables_s: float = 0.0) -> None:
    """Before the worker is built: its seek fence then wraps the delayed seek."""
    from faust.tables.manager import TableManager
    from faust.transport.consumer import Consumer

    if tables_s > 0:
        _delay_before(TableManager, "on_start", tables_s)
    if seek_s > 0:
        _delay_after(Consumer, "perform_seek", seek_s)
    if counts_s > 0:
        _delay_before(steps.CountsStep, "handle", counts_s)


def install(point: str, n: int) -> None:
    hits = [0]
    if point == "batch":
        _before(steps.IngestStep, "handle", n, hits)
    elif point == "video_rows":
        _after(steps.IngestStep, "_write_video_rows", point, n, hits)
    elif point == "dead_letters":
        _after(
            steps.IngestStep,
            "_write",
            point,
            n,
            hits,
            when=lambda self, model, rows: model is DEAD_LETTERS and bool(rows),
        )
    elif point == "kafka":
        _after(steps.IngestStep, "handle", point, n, hits)
    elif point == "commit":
        _after(consumer.BatchConsumer, "_commit", point, n, hits)
    elif point == "spike":
        _after(steps.CountsStep, "_emit", point, n, hits)
    elif point == "counts_error":
        _raise_in(steps.CountsStep, "handle", n, hits)
    else:
        raise SystemExit(f"unknown crash point {point!r}: one of {', '.join(POINTS)}")


def skip_reports(n: int) -> None:
    from faust.transport.consumer import Consumer

    original = Consumer.getmany
    left = [n]

    async def getmany(self: Any, timeout: float) -> Any:
        async for tp, message in original(self, timeout=timeout):
            if left[0] > 0 and tp.topic.endswith("-watermarks"):
                left[0] -= 1
                continue
            yield tp, message

    Consumer.getmany = getmany  # type: ignore[method-assign]


if __name__ == "__main__":
    skip_reports(int(os.environ.get("WORKPULSE_TEST_SKIP_REPORTS", "0")))
    install_delays(
        float(os.environ.get("WORKPULSE_TEST_SEEK_DELAY_S", "0")),
        float(os.environ.get("WORKPULSE_TEST_COUNTS_DELAY_S", "0")),
        float(os.environ.get("WORKPULSE_TEST_TABLES_DELAY_S", "0")),
    )
    spec = os.environ.get("WORKPULSE_TEST_CRASH_AT")
    if spec:
        where, _, count = spec.partition(":")
        install(where, int(count or 1))
    sys.argv = ["workpulse", "worker"]
    run()
