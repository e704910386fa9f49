"""The ingest consumer (`worker.consumer.BatchConsumer`) on the embedded broker: batches
overlap by one step (the next is fetched, filled and prepared while one is handled),
offsets stay in order, and a batch fetched before a revoke is not handled (its
partitions are read again from the committed offsets)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaProducer

from workpulse.config import Settings
from workpulse.dev.broker import EmbeddedBroker
from workpulse.kafka.admin import create_topics
from workpulse.kafka.settings import connection
from workpulse.model.message import Message
from workpulse.worker.consumer import BatchConsumer

pytestmark = pytest.mark.integration


def produce_to(bootstrap: str, topic: str, partition: int, n: int, first: int = 0) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for i in range(first, first + n):
            producer.send(topic, value=f"{partition}:{i}".encode(), partition=partition)
        producer.flush(timeout=30)
    finally:
        producer.close()


async def _nothing(_: Any) -> None:
    return None


async def _sent() -> bool:
    return True


def consumer_for(bootstrap: str, topic: str, handle: Any, prepare: Any, max_records: int,
                 release: Any = _sent, group: str | None = None, on_idle: Any = _nothing,
                 idle_after_s: float = 60.0,
                 max_bytes: int = 64 << 20) -> BatchConsumer:  # fmt: skip
    """A consumer in a fresh group (unless `group`), quick to join, no idle reports
    (unless `on_idle`)."""
    return BatchConsumer(
        connection(Settings(), bootstrap), topic, group or f"g-{uuid.uuid4().hex[:8]}", handle,
        on_revoked=_nothing, on_idle=on_idle, prepare=prepare, release=release,
        max_records=max_records, max_bytes=max_bytes, timeout_s=0.1, session_timeout_s=2.0,
        idle_after_s=idle_after_s,
    )  # fmt: skip


class Offsets:
    """handle/prepare callbacks: the offsets handled, in order; nothing prepared."""

    def __init__(self) -> None:
        self.handled: list[int] = []

    async def handle(self, messages: Sequence[Message], prepared: Any) -> bool:
        self.handled.extend(m.offset for m in messages)
        return True

    async def prepare(self, messages: Sequence[Message], previous: Any) -> None:
        return None


class Recorder:
    """prepare/handle callbacks that record what they saw; the first handle waits until
    `release` is set."""

    def __init__(self) -> None:
        self.prepared: list[list[tuple[int, int]]] = []
        self.handled: list[list[tuple[int, int]]] = []
        self.release = asyncio.Event()
        self.handling = asyncio.Event()
        self.consumer: BatchConsumer | None = None
        self.unprepared: list[list[tuple[int, int]]] = []
        self.foreign: list[tuple[int, int]] = []
        """Messages handled while their partition was not assigned."""

    async def prepare(self, messages: Sequence[Message], previous: list[Any] | None) -> list[Any]:
        self.prepared.append([(m.partition, m.offset) for m in messages])
        return (previous or []) + [m.value.upper() for m in messages]

    async def handle(self, messages: Sequence[Message], prepared: list[Any] | None) -> bool:
        if prepared is None:  # the batch changed since it was prepared
            self.unprepared.append([(m.partition, m.offset) for m in messages])
        else:
            assert prepared == [m.value.upper() for m in messages]
        assert self.consumer is not None
        self.foreign += [
            (m.partition, m.offset) for m in messages if m.partition not in self.consumer.assigned
        ]
        if not self.handled:
            self.handling.set()
            await asyncio.wait_for(self.release.wait(), 20)
        self.handled.append([(m.partition, m.offset) for m in messages])
        return True

    async def start_holding(self, bootstrap: str, topic: str, max_records: int,
                            max_bytes: int = 64 << 20) -> BatchConsumer:  # fmt: skip
        """A consumer in a fresh group, started; returns once its first batch is in hand
        (held until `release`)."""

        self.consumer = consumer_for(bootstrap, topic, self.handle, self.prepare, max_records,
                                     max_bytes=max_bytes)  # fmt: skip
        await self.consumer.start()
        try:
            await asyncio.wait_for(self.handling.wait(), 30)
        except BaseException:
            await self.consumer.stop()
            raise
        return self.consumer


async def wait_until(condition: Any, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_the_next_batch_is_filled_and_prepared_while_one_is_handled_offsets_in_order(
    broker: EmbeddedBroker, topic_name: str
) -> None:
    create_topics(broker.bootstrap, {topic_name: 1})
    produce_to(broker.bootstrap, topic_name, 0, 50)
    rec = Recorder()

    async def run() -> dict[TopicPartition, int]:
        consumer = await rec.start_holding(broker.bootstrap, topic_name, max_records=50)
        try:
            produce_to(broker.bootstrap, topic_name, 0, 20, first=50)
            tp = TopicPartition(topic_name, 0)
            while await consumer.consumer.position(tp) < 70:  # fetched (not yet full)
                await asyncio.sleep(0.02)
            produce_to(broker.bootstrap, topic_name, 0, 40, first=70)
            # The first batch is still in hand: the second is filled (from both sends)
            # and prepared now, in parts as it arrives (without the overlap, this waits
            # for ever).
            await wait_until(lambda: sum(map(len, rec.prepared[1:])) >= 50)
            assert rec.handled == []
            rec.release.set()
            await wait_until(lambda: sum(map(len, rec.handled)) >= 110)
            await wait_until(lambda: consumer.batches == len(rec.handled))
            return {tp: (await consumer.consumer.committed(tp)) or -1}
        finally:
            await consumer.stop()

    committed = asyncio.run(run())
    offsets = [o for batch in rec.handled for _, o in batch]
    assert offsets == list(range(110))  # each once, in order
    first = len(rec.prepared[0])
    second = [(0, o) for o in range(first, first + 50)]
    assert [m for part in rec.prepared[1:] for m in part][:50] == second  # prepared in parts
    assert len(rec.prepared) >= 3, "the first part was prepared before the batch was full"
    assert rec.handled[1] == second and rec.unprepared == []  # one full batch, as prepared
    assert list(committed.values()) == [110]
    assert rec.foreign == []


@pytest.mark.parametrize("large", ["value", "key"])
def test_a_batch_ends_at_its_byte_limit(
    broker: EmbeddedBroker, topic_name: str, large: str
) -> None:
    """Large messages end a batch before `max_records` (a stream of 1 MB messages made
    batches of `batch_size` of them, gigabytes): while one batch is in hand, the next is
    topped up only until it holds `max_bytes`, keys and values. Without the limit it
    takes all 24 half-MB messages (the position reaches the end while the first batch
    is held); with values alone counted, all 24 half-MB keys."""
    create_topics(broker.bootstrap, {topic_name: 1})
    produce_to(broker.bootstrap, topic_name, 0, 1)
    rec = Recorder()
    big = 512 * 1024

    async def run() -> None:
        consumer = await rec.start_holding(broker.bootstrap, topic_name, max_records=1000,
                                           max_bytes=1024 * 1024)  # fmt: skip
        try:
            producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all",
                                     max_request_size=2 * big)  # fmt: skip
            for i in range(24):
                payload = b"%d:" % i + b"x" * big
                if large == "value":
                    producer.send(topic_name, value=payload, partition=0)
                else:
                    producer.send(topic_name, key=payload, value=b"%d" % i, partition=0)
            producer.flush(timeout=30)
            producer.close()
            tp = TopicPartition(topic_name, 0)
            position = 0

            async def fetched() -> int:
                return int(await consumer.consumer.position(tp))

            while (position := await fetched()) < 3:  # 1 MB in the next batch
                await asyncio.sleep(0.02)
            # It stops there while the first batch is held (one fetch may bring more:
            # up to the 8 MB a partition's fetch returns, never the 12 MB of all 24).
            deadline = asyncio.get_running_loop().time() + 3.0
            while asyncio.get_running_loop().time() < deadline:
                position = await fetched()
                assert position < 25, "the next batch took every message"
                await asyncio.sleep(0.05)
            rec.release.set()
            await wait_until(lambda: sum(map(len, rec.handled)) >= 25)
        finally:
            await consumer.stop()

    asyncio.run(run())
    handled = [o for batch in rec.handled for _, o in batch]
    assert handled == list(range(25))  # each once, in order
    assert len(rec.handled) >= 3


def test_a_batch_fetched_before_a_revoke_is_not_handled(
    broker: EmbeddedBroker, topic_name: str
) -> None:
    create_topics(broker.bootstrap, {topic_name: 2})
    produce_to(broker.bootstrap, topic_name, 0, 10)
    rec = Recorder()

    async def run() -> None:
        consumer = await rec.start_holding(broker.bootstrap, topic_name, max_records=10)
        try:
            produce_to(broker.bootstrap, topic_name, 1, 10)
            await wait_until(lambda: any(p == 1 for batch in rec.prepared for p, _ in batch))
            # Partition 1 is taken away while the batch holding its messages waits its
            # turn (the listener's hook, as aiokafka calls it in a rebalance; the
            # revoke waits for the batch in hand, as it does then).
            revoke = asyncio.create_task(consumer._revoked([TopicPartition(topic_name, 1)]))
            await wait_until(lambda: consumer.revoking)
            rec.release.set()
            await revoke
            produce_to(broker.bootstrap, topic_name, 0, 5, first=10)
            await wait_until(lambda: sum(map(len, rec.handled)) >= 15)
        finally:
            await consumer.stop()

    asyncio.run(run())
    handled = [m for batch in rec.handled for m in batch]
    assert handled == [(0, o) for o in range(15)]
    assert rec.foreign == []
    assert rec.unprepared == []  # the batch of partition 1 was dropped whole


def test_a_batch_starts_being_handled_before_the_next_is_prepared(
    broker: EmbeddedBroker, topic_name: str
) -> None:
    """The handle task runs up to its first wait (in the worker: the insert handed to the
    sink thread) before the next batch is prepared on this thread; before, a backlog's
    next batch was decoded first (getmany returns buffered records without yielding),
    and each insert started ~50 ms late."""
    create_topics(broker.bootstrap, {topic_name: 1})
    produce_to(broker.bootstrap, topic_name, 0, 400)
    order: list[tuple[str, int]] = []

    async def prepare(messages: Sequence[Message], previous: Any) -> None:
        order.append(("prepare", messages[0].offset))

    async def handle(messages: Sequence[Message], prepared: Any) -> bool:
        order.append(("handle", messages[0].offset))
        await asyncio.sleep(0.05)  # the insert
        return True

    async def run() -> None:
        consumer = consumer_for(broker.bootstrap, topic_name, handle, prepare, max_records=50)
        await consumer.start()
        try:
            await wait_until(lambda: sum(1 for what, _ in order if what == "handle") >= 8)
        finally:
            await consumer.stop()

    asyncio.run(run())
    handled = [offset for what, offset in order if what == "handle"]
    for offset in handled[:-1]:  # batch N is being handled before N+1 is prepared
        assert order.index(("handle", offset)) < order.index(("prepare", offset + 50)), order


async def group_offset(bootstrap: str, group: str, topic: str) -> int | None:
    """The offset `group` committed for partition 0 of `topic` (None: none)."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                              enable_auto_commit=False)  # fmt: skip
    await reader.start()
    try:
        offset: int | None = await reader.committed(TopicPartition(topic, 0))
        return offset
    finally:
        await reader.stop()


