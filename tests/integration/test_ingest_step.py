"""The ingest step's overlap on embedded chDB: a batch prepared while the batch before it
is written (`IngestStep.prepare`) sees that batch's video states, and is computed again
when they changed after all (ClickHouse refused one of its rows) or the partitions
moved (`forget`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry

from workpulse.clickhouse import Database, apply_schema, open_embedded
from workpulse.metrics import Metrics
from workpulse.model.message import Message
from workpulse.processing.ingest import BatchProcessor
from workpulse.sinks.clickhouse import Sink
from workpulse.tagging import load_tagger
from workpulse.worker.offsets import DurableOffsetCache, SourceReset
from workpulse.worker.steps import IngestStep, Progress
from workpulse.worker.video_states import VideoStateCache

pytestmark = pytest.mark.integration

NOW_S = 1_767_225_600.0  # 2026-01-01


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = open_embedded(tmp_path_factory.mktemp("ingest-step") / "chdb")
    apply_schema(database)
    database.command(
        "ALTER TABLE workpulse.video_events ADD CONSTRAINT no_poison "
        "CHECK NOT positionCaseInsensitive(caption, 'POISON-PILL')"
    )
    database.command("DROP TABLE workpulse.video_events_probe")
    apply_schema(database)  # the twin again, with the constraint
    try:
        yield database
    finally:
        database.close()


@pytest.fixture(scope="module")
def tagger(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_tagger(cache_dir=tmp_path_factory.mktemp("lexicon-cache"))


class Sent:
    """A publisher that keeps what it is given (Kafka is not what this test is about)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes | None, bytes]] = []
        self.failing: str | None = None
        """A topic whose deliveries fail (as when the broker does not acknowledge)."""

    async def send(self, topic: str, key: bytes | None, value: bytes, headers: Any = None) -> Any:
        self.messages.append((topic, key, value))
        done = asyncio.get_running_loop().create_future()
        if topic == self.failing:
            done.set_exception(KafkaTimeoutError("not acknowledged"))
        else:
            done.set_result(None)
        return done


def message(topic: str, offset: int, video: str, kind: str, **fields: Any) -> Message:
    event = {"event_id": f"e-{video}-{offset}", "kind": kind, "video_id": video,
             "event_time": int(NOW_S * 1000) - 60_000 + offset, **fields}  # fmt: skip
    if kind == "publish":
        event.setdefault("author_id", "a1")
        event.setdefault("caption", "I quit my job today #quitmyjob")
    return Message(topic, 0, offset, video.encode(), orjson.dumps(event), int(NOW_S * 1000))


@contextmanager
def step_for(db: Database, tagger: Any, **options: Any) -> Iterator[IngestStep]:
    """An ingest step on `db` (`options`: other constructor arguments); its sinks are
    closed on leaving."""
    metrics = Metrics(CollectorRegistry(), runtime_collectors=False)
    sink, reads = Sink(db, metrics), Sink(db, metrics)
    try:
        yield IngestStep(
            processor=BatchProcessor(lambda: tagger), sink=sink, db=db, reads=reads,
            reads_db=db, offsets=DurableOffsetCache(db), states=VideoStateCache(),
            publisher=Sent(), metrics=metrics, progress=Progress(), dlq_topic="dlq",
            watermarks_topic="marks", partition_count=lambda: 1, grace_ms=120_000,
            **{"wall_clock": lambda: NOW_S, **options},
        )  # fmt: skip
    finally:
        sink.close()
        reads.close()


def halves(messages: list[Message], split: bool) -> list[list[Message]]:
    """The batch as parts: the first message, then the rest (or all at once)."""
    return [messages[:1], messages[1:]] if split else [messages]


def stored(db: Database, video: str) -> list[tuple[str, int, int]]:
    return [
        (kind, int(views), int(d_views))
        for kind, views, d_views in db.query(
            "SELECT kind, views, d_views FROM workpulse.video_events "
            "WHERE video_id = {v:String} ORDER BY src_offset",
            {"v": video},
        ).rows
    ]


