"""`workpulse bench pipeline`: the whole hot path against the same broker and topic as
its baseline, one JSON line.

Everything is measured in one run on one broker (the embedded one unless
`WORKPULSE_KAFKA_BOOTSTRAP` is set) and one backlog of the synthetic workload:

- `raw_consume_events_per_s`: aiokafka `getmany` + `orjson.loads` of the backlog (the
  median of 3 reads), the baseline;
- `pipeline_events_per_s`: one `workpulse worker` process reading the same backlog, from
  its first message processed to every row durable in ClickHouse and the counts agent
  caught up (progress read every 0.1 s from its /metrics, restricted to the two
  counters it needs: a whole exposition every 0.1 s took CPU from the worker);
- `latency_p50_s`, `latency_p99_s`: a fresh worker fed by a paced producer at `rate`
  events/s for `duration_s` (record batches sent every 10 ms, see `produce`): from
  each message's send (its Kafka timestamp) to the end of its batch (rows durable,
  Kafka outputs acknowledged), read from the worker's `workpulse_event_latency_seconds`
  histogram (interpolated within its buckets);
- with `workers=2`: one, then two worker processes in one consumer group on one shared
  ClickHouse (the configured `WORKPULSE_CLICKHOUSE_URL`, else chDB behind the HTTP
  interface, `workpulse.dev.chdb_http`), each run on a topic of its own that receives the
  backlog once every worker holds partitions (`_group_run`; the start-up,
  `workers_2_join_s`, is reported apart): the scale-out (`workers_2_vs_one`) and the CPU
  per event (`workers_2_cpu_vs_one`) compare the two with the one on the same
  ClickHouse; and `exact` (and `workers_1_shared_exact`) from a recount of each run's rows;
- CPU seconds per 1,000 events (user + system of the worker processes while they
  worked, from /proc), peak RSS per worker (VmHWM), the video state's memory per 1M
  videos (extrapolated from the states of the backlog's videos, see
  `state_bytes_per_video`), and the cost of the metrics per event (the per-batch metric
  updates timed in this process on a real batch's output).

The worker for one process uses embedded chDB (as `workpulse demo` does) unless a
ClickHouse URL is configured.
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import orjson

from workpulse.config import Settings

if TYPE_CHECKING:
    from workpulse.dev.generator import WorkloadConfig

Progress = Callable[[str], None]
DAY_MS = 86_400_000


@dataclass(frozen=True)
class PipelineBench:
    events: int = 200_000
    rate: int = 20_000
    duration_s: float = 30.0
    workers: int = 1
    partitions: int = 4
    seed: int = 7
    batch_size: int | None = None
    """Worker batch size (None: the setting's)."""


def machine() -> dict[str, Any]:
    from importlib import metadata

    versions = {}
    for dist in ("faust-streaming", "aiokafka", "chdb", "clickhouse-connect", "orjson"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": versions,
    }


# -- the baseline ---------------------------------------------------------------------
async def raw_consume(bootstrap: str, topic: str, n: int, partitions: int) -> float:
    """Events/s of a plain aiokafka consumer reading `n` messages and decoding them."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        started: float | None = None
        loads = orjson.loads
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            for records in batch.values():
                if started is None:
                    started = time.perf_counter()
                for record in records:
                    loads(record.value)
                seen += len(records)
        assert started is not None
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


# -- worker processes -----------------------------------------------------------------
def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


PROGRESS_SAMPLES = ("workpulse_events_total", "workpulse_watermark_reports_total")
"""What `watch` polls of a worker's metrics."""
LATENCY = "workpulse_event_latency_seconds"
PACED_CHUNK_S = 0.01
"""The paced producer sends what is due every 10 ms (200 messages at 20k/s)."""


@dataclass
class WorkerProc:
    proc: subprocess.Popen[bytes]
    log: Path
    metrics_url: str | None = None

    def scrape(self, names: Sequence[str] = ()) -> dict[str, list[tuple[dict[str, str], float]]]:
        """The worker's metrics, only the samples named in `names` if any: a whole
        exposition costs the worker ~15 ms of its GIL and this process ~20 ms to parse,
        which a 0.1 s poll would take from the cores the pipeline is measured on."""
        import urllib.parse
        import urllib.request

        from prometheus_client.parser import text_string_to_metric_families

        if self.metrics_url is None:
            text = self.log.read_text(errors="replace")
            marker = "metrics on "
            if marker not in text:
                return {}
            self.metrics_url = text.split(marker, 1)[1].split()[0]
        url = self.metrics_url
        if names:
            url += "?" + urllib.parse.urlencode([("name[]", n) for n in names])
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                body = resp.read().decode()
        except OSError:
            return {}
        out: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                out.setdefault(sample.name, []).append((sample.labels, sample.value))
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, timeout_s: float = 60.0) -> int:
        """SIGTERM (a clean stop), SIGKILL if it is not done within `timeout_s`; the
        exit code (raises `subprocess.TimeoutExpired` if it was killed)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        finally:
            if self.alive():
                self.proc.kill()
                self.proc.wait(timeout=10)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.terminate()

    def tail(self, chars: int = 3000) -> str:
        """The end of its log."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str,
           **labels: str) -> float:  # fmt: skip
    return sum(
        value
        for sample_labels, value in samples.get(name, [])
        if all(sample_labels.get(k) == v for k, v in labels.items())
    )


