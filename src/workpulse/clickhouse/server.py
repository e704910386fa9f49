"""ServerDatabase: a ClickHouse server (or cluster entry point) over HTTP(S).

clickhouse-connect does the wire work (Native inserts, lz4 compression); each
insert carries its deduplication token and the dedup settings. The password is
held only by the clickhouse-connect client: it is never logged, printed or
part of repr() or error messages.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from workpulse.clickhouse.base import (
    DATABASE,
    INSERT_SETTINGS,
    DatabaseError,
    QueryResult,
    check_identifier,
    clean_error,
    normalize_rows,
    qualify,
)
from workpulse.clickhouse.native import to_columns

_INT_OPTIONS = {"connect_timeout", "send_receive_timeout", "query_retries"}


class ServerDatabase:
    def __init__(
        self,
        host: str,
        port: int | None = None,
        username: str = "default",
        password: str = "",
        database: str = DATABASE,
        secure: bool = False,
        **client_options: Any,
    ) -> None:
        import clickhouse_connect

        self.host = host
        self.port = port or (8443 if secure else 8123)
        self.username = username
        self.secure = secure
        self.database = database
        self._database_in_use = False
        self._types: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self._closed = False
        try:
            # Connect without a database: before `init-db` it does not exist yet.
            self._client = clickhouse_connect.get_client(
                host=host,
                port=self.port,
                username=username,
                password=password,
                secure=secure,
                **client_options,
            )
        except Exception as exc:
            raise DatabaseError(f"cannot connect to {self!r}: {clean_error(exc)}") from exc

    @classmethod
    def from_url(cls, url: str) -> ServerDatabase:
        """http(s)://user:password@host:port/database?connect_timeout=10"""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DatabaseError("ClickHouse URL must look like http(s)://user:pass@host:port/db")
        options: dict[str, Any] = {}
        for key, value in parse_qsl(parts.query):
            options[key] = int(value) if key in _INT_OPTIONS else value
        database = parts.path.strip("/") or DATABASE
        return cls(
            host=parts.hostname,
            port=parts.port,
            username=unquote(parts.username) if parts.username else "default",
            password=unquote(parts.password) if parts.password else "",
            database=database,
            secure=parts.scheme == "https",
            **options,
        )

    def __repr__(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"ServerDatabase({scheme}://{self.username}@{self.host}:{self.port}/{self.database})"

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseError(f"{self!r} is closed")

    def _use_database(self) -> None:
        if self._database_in_use:
            return
        found = self._client.query(
            "SELECT count() FROM system.databases WHERE name = {db:String}",
            parameters={"db": self.database},
        ).result_rows[0][0]
        if found:
            self._client.database = self.database
            self._database_in_use = True

    def _column_types(self, table: str, columns: Sequence[str]) -> list[str]:
        known = self._types.get(table)
        if known is None or any(c not in known for c in columns):
            rows = self._client.query(f"DESCRIBE TABLE {table}").result_rows
            known = {r[0]: r[1] for r in rows}
            self._types[table] = known
        missing = [c for c in columns if c not in known]
        if missing:
            raise DatabaseError(f"unknown column(s) {', '.join(missing)} in {table}")
        return [known[c] for c in columns]

    def command(self, sql: str) -> None:
        with self._lock:
            self._check_open()
            try:
                self._use_database()
                self._client.command(sql)
            except Exception as exc:
                raise DatabaseError(clean_error(exc)) from exc

    def query(
        self,
        sql: str,
        parameters: dict[str, Any] | None = None,
        *,
        column_formats: dict[str, str | dict[str, str]] | None = None,
    ) -> QueryResult:
        """Rows as Python values. String columns decode as UTF-8 (clickhouse-connect
        returns invalid UTF-8 as a hex string); pass column_formats={"payload": "bytes"}
        to get raw bytes."""
        with self._lock:
            self._check_open()
            try:
                self._use_database()
                res = self._client.query(sql, parameters=parameters, column_formats=column_formats)
            except Exception as exc:
                raise DatabaseError(clean_error(exc)) from exc
            return QueryResult(list(res.column_names), normalize_rows(res.result_rows))

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        dedup_token: str | None = None,
    ) -> None:
        if not rows:
            return
        full = check_identifier(qualify(table, self.database))
        for c in columns:
            check_identifier(c)
        settings = dict(INSERT_SETTINGS)
        if dedup_token is not None:
            settings["insert_deduplication_token"] = dedup_token
        with self._lock:
            self._check_open()
            try:
                type_names = self._column_types(full, columns)
                data = to_columns(columns, rows, type_names)
                self._client.insert(
                    full,
                    data,
                    column_names=list(columns),
                    column_type_names=type_names,
                    column_oriented=True,
                    settings=settings,
                )
            except DatabaseError:
                raise
            except Exception as exc:
                raise DatabaseError(f"insert into {full} failed: {clean_error(exc)}") from exc

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._client.close()

    def __enter__(self) -> ServerDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