@pytest.mark.parametrize("leaving", ["stop", "revoke"])
@pytest.mark.parametrize("sent", [True, False])
def test_offsets_wait_for_what_a_batch_held_back(
    broker: EmbeddedBroker, topic_name: str, leaving: str, sent: bool
) -> None:
    """Batches whose handler held effects back (the ingest step's watermark reports in a
    backlog) are committed only with the next batch that sends them, or after `release`
    sent them when the partitions move or the worker stops; if it could not, never (their
    next owner replays them). Before, each batch was committed once handled: a crash then
    lost what it held back."""
    create_topics(broker.bootstrap, {topic_name: 1})
    produce_to(broker.bootstrap, topic_name, 0, 30)
    group = f"g-{uuid.uuid4().hex[:8]}"
    batches: list[tuple[int, bool]] = []  # (offset after the batch, whether it sent all)
    releases: list[int] = []

    async def handle(messages: Sequence[Message], prepared: Any) -> bool:
        end = messages[-1].offset + 1
        # One batch sends what was held (the first past offset 10); the others hold.
        ready = end > 10 and not any(ready for _, ready in batches)
        batches.append((end, ready))
        return ready

    async def prepare(messages: Sequence[Message], previous: Any) -> None:
        return None

    async def release() -> bool:
        releases.append(batches[-1][0])
        return sent

    async def run() -> tuple[int | None, int | None]:
        consumer = consumer_for(broker.bootstrap, topic_name, handle, prepare, max_records=7,
                                release=release, group=group)  # fmt: skip
        tp = TopicPartition(topic_name, 0)
        await consumer.start()
        try:
            await wait_until(lambda: bool(batches) and batches[-1][0] == 30)
            await wait_until(lambda: consumer.batches == len(batches))
            held = await consumer.consumer.committed(tp)
            if leaving == "revoke":  # as aiokafka calls the listener in a rebalance
                await consumer._revoked([tp])
                return held, await consumer.consumer.committed(tp)
        finally:
            await consumer.stop()
        return held, await group_offset(broker.bootstrap, group, topic_name)

    held, after = asyncio.run(run())
    sent_at = next(end for end, ready in batches if ready)
    assert 10 < sent_at < 30, batches  # batches were held before and after it
    assert held == sent_at
    assert releases == [30]  # once: nothing was left to send after
    assert after == (30 if sent else sent_at)