def start_worker(env: dict[str, str], log_dir: Path) -> WorkerProc:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"worker-{uuid.uuid4().hex[:6]}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workpulse", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return WorkerProc(proc, log)


@dataclass
class RunResult:
    events_per_s: float
    cpu_s_per_1k: float
    rss_mb_peak: list[float]
    latency: dict[str, float]
    services_cpu_s_per_1k: dict[str, float]
    """CPU seconds per 1,000 events of the processes the bench started for the workers
    (the embedded broker, the shared ClickHouse) and of the bench itself (its producer
    and its polls), by name."""
    busy_cores: float
    """The machine's cores in use (all processes, host-wide, steal excluded) while the
    workers worked."""


def _busy_s() -> float:
    """CPU seconds the whole machine (every process, host-wide) has spent busy: user,
    nice, system, irq and softirq; not idle, waiting on I/O, or stolen by the
    hypervisor (on shared vCPUs: time this machine did not run at all)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def watch(workers: list[WorkerProc], n: int, progress: Progress, what: str,
          timeout_s: float = 1800, feed: Future[None] | None = None,
          services: Mapping[str, int] = MappingProxyType({})) -> RunResult:  # fmt: skip
    """Until the workers together processed `n` messages and the counts agents caught up;
    timed from their first message processed, or with `feed` (a producer sending the
    messages as the workers read them) from now, when it starts sending. `services`: the
    pids of other processes whose CPU time is reported (by name)."""
    first: float | None = None
    cpu_at_first: dict[int, float] = {}
    busy_at_first = 0.0

    def start() -> None:
        nonlocal first, cpu_at_first, busy_at_first
        first = time.perf_counter()
        pids = [w.proc.pid for w in workers] + list(services.values())
        cpu_at_first = {pid: _cpu_s(pid) for pid in pids}
        busy_at_first = _busy_s()

    if feed is not None:
        start()
    deadline = time.monotonic() + timeout_s
    last_note = 0.0
    while True:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not done after {timeout_s:.0f} s")
        failure = feed.exception() if feed is not None and feed.done() else None
        if failure is not None:
            raise RuntimeError(f"{what}: the producer failed: {failure}")
        for w in workers:
            if not w.alive():
                raise RuntimeError(f"{what}: a worker exited ({w.proc.returncode}): {w.tail(500)}")
        scraped = [w.scrape(PROGRESS_SAMPLES) for w in workers]
        processed = sum(_total(s, "workpulse_events_total") for s in scraped)
        sent = sum(_total(s, "workpulse_watermark_reports_total", side="sent") for s in scraped)
        handled = sum(
            _total(s, "workpulse_watermark_reports_total", side="handled") for s in scraped
        )
        now = time.perf_counter()
        if first is None and processed > 0:
            start()
        if processed >= n and handled >= sent:
            assert first is not None
            busy = _busy_s() - busy_at_first
            elapsed = max(time.perf_counter() - first, 1e-9)
            cpu = sum(_cpu_s(w.proc.pid) - cpu_at_first[w.proc.pid] for w in workers)
            side = {
                name: (_cpu_s(pid) - cpu_at_first[pid]) / n * 1000 for name, pid in services.items()
            }
            latency = _latency([w.scrape([f"{LATENCY}_bucket"]) for w in workers])
            return RunResult(
                n / elapsed,
                cpu / n * 1000,
                [_peak_rss_mb(w.proc.pid) for w in workers],
                latency,
                side,
                busy / elapsed,
            )
        if now - last_note > 1.0:
            progress(f"{what}: {int(processed):,}/{n:,} events")
            last_note = now
        time.sleep(0.1)


def _latency(scraped: list[dict[str, list[tuple[dict[str, str], float]]]]) -> dict[str, float]:
    buckets: dict[float, float] = {}
    for s in scraped:
        for labels, value in s.get(f"{LATENCY}_bucket", []):
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
    bounds = sorted(buckets)
    total = buckets.get(float("inf"), 0.0)
    out: dict[str, float] = {}
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        target, below, prev = q * total, 0.0, 0.0
        value = float("nan")
        for bound in bounds:
            count = buckets[bound]
            if count >= target and total > 0:
                upper = bound if bound != float("inf") else prev
                share = (target - below) / (count - below) if count > below else 1.0
                value = prev + (upper - prev) * share
                break
            below, prev = count, bound
        out[name] = value
    return out


# -- producing ------------------------------------------------------------------------
async def produce(bootstrap: str, topic: str, messages: Sequence[tuple[bytes | None, bytes]],
                  rate: float | None = None,
                  on_first_send: Callable[[], None] = lambda: None) -> None:  # fmt: skip
    """Send the messages (as fast as possible, or paced at `rate` per second), keyed to
    partitions as a Kafka client's default partitioner does (murmur2 of the key).

    Whole record batches per partition (aiokafka's `create_batch`/`send_batch`), not
    one `send` per message: the producer shares the 2 cores with the worker it
    measures, and `send` cost ~28 µs of CPU per message (0.55 of a core at 20k/s);
    batches cost ~11 (0.2 of a core). Each record's timestamp is taken as it is added,
    right before its batch is sent (a chunk is `PACED_CHUNK_S` of traffic)."""
    import asyncio

    from aiokafka import AIOKafkaProducer
    from aiokafka.partitioner import DefaultPartitioner

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024, acks="all"
    )
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        partitioner = DefaultPartitioner()
        keyed = [(partitioner(k, partitions, partitions), k, v) for k, v in messages]
        chunk = max(1, int(rate * PACED_CHUNK_S)) if rate is not None else 5000
        pending: list[Any] = []
        on_first_send()  # the partitioning and the producer's start are behind us
        started = time.perf_counter()
        for i in range(0, len(keyed), chunk):
            batches: dict[int, Any] = {}
            for partition, key, value in keyed[i : i + chunk]:
                batch = batches.get(partition)
                if batch is None:
                    batch = batches[partition] = producer.create_batch()
                if batch.append(timestamp=None, key=key, value=value) is None:  # full
                    pending.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = batches[partition] = producer.create_batch()
                    batch.append(timestamp=None, key=key, value=value)
            for partition, batch in batches.items():
                pending.append(await producer.send_batch(batch, topic, partition=partition))
            if rate is not None:
                ahead = started + (i + chunk) / rate - time.perf_counter()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            if len(pending) >= 500:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


# -- memory and metrics costs ---------------------------------------------------------
def state_bytes_per_video(n_events: int, seed: int) -> tuple[float, int]:
    """Bytes of the in-memory video states (cache entries included) per video, measured
    with tracemalloc on the states of `n_events` generator events processed in order."""
    from workpulse.dev.generator import Workload, WorkloadConfig
    from workpulse.model.state import VideoState
    from workpulse.worker.video_states import VideoStateCache

    events = list(Workload(WorkloadConfig(seed=seed)).events(n_events))
    cache = VideoStateCache(max_videos=10**9, ttl_s=10**9)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for event in events:
        found, _ = cache.lookup([event["video_id"]])
        state = found.get(event["video_id"]) or VideoState()
        state = state.copy()
        state.remember(event["event_id"])
        if event["kind"] == "publish":
            state.published = True
            state.author_id = event["author_id"]
            state.lang = event.get("lang") or ""
            state.country = event.get("country") or ""
            state.topics = ("resignation",)
        state.advance_counters(event.get("views"), event.get("likes"), event.get("shares"),
                               event.get("comments"))  # fmt: skip
        cache.put_many([(event["video_id"], state)])
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / max(1, len(cache)), len(cache)


def metrics_us_per_event(n_events: int, seed: int) -> float:
    """The per-batch metric updates of the ingest step on a real batch, per event."""
    from prometheus_client import CollectorRegistry

    from workpulse.dev.generator import Workload, WorkloadConfig
    from workpulse.metrics import Metrics
    from workpulse.model.message import Message
    from workpulse.processing.ingest import BatchProcessor
    from workpulse.tagging import load_tagger
    from workpulse.worker.steps import record_batch

    messages = [
        Message("in", i % 4, i, k, v, 1_767_225_600_000)
        for i, (k, v) in enumerate(Workload(WorkloadConfig(seed=seed)).messages(n_events))
    ]
    tagger = load_tagger(cache_dir=Settings().lexicon_cache_dir)
    out = BatchProcessor(lambda: tagger).process(messages, {}, {}, 1_767_229_200_000)
    metrics = Metrics(CollectorRegistry())
    timings = []
    for _ in range(7):
        started = time.perf_counter()
        record_batch(metrics, messages, out, time.time())
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) / len(messages) * 1e6


# -- the run --------------------------------------------------------------------------
@contextlib.contextmanager
def _broker(settings: Settings, workdir: Path) -> Iterator[tuple[str, int | None]]:
    """The bootstrap servers, and the pid of the broker if the bench started it."""
    if settings.kafka_bootstrap:
        yield settings.kafka_bootstrap, None
        return
    from workpulse.dev.broker import EmbeddedBroker

    with EmbeddedBroker(log_path=workdir / "broker.log") as broker:
        yield broker.bootstrap, broker.pid


@contextlib.contextmanager
def _shared_clickhouse(settings: Settings, workdir: Path) -> Iterator[tuple[str, int | None]]:
    """The URL, and the pid of the server if the bench started it."""
    if settings.clickhouse_url_value:
        yield settings.clickhouse_url_value, None
        return
    from workpulse.dev.chdb_http import ChdbHttpServer

    server = ChdbHttpServer(workdir / "chdb-http", user="bench", password="bench")
    server.start()
    try:
        yield server.url_with_credentials(), server.pid
    finally:
        server.stop()


def _worker_env(settings: Settings, bootstrap: str, topic: str, group: str,
                data_dir: Path, clickhouse_url: str | None, batch_size: int | None,
                partitions: int) -> dict[str, str]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKPULSE_")}
    env.update(
        {
            "WORKPULSE_KAFKA_BOOTSTRAP": bootstrap,
            "WORKPULSE_INPUT_TOPIC": topic,
            "WORKPULSE_DLQ_TOPIC": f"{topic}-dlq",
            "WORKPULSE_SPIKES_TOPIC": f"{topic}-spikes",
            "WORKPULSE_APP_ID": group,
            "WORKPULSE_PARTITIONS": str(partitions),
            "WORKPULSE_KAFKA_SESSION_TIMEOUT_S": str(settings.kafka_session_timeout_s or 2.0),
            "WORKPULSE_METRICS_PORT": "0",
            "WORKPULSE_DATA_DIR": str(data_dir),
            "WORKPULSE_IDLE_PARTITION_S": "1",
            "WORKPULSE_LOG_LEVEL": "WARNING",
        }
    )
    if settings.cache_dir is not None:
        env["WORKPULSE_CACHE_DIR"] = str(settings.cache_dir)
    if clickhouse_url:
        env["WORKPULSE_CLICKHOUSE_URL"] = clickhouse_url
    if batch_size:
        env["WORKPULSE_BATCH_SIZE"] = str(batch_size)
    return env


def _exact(clickhouse_url: str | None, chdb_dir: Path, topic: str, valid: int) -> bool:
    from workpulse.clickhouse import connect
    from workpulse.dev.summary import counts_match_recount

    db = connect(clickhouse_url, chdb_dir)
    try:
        rows, events = db.query(
            "SELECT count(), uniqExact(event_id) FROM workpulse.video_events "
            "WHERE src_topic = {t:String}",
            {"t": topic},
        ).rows[0]
        return int(rows) == int(events) == valid and counts_match_recount(db)
    finally:
        db.close()


def _init_db(clickhouse_url: str | None, data_dir: Path) -> None:
    from workpulse.clickhouse import apply_schema, connect

    db = connect(clickhouse_url, data_dir)
    try:
        apply_schema(db)
    finally:
        db.close()


def run_pipeline_bench(
    bench: PipelineBench, settings: Settings, progress: Progress = lambda _: None
) -> dict[str, Any]:
    import asyncio

    from workpulse.dev.generator import Workload
    from workpulse.kafka.admin import create_topics

    workdir = Path(tempfile.mkdtemp(prefix="workpulse-bench-"))
    result: dict[str, Any] = {"bench": "pipeline", "events": bench.events, "machine": machine()}
    try:
        progress(f"generating {bench.events:,} events")
        workload = _workload(bench.seed, settings)
        labelled = list(Workload(workload).labelled_messages(bench.events))
        messages = [(k, v) for k, v, _ in labelled]
        valid = sum(1 for *_, label in labelled if label == "valid")
        with _broker(settings, workdir) as (bootstrap, broker_pid):
            backlog = f"bench-{uuid.uuid4().hex[:8]}"
            create_topics(bootstrap, {backlog: bench.partitions})
            progress(f"producing the backlog to {backlog}")
            asyncio.run(produce(bootstrap, backlog, messages))

            progress("raw consumer (3 reads)")
            raw = [
                asyncio.run(raw_consume(bootstrap, backlog, bench.events, bench.partitions))
                for _ in range(3)
            ]
            result["raw_consume_events_per_s"] = round(statistics.median(raw))
            result["raw_consume_runs"] = [round(r) for r in raw]

            url = settings.clickhouse_url_value
            one_dir = workdir / "one"
            _init_db(url, one_dir)
            env = _worker_env(settings, bootstrap, backlog, f"bench-{uuid.uuid4().hex[:6]}",
                              one_dir, url, bench.batch_size, bench.partitions)  # fmt: skip
            worker = start_worker(env, workdir / "logs")
            try:
                one = watch([worker], bench.events, progress, "one worker")
            finally:
                worker.stop()
            result["pipeline_events_per_s"] = round(one.events_per_s)
            result["ratio"] = round(one.events_per_s / result["raw_consume_events_per_s"], 3)
            result["cpu_s_per_1k_events"] = round(one.cpu_s_per_1k, 3)
            result["rss_mb_peak"] = [round(r) for r in one.rss_mb_peak]
            result["one_worker_exact"] = _exact(url, one_dir, backlog, valid)

            rate = min(bench.rate, max(1, int(one.events_per_s / 2)))
            paced_n = int(rate * bench.duration_s)
            paced_topic = f"bench-paced-{uuid.uuid4().hex[:8]}"
            create_topics(bootstrap, {paced_topic: bench.partitions})
            lat_dir = workdir / "latency"
            _init_db(url, lat_dir)
            env = _worker_env(settings, bootstrap, paced_topic, f"bench-{uuid.uuid4().hex[:6]}",
                              lat_dir, url, bench.batch_size, bench.partitions)  # fmt: skip
            worker = start_worker(env, workdir / "logs")
            try:
                _wait_group_ready([worker])
                progress(f"paced producer: {rate:,}/s for {bench.duration_s:.0f} s")
                paced_workload = replace(workload, seed=bench.seed + 1)
                paced = list(Workload(paced_workload).messages(paced_n))
                asyncio.run(produce(bootstrap, paced_topic, list(paced), rate=rate))
                lat = watch([worker], paced_n, progress, "paced")
            finally:
                worker.stop()
            result["rate"] = rate
            result["latency_p50_s"] = round(lat.latency["p50"], 3)
            result["latency_p99_s"] = round(lat.latency["p99"], 3)

            if bench.workers >= 2:
                with _shared_clickhouse(settings, workdir) as (shared, clickhouse_pid):
                    _init_db(shared, workdir)
                    started_here = (("broker", broker_pid), ("clickhouse", clickhouse_pid))
                    services = {name: pid for name, pid in started_here if pid is not None}
                    services["bench"] = os.getpid()  # its producer and its polls
                    # one worker on the same (shared) ClickHouse first: the scale-out is
                    # measured against it, not against the embedded one above
                    single = _group_run(settings, bootstrap, shared, bench, workdir, 1,
                                        progress, services, _moved(workload, 1))  # fmt: skip
                    many = _group_run(settings, bootstrap, shared, bench, workdir,
                                      bench.workers, progress, services,
                                      _moved(workload, 2))  # fmt: skip
                    key = f"workers_{bench.workers}"
                    for prefix, group_run in (("workers_1_shared", single), (key, many)):
                        run = group_run.run
                        result[f"{prefix}_events_per_s"] = round(run.events_per_s)
                        result[f"{prefix}_cpu_s_per_1k_events"] = round(run.cpu_s_per_1k, 3)
                        for name, cpu in run.services_cpu_s_per_1k.items():
                            result[f"{prefix}_{name}_cpu_s_per_1k_events"] = round(cpu, 3)
                        result[f"{prefix}_busy_cores"] = round(run.busy_cores, 2)
                    result[f"{key}_rss_mb_peak"] = [round(r) for r in many.run.rss_mb_peak]
                    result[f"{key}_vs_one"] = round(
                        many.run.events_per_s / single.run.events_per_s, 3
                    )
                    result[f"{key}_cpu_vs_one"] = round(
                        many.run.cpu_s_per_1k / single.run.cpu_s_per_1k, 3
                    )
                    result[f"{key}_join_s"] = round(many.join_s, 1)
                    result["workers_1_shared_exact"] = single.exact
                    result["exact"] = many.exact
            else:
                result["exact"] = result["one_worker_exact"]

        progress("state memory and metrics cost")
        per_video, videos = state_bytes_per_video(min(bench.events, 100_000), bench.seed)
        result["state_bytes_per_video"] = round(per_video)
        result["state_mb_per_1m_videos"] = round(per_video * 1_000_000 / 2**20)
        result["state_measured_videos"] = videos
        result["metrics_us_per_event"] = round(metrics_us_per_event(4000, bench.seed), 3)
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class GroupRun:
    run: RunResult
    join_s: float
    """From starting the workers to every one of them holding partitions and the counts
    agents caught up (process start-up included)."""
    exact: bool
    """Every valid event of the run's topic stored once, and the counts match a recount."""


def _workload(seed: int, settings: Settings) -> WorkloadConfig:
    """The bench's workload. On a configured ClickHouse (which outlives the bench) it is
    moved back by a random time of up to five years, whole milliseconds: a video id holds
    its publish time, so no two invocations write the same videos (a worker writes
    nothing for a video ClickHouse already holds, and a second bench on the same
    database measured nothing and was not `exact`). Embedded ones are fresh every time."""
    from workpulse.dev.generator import WorkloadConfig

    config = WorkloadConfig(seed=seed)
    if not settings.clickhouse_url_value:
        return config
    shift_ms = 1 + secrets.randbelow(5 * 365 * DAY_MS)
    return replace(config, start_ms=config.start_ms - shift_ms)


def _moved(config: WorkloadConfig, years_back: int) -> WorkloadConfig:
    return replace(config, start_ms=config.start_ms - years_back * 366 * DAY_MS)


def _group_run(settings: Settings, bootstrap: str, clickhouse_url: str, bench: PipelineBench,
               workdir: Path, workers: int, progress: Progress, services: Mapping[str, int],
               workload: WorkloadConfig) -> GroupRun:  # fmt: skip
    """`workers` worker processes in a fresh group on a fresh topic: once every one holds
    partitions, the backlog is sent (as fast as the producer goes, ~200k/s here, while
    they read it) and they are timed from the first send to the last row durable.

    Started on a topic that already held the backlog, the first worker to join read
    alone until the others joined and the group rebalanced: a one-off pause of seconds
    (`join_s`, reported apart) that made a 5 s run's rate anything from 1x to 2x one
    worker's.

    The backlog is `workload`, the bench's moved one or two years earlier: the same
    captions, authors and counters, other video ids and event times (a video id holds its
    publish time). Runs share one ClickHouse, and a worker takes an event
    whose video ClickHouse already holds with that event as a replay and writes nothing:
    a second run of the same messages measured a pipeline that stored nothing, and its
    recount could not fail."""
    import asyncio

    from workpulse.dev.generator import Workload
    from workpulse.kafka.admin import create_topics

    what = "one worker, shared" if workers == 1 else f"{workers} workers"
    labelled = list(Workload(workload).labelled_messages(bench.events))
    messages = [(k, v) for k, v, _ in labelled]
    valid = sum(1 for *_, label in labelled if label == "valid")
    topic = f"bench-{workers}w-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, {topic: bench.partitions})
    group = f"bench-{uuid.uuid4().hex[:6]}"
    procs: list[WorkerProc] = []
    try:
        started = time.monotonic()
        for i in range(workers):
            env = _worker_env(settings, bootstrap, topic, group, workdir / f"{topic}-w{i}",
                              clickhouse_url, bench.batch_size, bench.partitions)  # fmt: skip
            procs.append(start_worker(env, workdir / "logs"))
        progress(f"{what}: starting and joining the group")
        _wait_group_ready(procs)
        join_s = time.monotonic() - started
        first_send = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            feed = pool.submit(
                asyncio.run, produce(bootstrap, topic, messages, on_first_send=first_send.set)
            )
            while not first_send.wait(0.05):  # the clock starts with the first send
                if feed.done():
                    feed.result()  # the producer failed: its error
                    raise RuntimeError(f"{what}: the producer ended before sending")
            run = watch(procs, bench.events, progress, what, feed=feed, services=services)
            feed.result()
    finally:
        for w in procs:
            w.stop()
    return GroupRun(run, join_s, _exact(clickhouse_url, workdir, topic, valid))


def _wait_group_ready(workers: list[WorkerProc], timeout_s: float = 120) -> None:
    """Until every worker holds input partitions (each has reported its partitions as
    idle: the last to join made the group's final generation) and the counts agents
    have handled every report sent so far (their own group formed and recovered)."""
    deadline = time.monotonic() + timeout_s
    sent = [0.0] * len(workers)
    while time.monotonic() < deadline:
        scraped = [w.scrape(PROGRESS_SAMPLES) for w in workers]
        sent = [_total(s, "workpulse_watermark_reports_total", side="sent") for s in scraped]
        handled = sum(
            _total(s, "workpulse_watermark_reports_total", side="handled") for s in scraped
        )
        if all(n > 0 for n in sent) and handled >= sum(sent):
            return
        for w in workers:
            if w.proc.poll() is not None:
                raise RuntimeError(f"a worker exited before it was ready: {w.tail(500)}")
        time.sleep(0.1)
    late = [str(w.log) for w, n in zip(workers, sent, strict=True) if n == 0]
    waiting = f"no partitions: {', '.join(late)}" if late else "the counts agents behind"
    raise RuntimeError(f"workers not ready after {timeout_s:.0f} s ({waiting})")
