from __future__ import annotations

import pytest

from workpulse.model.state import RECENT_IDS, VideoState


@pytest.mark.parametrize(
    ("updates", "deltas", "final_views"),
    [
        ([(10, None, None, None)], [(10, 0, 0, 0)], 10),
        ([(10, 1, 0, 0), (25, 2, 1, 0)], [(10, 1, 0, 0), (15, 1, 1, 0)], 25),
        # out of order: a smaller cumulative value never gives a negative delta
        (
            [(30, None, None, None), (20, None, None, None), (35, None, None, None)],
            [(30, 0, 0, 0), (0, 0, 0, 0), (5, 0, 0, 0)],
            35,
        ),
        ([(None, 5, None, None)], [(0, 5, 0, 0)], 0),
    ],
)
def test_deltas(
    updates: list[tuple[int | None, ...]], deltas: list[tuple[int, ...]], final_views: int
) -> None:
    state = VideoState()
    got = [state.advance_counters(*u) for u in updates]
    assert got == deltas
    assert state.views == final_views
    assert sum(d[0] for d in got) == final_views


def test_round_trip() -> None:
    s = VideoState(True, ("salary",), "a", "fr", "FR", 1, 2, 3, 4, ["e1"])
    assert VideoState.from_dict(s.to_dict()) == s


def test_recent_ids_are_bounded() -> None:
    s = VideoState()
    for i in range(RECENT_IDS + 10):
        s.remember(f"e{i}")
    assert len(s.recent_ids) == RECENT_IDS
    assert s.seen(f"e{RECENT_IDS + 9}") and not s.seen("e0")
