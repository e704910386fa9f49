"""Faust settings derived from workpulse settings (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workpulse.config import Settings
from workpulse.dev.demo import embedded_worker_settings
from workpulse.worker.app import (
    CLUSTER_SESSION_TIMEOUT_S,
    EMBEDDED_SESSION_TIMEOUT_S,
    faust_settings,
    session_timeout_s,
)


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        (None, CLUSTER_SESSION_TIMEOUT_S),  # a real cluster: the safe default
        (6.0, 6.0),
        (2.0, 2.0),
    ],
)
def test_session_timeout(configured: float | None, expected: float) -> None:
    settings = Settings(kafka_bootstrap="kafka:9092", kafka_session_timeout_s=configured)
    assert session_timeout_s(settings) == expected
    conf = faust_settings(settings, "kafka:9092")
    assert conf["broker_session_timeout"] == expected
    assert conf["broker_rebalance_timeout"] == expected
    assert conf["broker_heartbeat_interval"] < expected / 3  # several beats per session


@pytest.mark.parametrize(
    ("configured", "expected"),
    [(None, EMBEDDED_SESSION_TIMEOUT_S), (5.0, 5.0)],
)
def test_demo_uses_short_session_on_the_embedded_broker(
    configured: float | None, expected: float
) -> None:
    settings = embedded_worker_settings(
        Settings(data_dir=Path("var"), kafka_session_timeout_s=configured), "127.0.0.1:9999"
    )
    assert settings.kafka_bootstrap == "127.0.0.1:9999"
    assert session_timeout_s(settings) == expected


def test_bootstrap_list_becomes_faust_urls() -> None:
    conf = faust_settings(Settings(), "k1:9092, k2:9092")
    assert conf["broker"] == "kafka://k1:9092,kafka://k2:9092"


def test_the_longest_app_id_names_topics_kafka_takes(tmp_path: Path) -> None:
    """The app id may have 200 characters: every topic named after it (the reports, Faust's
    changelog and its assignor's topic) must stay within Kafka's 249."""
    from workpulse.worker.app import create_app, faust_app_id, watermarks_topic_name

    settings = Settings(kafka_bootstrap="kafka:9092", app_id="a" * 200, data_dir=tmp_path)
    worker = create_app(settings, "kafka:9092")
    names = [
        watermarks_topic_name(settings),
        worker.windows.changelog_topic.get_topic_name(),
        worker.app.conf.id + "-__assignor-__leader",  # Faust's leader topic
    ]
    assert all(name.startswith(settings.app_id) for name in names)
    assert max(map(len, names)) <= 249, names
    assert faust_app_id(settings) in names[1]
