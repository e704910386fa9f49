"""A small ClickHouse-HTTP-interface server over chDB: one ClickHouse for several
processes on a machine without a ClickHouse server (tests, `workpulse bench pipeline
--workers 2`).

It speaks enough of ClickHouse's HTTP protocol for clickhouse-connect 1.12
(and curl): GET/POST `/` with the SQL in the `query` parameter and/or the body,
`database`, settings as URL parameters (applied with SET on a fresh chDB handle
per request, so they never leak between requests), `param_<name>` query
parameters, INSERT data in any input format chDB reads (Native, RowBinary,
JSONEachRow, TSV, ... streamed into chDB's `send_insert`), request bodies
compressed with lz4/zstd/gzip/deflate/br (Content-Encoding), chunked uploads,
Basic / X-ClickHouse-User+Key / user+password authentication, `/ping`,
`X-ClickHouse-*` response headers (Summary, Query-Id, Format, Timezone,
Exception-Code) and errors as `Code: N. DB::Exception: ...` with HTTP
400/403/404/500 like a server.

Limits: responses are never compressed (a server may decline; clickhouse-connect
copes); no HTTP sessions (session_id is ignored: no temporary tables across
requests); no progress headers; form-encoded bodies carry the query and its
parameters only (no external data files); no
`decompress=1` (ClickHouse-framed compression); the Native output has no
client_protocol_version block header, so clients fall back to protocol 0 (and
LowCardinality columns arrive as plain columns). Requests run concurrently, each on
a chDB handle of its own.

chDB hosts one engine per process, so `ChdbHttpServer` runs the server in a
child process by default (the test process may hold its own embedded chDB).
Run directly: `python chdb_http.py --data-dir DIR [--port 0] [--user U --password P]`
prints `LISTENING <port>` and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

# URL parameters that are HTTP-interface controls, not query settings.
_CONTROL_PARAMS = {
    "query",
    "database",
    "default_format",
    "query_id",
    "session_id",
    "session_timeout",
    "session_check",
    "compress",
    "decompress",
    "user",
    "password",
    "quota_key",
    "buffer_size",
    "wait_end_of_query",
    "client_protocol_version",
    "role",
    "enable_http_compression",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
    "http_wait_end_of_query",
    "http_response_buffer_size",
    "cancel_http_readonly_queries_on_client_close",
    "query_limit",
}
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE = re.compile(r"Code: (\d+)\.")
_CODE_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)(?:\s*\(version [^)]*\))?\s*$")
_LEADING = re.compile(r"^(?:\s+|--[^\n]*\n?|/\*.*?\*/)*", re.S)
_INSERT = re.compile(r"INSERT\b", re.I)
_FORMAT_IN_INSERT = re.compile(rb"\bFORMAT\s+([A-Za-z0-9_]+)[ \t]*(\r?\n)?", re.I)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.I)
_STATUS_BY_CODE = {
    62: 400,  # SYNTAX_ERROR
    115: 400,  # UNKNOWN_SETTING
    516: 403,  # AUTHENTICATION_FAILED
    60: 404,  # UNKNOWN_TABLE
    81: 404,  # UNKNOWN_DATABASE
}
_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "TabSeparatedWithNames": "text/tab-separated-values; charset=UTF-8",
    "TSVWithNames": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8",
    "CSVWithNames": "text/csv; charset=UTF-8",
    "JSON": "application/json; charset=UTF-8",
    "JSONCompact": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
}


class ClickHouseError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _decompress(data: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    if encoding == "lz4":
        import lz4.frame

        # clickhouse-connect compresses each Native block as its own lz4 frame:
        # decode every concatenated frame, not just the first.
        out = bytearray()
        rest = data
        while rest:
            decompressor = lz4.frame.LZ4FrameDecompressor()
            out += decompressor.decompress(rest)
            if not decompressor.eof:
                raise ClickHouseError(
                    1, "Code: 1. DB::Exception: truncated lz4 frame. (CANNOT_DECOMPRESS)"
                )
            rest = decompressor.unused_data
        return bytes(out)
    if encoding == "zstd":
        from clickhouse_connect.driver.compression import _zstd_decompress

        return bytes(_zstd_decompress(data))
    if encoding == "br":
        import brotli

        return bytes(brotli.decompress(data))
    raise ClickHouseError(
        1, f"Code: 1. DB::Exception: Unknown Content-Encoding: {encoding}. (UNSUPPORTED_METHOD)"
    )


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ChdbEngine:
    """Executes HTTP-shaped requests on one chDB engine, each on a handle of its own."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        import chdb

        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self.path = os.path.realpath(data_dir)
        self._chdb = chdb
        self._main = chdb.connect(self.path)  # keeps the engine alive
        self.lock = threading.Lock()
        self.version = self._main.query("SELECT version()", "TSV").bytes().decode().strip()

    def close(self) -> None:
        with self.lock:
            self._main.close()

    def execute(
        self, sql_param: str, body: bytes, params: dict[str, str]
    ) -> tuple[bytes, str, dict[str, int]]:
        """-> (response body, output format, summary counters)"""
        settings = {
            k: v
            for k, v in params.items()
            if k not in _CONTROL_PARAMS and not k.startswith("param_")
        }
        query_params = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        database = params.get("database") or ""
        # Each request on a handle of its own: chDB runs queries of several handles at
        # once (two single-threaded queries took 0.98 s together, 1.87 s one after the
        # other behind a lock), so several workers' inserts and reads overlap as on a
        # server. Opening and closing a handle stay one at a time.
        with self.lock:
            handle = self._chdb.connect(self.path)
        try:
            for key, value in settings.items():
                if not _SETTING_NAME.match(key):
                    raise ClickHouseError(
                        115,
                        f"Code: 115. DB::Exception: Unknown setting '{key}'. (UNKNOWN_SETTING)",
                    )
                self._run(handle, f"SET {key} = {_quote(value)}", "TSV", {})
            if database:
                self._run(handle, f"USE `{database.replace('`', '')}`", "TSV", {})
            return self._dispatch(handle, sql_param, body, params, query_params)
        finally:
            with self.lock:
                handle.close()

    def _run(self, handle: Any, sql: str, fmt: str, query_params: dict[str, str]) -> Any:
        try:
            return handle.query(sql, fmt, params=query_params)
        except Exception as exc:  # chdb raises ChdbError/RuntimeError with the CH text
            raise _as_ch_error(exc) from exc

    def _dispatch(
        self,
        handle: Any,
        sql_param: str,
        body: bytes,
        params: dict[str, str],
        query_params: dict[str, str],
    ) -> tuple[bytes, str, dict[str, int]]:
        head = sql_param if sql_param else body[:65536].decode("utf-8", "replace")
        stripped = _LEADING.sub("", head, count=1)
        if _INSERT.match(stripped):
            if sql_param:
                statement_bytes, data = sql_param.encode(), body
                match = _FORMAT_IN_INSERT.search(statement_bytes)
                if match:
                    statement_bytes = statement_bytes[: match.start()]
                    extra = sql_param.encode()[match.end() :]
                    data = extra + (b"\n" if extra and body else b"") + body if extra else body
            else:
                match = _FORMAT_IN_INSERT.search(body[:65536])
                statement_bytes = body[: match.start()] if match else body
                data = body[match.end() :] if match else b""
            if match:
                fmt = match.group(1).decode()
                return self._insert(handle, statement_bytes.decode(), fmt, data)
        sql = sql_param + ("\n" if sql_param and body else "") + body.decode("utf-8", "replace")
        fmt = params.get("default_format") or "TabSeparated"
        match_fmt = _TRAILING_FORMAT.search(sql)
        if match_fmt:
            fmt = match_fmt.group(1)
            sql = sql[: match_fmt.start()]
        result = self._run(handle, sql, fmt, query_params)
        out = result.bytes() if result is not None else b""
        summary = {
            "read_rows": _safe(result, "rows_read"),
            "read_bytes": _safe(result, "bytes_read"),
            "written_rows": _safe(result, "rows_written"),
            "written_bytes": _safe(result, "bytes_written"),
            "result_rows": _safe(result, "rows_read"),
            "result_bytes": len(out),
        }
        return out, fmt, summary

    def _insert(
        self, handle: Any, statement: str, fmt: str, data: bytes
    ) -> tuple[bytes, str, dict[str, int]]:
        try:
            inserter = handle.send_insert(statement.strip().rstrip(";"), fmt)
        except Exception as exc:
            raise _as_ch_error(exc) from exc
        try:
            step = 8 << 20
            for start in range(0, len(data), step):
                inserter.append(data[start : start + step])
            res = inserter.finish()
        except Exception as exc:
            with contextlib.suppress(Exception):
                inserter.cancel()
            raise _as_ch_error(exc) from exc
        summary = {
            "read_rows": 0,
            "read_bytes": 0,
            "written_rows": int(res.rows_written),
            "written_bytes": int(res.bytes_written),
            "result_rows": 0,
            "result_bytes": 0,
        }
        return b"", fmt, summary


