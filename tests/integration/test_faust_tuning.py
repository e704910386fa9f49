"""Faust agents still get every message, in order per partition, with the fast
drain patch installed: on the fast path (callback never waits) and on the slow
path (a tiny stream buffer makes the callback wait for the agent)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from tests.support.kafka_helpers import by_partition_and_key, keyed_messages, produce, running

from workpulse.dev.broker import EmbeddedBroker
from workpulse.kafka.admin import create_topics
from workpulse.worker.faust_tuning import install_fast_drain, is_installed, uninstall_fast_drain

pytestmark = pytest.mark.integration


@pytest.fixture
def fast_drain() -> Iterator[None]:
    """Installed here on Faust's own loop (a worker built earlier in this process may
    have installed it: it is taken off first, and put back afterwards)."""
    was = is_installed()
    uninstall_fast_drain()
    original = Consumer.wait_first
    assert install_fast_drain()
    assert install_fast_drain()  # idempotent: still one layer
    assert Consumer.wait_first.__wrapped__ is original  # type: ignore[attr-defined]
    try:
        yield
    finally:
        uninstall_fast_drain()
        assert not is_installed()
        assert Consumer.wait_first is original
        if was:
            install_fast_drain()


@pytest.mark.parametrize(
    ("buffer_maxsize", "slow_every"),
    [(4096, 0), (8, 50)],
    ids=["fast-path", "full-buffer"],
)
def test_agent_gets_everything_in_order_with_fast_drain(
    fast_drain: None,
    broker: EmbeddedBroker,
    topic_name: str,
    faust_app_factory: Callable[..., Any],
    buffer_maxsize: int,
    slow_every: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import workpulse.worker.faust_tuning as tuning

    slow_path = 0
    resume = tuning._resume

    def counting_resume(coro: Any, yielded: Any) -> Any:
        nonlocal slow_path
        slow_path += 1
        return resume(coro, yielded)

    monkeypatch.setattr(tuning, "_resume", counting_resume)
    n, keys = 3000, 32
    create_topics(broker.bootstrap, {topic_name: 4})
    app = faust_app_factory("drain", stream_buffer_maxsize=buffer_maxsize)
    topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")
    seen: list[tuple[int, int, bytes]] = []
    done = asyncio.Event()

    @app.agent(topic)
    async def count(stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            seen.append((m.partition, m.offset, event.value))
            if slow_every and len(seen) % slow_every == 0:
                await asyncio.sleep(0.001)  # lets the buffer fill up
            if len(seen) >= n:
                done.set()

    async def main() -> None:
        async with running(app):
            assert is_installed()
            await asyncio.to_thread(produce, broker.bootstrap, topic_name, keyed_messages(n, keys))
            await asyncio.wait_for(done.wait(), 60)
            await asyncio.sleep(0.2)  # nothing beyond n arrives

    asyncio.run(main())
    assert len(seen) == n
    assert len({(p, o) for p, o, _ in seen}) == n
    by_partition, by_key = by_partition_and_key(seen)
    assert set(by_partition) == {0, 1, 2, 3}
    for offsets in by_partition.values():
        assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))
    for seqs in by_key.values():
        assert seqs == sorted(seqs)
    if slow_every:
        assert slow_path > 0  # the callback had to wait: the original path was used


def test_install_is_a_noop_on_other_faust_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    import workpulse.worker.faust_tuning as tuning

    original = Consumer.wait_first
    monkeypatch.setattr(tuning, "_faust_version", lambda: "0.99.0")
    assert tuning.install_fast_drain() is False
    assert Consumer.wait_first is original


@pytest.fixture
def unfenced() -> Iterator[None]:
    """Without the seek fence (a worker built earlier in this process installed it), and
    as it was afterwards."""
    import workpulse.worker.faust_tuning as tuning

    was = tuning.is_seek_fenced()
    tuning.uninstall_seek_fence()
    try:
        yield
    finally:
        if was:
            tuning.install_seek_fence()


class _StandIn:
    """Faust's consumer as far as the fence sees it."""

    flow_active = True
    fail: BaseException | None = None

    def __init__(self) -> None:
        self.seen: list[bool] = []
        self._read_offset: dict[Any, int | None] = {}
        self._committed_offset: dict[Any, int | None] = {}
        self.app = SimpleNamespace(
            tables=SimpleNamespace(changelog_topics=set()),
            topics=SimpleNamespace(acks_enabled_for=lambda _topic: True),
        )

    def stop_flow(self) -> None:
        self.flow_active = False

    def resume_flow(self) -> None:
        self.flow_active = True

    async def perform_seek(self) -> None:
        raise AssertionError("the fence replaces it")

    async def seek_to_committed(self) -> dict[Any, int | None]:
        self.seen.append(self.flow_active)
        if self.fail is not None:
            raise self.fail
        return {}  # no partition (the seeks are tested on a real consumer)


def test_the_seek_fence_is_installed_once_and_undone(unfenced: None) -> None:
    """Installed on the pinned faust-streaming only (this fails on another version: the
    recovery it mends must be checked there again)."""
    import workpulse.worker.faust_tuning as tuning

    original = Consumer.perform_seek
    assert tuning.install_seek_fence()
    assert tuning.install_seek_fence()  # idempotent: still one layer
    assert Consumer.perform_seek.__wrapped__ is original  # type: ignore[attr-defined]
    tuning.uninstall_seek_fence()
    assert Consumer.perform_seek is original


