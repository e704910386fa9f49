"""How a worker (and the demo) stops on SIGINT/SIGTERM: the first signal asks for a clean
stop; a second exits at once (a clean stop can wait minutes on a ClickHouse that hangs)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from workpulse.worker.runtime import Worker, install_stop_signals, run_until, stop_saying_why


async def until(done: Callable[[], object], timeout_s: float = 5.0) -> None:
    """Let the loop run until `done()` (a condition, never a fixed sleep)."""
    for _ in range(int(timeout_s / 0.01)):
        if done():
            return
        await asyncio.sleep(0.01)


def remove_handlers() -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)


class _Stop(asyncio.Event):
    """An event that counts its `set` calls (the first signal's, even when already set)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def set(self) -> None:
        self.calls += 1
        super().set()


async def _deliver(signals: list[signal.Signals], stop_set_before: bool) -> tuple[bool, list[int]]:
    """Send `signals` to this process one at a time, each once the loop has handled the
    one before (the first sets `stop`, the second exits)."""
    stop = _Stop()
    if stop_set_before:
        stop.set()  # as the demo does when its run is done
    calls_before = stop.calls
    exits: list[int] = []
    install_stop_signals(stop, exits.append)
    try:
        for i, sig in enumerate(signals):
            os.kill(os.getpid(), sig)
            if i == 0:
                await until(lambda: stop.calls > calls_before)
            else:
                await until(lambda: exits)
        return stop.is_set(), exits
    finally:
        remove_handlers()


@pytest.mark.parametrize(
    ("signals", "stop_set_before", "exits"),
    [
        ([signal.SIGTERM], False, []),
        ([signal.SIGINT], False, []),
        ([signal.SIGTERM, signal.SIGTERM], False, [signal.SIGTERM]),
        ([signal.SIGINT, signal.SIGINT], False, [signal.SIGINT]),
        ([signal.SIGTERM, signal.SIGINT], False, [signal.SIGINT]),
        # the demo ends its run by setting `stop`: a Ctrl-C then is still the first
        ([signal.SIGINT], True, []),
        ([signal.SIGINT, signal.SIGINT], True, [signal.SIGINT]),
    ],
)
def test_the_first_signal_stops_cleanly_and_a_second_exits_at_once(
    signals: list[signal.Signals],
    stop_set_before: bool,
    exits: list[int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="workpulse.worker.runtime"):
        stopped, exited = asyncio.run(_deliver(signals, stop_set_before))
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


def test_a_second_signal_is_taken_while_the_sinks_wait_for_a_hung_call() -> None:
    """Closing the sinks waits for their call in flight (as long as a hung server's
    send_receive_timeout): the loop must still take the second signal meanwhile."""
    closing = threading.Event()
    release = threading.Event()

    def close_clients() -> None:
        closing.set()
        release.wait(3.0)
        closing.clear()

    async def nothing() -> None:
        return None

    parts = SimpleNamespace(stop=nothing)
    worker: Any = SimpleNamespace(
        _lag_task=None, consumer=parts, app=parts, publisher=parts,
        close_clients=close_clients, _server=None, failure=None,
    )  # fmt: skip
    taken: list[tuple[int, bool]] = []

    def exit_now(signum: int) -> None:
        taken.append((signum, closing.is_set()))  # still waiting in close_clients?
        release.set()

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop, exit_now)
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            await until(stop.is_set)
            stopping = asyncio.ensure_future(Worker.stop(worker))
            await until(closing.is_set)
            os.kill(os.getpid(), signal.SIGTERM)
            await until(lambda: taken)
            await stopping
        finally:
            release.set()
            remove_handlers()

    asyncio.run(main())
    assert taken == [(signal.SIGTERM, True)]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_exiting_at_once_dies_of_the_signal_with_the_output_flushed(signum: int) -> None:
    """A parent sees a death by the signal (a shell: 143/130, and a script stops), and
    what was printed or logged just before is not lost in a buffer."""
    code = (
        "import logging, sys\n"
        "from workpulse.worker.runtime import die_of\n"
        "logging.basicConfig(stream=sys.stdout, format='%(message)s')\n"
        "print('printed', end=' ')\n"
        "logging.getLogger('t').warning('logged')\n"
        f"die_of({int(signum)})\n"
        "print('not reached')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == -signum, done.stderr
    assert done.stdout == "printed logged\n"


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


@pytest.mark.parametrize("ingest_started", [True, False])
def test_a_start_that_fails_after_the_ingest_started_stops_the_ingest(ingest_started: bool) -> None:
    """The ingest starts before the Faust app: when Faust's start fails, the ingest leaves
    its group and commits what it held back, as at any stop, and the error is raised
    (it ran on until the process ended, its group waiting for the session timeout);
    a start that failed before the ingest started has nothing to stop."""
    stopped: list[bool] = []

    async def start() -> None:
        raise RuntimeError("Faust's start failed")

    async def stop() -> None:
        stopped.append(True)

    worker: Any = SimpleNamespace(
        start=start, stop=stop, failed=asyncio.Event(), raise_failure=lambda: None,
        consumer=SimpleNamespace(running=ingest_started),
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="Faust's start failed"):
        asyncio.run(run_until(worker, asyncio.Event()))
    assert stopped == ([True] if ingest_started else [])


@pytest.mark.parametrize("on_cancel", ["cancelled", "error"])
def test_a_stop_during_the_start_stops_what_started(on_cancel: str) -> None:
    """A stop asked for while the worker starts cancels the start and stops the worker,
    whatever the cancelled start ends with: a part that turns the cancellation into an
    error of its own skipped the stop (the ingest stayed in its group)."""
    stopped: list[bool] = []
    started = asyncio.Event()

    async def start() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            if on_cancel == "error":
                raise RuntimeError("connection closed while joining") from None
            raise

    async def stop() -> None:
        stopped.append(True)

    async def main() -> None:
        worker: Any = SimpleNamespace(
            start=start, stop=stop, failed=asyncio.Event(), raise_failure=lambda: None,
            consumer=SimpleNamespace(running=True),
        )  # fmt: skip
        stop_asked = asyncio.Event()
        running = asyncio.ensure_future(run_until(worker, stop_asked))
        await started.wait()
        stop_asked.set()
        await asyncio.wait_for(running, 30)

    asyncio.run(main())
    assert stopped == [True]


@pytest.mark.parametrize(
    ("host", "in_url"),
    [("127.0.0.1", "127.0.0.1"), ("::1", "[::1]"), ("[::1]", "[::1]"), ("metrics", "metrics")],
)
def test_host_in_url(host: str, in_url: str) -> None:
    """`--metrics-host ::1` printed http://::1:9108/metrics."""
    from workpulse.worker.runtime import host_in_url

    assert host_in_url(host) == in_url
