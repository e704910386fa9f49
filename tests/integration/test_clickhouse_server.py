"""The ClickHouse contract through the HTTP transport (clickhouse-connect over HTTP)
against chDB served on ClickHouse's HTTP interface (tests/support/chdb_http.py)."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.integration.clickhouse_fixtures import (  # noqa: E402
    CHDB_HTTP_PASSWORD,
    chdb_http_server,
)
from tests.support.clickhouse_cases import ClickHouseContract, clean  # noqa: E402

from workpulse.clickhouse import (  # noqa: E402
    ClickHouse,
    Database,
    DatabaseError,
    HttpTransport,
    apply_schema,
    connect,
)
from workpulse.dev.chdb_http import ChdbHttpServer  # noqa: E402

pytestmark = pytest.mark.integration
__all__ = ["chdb_http_server"]


@pytest.fixture(scope="module")
def server_db(chdb_http_server: ChdbHttpServer) -> Iterator[ClickHouse]:
    db = connect(chdb_http_server.url_with_credentials("workpulse"), Path("unused"))
    assert isinstance(db.transport, HttpTransport)
    apply_schema(db)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def db(server_db: ClickHouse) -> Database:
    clean(server_db)
    return server_db


class TestServer(ClickHouseContract):
    pass


def test_password_never_shown(chdb_http_server: ChdbHttpServer, server_db: ClickHouse) -> None:
    assert CHDB_HTTP_PASSWORD not in repr(server_db)
    bad = chdb_http_server.url_with_credentials().replace("s3cret", "wrong")
    with pytest.raises(DatabaseError) as info:
        connect(bad, Path("unused"))
    assert "AUTHENTICATION_FAILED" in str(info.value)
    assert "wrong" not in str(info.value) and "s3cret" not in str(info.value)


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url)
    req.add_header("X-ClickHouse-User", "workpulse_test")
    req.add_header("X-ClickHouse-Key", CHDB_HTTP_PASSWORD)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_plain_http_interface(chdb_http_server: ChdbHttpServer) -> None:
    base = chdb_http_server.url
    assert _get(base + "/ping")[2] == b"Ok.\n"
    status, headers, body = _get(base + "/?query=SELECT%201%2B1%2C%20%27a%27")
    assert (status, body) == (200, b"2\ta\n")
    assert headers["X-ClickHouse-Format"] == "TabSeparated"
    assert "X-ClickHouse-Summary" in headers and "X-ClickHouse-Query-Id" in headers
    status, headers, body = _get(base + "/?query=SELECT%20nope&database=system")
    assert status in (400, 404, 500)
    assert headers["X-ClickHouse-Exception-Code"] == "47"
    assert body.startswith(b"Code: 47. DB::Exception:")
    status, _, _ = _get(base + "/?query=SELECT%20{x:UInt8}&param_x=7&max_threads=1")
    assert status == 200
    req = urllib.request.Request(base + "/?query=SELECT%201", headers={"X-ClickHouse-User": "x"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=30)
    assert info.value.code == 403


def test_requests_run_at_once(chdb_http_server: ChdbHttpServer) -> None:
    """A request is answered while another is still running (each on a chDB handle of
    its own): two workers' inserts and reads overlap as on a server (behind one lock,
    the second waited for the first)."""
    import threading
    import urllib.parse

    def query(sql: str) -> bytes:
        status, _, body = _get(chdb_http_server.url + "/?query=" + urllib.parse.quote(sql))
        assert status == 200, body
        return body

    slow = "SELECT sum(sleepEachRow(0.5)) FROM numbers(5) SETTINGS max_threads=1"
    worker = threading.Thread(target=query, args=(slow,))
    worker.start()
    running = (
        "SELECT count() FROM system.processes WHERE query LIKE '%sleepEachRow(0.5)%' "
        "AND query NOT LIKE '%system.processes%'"
    )
    while query(running) == b"0\n":  # answered while it runs, or after it ended
        assert worker.is_alive(), "the slow query ended before it was seen running"
    assert query("SELECT 41+1") == b"42\n"
    assert worker.is_alive(), "answered only after the slow query"
    worker.join()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung server, a wrong port)."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_a_server_that_never_answers_is_refused_after_the_first_answer_bound(
    silent_server: int,
) -> None:
    # Before: the client waited send_receive_timeout (300 s) without a word.
    with pytest.raises(DatabaseError) as caught:
        HttpTransport("127.0.0.1", silent_server, first_answer_s=1)
    assert str(caught.value) == (
        f"cannot connect to http://default@127.0.0.1:{silent_server}/workpulse: no answer in "
        "1 s (is this ClickHouse's HTTP port, and is it up?)"
    )


@pytest.mark.parametrize(("query", "read_timeout"), [("", 300), ("?send_receive_timeout=45", 45)])
def test_calls_after_the_first_answer_wait_the_configured_timeout(
    chdb_http_server: ChdbHttpServer, query: str, read_timeout: int
) -> None:
    transport = HttpTransport.from_url(chdb_http_server.url_with_credentials("workpulse") + query)
    try:
        assert transport.client.timeout.read_timeout == read_timeout
        other = transport.open_client()
        assert other.timeout.read_timeout == read_timeout
        other.close()
    finally:
        transport.close()
