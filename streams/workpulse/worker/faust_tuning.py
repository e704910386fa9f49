"""A narrow speed-up of Faust's consumer hot loop (faust-streaming 0.15.3 only).

`faust.transport.consumer.Consumer._drain_messages` delivers every fetched message
with

    await self.wait_first(callback(message), self.suspend_flow.wait())

and mode's `Service.wait_first` wraps each argument, plus the service's `stopped`
and `crashed` events, in its own task and runs `asyncio.wait` over them: four
tasks and a wait per message, although the callback (decode, put into the
stream's queue) almost never has to wait for anything.

`install_fast_drain()` replaces `Consumer.wait_first` by a version that recognises
exactly that call and, when the flow is not suspended and the consumer is neither
stopped nor crashed, runs the callback coroutine inline. If the callback finishes
without suspending (the common case) no task is created at all. If it does
suspend (a full stream buffer, flow control, producer back-pressure), the rest of
the same coroutine is handed to the original `wait_first` together with
`suspend_flow.wait()`, so a rebalance that suspends the flow still interrupts the
callback exactly as before. Every other `wait_first` call goes to the original.

`install_seek_fence()` fixes a loss in Faust's recovery (faust-streaming 0.15.3):
after restoring a table from its changelog, `Recovery.on_recovery_completed` (and
`_resume_streams`) seek the stream partitions back to their committed offsets with
`Consumer.perform_seek` while the flow is still active, then call
`flow_control.resume()`, which empties every agent's queue. What the fetcher delivered
in between (read from the committed offsets) was dropped, and the consumer's position
was already past it: a watermark report a killed worker had left unacknowledged was
never handled, and windows stayed open for good (their spikes lost). The fence stops the
flow before the seek (`Consumer.stop_flow`: the fetch loop delivers nothing more), and
every caller of `perform_seek` resumes the flow after clearing the queues (or calls it
with the flow already stopped), so what was fetched before the seek is read again.
aiokafka's `seek_to_committed` seeks only partitions whose committed offset is above 0:
a partition the group has not committed yet stayed where the fetcher had got to, past
what was dropped. The fence seeks those (stream partitions only: Faust places the
changelogs' itself) to their earliest offset, where the group starts reading them.

Nothing is patched on any other faust-streaming version (a warning is logged).
"""

from __future__ import annotations

import logging
import types
from collections.abc import Awaitable, Coroutine, Generator
from importlib import metadata
from typing import Any

log = logging.getLogger(__name__)

SUPPORTED_VERSION = "0.15.3"
_MARK = "_workpulse_fast_drain"


def _faust_version() -> str | None:
    try:
        return metadata.version("faust-streaming")
    except metadata.PackageNotFoundError:
        return None


def _on_supported_version(patch: str) -> bool:
    """Whether the installed faust-streaming is the one the patches were written for
    (else `patch` is not installed, and a warning says so)."""
    version = _faust_version()
    if version == SUPPORTED_VERSION:
        return True
    log.warning(
        "faust-streaming %s is not %s: %s is not installed", version, SUPPORTED_VERSION, patch
    )
    return False


async def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    return await _continue(coro, yielded)


