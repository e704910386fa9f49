from __future__ import annotations

from collections import Counter

import pytest

from workpulse.model.aggregates import WINDOW_TOP, TopicMinute
from workpulse.processing.windows import WINDOW_MS, TopicWindows

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
        assert w.add(start, TopicMinute(videos=videos))
    got = [(c.start_ms, c.videos) for c in w.advance(watermark, grace)]
    assert got == closed


def test_late_event_is_refused_and_watermark_never_goes_back() -> None:
    w = TopicWindows()
    w.add(0, TopicMinute(videos=1))
    assert [c.start_ms for c in w.advance(3 * M, 0)] == [0, M, 2 * M]
    assert not w.add(M, TopicMinute(videos=1))
    assert w.advance(M, 0) == []
    assert w.watermark_ms == 3 * M
    assert w.add(3 * M, TopicMinute(videos=1))


def test_round_trip() -> None:
    w = TopicWindows()
    w.add(M, TopicMinute(videos=2, langs=Counter({"fr": 2})))
    w.advance(M, 0)
    assert TopicWindows.from_dict(w.to_dict()) == w


def test_merge_aggregates() -> None:
    a = TopicMinute(videos=1, views=10, langs=Counter({"fr": 1}))
    a.merge(
        TopicMinute(
            videos=2,
            views=5,
            langs=Counter({"fr": 1, "ar": 1}),
            hashtags=Counter({"quitmyjob": 2}),
        )
    )
    assert a.videos == 3 and a.views == 15
    assert a.langs == {"fr": 2, "ar": 1}
    assert a.hashtags == {"quitmyjob": 2}


def test_merge_keeps_the_top_entries() -> None:
    a = TopicMinute(hashtags=Counter({f"h{i}": i + 1 for i in range(WINDOW_TOP)}))
    a.merge(TopicMinute(hashtags=Counter({"h0": 100, "new": 1})))
    assert len(a.hashtags) == WINDOW_TOP
    assert a.hashtags.most_common(1) == [("h0", 101)]
    assert "new" not in a.hashtags  # the smallest entry is the one dropped


@pytest.mark.parametrize(
    "agg",
    [
        TopicMinute(),
        TopicMinute(3, 10, 2, 1, Counter({"fr": 3}), Counter({"quitmyjob": 2}), Counter({"v": 9})),
    ],
)
def test_aggregate_round_trip(agg: TopicMinute) -> None:
    assert TopicMinute.from_dict(agg.to_dict()) == agg
