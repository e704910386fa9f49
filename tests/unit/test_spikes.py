"""Tests of the pure spike statistics."""

from __future__ import annotations

import itertools
import math
import random

import orjson
import pytest

from workpulse.processing.spikes import (
    Spike,
    SpikeDetector,
    SpikeDetectorConfig,
    TopicBaseline,
    fill_gaps,
    poisson_log_sf,
    poisson_sf,
)

MIN = 60_000
T0 = 1_767_225_600_000


def poisson_sample(rng: random.Random, lam: float) -> int:
    """Knuth's method, by chunks of at most 20 for large means."""
    total = 0
    while lam > 0:
        part = min(lam, 20.0)
        lam -= part
        limit, k, p = math.exp(-part), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        total += k
    return total


def run(
    detector: SpikeDetector, counts: list[float], topic: str = "resignation"
) -> tuple[TopicBaseline, list[tuple[int, Spike]]]:
    state = TopicBaseline()
    alerts = []
    for i, c in enumerate(counts):
        spike = detector.observe(state, topic, T0 + i * MIN, c)
        if spike is not None:
            alerts.append((i, spike))
    return state, alerts


# P(X >= k | lam), reference values from an exact 60-digit summation of the upper tail
@pytest.mark.parametrize(
    ("k", "lam", "expected"),
    [
        (1, 1.0, 6.3212055883e-01),
        (2, 1.0, 2.6424111766e-01),
        (3, 0.5, 1.4387677967e-02),
        (10, 2.0, 4.6498075017e-05),
        (24, 3.0, 2.5735599663e-14),
        (50, 3.0, 1.2485354872e-42),
        (5, 5.0, 5.5950671493e-01),
        (20, 10.0, 3.4543419759e-03),
        (60, 60.0, 5.1716927263e-01),
        (100, 50.0, 3.2000653246e-10),
        (1000, 900.0, 5.4990226571e-04),
        (900, 1000.0, 9.9937740222e-01),
        (12, 0.5, 3.2146973033e-13),
        (1, 1e-3, 9.9950016663e-04),
        (30, 25.5, 2.1041585650e-01),
    ],
)
def test_poisson_tail_known_values(k: int, lam: float, expected: float) -> None:
    assert poisson_sf(k, lam) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("k", "lam", "minus_log10"),
    [(200, 0.5, 435.3189533466936), (50, 3.0, 41.90359910917469), (24, 3.0, 13.58946570784202)],
)
def test_poisson_log_tail_beyond_float_range(k: int, lam: float, minus_log10: float) -> None:
    assert -poisson_log_sf(k, lam) / math.log(10) == pytest.approx(minus_log10, rel=1e-12)


@pytest.mark.parametrize(
    ("k", "lam", "expected"),
    [(0, 3.0, 1.0), (-4, 3.0, 1.0), (0, 0.0, 1.0), (1, 0.0, 0.0), (2.5, 1.0, 0.0803013970713942)],
)
def test_poisson_tail_edges(k: float, lam: float, expected: float) -> None:
    assert poisson_sf(k, lam) == pytest.approx(expected, rel=1e-9, abs=0.0)