def run_overlapped(step: IngestStep, first: list[Message], second: list[Message],
                   between: Any = None, parts: int = 1) -> tuple[Any, Any]:  # fmt: skip
    """As the consumer does: the second batch is prepared (in `parts`: live traffic, a
    part as it arrives) while the first is handled."""
    size = -(-len(second) // parts)
    return run_split(step, first, [second[i : i + size] for i in range(0, len(second), size)],
                     between)  # fmt: skip


def run_split(step: IngestStep, first: list[Message], parts: list[list[Message]],
              between: Any = None) -> tuple[Any, Any]:  # fmt: skip
    """The second batch prepared in these parts while the first is handled."""

    async def go() -> tuple[Any, Any]:
        prepared_first = await step.prepare(first)
        writing = asyncio.create_task(step.handle(first, prepared_first))
        await asyncio.sleep(0)  # the write starts
        prepared_second = None
        for part in parts:
            prepared_second = await step.prepare(part, prepared_second)
        await writing
        if between is not None:
            between()
        second = [m for part in parts for m in part]
        return prepared_second, await step.handle(second, prepared_second)

    return asyncio.run(go())


LATER = [("stats", 30, 5), ("stats", 30, 0)]


@pytest.mark.parametrize("parts", [1, 4], ids=["at-once", "in-parts"])
@pytest.mark.parametrize(
    ("case", "recomputed", "expected"),
    [
        # seen through the batch before: 10 views were known, the stats gain 15, then 5
        # (a duplicate between them, dropped), then nothing (an older count: 20 < 30)
        ("prepared", False, [("publish", 10, 10), ("stats", 25, 15), *LATER]),
        # the partitions moved in between: computed again from what ClickHouse holds
        ("forgotten", True, [("publish", 10, 10), ("stats", 25, 15), *LATER]),
        # the publish was refused (dead-lettered): the stats event is the video's first,
        # and its gains wait for a publish (no topic to count them in before)
        ("refused", True, [("stats", 25, 0), ("stats", 30, 0), ("stats", 30, 0)]),
    ],
)
def test_a_prepared_batch_sees_the_batch_before_or_is_computed_again(
    db: Database, tagger: Any, case: str, recomputed: bool, expected: list[Any], parts: int
) -> None:
    topic, video = f"events-{case}-{parts}", f"vid-{case}-{parts}"
    caption = "POISON-PILL: I quit my job" if case == "refused" else "I quit my job #quitmyjob"
    first = [message(topic, 1, f"other-{case}", "stats", views=3),
             message(topic, 2, video, "publish", views=10, caption=caption)]  # fmt: skip
    second = [
        message(topic, 3, video, "stats", views=25),
        message(topic, 4, video, "stats", views=25, event_id=f"e-{video}-3"),  # again
        message(topic, 5, video, "stats", views=30),
        message(topic, 6, video, "stats", views=20),
    ]
    with step_for(db, tagger) as step:
        prepared, out = run_overlapped(
            step, first, second, between=step.forget if case == "forgotten" else None,
            parts=parts,
        )  # fmt: skip
    assert prepared is not None
    assert (out is not prepared.out) == recomputed
    assert stored(db, video) == expected
    dead = db.query(
        "SELECT count() FROM workpulse.dead_letters WHERE src_topic = {t:String} "
        "AND src_offset = 2 AND reason = 'clickhouse_refused'",
        {"t": topic},
    ).scalar()
    assert dead == (1 if case == "refused" else 0)


@pytest.mark.parametrize("split", [False, True], ids=["at-once", "in-parts"])
def test_a_new_video_across_parts_survives_a_refusal(
    db: Database, tagger: Any, split: bool
) -> None:
    """A row of the batch refused: the batch is computed again from the states before
    it, where the video published in its first part is still new (found in review: it
    was taken as already published, and its publish row lost)."""
    topic, video = f"events-new-{split}", f"vid-new-{split}"
    first = [message(topic, 1, f"other-new-{split}", "stats", views=3)]
    second = [
        message(topic, 2, video, "publish", views=10),
        message(topic, 3, video, "stats", views=25),
        message(topic, 4, f"poison-{split}", "publish", caption="POISON-PILL: I quit"),
    ]
    with step_for(db, tagger) as step:
        prepared, out = run_split(step, first, halves(second, split))
    assert prepared is not None and out is not prepared.out  # computed again
    assert stored(db, video) == [("publish", 10, 10), ("stats", 25, 15)]


@pytest.mark.parametrize("split", [False, True], ids=["at-once", "in-parts"])
def test_a_part_makes_nothing_of_its_own_batch_late(db: Database, tagger: Any, split: bool) -> None:
    """Lateness is as of the batch before (its events are reported before this batch's
    windows can close): an event older than an earlier part's by more than the grace and
    a window is not late (found in review: it was counted)."""
    topic, t = f"events-late-{split}", int(NOW_S * 1000) - 60_000
    first = [message(topic, 1, f"a-{split}", "stats", views=3, event_time=t - 600_000)]
    second = [
        message(topic, 2, f"b-{split}", "publish", views=1, event_time=t),
        message(topic, 3, f"c-{split}", "publish", views=1, event_time=t - 200_000),
    ]
    with step_for(db, tagger) as step:
        _, out = run_split(step, first, halves(second, split))
    assert sum(out.late.values()) == 0


def reported(step: IngestStep) -> list[int]:
    """The watermark (event time) of partition 0 in each report sent, in order."""
    publisher = step.publisher
    assert isinstance(publisher, Sent)
    return [
        orjson.loads(value)["marks"]["0"]["t"]
        for topic, key, value in publisher.messages
        if topic == "marks" and key == b"resignation"  # (every topic gets the same)
    ]


@pytest.mark.parametrize(
    ("behind", "after_s", "at_once"),
    [
        (False, 0.0, True),  # caught up: every change goes out at once
        (True, 0.0, False),  # more to read and a report just went out: it waits
        (True, 0.999, False),
        (True, 1.0, True),  # more to read, but the last report is a second old
    ],
)
def test_watermark_reports_wait_while_the_input_is_behind(
    db: Database, tagger: Any, behind: bool, after_s: float, at_once: bool
) -> None:
    """While the consumer has more to read, reports go out at most once a second (each
    makes the counts agent read the minutes they close); a report held back goes with
    the next, and the last batch of a backlog is reported at once."""
    topic, t0 = f"events-reports-{behind}-{after_s}", int(NOW_S * 1000) - 600_000
    clock = [NOW_S]
    end = [0]  # the end of partition 0 as of the last fetch
    # (caught up: one offset past a batch is a transaction's commit marker at most)
    batches = [
        [message(topic, 1, f"r1-{after_s}", "publish", event_time=t0)],
        [message(topic, 2, f"r2-{after_s}", "publish", event_time=t0 + 120_000)],
        [message(topic, 3, f"r3-{after_s}", "publish", event_time=t0 + 240_000)],
    ]
    with step_for(db, tagger, clock=lambda: clock[0], highwater=lambda _p: end[0]) as step:

        async def handle(batch: list[Message], more: bool) -> None:
            end[0] = batch[-1].offset + 1 + (2 if more else 1)
            await step.handle(batch, await step.prepare(batch))

        async def go() -> list[tuple[list[int], bool]]:
            seen = []
            await handle(batches[0], behind)
            seen.append((reported(step), step.reports_held))
            clock[0] += after_s
            await handle(batches[1], behind)
            seen.append((reported(step), step.reports_held))
            clock[0] += 0.001
            await handle(batches[2], False)  # the last one: caught up
            seen.append((reported(step), step.reports_held))
            return seen

        first, second, last = asyncio.run(go())
    assert first == ([t0], False)  # the first report goes out at once
    # Held back: the consumer must not commit the batch yet (a crash would lose it).
    assert second == (([t0, t0 + 120_000], False) if at_once else ([t0], True))
    assert last == ([*second[0], t0 + 240_000], False)


def test_an_event_dated_ahead_moves_the_watermark_no_further_than_the_clock(
    db: Database, tagger: Any
) -> None:
    """The contract takes events up to a day ahead. One such event (one per partition)
    closed every window up to its time: the real minutes in between were late, and the
    detector never saw them (a wave of 200 videos raised no alert). The partition's
    watermark goes no further than the worker's clock; the event itself is stored."""
    topic, now_ms = "events-ahead", int(NOW_S * 1000)
    wall = [NOW_S]
    batches = [
        [message(topic, 1, "ahead-1", "publish", event_time=now_ms - 60_000)],
        [message(topic, 2, "ahead-2", "publish", event_time=now_ms + 23 * 3_600_000)],
        [message(topic, 3, "ahead-3", "publish", event_time=now_ms + 90_000)],
    ]
    with step_for(db, tagger, wall_clock=lambda: wall[0]) as step:

        async def go() -> None:
            for batch in batches:
                await step.handle(batch, await step.prepare(batch))
                wall[0] += 30

        asyncio.run(go())
        # each report: the clock then, not 23 hours ahead (the reports of a minute ahead
        # of the last one are sent: a window may close)
        assert reported(step) == [now_ms - 60_000, now_ms + 30_000, now_ms + 60_000]
    assert stored(db, "ahead-2") == [("publish", 0, 0)]


def test_an_input_topic_made_again_stops_the_step_instead_of_dropping_its_events(
    db: Database, tagger: Any
) -> None:
    """The topic deleted and made again (or the broker's messages lost): its offsets
    start from 0 again, under what ClickHouse holds from the old one, and the replay
    guard took every new message for a replay: nothing stored, nothing said."""
    topic = "events-made-again"
    first = [message(topic, i, f"again-{i}", "publish") for i in range(1, 6)]
    end = [6]
    again = [message(topic, 0, "new-0", "publish"), message(topic, 1, "new-1", "publish")]
    with step_for(db, tagger, highwater=lambda _p: end[0]) as step:

        async def go() -> None:
            await step.handle(first, await step.prepare(first))
            assert len(stored(db, "again-5")) == 1
            end[0] = 2  # the new topic: two messages so far, at offsets 0 and 1
            await step.handle(again, await step.prepare(again))

        with pytest.raises(SourceReset, match=rf"{topic}\[0\] ends at offset 2, but ClickHouse "
                           r"holds rows read up to offset 5 from it"):  # fmt: skip
            asyncio.run(go())
    assert stored(db, "new-0") == []


def test_held_back_reports_go_out_before_the_partitions_move(db: Database, tagger: Any) -> None:
    """A change held back while behind is sent when the partitions are revoked or the
    worker stops (the consumer's `release`, before it commits the batches that held it:
    their next owner reports only what it reads after the committed offsets)."""
    topic, t0 = "events-reports-flush", int(NOW_S * 1000) - 600_000
    first = [message(topic, 1, "f1", "publish", event_time=t0)]
    second = [message(topic, 2, "f2", "publish", event_time=t0 + 120_000)]
    with step_for(db, tagger, clock=lambda: 0.0, highwater=lambda _p: 100) as step:

        async def go() -> tuple[list[int], bool, list[int], list[int]]:
            for batch in (first, second):
                await step.handle(batch, await step.prepare(batch))
            held, holding = reported(step), step.reports_held
            assert await step.flush_reports()
            flushed = reported(step)
            assert await step.flush_reports()  # nothing more to send
            assert not step.reports_held
            return held, holding, flushed, reported(step)

        held, holding, flushed, again = asyncio.run(go())
    assert (held, holding) == ([t0], True)
    assert flushed == again == [t0, t0 + 120_000]


def test_a_report_that_failed_is_sent_again_before_the_held_batches_are_committed(
    db: Database, tagger: Any
) -> None:
    """A report whose delivery failed counts as not sent: `flush_reports` (the consumer's
    release, before it commits the batches it held back, at stop or revoke) sends it
    again. Found in review: it counted as sent once handed to the producer, so the flush
    found nothing to send and the batches held back before it were committed without
    their report."""
    topic, t0 = "events-reports-failed", int(NOW_S * 1000) - 600_000
    first = [message(topic, 1, "g1", "publish", event_time=t0)]
    second = [message(topic, 2, "g2", "publish", event_time=t0 + 120_000)]
    clock = [0.0]
    with step_for(db, tagger, clock=lambda: clock[0], highwater=lambda _p: 100) as step:
        publisher = step.publisher
        assert isinstance(publisher, Sent)

        async def go() -> tuple[list[int], bool]:
            await step.handle(first, await step.prepare(first))
            clock[0] += 5.0  # the next report is due
            publisher.failing = "marks"
            with pytest.raises(KafkaTimeoutError):
                await step.handle(second, await step.prepare(second))
            publisher.failing = None
            failed = reported(step)
            return failed, await step.flush_reports()

        failed, flushed = asyncio.run(go())
    assert failed == [t0, t0 + 120_000]  # handed to the producer, not acknowledged
    assert flushed
    assert reported(step) == [t0, t0 + 120_000, t0 + 120_000]  # sent again
