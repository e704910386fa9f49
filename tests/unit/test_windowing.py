from __future__ import annotations

import pytest

from workpulse.windowing import WINDOW_MS, TopicWindows, merge_aggregate

M = WINDOW_MS


@pytest.mark.parametrize(
    ("adds", "watermark", "grace", "closed"),
    [
        # nothing closes before end + grace
        ([(0, 1)], M + 30_000, 60_000, []),
        ([(0, 1)], 2 * M, 60_000, [(0, 1)]),
        # empty minutes between events close as zero
        ([(0, 2), (3 * M, 5)], 4 * M, 0, [(0, 2), (M, 0), (2 * M, 0), (3 * M, 5)]),
        # several partial aggregates of one minute add up
        ([(0, 2), (0, 3)], 3 * M + 1, 0, [(0, 5), (M, 0), (2 * M, 0)]),
        # a window closes once the watermark reaches its end plus grace
        ([(0, 1)], M + 500, 500, [(0, 1)]),
    ],
)
def test_close(
    adds: list[tuple[int, int]], watermark: int, grace: int, closed: list[tuple[int, int]]
) -> None:
    w = TopicWindows()
    for start, videos in adds:
        assert w.add(start, {"videos": videos})
    got = [(c.start_ms, c.videos) for c in w.advance(watermark, grace)]
    assert got == closed


def test_late_event_is_refused_and_watermark_never_goes_back() -> None:
    w = TopicWindows()
    w.add(0, {"videos": 1})
    assert [c.start_ms for c in w.advance(3 * M, 0)] == [0, M, 2 * M]
    assert not w.add(M, {"videos": 1})
    assert w.advance(M, 0) == []
    assert w.watermark_ms == 3 * M
    assert w.add(3 * M, {"videos": 1})


def test_round_trip() -> None:
    w = TopicWindows()
    w.add(M, {"videos": 2, "langs": {"fr": 2}})
    w.advance(M, 0)
    assert TopicWindows.from_dict(w.to_dict()) == w


def test_merge_aggregate() -> None:
    a = {"videos": 1, "views": 10, "langs": {"fr": 1}}
    merge_aggregate(
        a, {"videos": 2, "views": 5, "langs": {"fr": 1, "ar": 1}, "hashtags": {"quitmyjob": 2}}
    )
    assert a["videos"] == 3 and a["views"] == 15
    assert a["langs"] == {"fr": 2, "ar": 1}
    assert a["hashtags"] == {"quitmyjob": 2}
