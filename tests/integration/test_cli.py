"""The command line as a person uses it: real processes, real engines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from workpulse.dev.broker import EmbeddedBroker
from workpulse.dev.generator import Workload, WorkloadConfig
from workpulse.kafka.admin import create_topics

pytestmark = pytest.mark.integration

WORKPULSE = str(Path(sys.executable).parent / "workpulse")


def run(
    *args: str, stdin: bytes | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKPULSE_")}
    return subprocess.run(
        [WORKPULSE, *args], input=stdin, capture_output=True, timeout=timeout, env=env, check=False
    )


@pytest.mark.parametrize(
    ("verb", "variables"),
    [
        (
            "worker",
            ["WORKPULSE_KAFKA_BOOTSTRAP", "WORKPULSE_CLICKHOUSE_URL", "WORKPULSE_BATCH_SIZE"],
        ),
        ("demo", ["WORKPULSE_DATA_DIR", "WORKPULSE_METRICS_PORT"]),
        ("query", ["WORKPULSE_CLICKHOUSE_URL", "WORKPULSE_DATA_DIR"]),
        ("produce", ["WORKPULSE_KAFKA_BOOTSTRAP", "WORKPULSE_INPUT_TOPIC"]),
        ("tag", ["WORKPULSE_LEXICON_DIR"]),
    ],
)
def test_help_names_the_variables(verb: str, variables: list[str]) -> None:
    result = run(verb, "--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    for variable in variables:
        assert variable in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["worker"], "no Kafka"),
        # before init-db: the worker retried its first read for ever (UNKNOWN_DATABASE)
        (["worker", "--kafka-bootstrap", "127.0.0.1:9"], "run `workpulse init-db`"),
        (["produce"], "no Kafka"),
        (["query", "SELECT * FROM system.no_such_table"], "no_such_table"),
        (["query", "SELECT * FROM workpulse.video_events"], "workpulse init-db"),
        (["query", "SELECT 1", "--clickhouse-url", "ftp://x"], "http"),
        # ClickHouse's syntax errors quoted the client's own "FORMAT Native"
        (["query", "  ;"], "no SQL given"),
        (["query", "SELECT 1 format JSONEachRow;"], "--format table|csv|json|jsonl"),
        # clickhouse-connect logs a warning of its own (Python's last-resort handler)
        (
            ["query", "SELECT 1", "--clickhouse-url", "http://127.0.0.1:1/workpulse"],
            "cannot connect",
        ),
        # The DDL names its database: another one got the tables in one, inserts in the other.
        (["query", "SELECT 1", "--clickhouse-url", "http://127.0.0.1:1/x"], "names database 'x'"),
    ],
)
def test_errors_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    with_data_dir = args[0] == "query" or len(args) > 1
    (tmp_path / "chdb").mkdir()  # a store, empty: readers refuse a missing one
    result = run(*args, "--data-dir", str(tmp_path)) if with_data_dir else run(*args)
    assert result.returncode != 0
    lines = [line for line in result.stderr.decode().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert message in lines[0]
    assert "Traceback" not in result.stderr.decode()


@pytest.mark.parametrize(
    "args",
    [["query", "SELECT 1"], ["report"], ["report", "-o", "-"], ["spikes"],
     ["worker", "--kafka-bootstrap", "127.0.0.1:9"]],
)  # fmt: skip
def test_readers_refuse_a_data_directory_that_is_not_there(args: list[str], tmp_path: Path) -> None:
    """A mistyped --data-dir made an empty store there (`report --data-dir /nonexistent`
    created /nonexistent/chdb) before saying there was no data."""
    missing = tmp_path / "typo"
    result = run(*args, "--data-dir", str(missing))
    lines = [line for line in result.stderr.decode().splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, lines
    assert f"no workpulse data at {missing / 'chdb'}: run `workpulse init-db`" in lines[0]
    assert not missing.exists()
    assert result.stdout == b""


def test_a_data_directory_that_is_not_utf8_is_one_clear_line(tmp_path: Path) -> None:
    """chDB's binding takes UTF-8 text only: it said "incompatible constructor arguments"."""
    path = os.fsencode(tmp_path) + b"/\xff"
    result = subprocess.run([WORKPULSE, "init-db", "--data-dir", path], capture_output=True,
                            timeout=120, check=False)  # fmt: skip
    lines = [line for line in result.stderr.decode().splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, lines
    assert "chDB needs a UTF-8 path" in lines[0]


def test_a_busy_metrics_port_is_one_clear_line(tmp_path: Path) -> None:
    """Two workers on one host with the same port: the second says which address, and
    what to set (it said only "[Errno 98] Address already in use")."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert run("init-db", "--data-dir", str(tmp_path)).returncode == 0
        result = run("worker", "--kafka-bootstrap", "127.0.0.1:9", "--metrics-host",
                     "127.0.0.1", "--metrics-port", str(port), "--data-dir", str(tmp_path),
                     timeout=120)  # fmt: skip
    assert result.returncode != 0
    lines = [line for line in result.stderr.decode().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert f"cannot serve /metrics on 127.0.0.1:{port}" in lines[0]
    assert "WORKPULSE_METRICS_PORT" in lines[0]


def test_a_metrics_host_this_host_cannot_take_names_its_setting(tmp_path: Path) -> None:
    """A name that does not resolve was hinted "set WORKPULSE_METRICS_PORT"."""
    assert run("init-db", "--data-dir", str(tmp_path)).returncode == 0
    result = run("worker", "--kafka-bootstrap", "127.0.0.1:9", "--metrics-host",
                 "nohost.invalid", "--data-dir", str(tmp_path), timeout=120)  # fmt: skip
    lines = [line for line in result.stderr.decode().splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, lines
    assert "cannot serve /metrics on nohost.invalid:9108" in lines[0]
    assert "set WORKPULSE_METRICS_HOST" in lines[0] and "METRICS_PORT" not in lines[0]


def test_a_compacted_reports_topic_is_refused_in_one_line(
    tmp_path: Path, broker: EmbeddedBroker, topic_name: str
) -> None:
    """Compaction leaves gaps in the reports' offsets, which the report check takes for
    reports the consumer skipped: the worker would stop at every start. It refuses the
    topic at start instead, saying what to change."""
    app_id = f"app-{topic_name}"
    create_topics(broker.bootstrap, {topic_name: 1, f"{app_id}-watermarks": 1},
                  configs={f"{app_id}-watermarks": {"cleanup.policy": "compact"}})  # fmt: skip
    assert run("init-db", "--data-dir", str(tmp_path)).returncode == 0
    result = run("worker", "--kafka-bootstrap", broker.bootstrap, "--input-topic", topic_name,
                 "--app-id", app_id, "--metrics-port", "0", "--data-dir", str(tmp_path),
                 timeout=120)  # fmt: skip
    assert result.returncode == 1
    lines = [line for line in result.stderr.decode().splitlines() if line.strip()]
    assert lines[-1].startswith(
        f"workpulse: error: topic {app_id}-watermarks has cleanup.policy=compact"
    ), lines
    assert "set its cleanup.policy to delete" in lines[-1]


def test_init_db_is_idempotent_and_query_formats(tmp_path: Path) -> None:
    for _ in range(2):
        result = run("init-db", "--data-dir", str(tmp_path))
        assert result.returncode == 0, result.stderr
    sql = "SELECT name FROM system.tables WHERE database = 'workpulse' ORDER BY name"
    rows = [
        json.loads(line)
        for line in run(
            "query", sql, "--format", "jsonl", "--data-dir", str(tmp_path)
        ).stdout.splitlines()
    ]
    names = {r["name"] for r in rows}
    assert {
        "video_events",
        "dead_letters",
        "topic_spikes",
        "topic_counts_1m",
        "topic_counts_1h",
        "topic_counts_1d",
    } <= names
    csv_out = run(
        "query", "SELECT 1 AS a, 'x' AS b", "--format", "csv", "--data-dir", str(tmp_path)
    ).stdout.decode()
    assert csv_out.splitlines() == ["a,b", "1,x"]
    as_json = json.loads(
        run("query", "SELECT 1 AS a", "--format", "json", "--data-dir", str(tmp_path)).stdout
    )
    assert as_json == [{"a": 1}]
    table = run("query", "SELECT 42 AS answer", "--data-dir", str(tmp_path))
    assert "answer" in table.stdout.decode() and "42" in table.stdout.decode()

    # data is shown as data: markup, emoji codes, escape sequences
    hostile = run(
        "query",
        "SELECT '[bold red]hi[/] :x: [/nope]' AS s, concat(char(27), '[31mred') AS t",
        "--data-dir",
        str(tmp_path),
    )
    assert hostile.returncode == 0, hostile.stderr
    shown = hostile.stdout.decode()
    assert "[bold red]hi[/] :x: [/nope]" in shown and "\\x1b[31mred" in shown
    assert "\x1b" not in shown


def test_query_is_read_only_unless_asked(tmp_path: Path) -> None:
    assert run("init-db", "--data-dir", str(tmp_path)).returncode == 0
    dropped = run("query", "DROP TABLE workpulse.dead_letters", "--data-dir", str(tmp_path))
    assert dropped.returncode != 0
    lines = dropped.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "read-only unless --write" in lines[0]
    still = run(
        "query",
        "SELECT count() AS n FROM system.tables WHERE database = 'workpulse' "
        "AND name = 'dead_letters'",
        "--format",
        "jsonl",
        "--data-dir",
        str(tmp_path),
    )
    assert json.loads(still.stdout) == {"n": 1}
    made = run(
        "query",
        "CREATE TABLE workpulse.scratch (a UInt8) ENGINE = Memory",
        "--write",
        "--data-dir",
        str(tmp_path),
    )
    assert made.returncode == 0, made.stderr


def test_tag_reads_stdin_and_reports_bad_lines() -> None:
    lines = [
        orjson.dumps(
            {
                "event_id": "1",
                "kind": "publish",
                "video_id": "v",
                "event_time": 1_767_225_600_000,
                "author_id": "a",
                "caption": "I quit my job today",
            }
        ),
        b"{broken",
        orjson.dumps(
            {
                "event_id": "2",
                "kind": "publish",
                "video_id": "w",
                "event_time": 1_767_225_600_000,
                "author_id": "a",
                "caption": "Recette facile de crêpes",
            }
        ),
    ]
    result = run("tag", stdin=b"\n".join(lines) + b"\n")
    assert result.returncode == 0
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["topics"] for o in out] == [["resignation"], []]
    assert "line 2" in result.stderr.decode()


def test_tag_goes_on_when_its_reports_stream_closes(tmp_path: Path) -> None:
    """`workpulse tag F 2>&1 >out | head -1`: the bad lines' reports stream closes after
    the first; tagging goes on (it stopped there, exit 0, with nothing on stdout)."""
    good = orjson.dumps({"event_id": "1", "kind": "publish", "video_id": "v",
                         "event_time": 1_767_225_600_000, "author_id": "a",
                         "caption": "I quit my job today"})  # fmt: skip
    path, out = tmp_path / "mixed.jsonl", tmp_path / "out.jsonl"
    path.write_bytes(b"".join(good + b"\nnot json\n" for _ in range(5000)))
    done = subprocess.run(
        ["bash", "-c", f'"{WORKPULSE}" tag "{path}" 2>&1 >"{out}" | head -1'],
        capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.stdout.decode().startswith("line 2: not_json"), done.stdout
    assert len(out.read_bytes().splitlines()) == 5000
    # and with its reports stream open, every bad line is reported, exit 0
    done = subprocess.run([WORKPULSE, "tag", str(path)], capture_output=True, timeout=300,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-500:]
    assert len(done.stderr.decode().splitlines()) == 5000


@pytest.mark.parametrize(
    ("command", "redirect", "message"),
    [
        # "'NoneType' object has no attribute 'buffer'"
        ("tag", ">&-", "stdout is closed"),
        ("tag", "<&-", "no FILE given and stdin is closed"),
        # the result vanished, exit 0, or "'NoneType' object has no attribute 'write'"
        ("query 'SELECT 1'", ">&-", "stdout is closed: there is nowhere to write the result"),
        ("spikes --format json", ">&-", "stdout is closed"),
        ("report -o -", ">&-", "stdout is closed"),
        ("demo --events 10", ">&-", "stdout is closed"),
    ],
)
def test_a_closed_standard_stream_is_one_clear_line(
    command: str, redirect: str, message: str, tmp_path: Path
) -> None:
    done = subprocess.run(["bash", "-c", f'"{WORKPULSE}" {command} {redirect}'],
                          capture_output=True, timeout=120, check=False, cwd=tmp_path)  # fmt: skip
    lines = [line for line in done.stderr.decode().splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1, lines
    assert message in lines[0]
    assert not (tmp_path / "var").exists()  # said before anything was done


def test_demo_refuses_events_with_input(tmp_path: Path) -> None:
    """`demo --input F --events 30` replayed all of F, saying nothing of --events."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"{}\n")
    result = run("demo", "--input", str(path), "--events", "30", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "--events and --input: give one" in result.stderr.decode()


@pytest.mark.parametrize(
    "args", [["query", "SELECT 1"], ["demo", "--events", "10", "--metrics-port", "0"]]
)
def test_a_chdb_directory_in_use_is_one_clear_line(args: list[str], tmp_path: Path) -> None:
    """A second process on a worker's data directory: chDB printed its own "Cannot lock
    file" line, then failed with an empty "Error initializing EmbeddedServer". The demo,
    which starts afresh, deleted the store under the process using it."""
    assert run("init-db", "--data-dir", str(tmp_path)).returncode == 0
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys\nfrom workpulse.clickhouse import open_embedded\n"
         f"db = open_embedded({str(tmp_path / 'chdb')!r})\nprint('open', flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"open\n"
        result = run(*args, "--data-dir", str(tmp_path))
    finally:
        holder.kill()
        holder.wait(timeout=30)
    lines = [line for line in result.stderr.decode().splitlines() if line.strip()]
    assert result.returncode == 1, lines
    assert "is in use by another process" in lines[-1]
    assert len([line for line in lines if "error" in line]) == 1, lines
    kept = run("query", "SELECT count() AS n FROM system.tables WHERE database = 'workpulse'",
               "--format", "jsonl", "--data-dir", str(tmp_path))  # fmt: skip
    assert json.loads(kept.stdout)["n"] > 0, kept.stderr


@pytest.mark.parametrize("hours", ["inf", "nan"])
def test_spikes_refuses_a_history_that_is_not_a_number(hours: str, tmp_path: Path) -> None:
    """inf ended in "cannot convert float infinity to integer"."""
    result = run("spikes", "--history-hours", hours, "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert f"'--history-hours': {hours} is not a number of hours" in result.stderr.decode()


def test_demo_replays_a_file_and_accounts_for_every_line(tmp_path: Path) -> None:
    """Broken and duplicate lines included; afterwards `query` reads the same store."""
    messages = [v for _, v in Workload(WorkloadConfig(seed=3)).messages(1500)]
    lines = [
        *messages[:1000],
        b"not json at all",
        b"",
        messages[10],
        messages[20],
        b'{"kind": "stats"}',
        *messages[1000:],
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    data_dir = tmp_path / "var"

    result = run(
        "demo", "--input", str(path), "--json", "--data-dir", str(data_dir), "--metrics-port", "0"
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    summary = json.loads(result.stdout)
    assert summary["messages"] == len(lines)
    assert summary["accounted"] is True
    assert summary["counts_match_recount"] is True
    assert summary["duplicates"] == 2
    assert summary["dead_letters"] == 3
    assert summary["accepted_events"] == 1500

    counted = run(
        "query",
        "SELECT count() AS n FROM workpulse.video_events",
        "--format",
        "jsonl",
        "--data-dir",
        str(data_dir),
    )
    assert json.loads(counted.stdout) == {"n": 1500}
    # a reader that leaves early ends the command quietly, exit 0 (it was 1, nothing said)
    everything = '"SELECT * FROM workpulse.video_events"'
    commands = [f"query --format jsonl {everything}", f"query --format csv {everything}",
                f"query {everything}", "report -o -", "spikes --spike-min-history 1"]  # fmt: skip
    for command in commands:
        line = f'set -o pipefail; "{WORKPULSE}" {command} --data-dir "{data_dir}" | head -1'
        head = subprocess.run(["bash", "-c", line], capture_output=True, timeout=120, check=False)
        assert head.returncode == 0, (command, head.stderr.decode()[-500:])
        assert len(head.stdout.splitlines()) == 1 and b"Error" not in head.stderr
    # `report -o -` writes the page to stdout (it wrote a file named "-")
    page = run("report", "-o", "-", "--data-dir", str(data_dir))
    assert page.returncode == 0, page.stderr.decode()[-2000:]
    assert page.stdout.startswith(b"<!DOCTYPE html>") and b'id="report-data"' in page.stdout
    assert not Path("-").exists()


def test_produce_sends_what_kafka_takes_and_names_the_rest(
    tmp_path: Path, broker: EmbeddedBroker, topic_name: str
) -> None:
    """A line over the request limit is reported by its number; the lines after it are
    sent all the same (before, the first one stopped the command)."""
    create_topics(broker.bootstrap, {topic_name: 1})
    lines = [b'{"video_id": "a"}', TOO_LARGE_FOR_KAFKA, b"not json", b'{"video_id": "b"}']
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = run(
        "produce", str(path), "--kafka-bootstrap", broker.bootstrap, "--input-topic", topic_name
    )
    stderr = result.stderr.decode().strip().splitlines()
    assert result.returncode == 1, stderr
    assert f"sent 3 messages to {topic_name}" in stderr[-2]
    # the line is read no further than the limit: its size is what the file says
    assert stderr[-1].endswith(
        f"1 message(s) not sent: line 2 ({len(TOO_LARGE_FOR_KAFKA):,} bytes: over the 2 MB "
        "request limit)"
    )
    assert [(m.key, m.value) for m in read_topic(broker.bootstrap, topic_name, 3)] == [
        (b"a", lines[0]),
        (None, lines[2]),
        (b"b", lines[3]),
    ]


def test_produce_reads_a_pipe_once(broker: EmbeddedBroker, topic_name: str) -> None:
    """`… | workpulse produce /dev/stdin`: the file was read twice (a count for the
    progress bar, then the lines to send), and a pipe's lines all went to the count:
    "sent 0 messages", exit 0."""
    create_topics(broker.bootstrap, {topic_name: 1})
    lines = [b'{"video_id": "%d"}' % i for i in range(50)]
    result = run("produce", "/dev/stdin", "--kafka-bootstrap", broker.bootstrap,
                 "--input-topic", topic_name, stdin=b"\n".join(lines) + b"\n")  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert f"sent 50 messages to {topic_name}" in result.stderr.decode()
    assert [m.value for m in read_topic(broker.bootstrap, topic_name, 50)] == lines


def read_topic(bootstrap: str, topic: str, n: int) -> list[Any]:
    """The first `n` messages of a one-partition topic."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10_000
    )
    try:
        out = []
        for message in consumer:
            out.append(message)
            if len(out) == n:
                break
        return out
    finally:
        consumer.close()


TOO_LARGE_FOR_KAFKA = (
    b'{"event_id":"h14","kind":"publish","video_id":"v14","event_time":1767225600000,'
    b'"author_id":"a","caption":"' + b"x" * 3_000_000 + b'"}'
)
"""Over the producers' 2 MB request limit: Kafka never gets it."""


HOSTILE_LINES = [
    b'{"event_id":"h1","kind":"stats","video_id":"v","event_time":1767225600000,'
    b'"views":18446744073709551621}',
    b'{"event_id":"h2","kind":"stats","video_id":"v","event_time":1767225600000,'
    b'"views":9223372036854775808}',
    b'{"event_id":"h3","kind":"stats","video_id":"v","event_time":1767225600000,"views":NaN}',
    b'{"event_id":"h4","kind":"stats","video_id":"v","event_time":253402300799999,"views":1}',
    b'{"event_id":"h5","kind":"stats","video_id":"v","event_time":0,"views":1}',
    b'{"event_id":"h6","kind":"stats","video_id":"v","event_time":"9999-12-31T23:59:59Z",'
    b'"views":1}',
    b'{"event_id":"h7","kind":"publish","video_id":"v7","event_time":1767225600000,'
    b'"author_id":"a","caption":"\\ud800"}',
    b'{"event_id":"h8","kind":"publish","video_id":"v8","event_time":1767225600000,'
    b'"author_id":"a","caption":"[bold]x[/] :x: \\u202e \\u001b[2J"}',
    b'{"event_id":"h9","event_id":"h9b","kind":"publish","video_id":"v9",'
    b'"event_time":1767225600000,"author_id":"a"}',
    b"[" * 3000 + b"]" * 3000,
    b'{"event_id":"h10","kind":"publish","video_id":"v10","event_time":1767225600000,'
    b'"author_id":"a","caption":"' + b"x" * 300_000 + b'"}',
    b"\xff\xfe\x00garbage",
    b'{"event_id":"h11","kind":"stats","video_id":"v","event_time":1767225600000.5,"views":1}',
    b'{"event_id":"h12","kind":"stats","video_id":"v","event_time":1767225600000,"views":5.0}',
    # fits a row (UInt64, its delta Int64) but wrapped the topic's Int64 view sum
    # (topic_counts_1m) and its recount with it: beyond the contract's 10^12
    b'{"event_id":"h13","kind":"publish","video_id":"v13","event_time":1767225600000,'
    b'"author_id":"a","caption":"I quit my job today #QuitMyJob","views":9223372036854775807}',
]


def test_demo_accounts_for_hostile_lines(tmp_path: Path) -> None:
    """Hostile kinds mixed with valid events: every line accounted for; a line Kafka
    cannot take is reported (and the exit status says so), the ones after it run."""
    valid = [v for _, v in Workload(WorkloadConfig(seed=4)).messages(600)]
    lines = [*valid[:300], TOO_LARGE_FOR_KAFKA, *HOSTILE_LINES, *valid[300:]]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = run(
        "demo", "--input", str(path), "--json", "--data-dir", str(tmp_path / "var"),
        "--metrics-port", "0",
    )  # fmt: skip
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr[-2000:]
    assert stderr.splitlines()[-1].endswith(
        f"1 message(s) not sent: line 301 ({len(TOO_LARGE_FOR_KAFKA):,} bytes: over the 2 MB "
        "request limit)"
    )
    summary = json.loads(result.stdout)
    assert summary["not_sent"] == 1
    assert summary["messages"] == len(lines) - 1
    assert summary["accounted"] is True and summary["counts_match_recount"] is True
    # valid after all: h8 (markup, bidi and escape characters are a caption's business),
    # h9 (a duplicate key: the last value wins), h12 (5.0 is a whole number)
    assert summary["accepted_events"] == 600 + 3
    assert summary["dead_letters"] == len(HOSTILE_LINES) - 3
    assert all(t["views"] >= 0 for t in summary["topics"]), summary["topics"]
