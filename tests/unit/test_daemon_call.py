"""`kafka.daemon_call.call_in_daemon_thread`: a blocking call awaited from the loop in a
daemon thread that exit does not wait for."""

from __future__ import annotations

import asyncio
import threading

import pytest

from workpulse.kafka.daemon_call import call_in_daemon_thread


def where() -> tuple[str, bool]:
    thread = threading.current_thread()
    return thread.name, thread.daemon


def fail(message: str) -> None:
    raise ValueError(message)


def test_the_result_comes_from_a_daemon_thread() -> None:
    name, daemon = asyncio.run(call_in_daemon_thread(where))
    assert daemon and name == "workpulse-where"
    assert name != threading.current_thread().name


def test_the_exception_is_raised_in_the_caller() -> None:
    with pytest.raises(ValueError, match="no broker"):
        asyncio.run(call_in_daemon_thread(fail, "no broker"))


def test_a_cancelled_call_is_left_to_its_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The await ends at once; the call goes on in its thread and its answer, arriving
    after the loop has closed, is dropped without an error."""
    release = threading.Event()
    finished = threading.Event()
    raised: list[object] = []
    monkeypatch.setattr(threading, "excepthook", raised.append)

    def blocked() -> str:
        release.wait(30)
        finished.set()
        return "late"

    async def cancel_it() -> None:
        task = asyncio.ensure_future(call_in_daemon_thread(blocked))
        await asyncio.sleep(0)  # the thread has started
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_it())
    assert not finished.is_set()  # the await did not wait for the call
    (thread,) = [t for t in threading.enumerate() if t.name == "workpulse-blocked"]
    release.set()
    thread.join(30)
    assert finished.is_set() and not thread.is_alive()
    assert raised == []  # the closed loop's RuntimeError is not left to the thread