@pytest.mark.parametrize("lam", [0.2, 3.0, 40.0, 700.0])
def test_poisson_tail_monotonic(lam: float) -> None:
    values = [poisson_log_sf(k, lam) for k in range(0, int(3 * lam) + 30)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert poisson_log_sf(int(2 * lam) + 5, lam) < poisson_log_sf(int(2 * lam) + 5, lam * 1.1)


@pytest.mark.parametrize("min_history", [5, 20, 40])
def test_no_alert_before_min_history(min_history: int) -> None:
    detector = SpikeDetector(SpikeDetectorConfig(min_history=min_history))
    counts = [3.0] * (min_history - 1) + [100.0]
    _, alerts = run(detector, counts)
    assert alerts == []
    _, alerts = run(detector, [3.0] * min_history + [100.0])
    assert [i for i, _ in alerts] == [min_history]


@pytest.mark.parametrize(("lam", "spike"), [(1.0, 15), (5.0, 40), (30.0, 120), (300.0, 1200)])
def test_alert_on_clear_spike(lam: float, spike: int) -> None:
    rng = random.Random(42)
    counts: list[float] = [poisson_sample(rng, lam) for _ in range(60)] + [spike]
    detector = SpikeDetector()
    _, alerts = run(detector, counts, topic="salary")
    assert len(alerts) == 1
    i, alert = alerts[0]
    assert i == 60
    assert alert.topic == "salary"
    assert alert.window_start_ms == T0 + 60 * MIN
    assert alert.metric == "videos"
    assert alert.observed == spike
    assert alert.expected == pytest.approx(lam, rel=0.35)
    assert alert.p_value <= detector.config.threshold
    assert alert.score == pytest.approx(-poisson_log_sf(spike, alert.expected) / math.log(10))
    assert alert.score >= 6


@pytest.mark.parametrize(
    ("lam", "seed"), [(0.3, 1), (2.0, 2), (8.0, 3), (40.0, 4), (250.0, 5), (1500.0, 6)]
)
def test_no_alert_on_steady_noise(lam: float, seed: int) -> None:
    rng = random.Random(seed)
    counts: list[float] = [poisson_sample(rng, lam) for _ in range(3_000)]
    _, alerts = run(SpikeDetector(), counts)
    assert alerts == []


@pytest.mark.parametrize(
    ("baseline", "observed", "reason"),
    [(0.5, 8, "below min_count"), (200.0, 300, "below min_ratio")],
)
def test_guards_against_small_or_relative_excess(
    baseline: float, observed: float, reason: str
) -> None:
    detector = SpikeDetector()
    state, _ = run(detector, [baseline] * 30)
    assert poisson_sf(observed, state.mean) < detector.config.threshold, "significant anyway"
    assert detector.observe(state, "t", T0 + 30 * MIN, observed) is None, reason


def test_cooldown_and_regrowth() -> None:
    config = SpikeDetectorConfig(cooldown_windows=5)
    detector = SpikeDetector(config)
    state, _ = run(detector, [3.0] * 30)
    at = [T0 + (30 + i) * MIN for i in range(20)]
    first = detector.observe(state, "t", at[0], 30)
    assert first is not None
    # the same level again, within the cooldown: suppressed
    assert [detector.observe(state, "t", at[i], 30) for i in range(1, 4)] == [None] * 3
    # a much stronger spike within the cooldown gets through
    grown = detector.observe(state, "t", at[4], 200)
    assert grown is not None and grown.score >= config.regrowth * first.score
    # cooldown restarts from that alert: 5 windows of silence, then alerts again
    for i in range(5, 10):
        assert detector.observe(state, "t", at[i], 30) is None
    again = detector.observe(state, "t", at[10], 60)
    assert again is not None and again.window_start_ms == at[10]


def test_spike_does_not_pollute_the_baseline() -> None:
    config = SpikeDetectorConfig()
    detector = SpikeDetector(config)
    state, _ = run(detector, [4.0] * 50)
    before = state.mean
    assert detector.observe(state, "t", T0 + 50 * MIN, 5_000) is not None
    cap = before + config.clip_sigmas * math.sqrt(before)
    assert state.mean == pytest.approx(before + config.alpha * (cap - before))
    assert state.mean < 2 * before
    # normal windows update it fully
    after_spike = state.mean
    detector.observe(state, "t", T0 + 51 * MIN, 0)
    assert state.mean == pytest.approx(after_spike * (1 - config.alpha))


def test_sustained_level_becomes_the_new_normal() -> None:
    detector = SpikeDetector()
    _, alerts = run(detector, [3.0] * 40 + [30.0] * 200)
    assert alerts
    assert alerts[-1][0] < 40 + 100, "alerts stop once the baseline has adapted"


def test_out_of_order_or_repeated_windows_are_ignored() -> None:
    detector = SpikeDetector()
    state, _ = run(detector, [3.0] * 30)
    snapshot = state.to_dict()
    assert detector.observe(state, "t", T0 + 29 * MIN, 500) is None
    assert detector.observe(state, "t", T0, 500) is None
    assert state.to_dict() == snapshot


def test_state_round_trip() -> None:
    detector = SpikeDetector()
    state, alerts = run(detector, [2.0, 3.0, 1.0, 4.0] * 10 + [40.0])
    assert alerts
    data = orjson.loads(orjson.dumps(state.to_dict()))
    restored = TopicBaseline.from_dict(data)
    assert restored == state
    for i, c in enumerate([2.0, 50.0, 3.0, 200.0]):
        t = T0 + (100 + i) * MIN
        assert detector.observe(restored, "t", t, c) == detector.observe(state, "t", t, c)
    assert restored == state
    assert TopicBaseline.from_dict(None) == TopicBaseline()
    assert TopicBaseline.from_dict({}) == TopicBaseline()


@pytest.mark.parametrize(
    ("last", "new", "window", "expected"),
    [
        (None, T0, MIN, []),
        (T0, T0 + MIN, MIN, []),
        (T0, T0, MIN, []),
        (T0, T0 - MIN, MIN, []),
        (T0, T0 + 3 * MIN, MIN, [T0 + MIN, T0 + 2 * MIN]),
        (0, 50, 10, [10, 20, 30, 40]),
        (T0, T0 + 5 * MIN, 0, []),
    ],
)
def test_fill_gaps(last: int | None, new: int, window: int, expected: list[int]) -> None:
    assert fill_gaps(last, new, window) == expected


def test_fill_gaps_is_capped() -> None:
    gaps = fill_gaps(T0, T0 + 10_000 * MIN, MIN, max_windows=100)
    assert len(gaps) == 100
    assert gaps[-1] == T0 + 9_999 * MIN


def test_fill_gaps_then_observe_counts_empty_minutes() -> None:
    detector = SpikeDetector()
    state = TopicBaseline()
    detector.observe(state, "t", T0, 10)
    for start in fill_gaps(state.last_window_start_ms, T0 + 10 * MIN, MIN):
        detector.observe(state, "t", start, 0)
    detector.observe(state, "t", T0 + 10 * MIN, 0)
    assert state.windows == 11
    assert state.mean < 10 * (1 - 0.1) ** 5
