"""Topic administration (kafka-python admin client) and waiting for a consumer's
partition assignment. Works against the embedded broker and a secured cluster alike."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any


class AdminError(RuntimeError):
    """Topics could not be created."""


def create_topics(
    bootstrap: str | Mapping[str, Any],
    topics: dict[str, int],
    timeout_s: float = 30.0,
    replication_factor: int = 1,
) -> None:
    """Creates each topic (name -> partitions); existing ones are fine.

    `bootstrap`: "host:port" of an unsecured broker, or kafka-python client options
    (`workpulse.kafka.settings.kafka_python_options`)."""
    if not topics:
        return
    options = {"bootstrap_servers": bootstrap} if isinstance(bootstrap, str) else dict(bootstrap)
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin = KafkaAdminClient(
                **options,
                client_id="workpulse-admin",
                request_timeout_ms=max(1000, int(timeout_s * 1000)),
            )
        except KafkaError as exc:
            last = exc
            time.sleep(0.2)
            continue
        try:
            existing = set(admin.list_topics())
            missing = [
                NewTopic(name=name, num_partitions=n, replication_factor=replication_factor)
                for name, n in topics.items()
                if name not in existing
            ]
            for new in missing:  # one by one: an "already exists" must not hide the others
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics([new])
            return
        except KafkaError as exc:
            last = exc
            time.sleep(0.2)
        finally:
            admin.close()
    where = (
        ",".join(options.get("bootstrap_servers") or [])
        if not isinstance(bootstrap, str)
        else bootstrap
    )
    raise AdminError(f"could not create topics {sorted(topics)} on {where}: {last}")


async def wait_for_assignment(
    assignment: Callable[[], Any],
    topics: set[str] | None = None,
    timeout_s: float = 60.0,
    poll_s: float = 0.05,
) -> set[Any]:
    """Waits until `assignment()` (e.g. `aiokafka_consumer.assignment` or
    `faust_app.consumer.assignment`) returns partitions (of `topics`, if given).
    Returns them; raises TimeoutError otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            got = set(assignment() or ())
        except Exception:  # consumer not ready yet
            got = set()
        if topics is not None:
            got = {tp for tp in got if tp.topic in topics}
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"no partitions assigned within {timeout_s:.0f}s")
        await asyncio.sleep(poll_s)
