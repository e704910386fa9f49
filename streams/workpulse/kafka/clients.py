"""Making kafka-python clients without leaking their network thread."""

from __future__ import annotations

import contextlib
from typing import Any, TypeVar

C = TypeVar("C")


def start_client(cls: type[C], **config: Any) -> C:
    """`cls(**config)` (a kafka-python `KafkaConsumer` or `KafkaAdminClient`), or the
    error of its bootstrap. kafka-python starts its network thread before it
    bootstraps, and a bootstrap that fails leaves it running: each failed attempt would
    leave a thread and its sockets behind. The half-made client is closed (its
    `_client`, the only part made by then; tests/integration/test_group_offsets.py and
    test_broker.py count the threads)."""
    client = cls.__new__(cls)
    try:
        client.__init__(**config)  # type: ignore[misc]
    except BaseException:
        network = getattr(client, "_client", None)
        if network is not None:
            with contextlib.suppress(Exception):
                network.close()
        raise
    return client
