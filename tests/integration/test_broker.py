"""The embedded broker with kafka-python, aiokafka and an in-process Faust app."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from kafka.admin import KafkaAdminClient
from tests.support.kafka_helpers import by_partition_and_key, keyed_messages, produce, running
from tests.support.services import wait_until

from workpulse.dev.broker import BrokerError, EmbeddedBroker
from workpulse.kafka.admin import (
    AdminError,
    create_topics,
    topic_config,
    topic_configs,
    wait_for_assignment,
)

pytestmark = pytest.mark.integration


def committed_offsets(bootstrap: str, group: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
        return {tp.partition: meta.offset for tp, meta in offsets.items()}
    finally:
        admin.close()


def assert_in_order(seen: list[tuple[int, int, bytes]]) -> None:
    """Per partition: offsets strictly increase, and per key values keep the
    order in which they were produced."""
    by_partition, by_key = by_partition_and_key(seen)
    for offsets in by_partition.values():
        assert offsets == sorted(set(offsets))
    for seqs in by_key.values():
        assert seqs == sorted(seqs)


def test_broker_start_stop_is_idempotent(tmp_path: Path) -> None:
    b = EmbeddedBroker(log_path=tmp_path / "b.log")
    with b:
        assert b.pid is not None
        pid = b.pid
        b.start()  # already running: no second process
        assert b.pid == pid
    b.stop()  # second stop is a no-op
    assert b.process is None


def test_broker_dies_with_its_parent(tmp_path: Path) -> None:
    """`kill -9` of the process that started the broker leaves no orphan broker."""
    script = (
        "import time\n"
        "from workpulse.dev.broker import EmbeddedBroker\n"
        "b = EmbeddedBroker()\n"
        "b.start()\n"
        "print(b.process.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    broker_pid = None
    try:
        assert parent.stdout is not None
        broker_pid = int(parent.stdout.readline())
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(broker_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(broker_pid)
    finally:
        parent.kill()
        if broker_pid is not None and _alive(broker_pid):
            os.kill(broker_pid, signal.SIGKILL)  # do not leave it behind when failing


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_broker_error_names_the_log(tmp_path: Path) -> None:
    fake = tmp_path / "fake-broker"
    fake.write_text("#!/bin/sh\necho 'fatal: no storage' >&2\nexit 3\n")
    fake.chmod(0o755)
    b = EmbeddedBroker(log_path=tmp_path / "fake.log", binary=str(fake))
    with pytest.raises(BrokerError, match=r"code 3.*fatal: no storage"):
        b.start(timeout_s=5)
    assert b.process is None


def test_create_topics_is_idempotent(broker: EmbeddedBroker, topic_name: str) -> None:
    create_topics(broker.bootstrap, {topic_name: 4})
    create_topics(broker.bootstrap, {topic_name: 4, f"{topic_name}-b": 2})
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics()}
    finally:
        admin.close()
    assert described[topic_name] == 4
    assert described[f"{topic_name}-b"] == 2


def test_topics_are_created_with_their_configs(broker: EmbeddedBroker, topic_name: str) -> None:
    create_topics(broker.bootstrap, {topic_name: 2, f"{topic_name}-plain": 1},
                  configs={topic_name: {"cleanup.policy": "delete"}})  # fmt: skip
    assert topic_config(broker.bootstrap, topic_name, "cleanup.policy") == "delete"
    # a topic without configs of its own: the embedded broker says nothing
    assert topic_config(broker.bootstrap, f"{topic_name}-plain", "cleanup.policy") is None
    # several topics in one request (the worker's start reads two)
    assert topic_configs(broker.bootstrap, {topic_name: "cleanup.policy",
                                            f"{topic_name}-plain": "cleanup.policy"}) == {
        topic_name: "delete", f"{topic_name}-plain": None}  # fmt: skip


def _admin_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("kafka-io-workpulse-admin")]


def test_reading_a_topic_config_from_no_broker_fails_in_one_line() -> None:
    threads = _admin_threads()
    for _ in range(2):
        with pytest.raises(AdminError, match="could not read the configs of topic t") as caught:
            topic_config("127.0.0.1:9", "t", "cleanup.policy", timeout_s=1)
        assert "\n" not in str(caught.value)
    with pytest.raises(AdminError, match="could not create topics"):
        create_topics("127.0.0.1:9", {"t": 1}, timeout_s=1)
    # kafka-python's network thread of each failed bootstrap is stopped, not left behind
    assert _admin_threads() == threads


def test_kafka_python_produce_aiokafka_group_consume(
    broker: EmbeddedBroker, topic_name: str
) -> None:
    n = 2000
    create_topics(broker.bootstrap, {topic_name: 4})
    produce(broker.bootstrap, topic_name, keyed_messages(n))

    async def consume() -> tuple[list[tuple[int, int, bytes]], float]:
        consumer = AIOKafkaConsumer(
            topic_name,
            bootstrap_servers=broker.bootstrap,
            group_id=f"g-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            session_timeout_ms=2000,  # Tansu answers JoinGroup after ~session/2
            heartbeat_interval_ms=500,
        )
        t0 = time.monotonic()
        await consumer.start()
        try:
            assigned = await wait_for_assignment(consumer.assignment, {topic_name}, 30)
            joined = time.monotonic() - t0
            assert {tp.partition for tp in assigned} == {0, 1, 2, 3}
            seen: list[tuple[int, int, bytes]] = []
            while len(seen) < n:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    seen.extend((r.partition, r.offset, r.value) for r in records)
                assert time.monotonic() - t0 < 30, f"only {len(seen)} of {n} messages"
            return seen, joined
        finally:
            await consumer.stop()

    seen, joined = asyncio.run(consume())
    assert len(seen) == n
    assert len({(p, o) for p, o, _ in seen}) == n
    assert_in_order(seen)
    assert joined < 5, f"group join took {joined:.1f}s"


def test_faust_agent_and_table_in_process(
    broker: EmbeddedBroker, topic_name: str, faust_app_factory: Callable[..., Any]
) -> None:
    n = 500
    create_topics(broker.bootstrap, {topic_name: 4})
    app = faust_app_factory("agent")
    topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")
    counts = app.Table("counts", default=int, partitions=4)
    seen: list[tuple[int, int, bytes]] = []
    assigned_tps: set[Any] = set()
    all_seen = asyncio.Event()

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        assigned_tps.update(assigned)

    @app.agent(topic)
    async def count(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            counts[event.key.decode()] += 1
            seen.append((message.partition, message.offset, event.value))
            if len(seen) >= n:
                all_seen.set()

    async def main() -> None:
        async with running(app):
            assert {tp.partition for tp in assigned_tps if tp.topic == topic_name} == {0, 1, 2, 3}
            await asyncio.to_thread(produce, broker.bootstrap, topic_name, keyed_messages(n))
            await asyncio.wait_for(all_seen.wait(), 30)
            assert sum(counts.values()) == n
            assert counts["k0"] == len(range(0, n, 16))
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert leftover == []

    threads_before = {t.ident for t in threading.enumerate()}
    asyncio.run(main())
    # Faust's aiokafka consumer runs in its own thread: it must be gone after stop
    assert {t.ident for t in threading.enumerate()} <= threads_before
    assert_in_order(seen)
    assert len(seen) == n


def test_faust_noack_take_commits_only_after_the_batch_is_acked(
    broker: EmbeddedBroker, topic_name: str, faust_app_factory: Callable[..., Any]
) -> None:
    """The pattern for "commit only after the batch is durably written":
    `stream.noack_take()` + `stream.ack(event)` after the write. While the agent
    is still writing, nothing is committed; after it acks, the batch is."""
    create_topics(broker.bootstrap, {topic_name: 1})
    produce(broker.bootstrap, topic_name, [(b"k", str(i).encode()) for i in range(10)])
    app = faust_app_factory("noack")
    topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")
    got_batch = asyncio.Event()
    written = asyncio.Event()
    batches: list[list[bytes]] = []

    @app.agent(topic)
    async def sink(stream: Any) -> None:
        async for events in stream.noack_take(5, within=0.5):
            batches.append([e.value for e in events])
            got_batch.set()
            await written.wait()  # stands for the ClickHouse insert
            for event in events:
                await stream.ack(event)

    async def main() -> None:
        async with running(app):
            await asyncio.wait_for(got_batch.wait(), 30)
            await asyncio.sleep(1.0)  # five commit intervals
            assert await asyncio.to_thread(committed_offsets, broker.bootstrap, app.conf.id) == {}
            written.set()
            deadline = time.monotonic() + 10
            while True:
                offsets = await asyncio.to_thread(committed_offsets, broker.bootstrap, app.conf.id)
                if offsets.get(0) == 10 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert offsets == {0: 10}

    asyncio.run(main())
    assert [len(b) for b in batches] == [5, 5]


def test_faust_take_commits_a_failed_batch(
    broker: EmbeddedBroker, topic_name: str, faust_app_factory: Callable[..., Any]
) -> None:
    """Why plain `take()` is not enough: when the agent raises while handling a
    batch (the write failed), take()'s `finally` acks the batch anyway, and its
    offsets are committed: at-most-once for that batch."""
    create_topics(broker.bootstrap, {topic_name: 1})
    produce(broker.bootstrap, topic_name, [(b"k", str(i).encode()) for i in range(10)])
    app = faust_app_factory("take")
    topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")
    batches: list[list[bytes]] = []
    second = asyncio.Event()
    hold = asyncio.Event()

    @app.agent(topic)
    async def sink(stream: Any) -> None:
        async for batch in stream.take(5, within=0.5):
            batches.append(list(batch))
            if len(batches) == 1:
                raise RuntimeError("ClickHouse insert failed")
            second.set()
            await hold.wait()

    async def main() -> None:
        async with running(app):
            await asyncio.wait_for(second.wait(), 30)
            await asyncio.sleep(1.0)
            offsets = await asyncio.to_thread(committed_offsets, broker.bootstrap, app.conf.id)
            hold.set()
        # the failed first batch (offsets 0-4) is committed; it is never redelivered
        assert offsets == {0: 5}
        assert [b[0] for b in batches] == [b"0", b"5"]

    asyncio.run(main())


@pytest.mark.timeout(120)
def test_a_send_to_a_broker_that_dies_ends_with_what_was_acknowledged(tmp_path: Path) -> None:
    """`workpulse produce` with its broker killed mid-send sat in the producer's flush for
    more than ten minutes, without a word; the wait is bounded now, and the command says
    how many messages Kafka acknowledged (one line, exit 1: kafka-python's producer
    cannot close with messages unacknowledged, so the command ends its process)."""
    from kafka import KafkaConsumer, TopicPartition

    broker = EmbeddedBroker(log_path=tmp_path / "broker.log")
    broker.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKPULSE_")}
    sending: subprocess.Popen[bytes] | None = None
    try:
        create_topics(broker.bootstrap, {"dies": 1})
        tp = TopicPartition("dies", 0)

        def stored() -> int:  # the topic's end offset, read from the broker
            consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
            try:
                return int(consumer.end_offsets([tp])[tp])
            finally:
                consumer.close()

        sending = subprocess.Popen(
            [str(Path(sys.executable).parent / "workpulse"), "produce", "--events", "200000",
             "--kafka-bootstrap", broker.bootstrap, "--input-topic", "dies", "--ack-timeout",
             "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        wait_until(lambda: stored() > 0, 60, "the first messages stored")
        assert broker.process is not None
        broker.process.kill()
        _, err = sending.communicate(timeout=100)
    finally:
        if sending is not None and sending.poll() is None:
            sending.kill()
        broker.stop()
    lines = [line for line in err.decode().splitlines() if line.strip()]
    assert sending.returncode == 1, lines[-5:]
    assert "Traceback" not in err.decode() and "Exception ignored" not in err.decode()
    said = re.search(r"Kafka acknowledged ([\d,]+) of ([\d,]+) messages read \(is the broker "
                     r"up, and does topic dies exist\?\); the others may or may not be "
                     r"stored$", lines[-1])  # fmt: skip
    assert said is not None, lines[-1]
    acknowledged, read = (int(g.replace(",", "")) for g in said.groups())
    assert 1 <= acknowledged < read <= 200_000
