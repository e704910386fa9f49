"""One mapping from workpulse settings to each Kafka client's connection options.

Faust (over aiokafka), aiokafka itself and kafka-python spell the same things
differently; `connection` reads the settings once and the three functions below render
it for each client, so security settings cannot drift between them.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from workpulse.config import Settings


@dataclass(frozen=True)
class Connection:
    bootstrap: tuple[str, ...]
    security_protocol: str
    sasl_mechanism: str | None
    sasl_username: str | None
    sasl_password: str | None
    ssl_cafile: str | None

    @property
    def uses_ssl(self) -> bool:
        return "SSL" in self.security_protocol

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL")

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.ssl_cafile) if self.uses_ssl else None


def connection(settings: Settings, bootstrap: str | None = None) -> Connection:
    """The connection options of `settings` (bootstrap servers overridable)."""
    servers = bootstrap if bootstrap is not None else (settings.kafka_bootstrap or "")
    return Connection(
        bootstrap=tuple(b.strip() for b in servers.split(",") if b.strip()),
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_username=settings.kafka_sasl_username,
        sasl_password=settings.kafka_sasl_password_value,
        ssl_cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
    )


def faust_options(conn: Connection) -> dict[str, Any]:
    """`broker` and `broker_credentials` keyword arguments of a `faust.App`."""
    import faust

    credentials: Any = None
    if conn.uses_sasl:
        credentials = faust.SASLCredentials(
            username=conn.sasl_username,
            password=conn.sasl_password,
            mechanism=conn.sasl_mechanism or "PLAIN",
            ssl_context=conn.ssl_context(),
        )
    elif conn.uses_ssl:
        credentials = faust.SSLCredentials(conn.ssl_context())
    return {
        "broker": ",".join(f"kafka://{b}" for b in conn.bootstrap),
        "broker_credentials": credentials,
    }


def aiokafka_options(conn: Connection) -> dict[str, Any]:
    """Keyword arguments of aiokafka's producer, consumer and admin client."""
    opts: dict[str, Any] = {
        "bootstrap_servers": ",".join(conn.bootstrap),
        "security_protocol": conn.security_protocol,
    }
    if conn.uses_ssl:
        opts["ssl_context"] = conn.ssl_context()
    if conn.uses_sasl:
        opts["sasl_mechanism"] = conn.sasl_mechanism or "PLAIN"
        opts["sasl_plain_username"] = conn.sasl_username
        opts["sasl_plain_password"] = conn.sasl_password
    return opts


def kafka_python_options(conn: Connection) -> dict[str, Any]:
    """Keyword arguments of kafka-python's producer, consumer and admin client."""
    opts: dict[str, Any] = {
        "bootstrap_servers": list(conn.bootstrap),
        "security_protocol": conn.security_protocol,
    }
    if conn.uses_sasl:
        opts["sasl_mechanism"] = conn.sasl_mechanism or "PLAIN"
        opts["sasl_plain_username"] = conn.sasl_username
        opts["sasl_plain_password"] = conn.sasl_password
    if conn.ssl_cafile:
        opts["ssl_cafile"] = conn.ssl_cafile
    return opts
