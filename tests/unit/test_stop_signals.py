"""How a worker (and the demo) stops on SIGINT/SIGTERM: the first signal asks for a clean
stop; a second exits at once (a clean stop can wait minutes on a ClickHouse that hangs)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable

import pytest

from workpulse.worker.runtime import install_stop_signals, stop_saying_why


async def _deliver(signals: list[signal.Signals], exits_expected: int) -> tuple[bool, list[int]]:
    """Send `signals` to this process one at a time, each once the loop has handled the
    one before (waited for as a condition, never a fixed sleep)."""
    stop = asyncio.Event()
    exits: list[int] = []
    install_stop_signals(stop, exits.append)
    loop = asyncio.get_running_loop()

    async def until(done: Callable[[], bool]) -> None:
        for _ in range(500):
            if done():
                return
            await asyncio.sleep(0.01)

    try:
        for i, sig in enumerate(signals):
            os.kill(os.getpid(), sig)
            if i == 0:
                await until(stop.is_set)
        await until(lambda: len(exits) >= exits_expected)
        return stop.is_set(), exits
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@pytest.mark.parametrize(
    ("signals", "exits"),
    [
        ([signal.SIGTERM], []),
        ([signal.SIGINT], []),
        ([signal.SIGTERM, signal.SIGTERM], [143]),
        ([signal.SIGINT, signal.SIGINT], [130]),
        ([signal.SIGTERM, signal.SIGINT], [130]),
    ],
)
def test_the_first_signal_stops_cleanly_and_a_second_exits_at_once(
    signals: list[signal.Signals], exits: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="workpulse.worker.runtime"):
        stopped, exited = asyncio.run(_deliver(signals, len(exits)))
    assert stopped
    assert exited == exits
    said = [r.getMessage() for r in caplog.records if r.name == "workpulse.worker.runtime"]
    if exits:
        assert said == [
            f"second {signals[-1].name}: exiting now without waiting; what was not "
            "committed is replayed"
        ]
    else:
        assert said == []


class _SlowWorker:
    def __init__(self, stop_s: float) -> None:
        self.stop_s = stop_s
        self.stopped = False

    async def stop(self) -> None:
        await asyncio.sleep(self.stop_s)
        self.stopped = True


@pytest.mark.parametrize(("stop_s", "hinted"), [(0.0, False), (0.3, True)])
def test_a_slow_stop_says_how_to_exit_at_once(
    stop_s: float, hinted: bool, caplog: pytest.LogCaptureFixture
) -> None:
    worker = _SlowWorker(stop_s)
    with caplog.at_level(logging.WARNING, logger="workpulse.worker.runtime"):
        asyncio.run(stop_saying_why(worker, hint_after_s=0.1))  # type: ignore[arg-type]
    assert worker.stopped
    said = [r.getMessage() for r in caplog.records if "still stopping" in r.getMessage()]
    assert len(said) == (1 if hinted else 0)
    if hinted:
        assert "press Ctrl-C again to exit now" in said[0]