def test_a_partition_ending_with_a_transaction_marker_goes_idle(
    broker: EmbeddedBroker, topic_name: str
) -> None:
    """A transactional producer's commit marker takes the offset after its messages: the
    partition's end is one past the last message. aiokafka skips control batches and
    moves its position past them (`PartitionRecords._unpack_records`); the embedded
    broker refuses transactional producers, so the marker is played here by the end and
    the position aiokafka reports behind one. Idle was decided on the offset after the
    last handled message, one short of such an end: the partition never went idle, and
    windows waited for it."""
    create_topics(broker.bootstrap, {topic_name: 1})
    produce_to(broker.bootstrap, topic_name, 0, 10)
    offsets = Offsets()
    handled = offsets.handled
    reports: list[bool] = []

    async def on_idle(status: dict[int, bool]) -> None:
        reports.append(status[0])

    async def run() -> None:
        consumer = consumer_for(broker.bootstrap, topic_name, offsets.handle, offsets.prepare,
                                5, on_idle=on_idle, idle_after_s=0.2)  # fmt: skip
        await consumer.start()
        kafka = consumer._consumer
        highwater, position = kafka.highwater, kafka.position

        def end_after_marker(tp: TopicPartition) -> int | None:
            high = highwater(tp)
            return None if high is None else high + 1

        async def position_after_marker(tp: TopicPartition) -> int:
            at = await position(tp)
            return at + 1 if at == highwater(tp) else at  # caught up: past the marker

        kafka.highwater = end_after_marker
        kafka.position = position_after_marker
        try:
            await wait_until(lambda: len(handled) == 10 and bool(reports) and reports[-1])
            lag.update(consumer.lag())
        finally:
            await consumer.stop()

    lag: dict[int, tuple[int, int]] = {}
    asyncio.run(run())
    assert handled == list(range(10))
    assert reports[-1] is True
    assert lag == {0: (11, 0)}  # caught up: no message left (the lag alerts stay quiet)