def _form_fields(content_type: str, body: bytes) -> dict[str, str] | None:
    """The fields of a form-encoded request body (multipart/form-data or
    x-www-form-urlencoded: clickhouse-connect sends large query parameters so), else None."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    if kind != "multipart/form-data":
        return None
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if name and isinstance(payload, bytes):
            fields[str(name)] = payload.decode("utf-8")
    return fields


def _safe(result: Any, attr: str) -> int:
    try:
        return int(getattr(result, attr)())
    except Exception:
        return 0


def _as_ch_error(exc: BaseException) -> ClickHouseError:
    text = str(exc)
    idx = text.find("Code: ")
    text = text[idx:] if idx >= 0 else f"Code: 1001. DB::Exception: {text}. (STD_EXCEPTION)"
    match = _CODE.search(text)
    code = int(match.group(1)) if match else 1001
    return ClickHouseError(code, text.strip())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chdb-http"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet; never log credentials
        if self.server.verbose:
            sys.stderr.write(f"chdb_http: {self.command} {urlsplit(self.path).path} {args[1:]}\n")

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _credentials(self, params: dict[str, str]) -> tuple[str, str]:
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            return user, password
        if "X-ClickHouse-User" in self.headers:
            return self.headers["X-ClickHouse-User"], self.headers.get("X-ClickHouse-Key", "")
        return params.get("user", "default"), params.get("password", "")

    def _handle(self) -> None:
        query_id = ""
        try:
            url = urlsplit(self.path)
            body = self._read_body() if self.command == "POST" else b""
            if url.path in ("/ping", "/replicas_status"):
                self._reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
                return
            if url.path not in ("/", ""):
                self._reply(404, b"There is no handle " + url.path.encode() + b"\n", {})
                return
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            query_id = params.get("query_id") or str(uuid.uuid4())
            user, password = self._credentials(params)
            if (user, password) != (self.server.user, self.server.password):
                raise ClickHouseError(
                    516,
                    f"Code: 516. DB::Exception: {user}: Authentication failed: password is "
                    "incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)",
                )
            encoding = self.headers.get("Content-Encoding", "")
            if encoding:
                body = _decompress(body, encoding)
            if params.get("decompress") in ("1", "true"):
                raise ClickHouseError(
                    48,
                    "Code: 48. DB::Exception: decompress=1 (ClickHouse-framed compression) is "
                    "not supported by chdb_http. (NOT_IMPLEMENTED)",
                )
            form = _form_fields(self.headers.get("Content-Type", ""), body)
            if form is not None:  # the query and its parameters sent as a form (large ones)
                params.update(form)
                body = b""
            started = time.perf_counter_ns()
            out, fmt, summary = self.server.engine.execute(params.get("query", ""), body, params)
            summary["elapsed_ns"] = time.perf_counter_ns() - started
            headers = {
                "Content-Type": _CONTENT_TYPES.get(fmt, "application/octet-stream"),
                "X-ClickHouse-Format": fmt,
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Timezone": "UTC",
                "X-ClickHouse-Server-Display-Name": "chdb-http",
                "X-ClickHouse-Summary": json.dumps({k: str(v) for k, v in summary.items()}),
            }
            self._reply(200, out, headers)
        except ClickHouseError as exc:
            text = str(exc)
            if "(version " not in text:
                text = f"{text} (version {self.server.engine.version})"
            self._reply(
                _STATUS_BY_CODE.get(exc.code, 500),
                (text + "\n").encode(),
                {
                    "Content-Type": "text/plain; charset=UTF-8",
                    "X-ClickHouse-Exception-Code": str(exc.code),
                    "X-ClickHouse-Query-Id": query_id,
                },
            )
        except Exception as exc:  # bug in this server: still answer like ClickHouse
            text = (
                f"Code: 1001. DB::Exception: chdb_http: {type(exc).__name__}: {exc}. "
                "(STD_EXCEPTION)"
            )
            self._reply(
                500,
                (text + "\n").encode(),
                {
                    "Content-Type": "text/plain; charset=UTF-8",
                    "X-ClickHouse-Exception-Code": "1001",
                },
            )

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    engine: ChdbEngine
    user: str
    password: str
    verbose: bool


def serve(
    data_dir: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 0,
    user: str = "default",
    password: str = "",
    verbose: bool = False,
) -> _Server:
    """Bind the server (not yet serving); call serve_forever() on the result."""
    server = _Server((host, port), _Handler)
    server.engine = ChdbEngine(data_dir)
    server.user = user
    server.password = password
    server.verbose = verbose
    return server


class ChdbHttpServer:
    """ChdbHttpServer(data_dir).start() -> "http://127.0.0.1:PORT"; .stop().

    in_process=False (default) runs it in a child Python process, because chDB
    hosts one engine per process and the test process may own another one.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        user: str = "default",
        password: str = "",
        in_process: bool = False,
        startup_timeout: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.user = user
        self.password = password
        self.in_process = in_process
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The server's process (None: not started, or served from a thread here)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"http://127.0.0.1:{self.port}"

    def url_with_credentials(self, database: str = "workpulse") -> str:
        from urllib.parse import quote

        return (
            f"http://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@127.0.0.1:{self.port}/{database}"
        )

    def start(self) -> str:
        if self.in_process:
            self._server = serve(
                self.data_dir, port=self.port or 0, user=self.user, password=self.password
            )
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="chdb-http", daemon=True
            )
            self._thread.start()
            return self.url
        env = dict(os.environ)
        env["CHDB_HTTP_PASSWORD"] = self.password  # not on the command line (ps)
        self._proc = subprocess.Popen(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port or 0),  # a restart keeps its port (clients keep their URL)
                "--user",
                self.user,
            ],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.append(self._proc.stdout.readline()))  # type: ignore[union-attr]
        reader.daemon = True
        reader.start()
        reader.join(max(0.0, deadline - time.monotonic()))
        line = result[0].decode().strip() if result else ""
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError(f"chdb_http did not start (got {line!r})")
        self.port = int(line.split()[1])
        return self.url

    def pause(self) -> None:
        """Freeze the server process (SIGSTOP): it still accepts connections (the
        kernel completes them) but answers nothing, like a ClickHouse that hangs."""
        if self._proc is None:
            raise RuntimeError("only a server in its own process can be paused")
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo `pause`: the requests that waited are answered."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.engine.close()
            self._server = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGCONT)  # a paused server cannot stop
                self._proc.send_signal(signal.SIGTERM)
                try:
                    self._proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=10)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None

    def __enter__(self) -> ChdbHttpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user", default="default")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    password = os.environ.get("CHDB_HTTP_PASSWORD", "")
    server = serve(args.data_dir, args.host, args.port, args.user, password, args.verbose)

    def _stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        server.engine.close()


if __name__ == "__main__":
    main()
