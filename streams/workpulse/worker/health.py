"""The worker's HTTP endpoint: `/metrics` for Prometheus and `/healthz` for a liveness
probe.

`/metrics` is served by its own thread, so it answers while the worker's event loop is
stuck (a probe on it passed for a worker that read nothing any more). `/healthz` answers
503 once the loop has not ticked for `max_age_s`: the worker's lag reporter beats once a
second on the loop (`Metrics.beat`). Before the first beat (a start that recovers a long
changelog) it answers 200: the start has its own probe.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

HEALTH_MAX_AGE_S = 60.0
"""How long the event loop may go without a tick before `/healthz` says it is stuck (a
batch takes well under a second; ClickHouse and Kafka calls run off the loop)."""

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def health_app(
    registry: CollectorRegistry, heartbeat_age: Callable[[], float | None], max_age_s: float
) -> App:
    """`/healthz` from `heartbeat_age` (seconds since the loop's last tick, None before the
    first); anything else: the registry's metrics, as prometheus_client serves them."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/healthz":
            return metrics(environ, start_response)
        age = heartbeat_age()
        if age is None or age <= max_age_s:
            status, body = "200 OK", b"ok\n"
        else:
            status = "503 Service Unavailable"
            body = f"the worker's event loop has not run for {age:.0f} s\n".encode()
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes every few seconds: not logged."""


def serve(app: App, host: str, port: int) -> tuple[WSGIServer, threading.Thread]:
    """Serve `app` on host:port (0: any free port) from a daemon thread. Raises OSError
    when the address cannot be taken."""
    family, _, _, _, _ = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0]

    class Server(_Server):
        address_family = family

    server = make_server(host, port, app, Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="workpulse-http", daemon=True)
    thread.start()
    return server, thread