def test_a_revoke_while_idle_is_checked_does_not_stop_the_consumer() -> None:
    """`_report_idle` awaits each partition's position; a revoke meanwhile shrinks the
    assigned set it loops over (a set changed during iteration stopped the loop)."""

    async def run() -> dict[int, bool]:
        offsets = Offsets()
        consumer = consumer_for("127.0.0.1:9", "t", offsets.handle, offsets.prepare, 5,
                                idle_after_s=0.0)  # fmt: skip
        consumer.assigned = {0, 1, 2}
        kafka = consumer._consumer

        async def position_while_revoked(tp: TopicPartition) -> int:
            consumer.assigned.discard(2)  # what `_revoked` does, in the middle
            return 5

        kafka.highwater = lambda tp: 5
        kafka.position = position_while_revoked
        seen: dict[int, bool] = {}

        async def on_idle(status: dict[int, bool]) -> None:
            seen.update(status)

        consumer._on_idle = on_idle
        await consumer._report_idle(time.monotonic())
        return seen

    assert asyncio.run(run()) == {0: True, 1: True}  # not the revoked one


def test_a_partition_is_not_idle_before_its_end_is_known(
    broker: EmbeddedBroker, topic_name: str
) -> None:
    """Idle means caught up: a partition's end is known once a fetch answered for it.
    Before, a partition whose end was not known yet counted as caught up: at start-up
    (or whenever a fetch took longer than `idle_after_s`), one with a backlog was
    reported idle, and the counts agent closed windows without its events (seen as a
    missing spike after a restart under load)."""
    create_topics(broker.bootstrap, {topic_name: 1})
    produce_to(broker.bootstrap, topic_name, 0, 20)
    offsets = Offsets()
    handled = offsets.handled
    reports: list[tuple[bool, int]] = []  # (idle, messages handled by then)
    checks: list[asyncio.Future[None]] = []

    async def on_idle(status: dict[int, bool]) -> None:
        reports.append((status[0], len(handled)))

    async def run() -> None:
        consumer = consumer_for(broker.bootstrap, topic_name, offsets.handle, offsets.prepare,
                                5, on_idle=on_idle, idle_after_s=0.0)  # fmt: skip
        assigned = consumer._assigned

        def assigned_then_check(partitions: Any) -> None:
            # The check the loop runs between fetches, at once: nothing is fetched yet.
            assigned(partitions)
            checks.append(asyncio.ensure_future(consumer._report_idle(time.monotonic())))

        consumer._assigned = assigned_then_check  # type: ignore[method-assign]
        await consumer.start()
        try:
            await wait_until(lambda: len(handled) == 20 and bool(reports) and reports[-1][0])
            await asyncio.gather(*checks)
        finally:
            await consumer.stop()

    asyncio.run(run())
    assert checks, "the check ran when the partition was assigned"
    assert [r for r in reports if r[0] and r[1] < 20] == [], reports  # never idle while behind
    assert reports[-1] == (True, 20)  # idle once caught up


def test_the_end_of_a_partition_not_assigned_is_not_known() -> None:
    """A batch prepared while its partitions moved asks for the end of a partition this
    worker no longer holds: aiokafka raises for it, and the worker failed (review)."""

    async def run() -> int | None:
        offsets = Offsets()
        consumer = consumer_for("127.0.0.1:9", "t", offsets.handle, offsets.prepare, 5)
        return consumer.highwater(3)

    assert asyncio.run(run()) is None
