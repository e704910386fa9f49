"""The ingest consumer: whole batches from Kafka, offsets committed only after the batch's
effects are durable.

Faust delivers messages one by one through its stream machinery (~200 µs each here);
the ingest path needs whole batches, so it reads the input topic with aiokafka's batch
fetch (`getmany`) in the worker's consumer group and commits offsets itself: a batch's
offsets are committed only after `handle` returned, that is after its rows are durable
in ClickHouse and its Kafka outputs are acknowledged. Faust still runs the rest of the
worker (the counts agent and its changelogged table).

Batches overlap by one step: while batch N is handled (its rows written by the sink
thread, which releases the GIL inside ClickHouse), the loop fetches batch N+1 and runs
`prepare` on it (decoding and computing, see `IngestStep.prepare`): at once when it is
full (a backlog), else in parts as its messages arrive (live traffic), so that what is
left to do once N is written is small. Batch N+1 is handled, and committed, only after
batch N was: offsets stay in order, and a crash at any point loses nothing that was not
committed.

`handle` may hold some of a batch's effects back (the ingest step sends the watermark
reports of a backlog at most once a second): it then says so, and the batch's offsets
are committed with those of the next batch that sends what was held back, or after
`release` sent it when the partitions move or the worker stops. A crash before then
replays the batches from the committed offsets, their effects with them.

On a rebalance, `on_revoked` runs before the partitions move: it waits for the batch
in hand to finish (a write stuck in an outage is told to give up, see
`Sink.abort`), then the worker drops what it knew about the partitions; the next owner
replays from the last committed offset and finds in ClickHouse what is already stored.
A batch fetched before a rebalance is not handled at all: its partitions are read again
from the committed offsets, by their next owner or by this worker (aiokafka starts a
new assignment's positions there), so handling it too could write it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from workpulse.kafka.settings import Connection, aiokafka_options
from workpulse.model.message import Message, next_offsets
from workpulse.processing.windows import partition_idle

log = logging.getLogger(__name__)

Prepare = Callable[[Sequence[Message], Any], Awaitable[Any]]
"""Work on a batch done while the batch before it is handled: `prepare(messages,
previous)`, where `previous` is what it made of the batch's earlier messages (None: these
are the first); returns what it made of them all, or None (it gave up: the batch is
handled without)."""
BatchHandler = Callable[[Sequence[Message], Any], Awaitable[bool]]
"""Handles a batch, given what `prepare` made of it (None: prepare gave up); returns
whether the offsets of the batches handled so far may be committed (False: some of
their effects are held back, to go with a later batch's or with `release`)."""
Release = Callable[[], Awaitable[bool]]
"""Sends what handled batches held back (the partitions move, or the worker stops);
returns whether it was sent (their offsets may be committed)."""
IdleHandler = Callable[[dict[int, bool]], Awaitable[None]]

TOP_UP_MS = 20
"""While a batch is in hand, the next is topped up by fetches of at most this long."""
FETCH_MAX_BYTES = 64 * 1024 * 1024
"""Most bytes one fetch asks the broker for (a partition's first message comes whatever
its size)."""
FETCH_MAX_WAIT_MS = 50
"""How long the broker may hold a fetch that finds nothing new (Kafka's default: 500).
A Kafka broker answers a waiting fetch as soon as data arrives, so this only sets how
often an idle consumer asks again. The embedded broker (Tansu) answers later: a message
sent every 50 ms reached a consumer 126-138 ms after its send in the median (at most
~250 ms) with 500, 4 ms with 50; at 10k events/s, fetches came back 150-240 ms late."""
PREPARE_PARTS = 8
"""While a batch is in hand, the next one's messages are prepared as they arrive, in
parts of at least 1/PREPARE_PARTS of a batch (each part costs a state query)."""


class _Parts:
    """What `prepare` made of a batch's first `done` messages (None after it gave up)."""

    def __init__(self) -> None:
        self.value: Any = None
        self.done = 0
        self.failed = False

    async def add(self, prepare: Prepare, messages: list[Message]) -> None:
        """Prepare the messages after the first `done`."""
        if self.failed or self.done >= len(messages):
            return
        upto = len(messages)
        self.value = await prepare(messages[self.done : upto], self.value)
        self.done = upto
        self.failed = self.value is None


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: BatchConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.owner._revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.owner._assigned(assigned)


def _size(messages: list[Message]) -> int:
    return sum(len(m.value) + len(m.key or b"") for m in messages)


class BatchConsumer:
    """Reads `topic` in batches of up to `max_records` (waiting at most `timeout_s` to
    fill one) and hands each to `handle`; reports idle partitions to `on_idle`. A batch
    also ends once its messages (keys and values) hold `max_bytes` (one fetch can bring up to
    `FETCH_MAX_BYTES` more): a stream of large messages (hostile, or a producer's bug)
    would otherwise make batches of `max_records` of them, gigabytes for 1 MB messages,
    and the worker would run out of memory on the same batch at every restart."""

    def __init__(
        self,
        conn: Connection,
        topic: str,
        group_id: str,
        handle: BatchHandler,
        *,
        on_revoked: Callable[[list[int]], Awaitable[None]],
        on_idle: IdleHandler,
        prepare: Prepare,
        release: Release,
        max_records: int,
        max_bytes: int,
        timeout_s: float,
        session_timeout_s: float,
        idle_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topic = topic
        self._handle = handle
        self._on_revoked = on_revoked
        self._on_idle = on_idle
        self._prepare = prepare
        self._release = release
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._timeout_ms = max(1, int(timeout_s * 1000))
        self._idle_after_s = idle_after_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.stopping = False
        self.revoking = False
        """True while partitions are being taken away (writes in an outage give up)."""
        self._next_offset: dict[int, int] = {}
        self._uncommitted: dict[int, int] = {}
        """Per partition, the offset after the last batch handled, while not committed."""
        self._last_message: dict[int, float] = {}
        self._idle_reported: dict[int, bool] = {}
        self.assigned: set[int] = set()
        self.batches = 0
        self._epoch = 0
        """Bumped when partitions are revoked: what was fetched before is read again."""
        session_ms = int(session_timeout_s * 1000)
        self._consumer = AIOKafkaConsumer(
            **aiokafka_options(conn),
            group_id=group_id,
            client_id=f"{group_id}-ingest",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(100, session_ms // 4),
            rebalance_timeout_ms=max(session_ms, 10_000),
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=FETCH_MAX_BYTES,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )

    @property
    def consumer(self) -> AIOKafkaConsumer:
        return self._consumer

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=_Listener(self))
        self._task = asyncio.create_task(self._run(), name="workpulse-ingest")

    @property
    def running(self) -> bool:
        """Started (its loop may have handled batches), whether or not it ended since."""
        return self._task is not None

    def add_done_callback(self, callback: Callable[[asyncio.Task[None]], object]) -> None:
        """Called when the consumer's loop ends (its exception, if any, is the task's)."""
        assert self._task is not None, "start() first"
        self._task.add_done_callback(callback)

    def highwater(self, partition: int) -> int | None:
        """The end of a partition as of the last fetch (None: not known yet, or not
        assigned to this worker now: aiokafka raises then, and a batch prepared while
        the partitions moved would have failed the worker; found in review)."""
        tp = TopicPartition(self.topic, partition)
        if tp not in self._consumer.assignment():
            return None
        high: int | None = self._consumer.highwater(tp)
        return high

    def partition_count(self) -> int:
        parts = self._consumer.partitions_for_topic(self.topic)
        return len(parts) if parts else 0

    def lag(self) -> dict[int, tuple[int, int]]:
        """Per assigned partition (where known): the next offset to handle and the
        offsets left to read before the end."""
        out: dict[int, tuple[int, int]] = {}
        for p in self.assigned:
            high = self._consumer.highwater(TopicPartition(self.topic, p))
            position = self._next_offset.get(p)
            if high is not None and position is not None:
                out[p] = (position, max(0, high - position))
        return out

    async def _revoked(self, revoked: Any) -> None:
        self._epoch += 1
        self.revoking = True
        try:
            async with self._lock:  # the batch in hand finishes (or gives up) first
                try:
                    await self._commit_held()
                finally:
                    self._uncommitted = {}
                    await self._on_revoked(
                        [tp.partition for tp in revoked if tp.topic == self.topic]
                    )
        finally:
            self.revoking = False
            self.assigned -= {tp.partition for tp in revoked}
            for tp in revoked:
                self._last_message.pop(tp.partition, None)
                self._idle_reported.pop(tp.partition, None)
                self._next_offset.pop(tp.partition, None)

    def _assigned(self, assigned: Any) -> None:
        now = self._clock()
        self.assigned = {tp.partition for tp in assigned if tp.topic == self.topic}
        for p in self.assigned:
            self._last_message.setdefault(p, now)

    async def _run(self) -> None:
        in_hand: asyncio.Task[None] | None = None
        """The batch being handled while the next one is fetched and prepared."""
        try:
            while not self.stopping:
                messages, epoch, prepared = await self._next_batch(in_hand)
                if in_hand is not None:
                    await in_hand  # handled and committed (or its failure is ours)
                    in_hand = None
                now = self._clock()
                fetched = {m.partition for m in messages}
                for partition in fetched:
                    self._last_message[partition] = now
                await self._report_idle(now, fetched)  # between batches: it takes the lock
                if messages:
                    in_hand = asyncio.create_task(
                        self._handle_in_order(messages, epoch, prepared), name="workpulse-batch"
                    )
                    # It runs up to its first wait (the insert handed to the sink thread)
                    # before the next batch is decoded here: getmany returns buffered
                    # records without yielding, and the insert would start ~50 ms late.
                    await asyncio.sleep(0)
            if in_hand is not None:
                await in_hand
        finally:
            if in_hand is not None and not in_hand.done():
                in_hand.cancel()

    async def _next_batch(
        self, in_hand: asyncio.Task[None] | None
    ) -> tuple[list[Message], int, Any]:
        """One fetch; while a batch is in hand, more fetches until this one is full or
        that one is done, the messages prepared in parts as they arrive. So batches are
        as large as when they were read one after the other (what arrives while one is
        written is the next, one insert), and little of the next is left to prepare
        when the one in hand is done. Returns the messages, the epoch they were fetched
        in (a rebalance in between: only what was fetched after it, from the committed
        offsets again) and what `prepare` made of them."""
        messages = self._messages(await self._fetch(self._max_records, self._timeout_ms))
        size = _size(messages)
        epoch = self._epoch
        parts = _Parts()
        part = max(1, self._max_records // PREPARE_PARTS)
        while (
            in_hand is not None
            and not in_hand.done()
            and len(messages) < self._max_records
            and size < self._max_bytes
            and not self.stopping
        ):
            if not parts.failed and len(messages) - parts.done >= part:
                await parts.add(self._prepare, messages)
                continue
            more = self._messages(await self._fetch(self._max_records - len(messages), TOP_UP_MS))
            if self._epoch != epoch:
                messages, epoch, parts, size = more, self._epoch, _Parts(), _size(more)
            else:
                messages += more
                size += _size(more)
        if messages and not self.stopping:
            await parts.add(self._prepare, messages)  # the rest (a full batch: all of it)
        return messages, epoch, parts.value if parts.done == len(messages) else None

    @staticmethod
    def _messages(fetched: dict[Any, list[Any]]) -> list[Message]:
        return [
            Message(r.topic, r.partition, r.offset, r.key, r.value or b"", r.timestamp)
            for tp in sorted(fetched, key=lambda t: t.partition)
            for r in fetched[tp]
        ]

    async def _fetch(self, max_records: int, timeout_ms: int) -> dict[Any, list[Any]]:
        try:
            fetched: dict[Any, list[Any]] = await self._consumer.getmany(
                timeout_ms=timeout_ms, max_records=max_records
            )
        except KafkaError as exc:
            log.warning("fetching from %s failed (%s); retrying", self.topic, exc)
            await asyncio.sleep(0.5)
            return {}
        return fetched

    async def _handle_in_order(self, messages: list[Message], epoch: int, prepared: Any) -> None:
        async with self._lock:
            if self.stopping:
                return
            if epoch != self._epoch:
                # Partitions were revoked since the fetch: their owner (the next, or this
                # worker again) reads them from the committed offsets.
                log.info("%d message(s) fetched before a rebalance: read again", len(messages))
                return
            ready = await self._handle(messages, prepared)
            ends = next_offsets(messages)
            self._next_offset.update(ends)
            self._uncommitted.update(ends)
            if ready:
                await self._commit()
        self.batches += 1

    async def _report_idle(self, now: float, fetched: Collection[int] = ()) -> None:
        """Tell `on_idle` when an assigned partition becomes idle or busy again.
        `fetched`: the partitions of the batch fetched and not handled yet (busy).

        A partition's position is the consumer's: it steps over what is no message (a
        transaction's commit or abort marker takes an offset; aiokafka skips control
        batches and moves the position past them), where the offset after the last
        handled message would stay one short of the end behind a marker, and a
        transactional topic's partitions would never be idle. Between batches (here)
        the consumer's position is what was handled, but in the partitions of the batch
        just fetched."""
        status: dict[int, bool] = {}
        for p in sorted(self.assigned):  # a copy: a revoke may change it while we await
            if p in fetched:
                status[p] = False
                continue
            tp = TopicPartition(self.topic, p)
            high = self._consumer.highwater(tp)
            position: int | None = None
            with contextlib.suppress(IllegalStateError, KafkaError, AssertionError):
                position = await self._consumer.position(tp)
            handled = self._next_offset.get(p)
            if position is None:
                position = handled
            elif handled is not None and position > handled:
                self._next_offset[p] = position  # past a marker: `lag` says 0, not 1
            quiet_s = now - self._last_message.get(p, now)
            status[p] = partition_idle(position, high, quiet_s, self._idle_after_s)
        if not any(self._idle_reported.get(p) != idle for p, idle in status.items()):
            return
        async with self._lock:
            # Only what is still assigned: a revoke may have run while positions were read.
            status = {p: idle for p, idle in status.items() if p in self.assigned}
            changed = {p: i for p, i in status.items() if self._idle_reported.get(p) != i}
            if changed:
                self._idle_reported.update(changed)
                await self._on_idle(status)

    async def _commit(self) -> None:
        """Commit the offsets of the batches handled so far."""
        offsets = {TopicPartition(self.topic, p): end for p, end in self._uncommitted.items()}
        self._uncommitted = {}
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # The partitions moved: the next owner replays from the last committed
            # offset and skips what is already stored.
            log.warning("offset commit failed (%s); the batch will be replayed", exc)

    async def _commit_held(self) -> None:
        """Before the partitions move or the worker leaves the group: what the batches
        handled since the last commit held back is sent (`release`), then their offsets
        are committed; if it could not be sent, they are not (the next owner replays
        those batches, and their effects with them)."""
        if not self._uncommitted:
            return
        if await self._release():
            await self._commit()
        else:
            log.warning("held-back effects not sent: %d partition(s) will be replayed",
                        len(self._uncommitted))  # fmt: skip
            self._uncommitted = {}

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the batch in hand (at most `timeout_s`), commit what was handled (after
        sending what it held back), then leave the group."""
        self.stopping = True
        task = self._task
        if task is not None:
            try:
                await asyncio.wait_for(self._lock.acquire(), timeout_s)
                self._lock.release()
            except TimeoutError:
                log.warning("the batch in hand did not finish in %.0fs: abandoned", timeout_s)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            # (Leaving the group revokes nothing through the listener.) Under the lock: a
            # rebalance meanwhile would send and commit the same.
            try:
                await asyncio.wait_for(self._lock.acquire(), timeout_s)
            except TimeoutError:
                log.warning("held-back offsets not committed: they will be replayed")
            else:
                try:
                    await self._commit_held()
                finally:
                    self._lock.release()
        with contextlib.suppress(Exception):
            await self._consumer.stop()
