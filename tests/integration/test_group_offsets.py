"""`kafka.group_offsets.GroupOffsets` on the embedded broker: a group's committed offset and
a partition's earliest, read without joining the group (the counts agent's report check
starts from them)."""

from __future__ import annotations

import threading
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from workpulse.dev.broker import EmbeddedBroker
from workpulse.kafka.admin import create_topics
from workpulse.kafka.group_offsets import GroupOffsets

pytestmark = pytest.mark.integration


def test_committed_and_earliest_offsets(broker: EmbeddedBroker) -> None:
    topic, group = f"offsets-{uuid.uuid4().hex[:8]}", f"group-{uuid.uuid4().hex[:8]}"
    create_topics(broker.bootstrap, {topic: 2})
    committer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group,
                              enable_auto_commit=False)  # fmt: skip
    partition = 1
    offsets = GroupOffsets({"bootstrap_servers": broker.bootstrap}, group, topic, timeout_s=10)
    try:
        assert offsets.lookup(partition) == (None, 0)  # nothing committed yet
        committer.assign([TopicPartition(topic, partition)])
        committer.commit({TopicPartition(topic, partition): OffsetAndMetadata(3, "", -1)})
        assert offsets.lookup(partition) == (3, 0)
        assert offsets.lookup(1 - partition) == (None, 0)  # the other partition
    finally:
        offsets.close()
        committer.close()
    offsets.close()  # twice: fine


def test_an_unreachable_broker_fails_the_lookup() -> None:
    """It raises (the agent then checks from the partition's second report) rather than
    waiting for a broker for good; kafka-python's own default wait is 30 s."""
    threads = threading.active_count()
    offsets = GroupOffsets({"bootstrap_servers": "127.0.0.1:9"}, "g", "t", timeout_s=0.5)
    for _ in range(2):  # each first report of a partition tries again
        with pytest.raises(KafkaTimeoutError):
            offsets.lookup(0)
    # kafka-python's network thread of each failed attempt is stopped, not left behind
    assert threading.active_count() == threads, [t.name for t in threading.enumerate()]
    offsets.close()
    with pytest.raises(RuntimeError, match="closed"):
        offsets.lookup(0)  # a lookup after close makes no client that nothing closes


def test_close_does_not_wait_for_a_lookup_that_is_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker closes its clients when it stops: a lookup still connecting (to a
    broker that does not answer) is not waited for (close waited for it, up to
    timeout_s); the lookup then closes the client it got, and fails."""
    connecting, release = threading.Event(), threading.Event()
    client = SimpleNamespace(closed=False)
    client.close = lambda: setattr(client, "closed", True)

    def connect() -> Any:
        connecting.set()
        release.wait(30)
        return client

    offsets = GroupOffsets({"bootstrap_servers": "127.0.0.1:9"}, "g", "t", timeout_s=30)
    monkeypatch.setattr(offsets, "_connect", connect)
    errors: list[BaseException] = []

    def look() -> None:
        try:
            offsets.lookup(0)
        except BaseException as exc:  # what the lookup raised is the point
            errors.append(exc)

    lookup = threading.Thread(target=look)
    lookup.start()
    assert connecting.wait(30)
    closing = threading.Thread(target=offsets.close)
    closing.start()
    closing.join(10)
    closed_while_connecting = not closing.is_alive()
    release.set()
    lookup.join(30)
    closing.join(30)
    assert closed_while_connecting
    assert [str(e) for e in errors] == ["closed: the worker is stopping"] and client.closed
