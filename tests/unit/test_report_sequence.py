"""The counts agent's check that no watermark report was skipped (worker/report_sequence.py):
a table of report sequences, as Faust delivers them, and the gap each must (or must not)
report."""

from __future__ import annotations

import pytest

from workpulse.worker.report_sequence import (
    COMMITTED,
    EARLIEST,
    FOLLOWING,
    ReportGap,
    ReportGapError,
    ReportSequence,
    cleanup_policy_problem,
    first_offset,
)

# A report as Faust delivers it to the agent: (generation, partition, offset), and on a
# partition's first report of a generation what the lookup answers, (committed,
# earliest), or nothing (the lookup failed). The agent checks it, and handles it unless
# there is a gap (the worker then stops).
Report = tuple[object, ...]


def gaps_in(reports: list[Report]) -> list[ReportGap]:
    sequence = ReportSequence()
    gaps = []
    for generation, partition, offset, *lookup in reports:
        assert isinstance(generation, int) and isinstance(partition, int)
        assert isinstance(offset, int)
        if not sequence.current(generation):
            continue
        if not sequence.knows(partition) and lookup:
            committed, earliest = lookup[0]  # type: ignore[misc]
            sequence.start(generation, partition, committed, earliest)
        gap = sequence.check(partition, offset)
        if gap is not None:
            gaps.append(gap)
            continue
        sequence.handled(partition, offset)
    return gaps


@pytest.mark.parametrize(
    ("reports", "gaps"),
    [
        pytest.param([(1, 0, 0, (None, 0)), (1, 0, 1), (1, 0, 2)], [], id="from-the-start"),
        pytest.param([(1, 0, 5, (5, 0)), (1, 0, 6)], [], id="from-the-committed-offset"),
        pytest.param(
            # the loss the seek fence fixed: the killed worker's reports 5..8 dropped
            [(1, 0, 9, (5, 0))],
            [ReportGap(0, 5, 9, COMMITTED)],
            id="first-report-past-the-committed-offset",
        ),
        pytest.param(
            [(1, 0, 3, (None, 0))],
            [ReportGap(0, 0, 3, EARLIEST)],
            id="past-the-start-without-a-commit",
        ),
        pytest.param(
            [(1, 0, 5, (5, 0)), (1, 0, 6), (1, 0, 8)],
            [ReportGap(0, 7, 8)],
            id="a-report-skipped-mid-stream",
        ),
        pytest.param(
            # a seek back to the committed offset: the reports come again, in order
            [(1, 0, 5, (5, 0)), (1, 0, 6), (1, 0, 7), (1, 0, 5), (1, 0, 6), (1, 0, 7), (1, 0, 8)],
            [],
            id="reports-again-after-a-seek-back",
        ),
        pytest.param(
            # ...and a skip after the seek back is still caught
            [(1, 0, 5, (5, 0)), (1, 0, 6), (1, 0, 7), (1, 0, 5), (1, 0, 7)],
            [ReportGap(0, 6, 7)],
            id="a-skip-after-a-seek-back",
        ),
        pytest.param(
            # retention deleted past the commit: the consumer resets to the earliest
            [(1, 0, 20, (5, 20)), (1, 0, 21)],
            [],
            id="committed-offset-deleted-by-retention",
        ),
        pytest.param(
            [(1, 0, 22, (5, 20))],
            [ReportGap(0, 20, 22, EARLIEST)],
            id="past-the-earliest-after-retention",
        ),
        pytest.param(
            [(1, 0, 5, (5, 0)), (1, 1, 50, (50, 0)), (1, 1, 51), (1, 0, 6), (1, 1, 52)],
            [],
            id="two-partitions-interleaved",
        ),
        pytest.param(
            [(1, 0, 5, (5, 0)), (1, 1, 50, (50, 0)), (1, 0, 6), (1, 1, 53)],
            [ReportGap(1, 51, 53)],
            id="a-skip-in-one-of-two-partitions",
        ),
        pytest.param(
            # a rebalance: every partition is sought again (another worker may have
            # moved its commit on meanwhile), so the old expectation is forgotten
            [(1, 0, 5, (5, 0)), (1, 0, 6), (2, 0, 40, (40, 0)), (2, 0, 41)],
            [],
            id="a-new-generation-starts-again",
        ),
        pytest.param(
            [(1, 0, 5, (5, 0)), (2, 0, 40, (38, 0))],
            [ReportGap(0, 38, 40, COMMITTED)],
            id="a-skip-in-the-new-generation",
        ),
        pytest.param(
            # a report fetched before the rebalance, still in flight: neither checked
            # nor counted
            [(2, 0, 40, (40, 0)), (1, 0, 99), (2, 0, 41)],
            [],
            id="an-older-generation-is-ignored",
        ),
        pytest.param(
            # the lookup failed: the check starts after the first report
            [(1, 0, 7), (1, 0, 8), (1, 0, 10)],
            [ReportGap(0, 9, 10)],
            id="without-a-lookup-checked-after-the-first",
        ),
    ],
)
def test_a_report_ahead_of_the_next_expected_is_a_gap(
    reports: list[Report], gaps: list[ReportGap]
) -> None:
    assert gaps_in(reports) == gaps


def test_a_lookup_answered_after_a_rebalance_is_not_used() -> None:
    sequence = ReportSequence()
    assert sequence.current(1)
    assert sequence.current(2)  # a rebalance while the lookup of generation 1 ran
    sequence.start(1, 0, committed=5, earliest=0)
    assert not sequence.knows(0)
    assert sequence.check(0, 40) is None


@pytest.mark.parametrize(
    ("committed", "earliest", "first"),
    [
        (None, 0, (0, EARLIEST)),
        (None, 12, (12, EARLIEST)),
        (0, 0, (0, COMMITTED)),
        (7, 0, (7, COMMITTED)),
        (7, 7, (7, COMMITTED)),
        (7, 9, (9, EARLIEST)),  # retention deleted past the commit
    ],
)
def test_the_first_offset_is_the_commit_or_the_log_start(
    committed: int | None, earliest: int, first: tuple[int, str]
) -> None:
    assert first_offset(committed, earliest) == first


def test_the_error_says_what_was_skipped_and_from_where_in_one_line() -> None:
    error = ReportGap(partition=2, expected=5, got=9, origin=COMMITTED).error("wp-watermarks")
    assert isinstance(error, ReportGapError)
    assert str(error) == (
        "wp-watermarks partition 2: expected offset 5 (the group's committed offset), got 9: "
        "4 offsets skipped by the consumer; a restart replays them from the committed offset"
    )
    one = str(ReportGap(0, 5, 6).error())
    assert f"({FOLLOWING}), got 6: 1 offset skipped by the consumer" in one
    assert "\n" not in one


@pytest.mark.parametrize(
    ("policy", "refused"),
    [
        (None, False),  # the broker does not say (the embedded broker)
        ("delete", False),
        ("compact", True),
        ("compact,delete", True),
        ("delete, compact", True),
        ("COMPACT", True),
        ("", False),
    ],
)
def test_a_compacted_reports_topic_is_refused(policy: str | None, refused: bool) -> None:
    problem = cleanup_policy_problem("app-watermarks", policy)
    assert (problem is not None) is refused
    if problem is not None:
        assert "\n" not in problem
        assert problem.startswith("topic app-watermarks has cleanup.policy=")
        assert "set its cleanup.policy to delete" in problem
