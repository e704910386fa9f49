from __future__ import annotations

from pathlib import Path

import pytest

from workpulse.config import Settings, load_settings, redact_url


def test_defaults() -> None:
    s = load_settings(environ={})
    assert s == Settings()
    assert s.chdb_path == Path("var/chdb")


@pytest.mark.parametrize(
    ("environ", "overrides", "field", "value"),
    [
        ({"WORKPULSE_BATCH_SIZE": "500"}, {}, "batch_size", 500),
        ({"WORKPULSE_BATCH_SIZE": "500"}, {"batch_size": 10}, "batch_size", 10),
        ({"WORKPULSE_DATA_DIR": "/tmp/x"}, {}, "data_dir", Path("/tmp/x")),
        ({"WORKPULSE_WINDOW_GRACE_S": "1.5"}, {}, "window_grace_s", 1.5),
        ({"WORKPULSE_KAFKA_BOOTSTRAP": ""}, {}, "kafka_bootstrap", None),
        ({}, {"metrics_port": None}, "metrics_port", 9108),
    ],
)
def test_precedence(
    environ: dict[str, str], overrides: dict[str, object], field: str, value: object
) -> None:
    assert getattr(load_settings(overrides, environ=environ), field) == value


def test_bad_number_is_one_clear_error() -> None:
    with pytest.raises(Exception, match="WORKPULSE_BATCH_SIZE"):
        load_settings(environ={"WORKPULSE_BATCH_SIZE": "lots"})


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://u:secret@h:8123/db", "http://u:***@h:8123/db"),
        ("https://h", "https://h"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_secrets_never_in_redacted_settings() -> None:
    s = load_settings(
        environ={
            "WORKPULSE_KAFKA_SASL_PASSWORD": "hunter2",
            "WORKPULSE_CLICKHOUSE_URL": "https://u:topsecret@ch:8443/workpulse",
        }
    )
    text = repr(s.redacted()) + repr(s)
    assert "hunter2" not in text and "topsecret" not in text