@types.coroutine
def _continue(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Go on driving `coro`, which has already yielded `yielded` to us, exactly as
    `yield from coro` would have: the task running this generator sees the same
    futures, and a cancellation or exception is thrown into `coro`."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


def is_installed() -> bool:
    from faust.transport.consumer import Consumer

    return bool(getattr(Consumer.wait_first, _MARK, False))


def install_fast_drain() -> bool:
    """Installs the patch once; returns True when it is (or already was) active."""
    if not _on_supported_version("the fast drain patch"):
        return False

    from faust.transport.consumer import Consumer

    current = Consumer.wait_first
    if getattr(current, _MARK, False):
        return True
    original = current

    async def wait_first(self: Any, *coros: Any, timeout: Any = None) -> Any:
        if (
            len(coros) == 2
            and timeout is None
            and isinstance(coros[0], types.CoroutineType)
            and isinstance(coros[1], types.CoroutineType)
            and not self.suspend_flow.is_set()
            and coros[1].cr_code is type(self.suspend_flow).wait.__code__
            and coros[1].cr_frame is not None
            and coros[1].cr_frame.f_locals.get("self") is self.suspend_flow
            and not self._stopped.is_set()
            and not self._crashed.is_set()
        ):
            callback, suspend_wait = coros
            try:
                yielded = callback.send(None)
            except StopIteration as stop:
                suspend_wait.close()
                return _results(self, callback, stop.value)
            except BaseException:
                suspend_wait.close()
                raise
            # The callback has to wait: race the rest of it against the flow
            # being suspended, as the original code does.
            return await original(self, _resume(callback, yielded), suspend_wait)
        return await original(self, *coros, timeout=timeout)

    setattr(wait_first, _MARK, True)
    wait_first.__wrapped__ = original  # type: ignore[attr-defined]
    wait_first.__doc__ = original.__doc__
    Consumer.wait_first = wait_first  # type: ignore[method-assign]
    log.debug("faust fast drain patch installed")
    return True


_SEEK_MARK = "_workpulse_seek_fence"


def install_seek_fence() -> bool:
    """Installs the seek fence once (module docstring); True when it is active."""
    if not _on_supported_version("the seek fence"):
        return False

    from faust.transport.consumer import Consumer

    current = Consumer.perform_seek
    if getattr(current, _SEEK_MARK, False):
        return True
    original = current

    async def perform_seek(self: Any) -> None:  # replaces `original` (its body, inline)
        was_active = self.flow_active
        self.stop_flow()  # nothing fetched from here is delivered, then dropped
        try:
            await _seek_to_committed_or_start(self)
        except BaseException:
            # A seek that fails or is cancelled (a recovery that times out ends there
            # for good): the flow as it was, or nothing would resume it.
            if was_active:
                self.resume_flow()
            raise

    setattr(perform_seek, _SEEK_MARK, True)
    perform_seek.__wrapped__ = original  # type: ignore[attr-defined]
    perform_seek.__doc__ = original.__doc__
    Consumer.perform_seek = perform_seek  # type: ignore[method-assign]
    return True


async def _seek_to_committed_or_start(consumer: Any) -> None:
    """Faust 0.15.3's `Consumer.perform_seek` (same bookkeeping of read and committed
    offsets), then the partitions aiokafka's `seek_to_committed` did not seek (their
    committed offset is None or 0) sought to their earliest offset, in the consumer's
    thread (`seek_wait`: aiokafka's state belongs to that thread's loop). Their
    committed offsets are forgotten: Faust records an offset even when its commit failed,
    and that value is not what the broker holds. Only stream partitions whose messages
    are acknowledged: Faust places the changelogs itself, and its leader topic is never
    committed."""
    from faust.transport.consumer import ensure_TP

    read_offset = consumer._read_offset
    committed = await consumer.seek_to_committed()
    read_offset.update(
        {
            tp: offset if offset is not None and offset >= 0 else None
            for tp, offset in committed.items()
        }
    )
    consumer._committed_offset.update(
        {
            ensure_TP(tp): offset if offset else None
            for tp, offset in committed.items()
            if offset is not None
        }
    )
    changelogs = consumer.app.tables.changelog_topics
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    uncommitted = [
        ensure_TP(tp)
        for tp, offset in committed.items()
        if not offset and tp.topic not in changelogs and acks_enabled_for(tp.topic)
    ]
    if uncommitted:
        earliest = await consumer.earliest_offsets(*uncommitted)
        await consumer.seek_wait({tp: earliest[tp] for tp in uncommitted})
        for tp in uncommitted:
            consumer._committed_offset[tp] = None


def is_seek_fenced() -> bool:
    from faust.transport.consumer import Consumer

    return bool(getattr(Consumer.perform_seek, _SEEK_MARK, False))


def uninstall_seek_fence() -> None:
    from faust.transport.consumer import Consumer

    current = Consumer.perform_seek
    if getattr(current, _SEEK_MARK, False):
        Consumer.perform_seek = current.__wrapped__  # type: ignore[attr-defined,method-assign]


def uninstall_fast_drain() -> None:
    """Restores the original `Consumer.wait_first` (for tests and benchmarks)."""
    from faust.transport.consumer import Consumer

    current = Consumer.wait_first
    if getattr(current, _MARK, False):
        Consumer.wait_first = current.__wrapped__  # type: ignore[attr-defined,method-assign]


def _results(service: Any, winner: Awaitable[Any], result: Any) -> Any:
    from mode.services import WaitResults

    if service._stopped.is_set() or service._crashed.is_set():
        return WaitResults([], [], True)
    return WaitResults([winner], [result], False)
