"""`workpulse produce`: send a JSONL file or the synthetic workload to Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from workpulse.config import Settings
from workpulse.demo import count_lines, file_messages
from workpulse.generator import Workload, WorkloadConfig


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """kafka-python connection options (security included) from the settings."""
    opts: dict[str, Any] = {
        "bootstrap_servers": [b.strip() for b in (settings.kafka_bootstrap or "").split(",")],
        "security_protocol": settings.kafka_security_protocol.upper(),
    }
    if settings.kafka_sasl_mechanism:
        opts["sasl_mechanism"] = settings.kafka_sasl_mechanism
        opts["sasl_plain_username"] = settings.kafka_sasl_username
        opts["sasl_plain_password"] = settings.kafka_sasl_password
    if settings.kafka_ssl_cafile:
        opts["ssl_cafile"] = settings.kafka_ssl_cafile
    return opts


def produce_messages(
    settings: Settings, *, file: Path | None, events: int, seed: int, bad_fraction: float
) -> int:
    if file is not None:
        total = count_lines(file)
        messages: Iterator[tuple[bytes | None, bytes]] = file_messages(file)
    else:
        total = events
        messages = Workload(WorkloadConfig(seed=seed, bad_fraction=bad_fraction)).messages(events)
    producer = KafkaProducer(
        **kafka_client_options(settings),
        acks="all",
        linger_ms=10,
        batch_size=256 * 1024,
        max_request_size=2 * 1024 * 1024,
    )
    sent = 0
    columns = (TextColumn("producing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task("produce", total=total)
            for key, value in messages:
                producer.send(settings.input_topic, key=key, value=value)
                sent += 1
                if sent % 1000 == 0:
                    bar.update(task, completed=sent)
            producer.flush()
            bar.update(task, completed=sent)
    finally:
        producer.close()
    return sent
