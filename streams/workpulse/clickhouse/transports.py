"""The two transports of `ClickHouse`: chDB in this process, or a server over HTTP(S).

Each opens a clickhouse-connect client (and, on request, more clients on the same
database: `open_client`) and knows how to name itself without secrets.

chDB hosts ONE engine per process, bound to one data path: opening a second path while
the first is open fails inside chDB, and two owners of one path would fight over session
state. `ChdbTransport` therefore allows one open instance per process (a module-level
registry guards it): share that `ClickHouse`, or close it before opening another. Tests
that need a second engine run it in a subprocess (the HTTP test server does). More
clients of the same engine are fine (chDB gives each its own connection handle, and
they run queries concurrently): `open_client`.

For a server, the password is held only by the clickhouse-connect client and by the
function that opens more of them: it is never logged, printed or part of repr() or
error messages.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from workpulse.clickhouse.client import DATABASE, DatabaseError, clean_error

_REGISTRY_LOCK = threading.Lock()
_OPEN: dict[str, ChdbTransport] = {}

EMBEDDED_EXTRA = "pip install 'workpulse[embedded]'"


@contextlib.contextmanager
def _unused(path: str) -> Iterator[None]:
    """Holds the chDB directory's lock for the block, or raises one clear line when
    another process has it open (a worker, the demo): chDB printed its own "Cannot lock
    file …/status" line and then failed with an empty "Error initializing
    EmbeddedServer". ClickHouse holds an exclusive flock on its `status` file while it
    runs; it is taken here, and released after the block."""
    status = os.path.join(path, "status")
    try:
        fd = os.open(status, os.O_RDWR)
    except OSError:  # not made yet (a new directory), or not ours to open: chDB says
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatabaseError(
                f"chDB at {path} is in use by another process (a worker, the demo or a "
                "query on the same data directory): stop it, or set another --data-dir"
            ) from None
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # (closing releases the lock)


def remove_store(path: Path | str) -> None:
    """Delete a chDB directory, unless another process has it open (`workpulse demo`
    starts afresh: it deleted a running worker's store under it). Its lock is held while
    the files go, so that no process opens it meanwhile."""
    if not os.path.isdir(path):
        return
    with _unused(str(path)):
        shutil.rmtree(path)


class ChdbTransport:
    """chDB (the ClickHouse engine in-process) persisted under `path`."""

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        """`create=False` is for readers (query, report, spikes, a worker): a directory
        that is not there is a mistyped path or a store never made, not a new store."""
        try:
            import chdb  # noqa: F401  - only to say clearly what is missing
        except ImportError:
            raise DatabaseError(
                f"embedded ClickHouse (chDB) is not installed: {EMBEDDED_EXTRA}, "
                "or set WORKPULSE_CLICKHOUSE_URL to a ClickHouse server"
            ) from None
        import clickhouse_connect

        try:
            os.fsdecode(path).encode("utf-8")
        except UnicodeEncodeError:  # chDB's binding takes UTF-8 text only
            raise DatabaseError(
                f"chDB needs a UTF-8 path: {os.fsdecode(path)!r} is not one"
            ) from None
        if not create and not Path(path).is_dir():
            raise DatabaseError(
                f"no workpulse data at {path}: run `workpulse init-db` (or `workpulse "
                "demo`) first, or point --data-dir / WORKPULSE_CLICKHOUSE_URL at the data"
            )
        Path(path).mkdir(parents=True, exist_ok=True)
        self.path = os.path.realpath(path)
        with _REGISTRY_LOCK:
            if _OPEN:
                other = next(iter(_OPEN))
                if other == self.path:
                    raise DatabaseError(
                        f"chDB at {self.path} is already open in this process; "
                        "share that client instead of opening it twice"
                    )
                raise DatabaseError(
                    f"chDB at {other} is open in this process; chDB hosts one engine "
                    f"per process, close it before opening {self.path}"
                )
            with _unused(self.path):  # tried and released: chDB takes the lock itself
                pass
            try:
                self.client: Any = clickhouse_connect.get_client(interface="chdb", path=self.path)
            except Exception as exc:
                raise DatabaseError(f"cannot open chDB at {self.path}: {clean_error(exc)}") from exc
            _OPEN[self.path] = self

    def describe(self) -> str:
        return f"chDB at {self.path}"

    def open_client(self) -> Any:
        """Another client of the same engine (its own connection handle)."""
        import clickhouse_connect

        try:
            return clickhouse_connect.get_client(interface="chdb", path=self.path)
        except Exception as exc:
            raise DatabaseError(f"cannot open chDB at {self.path}: {clean_error(exc)}") from exc

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            with _REGISTRY_LOCK:
                if _OPEN.get(self.path) is self:
                    del _OPEN[self.path]


_INT_OPTIONS = {"connect_timeout", "send_receive_timeout", "query_retries"}
FIRST_ANSWER_S = 30
"""How long opening a client waits for the server's first answer (its version and
settings). A server that accepts connections and does not answer that in half a minute
is down for us: without this bound the start and `workpulse query` waited the client's
`send_receive_timeout` (300 s) without a word. Later calls wait that timeout: a big
insert or query may take long."""


def _no_answer(exc: BaseException, waited_s: float) -> str:
    """The reason when the server took the connection and said nothing, else ''."""
    if "read timed out" in str(exc).lower():
        return f"no answer in {waited_s:g} s (is this ClickHouse's HTTP port, and is it up?)"
    return ""


class HttpTransport:
    """A ClickHouse server (or a cluster's entry point) over HTTP(S)."""

    def __init__(
        self,
        host: str,
        port: int | None = None,
        username: str = "default",
        password: str = "",
        database: str = DATABASE,
        secure: bool = False,
        first_answer_s: float = FIRST_ANSWER_S,
        **client_options: Any,
    ) -> None:
        import clickhouse_connect
        from urllib3.util import Timeout

        self.host = host
        self.port = port or (8443 if secure else 8123)
        self.username = username
        self.secure = secure
        self.database = database

        def connect() -> Any:
            # Without a database: before `init-db` it does not exist yet.
            options = dict(client_options)
            answer_s = options.pop("send_receive_timeout", 300)
            try:
                client: Any = clickhouse_connect.get_client(
                    host=host,
                    port=self.port,
                    username=username,
                    password=password,
                    secure=secure,
                    send_receive_timeout=min(answer_s, first_answer_s),
                    **options,
                )
            except Exception as exc:
                why = _no_answer(exc, min(answer_s, first_answer_s)) or clean_error(exc)
                raise DatabaseError(f"cannot connect to {self.describe()}: {why}") from exc
            client.timeout = Timeout(connect=options.get("connect_timeout", 10), read=answer_s)
            return client

        self._connect = connect
        self.client: Any = connect()

    @classmethod
    def from_url(cls, url: str) -> HttpTransport:
        """http(s)://user:password@host:port/database?connect_timeout=10"""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DatabaseError("ClickHouse URL must look like http(s)://user:pass@host:port/db")
        database = unquote(parts.path.strip("/")) or DATABASE
        if database != DATABASE:
            # The DDL (schemas/clickhouse/) names its database: tables made by `init-db`
            # would be in `workpulse` while every insert went to the URL's database.
            raise DatabaseError(
                f"the ClickHouse URL names database {database!r}: workpulse's tables live "
                f"in {DATABASE!r} (end the URL with /{DATABASE}, or with no path)"
            )
        options: dict[str, Any] = {}
        for key, value in parse_qsl(parts.query):
            options[key] = int(value) if key in _INT_OPTIONS else value
        return cls(
            host=parts.hostname,
            port=parts.port,
            username=unquote(parts.username) if parts.username else "default",
            password=unquote(parts.password) if parts.password else "",
            database=database,
            secure=parts.scheme == "https",
            **options,
        )

    def describe(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.username}@{self.host}:{self.port}/{self.database}"

    def open_client(self) -> Any:
        """Another client of the same server (its own HTTP session)."""
        return self._connect()

    def close(self) -> None:
        self.client.close()
