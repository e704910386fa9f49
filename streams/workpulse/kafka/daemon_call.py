"""kafka-python's blocking calls (topic administration, group offset lookups) awaited
from the event loop in a daemon thread of their own.

`asyncio.to_thread` runs them in the loop's default executor, whose threads the
interpreter joins at exit: a worker asked to stop while it was still trying to reach
an unreachable broker (`create_topics` retries for 30 s) stopped at once and then sat
silent until the call gave up, although nothing waited for its answer any more. A
daemon thread is left behind at exit; the caller's await is cancelled as usual."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def call_in_daemon_thread(call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`call(*args, **kwargs)` in a new daemon thread; its result or exception here."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # the await was cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = call(*args, **kwargs)
        except BaseException as exc:  # handed to the awaiting task, raised there
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    name = getattr(call, "__name__", "call")
    threading.Thread(target=run, name=f"workpulse-{name}", daemon=True).start()
    return await future
