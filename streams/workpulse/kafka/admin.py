"""Topic administration (kafka-python admin client) and waiting for a consumer's
partition assignment. Works against the embedded broker and a secured cluster alike."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from workpulse.kafka.clients import start_client

log = logging.getLogger(__name__)

FIRST_TRY_S = 3.0  # the first bootstrap's limit: after it, a warning says what is going on


class AdminError(RuntimeError):
    """Topics could not be created, or their configs read."""


def _client_options(bootstrap: str | Mapping[str, Any]) -> dict[str, Any]:
    return {"bootstrap_servers": bootstrap} if isinstance(bootstrap, str) else dict(bootstrap)


def _admin_client(bootstrap: str | Mapping[str, Any], timeout_s: float) -> Any:
    """A kafka-python admin client (closed again if its bootstrap fails: `start_client`)."""
    from kafka.admin import KafkaAdminClient

    timeout_ms = max(1000, int(timeout_s * 1000))
    return start_client(
        KafkaAdminClient,
        **_client_options(bootstrap),
        client_id="workpulse-admin",
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )


def create_topics(
    bootstrap: str | Mapping[str, Any],
    topics: dict[str, int],
    timeout_s: float = 30.0,
    replication_factor: int = 1,
    configs: Mapping[str, Mapping[str, str]] = MappingProxyType({}),
) -> None:
    """Creates each topic (name -> partitions) with its `configs` if any (name -> topic
    configs); existing ones are fine (and left as they are).

    `bootstrap`: "host:port" of an unsecured broker, or kafka-python client options
    (`workpulse.kafka.settings.kafka_python_options`)."""
    if not topics:
        return
    options = _client_options(bootstrap)
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    servers = options.get("bootstrap_servers") or []
    where = servers if isinstance(servers, str) else ",".join(servers)
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    first = True
    while time.monotonic() < deadline:
        # The first try is short, so that a broker that does not answer is said at once
        # (kafka-python's own retry lines are kept out of the log: `setup_logging`).
        left = max(1.0, deadline - time.monotonic())
        try_s, first_try, first = (min(left, FIRST_TRY_S) if first else left), first, False
        try:
            admin = _admin_client(options, try_s)
        except KafkaError as exc:
            last = exc
            if first_try:
                log.warning(
                    "Kafka at %s does not answer yet (%s); trying for %.0f s more",
                    where, exc, max(0.0, deadline - time.monotonic()),
                )  # fmt: skip
            time.sleep(0.2)
            continue
        try:
            existing = set(admin.list_topics())
            missing = [
                NewTopic(
                    name=name,
                    num_partitions=n,
                    replication_factor=replication_factor,
                    topic_configs=dict(configs.get(name, {})),
                )
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
    raise AdminError(f"could not create topics {sorted(topics)} on {where}: {last}")


def topic_config(
    bootstrap: str | Mapping[str, Any], topic: str, key: str, timeout_s: float = 10.0
) -> str | None:
    """The value of the topic config `key` (`topic_configs` for one topic)."""
    return topic_configs(bootstrap, {topic: key}, timeout_s)[topic]


def topic_configs(
    bootstrap: str | Mapping[str, Any], wanted: Mapping[str, str], timeout_s: float = 10.0
) -> dict[str, str | None]:
    """Per topic of `wanted` (topic -> config key), the value of that config (its own or
    the broker's default), or None when the broker does not say: the embedded broker
    describes only the configs a topic was created with, and kafka-python does not raise
    on a resource's error (an authorization failure, an unknown topic) but leaves its
    configs empty. One client and one request for them all."""
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import KafkaError

    names = ", ".join(wanted)
    try:
        admin = _admin_client(bootstrap, timeout_s)
    except KafkaError as exc:
        raise AdminError(f"could not read the configs of topic {names}: {exc}") from exc
    try:
        described = admin.describe_configs(
            # all of them (asking for `key` alone made the embedded broker drop the
            # connection), whatever their source (a broker default included)
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in wanted],
            config_filter="all",
        )
    except KafkaError as exc:
        raise AdminError(f"could not read the configs of topic {names}: {exc}") from exc
    finally:
        admin.close()
    values: dict[str, str | None] = {}
    for topic, key in wanted.items():
        entry = described.get("topic", {}).get(topic, {}).get(key)
        value = entry.get("value") if isinstance(entry, Mapping) else None
        values[topic] = str(value) if value is not None else None
    return values


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
