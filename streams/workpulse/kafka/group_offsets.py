"""A consumer group's committed offsets and a topic's earliest ones, read from the
outside (kafka-python): the counts agent's report check (`worker.report_sequence`)
compares the first report it gets after an assignment with them. The client never
subscribes, so it never joins the group or commits for it."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from workpulse.kafka.clients import start_client


class GroupOffsets:
    """Lookups for one group and topic, through one client made on first use (blocking:
    call it from a thread; one lookup at a time, as the counts agent makes them)."""

    def __init__(
        self, options: Mapping[str, Any], group: str, topic: str, timeout_s: float = 30.0
    ) -> None:
        self._options = dict(options)
        self._group = group
        self._topic = topic
        self._timeout_ms = int(timeout_s * 1000)
        self._client: Any = None
        self._closed = False
        self._lock = threading.Lock()

    def lookup(self, partition: int) -> tuple[int | None, int]:
        """(the group's committed offset or None, the partition's earliest offset);
        each step (connecting, each of the two reads) raises after `timeout_s`
        (kafka-python's KafkaTimeoutError)."""
        from kafka import TopicPartition

        with self._lock:
            if self._closed:
                raise RuntimeError("closed: the worker is stopping")
            client = self._client
        if client is None:
            # Connected outside the lock: `close` must not wait for a broker that does
            # not answer (up to `timeout_s`).
            connected = self._connect()
            with self._lock:
                if self._closed:
                    connected.close()
                    raise RuntimeError("closed: the worker is stopping")
                if self._client is None:
                    self._client = connected
                else:
                    connected.close()
                client = self._client
        tp = TopicPartition(self._topic, partition)
        committed = client.committed(tp, timeout_ms=self._timeout_ms)
        earliest = client.beginning_offsets([tp], timeout_ms=self._timeout_ms)[tp]
        return (None if committed is None or committed < 0 else int(committed)), int(earliest)

    def _connect(self) -> Any:
        from kafka import KafkaConsumer

        return start_client(
            KafkaConsumer,
            **self._options,
            group_id=self._group,
            client_id=f"{self._group}-report-check",
            enable_auto_commit=False,
            bootstrap_timeout_ms=self._timeout_ms,
        )

    def close(self) -> None:
        """Never waits: a lookup that is still connecting closes its client when it has
        one, and fails; one past that fails at once (its connection is closed under it)."""
        with self._lock:
            client, self._client = self._client, None
            self._closed = True
        if client is not None:
            client.close()
