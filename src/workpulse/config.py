"""Configuration, read in one place.

Every setting is a field of `Settings`; each has a command-line flag and a
`WORKPULSE_<NAME>` environment variable (flags win). `settings_options` adds the
flags to a click command so `--help` names every variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import click

F = TypeVar("F", bound=Callable[..., Any])

ENV_PREFIX = "WORKPULSE_"


def _setting(default: Any, help: str, *, secret: bool = False, flag: bool = True) -> Any:
    return field(
        default=default, repr=not secret, metadata={"help": help, "secret": secret, "flag": flag}
    )


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str | None = _setting(
        None, "Kafka bootstrap servers (host:port,…). Unset: the embedded broker (demo only)."
    )
    kafka_security_protocol: str = _setting(
        "PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: str | None = _setting(None, "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.")
    kafka_sasl_username: str | None = _setting(None, "SASL user name.")
    kafka_sasl_password: str | None = _setting(None, "SASL password (never printed).", secret=True)
    kafka_ssl_cafile: str | None = _setting(None, "CA bundle for SSL/SASL_SSL.")
    input_topic: str = _setting("video-events", "Topic carrying the input events.")
    dlq_topic: str = _setting("video-events-dlq", "Dead-letter topic for rejected messages.")
    spikes_topic: str = _setting("topic-spikes", "Topic receiving one message per spike.")
    partitions: int = _setting(
        4, "Partitions of topics the embedded broker or `init-topics` creates."
    )
    app_id: str = _setting("workpulse", "Faust application id (= consumer group).")
    kafka_session_timeout_s: float | None = _setting(
        None,
        "Consumer group session timeout, in seconds. Unset: 2 s in the demo on the "
        "embedded broker (it answers a join after about half of it), else 10 s.",
    )
    clickhouse_url: str | None = _setting(
        None,
        "ClickHouse server, http(s)://user:password@host:8123/workpulse. "
        "Unset: embedded chDB under the data directory.",
        secret=True,
    )
    data_dir: Path = _setting(Path("var"), "Local state: chDB files, Faust tables, logs.")
    metrics_host: str = _setting("127.0.0.1", "Address of the /metrics endpoint.")
    metrics_port: int = _setting(9108, "Port of the /metrics endpoint (0: any free port).")
    batch_size: int = _setting(2000, "Maximum events per processing and sink batch.")
    batch_timeout_s: float = _setting(0.5, "Longest wait to fill a batch, in seconds.")
    window_grace_s: float = _setting(
        120.0, "How long after its end (event time) a minute window still accepts events."
    )
    max_message_bytes: int = _setting(256 * 1024, "Larger messages are dead-lettered.")
    sink_retry_max_s: float = _setting(
        30.0, "Longest pause between ClickHouse retries (backoff doubles up to it)."
    )
    lexicon_dir: Path | None = _setting(
        None, "Lexicon directory (default: schemas/lexicons); reloaded when it changes."
    )
    log_level: str = _setting("WARNING", "Log level of the worker.")

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with secrets hidden, for logs and `--help` output."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret") and value:
                value = redact_url(value) if "://" in str(value) else "***"
            out[f.name] = value
        return out

    @property
    def chdb_path(self) -> Path:
        return self.data_dir / "chdb"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def redact_url(url: str) -> str:
    """Hide the password in a URL (`http://u:secret@h` → `http://u:***@h`)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def _convert(f: dataclasses.Field[Any], raw: Any) -> Any:
    if raw is None:
        return None
    kind = str(f.type)
    if "Path" in kind:
        return Path(raw)
    if kind.startswith("int"):
        return int(raw)
    if kind.startswith("float"):
        return float(raw)
    return raw


def load_settings(
    overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Defaults, then WORKPULSE_* variables, then explicit overrides (flags)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        name = env_name(f.name)
        if name in env and env[name] != "":
            try:
                values[f.name] = _convert(f, env[name])
            except ValueError as exc:
                raise click.BadParameter(f"{name}={env[name]!r}: {exc}") from None
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    return Settings(**values)


def settings_options(*names: str) -> Callable[[F], F]:
    """Add `--flag` options for the named settings; values land in `ctx.obj['overrides']`.

    Options are not given click's `envvar` so that precedence and conversion stay
    in `load_settings`; `--help` still names each variable.
    """
    selected = [f for f in fields(Settings) if f.name in names]

    def decorate(func: F) -> F:
        for f in reversed(selected):
            kind = str(f.type)
            click_type: Any = str
            if "Path" in kind:
                click_type = click.Path(path_type=Path)
            elif kind.startswith("int"):
                click_type = int
            elif kind.startswith("float"):
                click_type = float
            default = f.default if not f.metadata.get("secret") else None
            shown = "" if default is None else f" [default: {default}]"
            func = click.option(
                "--" + f.name.replace("_", "-"),
                f.name,
                type=click_type,
                default=None,
                help=f"{f.metadata['help']}{shown} [env: {env_name(f.name)}]",
            )(func)
        return func

    return decorate
