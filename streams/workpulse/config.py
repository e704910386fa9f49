"""Configuration, read in one place.

Every setting is a typed field of `Settings` (pydantic-settings). Values come from, in
order of precedence: explicit overrides (the command-line flags), `WORKPULSE_<NAME>`
environment variables, then the defaults below. An invalid value is one `ConfigError`
line naming the variable. The command line builds its flags from these fields
(`workpulse.cli.options`), so `--help` names every variable; this module does not know
about the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

ENV_PREFIX = "WORKPULSE_"


class ConfigError(ValueError):
    """A setting has an invalid value; the message is one line naming the variable."""


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


TOPIC_NAME = r"^[A-Za-z0-9._-]+$"
"""What Kafka takes in a topic name (at most 249 of them): a worker given another name ran
on for ever, its consumer finding no partitions."""


def _s(default: Any, description: str, **kwargs: Any) -> Any:
    return Field(default, description=description, **kwargs)


def _topic(default: str, description: str) -> Any:
    return _s(default, description, pattern=TOPIC_NAME, max_length=249)


class Settings(BaseSettings):
    """Every setting of workpulse. Immutable; `replace` returns a changed copy."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        frozen=True,
        extra="forbid",
        validate_default=True,
        allow_inf_nan=False,  # an infinite timeout or grace is no setting: refused here
    )

    # -- Kafka ------------------------------------------------------------------------
    kafka_bootstrap: str | None = _s(
        None, "Kafka bootstrap servers (host:port,…). Unset: the embedded broker (demo only)."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = _s(
        "PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = _s(
        None, "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."
    )
    kafka_sasl_username: str | None = _s(None, "SASL user name.")
    kafka_sasl_password: SecretStr | None = _s(None, "SASL password (never printed).")
    kafka_ssl_cafile: Path | None = _s(None, "CA bundle for SSL/SASL_SSL.")
    input_topic: str = _topic("video-events", "Topic carrying the input events.")
    dlq_topic: str = _topic("video-events-dlq", "Dead-letter topic for rejected messages.")
    spikes_topic: str = _topic("topic-spikes", "Topic receiving one message per spike.")
    partitions: int = _s(
        4,
        "Partitions of the topics the worker or the embedded broker creates (at most "
        "10,000: a topic of 10^8 made the embedded broker grow past 20 GB).",
        ge=1,
        le=10_000,
    )
    app_id: str = _s(
        "workpulse",
        "Faust application id (= consumer group; it names the worker's own topics, "
        "`<app id>-watermarks` and Faust's changelogs: Kafka's topic characters, at most "
        "200).",
        pattern=TOPIC_NAME,
        max_length=200,
    )
    replication_factor: int = _s(
        1, "Replication factor of the topics the worker creates (3 on a production cluster).", ge=1
    )
    kafka_session_timeout_s: float | None = _s(
        None,
        "Consumer group session timeout, in seconds. Unset: 2 s in the demo on the "
        "embedded broker (it answers a join after about half of it), else 10 s. At "
        "most 30 s: a group join must end within the clients' request timeouts (40 s).",
        gt=0,
        le=30,
    )

    # -- ClickHouse -------------------------------------------------------------------
    clickhouse_url: SecretStr | None = _s(
        None,
        "ClickHouse server, http(s)://user:password@host:8123/workpulse. "
        "Unset: embedded chDB under the data directory.",
    )

    # -- local files ------------------------------------------------------------------
    data_dir: Path = _s(Path("var"), "Local state: chDB files, Faust tables, logs.")
    schemas_dir: Path | None = _s(
        None,
        "Directory with the contract, DDL (clickhouse/) and lexicons (lexicons/). "
        "Unset: the copy shipped in the package.",
    )
    lexicon_dir: Path | None = _s(
        None, "Lexicon directory (default: <schemas>/lexicons); reloaded when it changes."
    )
    lexicon_reload_s: float = _s(
        5.0, "How often a worker checks the lexicon files for changes, in seconds.", gt=0
    )
    cache_dir: Path | None = _s(
        None,
        "Where the compiled lexicon is cached (default: $XDG_CACHE_HOME/workpulse or "
        "~/.cache/workpulse).",
    )
    lexicon_cache: bool = _s(
        True, "Cache the compiled lexicon on disk (rebuilt whenever the files change)."
    )

    # -- metrics, logs ----------------------------------------------------------------
    metrics_host: str = _s("127.0.0.1", "Address of the /metrics endpoint.")
    metrics_port: int = _s(
        9108, "Port of the /metrics endpoint (0: any free port).", ge=0, le=65_535
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _s(
        "WARNING", "Log level of the worker."
    )

    table_store: str = _s(
        "memory://",
        "Faust table store: memory:// (rebuilt from its changelog at start) or rocksdb:// "
        "(on disk under the data directory; needs the rocksdict package).",
    )

    # -- the pipeline -----------------------------------------------------------------
    batch_size: int = _s(
        10_000,
        "Most events per batch: bigger batches give more throughput (a ClickHouse insert "
        "has a fixed cost), smaller ones less latency (see README, Speed).",
        ge=1,
    )
    batch_max_bytes: int = _s(
        64 * 1024 * 1024,
        "Most bytes of messages (keys and values) per batch: a batch ends at batch_size "
        "events or at this size, whichever comes first (large messages must not make a "
        "batch too big for memory).",
        ge=1,
    )
    batch_timeout_s: float = _s(0.5, "Longest wait to fill a batch, in seconds.", gt=0)
    window_grace_s: float = _s(
        120.0,
        "How long after its end (event time) a minute window still accepts events (at "
        "most a week: 1e17 s overflowed the windows' 64-bit times in the counts agent).",
        ge=0,
        le=7 * 86_400,
    )
    max_message_bytes: int = _s(
        256 * 1024,
        "Larger messages are dead-lettered (`oversized`), their dead letters cut to this "
        "size. At most 1 MiB (Kafka's default message limit): a dead letter's value and "
        "key must fit the worker's 4 MiB requests to the dead-letter topic.",
        ge=1,
        le=1024 * 1024,
    )
    event_time_min: datetime = _s(
        datetime(2005, 1, 1, tzinfo=UTC),
        "Events before this time (RFC 3339) are dead-lettered (bad_event_time).",
    )
    event_time_max_ahead_s: float = _s(
        86_400.0,
        "Events more than this many seconds ahead of the worker's clock are dead-lettered.",
        ge=0,
    )
    idle_partition_s: float = _s(
        10.0,
        "An input partition with nothing to read for this long no longer holds the live "
        "windows back (see docs/reliability.md).",
        gt=0,
    )
    video_cache_size: int = _s(
        200_000, "Video states kept in memory (least recently used out; reloaded on demand).", ge=1
    )
    video_state_ttl_s: float = _s(
        86_400.0,
        "A video state unused for this long leaves memory (its next event reloads it from "
        "ClickHouse).",
        gt=0,
    )
    sink_retry_max_s: float = _s(
        30.0, "Longest pause between ClickHouse retries (backoff doubles up to it).", gt=0
    )

    # -- the spike detector (docs/spikes.md, workpulse.processing.spikes) -------------
    spike_alpha: float = _s(
        0.05, "EWMA smoothing of a series' deseasonalised level, per minute.", gt=0, le=1
    )
    spike_season_gamma: float = _s(
        0.01, "Learning rate of the hour-of-day factors, per minute.", ge=0, le=1
    )
    spike_dispersion_alpha: float = _s(
        0.003, "EWMA smoothing of the negative-binomial dispersion (1/k).", gt=0, le=1
    )
    spike_dispersion_prior: float = _s(
        0.05, "Dispersion (1/k) of a series before its data says otherwise.", ge=0
    )
    spike_min_dispersion: float = _s(
        0.01, "Dispersion (1/k) never below this (model margin).", ge=0
    )
    spike_learn_sigmas: float = _s(
        1.5, "The baseline learns a minute's value clipped at expected + this many sd.", gt=0
    )
    spike_outlier_sigmas: float = _s(
        3.0, "Minutes beyond expected ± this many sd do not update the dispersion.", gt=0
    )
    spike_expected_floor: float = _s(
        0.5, "Count signals: the baseline never counts as less than this.", gt=0
    )
    spike_views_floor: float = _s(
        100.0, "Views: the baseline never counts as less than this.", gt=0
    )
    spike_min_history: int = _s(30, "Minutes of history before a series may alert.", ge=0)
    spike_two_window_test: bool = _s(
        True, "Also test the sum of the last two minutes (a wave's first two minutes)."
    )
    spike_family_alpha: float = _s(
        2e-4,
        "False-alarm probability per minute for all topics, signals and languages "
        "together (Bonferroni).",
        gt=0,
        lt=1,
    )
    spike_min_count: float = _s(
        5.0, "Least new videos (or new authors) in a minute for an alert.", ge=0
    )
    spike_min_ratio: float = _s(1.5, "Least observed/expected ratio for an alert.", ge=1)
    spike_min_authors: int = _s(5, "Least distinct authors behind an alert in its minute.", ge=1)
    spike_author_cap: int = _s(
        1, "Videos signal: one author counts at most this many videos a minute.", ge=1
    )
    spike_views_author_cap: float = _s(
        0.1, "Views signal: one author's gain counts at most this share of the expected.", gt=0
    )
    spike_single_video_ratio: float = _s(
        20.0, "A video gaining this many times a topic's expected views is a surge.", gt=1
    )
    spike_single_video_alerts: bool = _s(True, "Report single-video view surges (severity info).")
    spike_max_langs: int = _s(3, "Languages per topic with their own series.", ge=0)
    spike_lang_min_videos: int = _s(
        500, "New videos of a language in a topic before it gets its own series.", ge=1
    )
    spike_cooldown_windows: int = _s(
        30, "Minutes after an alert before the same series alerts again.", ge=0
    )
    spike_regrowth: float = _s(
        1.5, "…unless the score is this many times the last alert's score.", ge=1
    )
    spike_warning_ratio: float = _s(
        3.0, "Observed/expected ratio from which an alert is a warning.", ge=1
    )
    spike_critical_ratio: float = _s(
        5.0, "Observed/expected ratio from which an alert is critical.", ge=1
    )

    @field_validator("kafka_bootstrap", "clickhouse_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("kafka_ssl_cafile")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        # checked here: the Kafka clients tried for 30 s, then said only that they could
        # not bootstrap
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a file")
        return value

    @field_validator("kafka_sasl_password")  # the last SASL field: the others are read
    @classmethod
    def _sasl_complete(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # checked here: the clients tried for 30 s, then said they could not bootstrap
        protocol = str(info.data.get("kafka_security_protocol", ""))
        given = (info.data.get("kafka_sasl_mechanism"), info.data.get("kafka_sasl_username"))
        if protocol.startswith("SASL") and not (all(given) and value):
            raise ValueError(
                f"{protocol} needs WORKPULSE_KAFKA_SASL_MECHANISM, _USERNAME and _PASSWORD"
            )
        return value

    @field_validator("clickhouse_url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parts = urlsplit(value.get_secret_value())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must look like http(s)://user:password@host:port/database")
        return value

    # -- helpers ----------------------------------------------------------------------
    @property
    def chdb_path(self) -> Path:
        return self.data_dir / "chdb"

    @property
    def lexicon_cache_dir(self) -> Path | None:
        """Where compiled lexicons are cached; None when the cache is off."""
        if not self.lexicon_cache:
            return None
        if self.cache_dir is not None:
            return self.cache_dir
        import os

        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "workpulse"

    @property
    def clickhouse_url_value(self) -> str | None:
        return self.clickhouse_url.get_secret_value() if self.clickhouse_url else None

    @property
    def kafka_sasl_password_value(self) -> str | None:
        return self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated like the original)."""
        values = dict(self)
        values.update(changes)
        return _validated(values)

    def redacted(self) -> dict[str, Any]:
        """The settings with secrets hidden, for logs and summaries."""
        out: dict[str, Any] = {}
        for name, value in self:
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                value = redact_url(secret) if "://" in secret else "***"
            out[name] = value
        return out


def redact_url(url: str) -> str:
    """Hide the password in a URL (`http://u:secret@h` → `http://u:***@h`)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class _MappingEnv(EnvSettingsSource):
    """The environment source reading a given mapping instead of os.environ (tests)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = {k.lower(): v for k, v in environ.items()}
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._environ


def _one_line(exc: ValidationError, from_env: Mapping[str, str]) -> ConfigError:
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else "settings"
    variable = env_name(name)
    raw = from_env.get(variable.lower())
    shown = f"{variable}={raw!r}" if raw is not None and "secret" not in err["type"] else variable
    if name in ("clickhouse_url", "kafka_sasl_password"):
        shown = variable  # never echo a secret back
    return ConfigError(f"{shown}: {err['msg']}")


def _validated(values: Mapping[str, Any]) -> Settings:
    try:
        return Settings.model_validate(dict(values))
    except ValidationError as exc:
        raise _one_line(exc, {}) from None


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Defaults, then WORKPULSE_* variables (of `environ`, default os.environ), then the
    explicit overrides whose value is not None (flags)."""
    import os

    env = dict(os.environ if environ is None else environ)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    source = _MappingEnv(Settings, env)
    try:
        from_env = source()
        return Settings.model_validate({**from_env, **given})
    except ValidationError as exc:
        raise _one_line(exc, {k.lower(): v for k, v in env.items()}) from None
    except ValueError as exc:  # e.g. a complex value that is not JSON
        raise ConfigError(str(exc).splitlines()[0]) from None
