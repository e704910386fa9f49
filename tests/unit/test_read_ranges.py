"""The counts agent reads each closed minute once: which parts of a range are not read
yet, and the ranges read so far (`processing.windows.uncovered`, `covered_with`). Pure."""

from __future__ import annotations

import pytest

from workpulse.processing.windows import covered_with, uncovered


@pytest.mark.parametrize(
    ("covered", "start", "end", "parts"),
    [
        ([], 0, 10, [(0, 10)]),
        ([(0, 10)], 0, 10, []),
        ([(0, 10)], 2, 8, []),
        ([(0, 10)], 5, 15, [(10, 15)]),  # a topic a report ahead
        ([(5, 10)], 0, 8, [(0, 5)]),  # one behind
        ([(2, 4), (6, 8)], 0, 10, [(0, 2), (4, 6), (8, 10)]),
        ([(0, 4), (6, 8)], 4, 6, [(4, 6)]),
        ([(20, 30)], 0, 10, [(0, 10)]),
        ([(0, 5)], 10, 20, [(10, 20)]),
    ],
)
def test_uncovered(
    covered: list[tuple[int, int]], start: int, end: int, parts: list[tuple[int, int]]
) -> None:
    assert uncovered(covered, start, end) == parts


@pytest.mark.parametrize(
    ("covered", "start", "end", "merged"),
    [
        ([], 0, 10, [(0, 10)]),
        ([(0, 10)], 10, 20, [(0, 20)]),  # touching: joined
        ([(0, 10)], 5, 20, [(0, 20)]),
        ([(10, 20)], 0, 5, [(0, 5), (10, 20)]),
        ([(0, 4), (6, 8)], 4, 6, [(0, 8)]),
        ([(0, 4), (10, 12)], 5, 6, [(0, 4), (5, 6), (10, 12)]),
    ],
)
def test_covered_with(
    covered: list[tuple[int, int]], start: int, end: int, merged: list[tuple[int, int]]
) -> None:
    assert covered_with(covered, start, end) == merged
