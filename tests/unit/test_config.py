from __future__ import annotations

from pathlib import Path

import pytest

from workpulse.config import ConfigError, Settings, load_settings, redact_url


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


@pytest.mark.parametrize(
    ("environ", "field", "value"),
    [
        ({"WORKPULSE_LEXICON_CACHE": "false"}, "lexicon_cache", False),
        ({"WORKPULSE_LEXICON_CACHE": "0"}, "lexicon_cache", False),
        ({"WORKPULSE_LEXICON_CACHE": "yes"}, "lexicon_cache", True),
        (
            {
                "WORKPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "WORKPULSE_KAFKA_SASL_MECHANISM": "PLAIN",
                "WORKPULSE_KAFKA_SASL_USERNAME": "u",
                "WORKPULSE_KAFKA_SASL_PASSWORD": "p",
            },
            "kafka_security_protocol",
            "SASL_SSL",
        ),
        ({"WORKPULSE_SPIKE_MIN_COUNT": "25"}, "spike_min_count", 25.0),
        ({"WORKPULSE_LEXICON_RELOAD_S": "0.5"}, "lexicon_reload_s", 0.5),
        ({"WORKPULSE_SCHEMAS_DIR": "/srv/schemas"}, "schemas_dir", Path("/srv/schemas")),
    ],
)
def test_typed_values(environ: dict[str, str], field: str, value: object) -> None:
    assert getattr(load_settings(environ=environ), field) == value


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"WORKPULSE_LEXICON_CACHE": "perhaps"}, "WORKPULSE_LEXICON_CACHE"),
        ({"WORKPULSE_KAFKA_SECURITY_PROTOCOL": "TLS"}, "WORKPULSE_KAFKA_SECURITY_PROTOCOL"),
        ({"WORKPULSE_BATCH_SIZE": "0"}, "WORKPULSE_BATCH_SIZE"),
        # a dead letter of more could not be sent: the worker would stop on it for good
        ({"WORKPULSE_MAX_MESSAGE_BYTES": "1048577"}, "WORKPULSE_MAX_MESSAGE_BYTES"),
        ({"WORKPULSE_METRICS_PORT": "-1"}, "WORKPULSE_METRICS_PORT"),
        ({"WORKPULSE_CLICKHOUSE_URL": "ftp://u:pw@h"}, "WORKPULSE_CLICKHOUSE_URL"),
        # infinite: the worker failed later with "cannot convert float infinity to integer"
        ({"WORKPULSE_WINDOW_GRACE_S": "inf"}, "WORKPULSE_WINDOW_GRACE_S"),
        # the Kafka clients tried for 30 s, then said only that they could not bootstrap
        ({"WORKPULSE_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "WORKPULSE_KAFKA_SSL_CAFILE"),
        ({"WORKPULSE_KAFKA_SSL_CAFILE": "/"}, "WORKPULSE_KAFKA_SSL_CAFILE"),
        ({"WORKPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "WORKPULSE_KAFKA_SASL_"),
        # finite but past 64 bits in ms: the counts agent failed "Integer exceeds 64-bit"
        ({"WORKPULSE_WINDOW_GRACE_S": "1e17"}, "WORKPULSE_WINDOW_GRACE_S"),
        # bind() said "port must be 0-65535", after the demo had reset its data
        ({"WORKPULSE_METRICS_PORT": "70000"}, "WORKPULSE_METRICS_PORT"),
        ({"WORKPULSE_EVENT_TIME_MAX_AHEAD_S": "inf"}, "WORKPULSE_EVENT_TIME_MAX_AHEAD_S"),
        ({"WORKPULSE_BATCH_TIMEOUT_S": "Infinity"}, "WORKPULSE_BATCH_TIMEOUT_S"),
        ({"WORKPULSE_SINK_RETRY_MAX_S": "inf"}, "WORKPULSE_SINK_RETRY_MAX_S"),
        ({"WORKPULSE_SPIKE_MIN_COUNT": "inf"}, "WORKPULSE_SPIKE_MIN_COUNT"),
        ({"WORKPULSE_IDLE_PARTITION_S": "nan"}, "WORKPULSE_IDLE_PARTITION_S"),
        # longer than the clients' request timeouts: Faust's consumer thread crashed
        ({"WORKPULSE_KAFKA_SESSION_TIMEOUT_S": "95"}, "WORKPULSE_KAFKA_SESSION_TIMEOUT_S"),
        ({"WORKPULSE_PARTITIONS": "100000000"}, "WORKPULSE_PARTITIONS"),
        # not a Kafka topic name: the worker ran on for ever, its consumer without partitions
        ({"WORKPULSE_INPUT_TOPIC": "a b"}, "WORKPULSE_INPUT_TOPIC"),
        ({"WORKPULSE_DLQ_TOPIC": "a\nb"}, "WORKPULSE_DLQ_TOPIC"),
        ({"WORKPULSE_SPIKES_TOPIC": "x" * 250}, "WORKPULSE_SPIKES_TOPIC"),
        ({"WORKPULSE_APP_ID": "my app"}, "WORKPULSE_APP_ID"),
        ({"WORKPULSE_APP_ID": "a" * 201}, "WORKPULSE_APP_ID"),
    ],
)
def test_invalid_values_are_one_line_naming_the_variable(
    environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ=environ)
    message = str(info.value)
    assert message.startswith(variable) and "\n" not in message
    assert "pw@" not in message  # a secret is never echoed back


def test_flags_win_and_replace_validates() -> None:
    s = load_settings({"batch_size": 7}, environ={"WORKPULSE_BATCH_SIZE": "500"})
    assert s.batch_size == 7
    assert s.replace(batch_size=9).batch_size == 9
    with pytest.raises(ConfigError, match="WORKPULSE_BATCH_SIZE"):
        s.replace(batch_size=0)


def test_unknown_variables_are_ignored() -> None:
    assert load_settings(environ={"WORKPULSE_NO_SUCH_THING": "1"}) == load_settings(environ={})


def test_lexicon_cache_dir(tmp_path: Path) -> None:
    assert load_settings(environ={"WORKPULSE_LEXICON_CACHE": "0"}).lexicon_cache_dir is None
    assert (
        load_settings(environ={"WORKPULSE_CACHE_DIR": str(tmp_path)}).lexicon_cache_dir == tmp_path
    )


def test_config_does_not_import_click() -> None:
    import subprocess
    import sys

    code = "import sys, workpulse.config; print('click' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