@pytest.mark.parametrize(
    ("fail", "flow_after"),
    [(None, False), (TimeoutError("seek"), True), (asyncio.CancelledError(), True)],
    ids=["sought", "failed", "cancelled"],
)
def test_the_seek_fence_stops_the_flow_before_seeking(
    unfenced: None, monkeypatch: pytest.MonkeyPatch, fail: BaseException | None, flow_after: bool
) -> None:
    """The flow is stopped before the seek (its callers resume it after emptying the
    queues); a seek that fails or is cancelled leaves the flow running as it was (a
    recovery that gives up there would resume nothing, and the worker would stall)."""
    import workpulse.worker.faust_tuning as tuning

    stand_in = type("StandIn", (_StandIn,), {"fail": fail})
    monkeypatch.setattr("faust.transport.consumer.Consumer", stand_in)
    assert tuning.install_seek_fence()
    consumer = stand_in()
    if fail is None:
        asyncio.run(consumer.perform_seek())
    else:
        with pytest.raises(type(fail)):
            asyncio.run(consumer.perform_seek())
    assert consumer.seen == [False]
    assert consumer.flow_active is flow_after


def test_the_seek_fence_is_a_noop_on_other_faust_versions(
    unfenced: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workpulse.worker.faust_tuning as tuning

    original = Consumer.perform_seek
    monkeypatch.setattr(tuning, "_faust_version", lambda: "0.99.0")
    assert tuning.install_seek_fence() is False
    assert Consumer.perform_seek is original


def test_the_seek_fence_seeks_uncommitted_partitions_to_their_start(
    unfenced: None,
    broker: EmbeddedBroker,
    topic_name: str,
    faust_app_factory: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aiokafka's `seek_to_committed` seeks only partitions committed above 0: one the
    group never committed stayed where the fetcher had got to, so Faust's seek back did
    not go back there and what it had dropped was lost. With the fence, a real Faust
    consumer's `perform_seek` puts it at its start (even when Faust recorded a commit
    that failed), in the consumer's own thread; a committed one at its commit."""
    from faust.types import TP
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    import workpulse.worker.faust_tuning as tuning

    # debug, also for the loop of Faust's consumer thread (made after this): aiokafka's
    # state touched from a thread other than its loop's raises
    monkeypatch.setenv("PYTHONASYNCIODEBUG", "1")
    n = 400

    def attempt(topic: str) -> tuple[dict[int, int | None], dict[int, int | None]]:
        """(each partition's committed offset when the fence seeks, its position after)."""
        create_topics(broker.bootstrap, {topic: 2})
        produce(broker.bootstrap, topic, keyed_messages(n, 16))
        # acknowledged (so that the app can stop) but not committed while the test looks
        app = faust_app_factory(
            "uncommitted", topic_partitions=2, broker_commit_every=10**9,
            broker_commit_interval=3600,
        )  # fmt: skip
        group = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=app.conf.id,
                              enable_auto_commit=False)  # fmt: skip
        group.assign([TopicPartition(topic, 0)])
        group.commit({TopicPartition(topic, 0): OffsetAndMetadata(2, "", -1)})
        seen: list[tuple[int, int]] = []

        @app.agent(app.topic(topic, key_serializer="raw", value_serializer="raw"))
        async def hold(stream: Any) -> None:
            async for event in stream.events():
                seen.append((event.message.partition, event.message.offset))

        committed: dict[int, int | None] = {}
        positions: dict[int, int | None] = {}

        async def main() -> None:
            async with running(app):
                for _ in range(600):  # every message read (partition 0 from its commit)
                    if len(set(seen)) >= n - 2:  # (a rebalance may deliver some again)
                        break
                    await asyncio.sleep(0.05)
                assert len(set(seen)) >= n - 2, len(set(seen))
                assert tuning.install_seek_fence()
                for p in (0, 1):  # a rebalance at the start commits what was acknowledged
                    committed[p] = await asyncio.to_thread(
                        group.committed, TopicPartition(topic, p)
                    )
                # Faust records an offset even when its commit fails: not what the broker has
                app.consumer._committed_offset[TP(topic, 1)] = 150
                await app.consumer.perform_seek()
                # A fetch in flight when the flow stopped may still hand back records and
                # move a position on; Faust then drops them and seeks again (through the
                # fence: without it, partition 1 never goes back to its start).
                expected = {p: c if c else 0 for p, c in committed.items()}
                for _ in range(200):
                    for p in (0, 1):
                        positions[p] = await app.consumer.position(TP(topic, p))
                    if positions == expected:
                        break
                    await asyncio.sleep(0.05)
                app.consumer.resume_flow()

        try:
            asyncio.run(main(), debug=True)
        finally:
            group.close()
        return committed, positions

    # Each attempt checks the fence: a committed partition at its commit, an uncommitted
    # one at its start. A rebalance while the app starts may commit partition 1 (Faust
    # commits on revocation): then the uncommitted case is tried again on a fresh group.
    uncommitted_seen = False
    for i in range(3):
        committed, positions = attempt(f"{topic_name}-{i}")
        assert positions == {p: c if c else 0 for p, c in committed.items()}, committed
        if not committed[1]:
            uncommitted_seen = True
            break
    assert uncommitted_seen, "partition 1 was committed by a rebalance in every attempt"
