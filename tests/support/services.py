"""Real Prometheus and Alertmanager (Debian's packages) on free loopback ports, for
tests: started with their own storage directory, waited for until ready, stopped by
the PID recorded at start (never by name)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROMETHEUS = "prometheus"
ALERTMANAGER = "prometheus-alertmanager"


def tool(name: str) -> str:
    """The path of a binary from Debian's packages, or a one-line error."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(
            f"{name} not found: install Debian's prometheus and prometheus-alertmanager "
            "packages (make test does it when run as root)"
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_json(url: str, data: bytes | None = None, timeout: float = 10.0) -> Any:
    headers = {"Content-Type": "application/json"} if data is not None else {}
    req = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def wait_until(condition: Any, timeout_s: float, what: str, step_s: float = 0.2) -> Any:
    """Poll `condition()` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # a service still starting
            last_error = exc
        time.sleep(step_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what} ({last_error})")


@dataclass
class Service:
    argv: list[str]
    port: int
    log_path: Path
    ready_path: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} exited: {self.log_path.read_text()[-2000:]}")
            with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as resp:
                return resp.status == 200

        wait_until(ready, timeout_s, f"{self.argv[0]} on {self.url}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def prometheus(config: Path, workdir: Path) -> Service:
    port = free_port()
    argv = [
        tool(PROMETHEUS),
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]
    return Service(argv, port, workdir / "prometheus.log", "/-/ready")


def alertmanager(config: Path, workdir: Path) -> Service:
    port = free_port()
    argv = [
        tool(ALERTMANAGER),
        f"--config.file={config}",
        f"--storage.path={workdir / 'am'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    return Service(argv, port, workdir / "alertmanager.log", "/-/ready")


def prom_query(base_url: str, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    params = {"query": expr}
    if at is not None:
        params["time"] = f"{at:.3f}"
    out = http_json(f"{base_url}/api/v1/query?{urllib.parse.urlencode(params)}")
    assert out["status"] == "success", out
    result: list[dict[str, Any]] = out["data"]["result"]
    return result
