"""Tests of the pure spike detector (workpulse.processing.spikes): its distributions, each
signal, the author-support rule, seasonality, multiple testing, cooldown and severity,
languages, and its JSON state. Streams are simulated here with their own small seeds
(the alerts bench uses others)."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace

import orjson
import pytest

from workpulse.model.aggregates import TopicMinute
from workpulse.model.rows import TOPIC_SPIKES
from workpulse.processing.spikes import (
    METRICS,
    Spike,
    SpikeDetector,
    SpikeDetectorConfig,
    TopicBaseline,
    fill_gaps,
    nbinom_band,
    nbinom_log_sf,
    observe_range,
    poisson_log_sf,
    poisson_sf,
    replay,
    spike_row,
)

MIN = 60_000
HOUR = 60
DAY = 24 * HOUR
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
TOPIC = "resignation"


# -- a small simulated stream -------------------------------------------------------------
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


class Stream:
    """Organic minutes of one topic: videos from a pool of regular authors plus a share of
    authors new to the topic, view gains spread over recent videos, two languages."""

    def __init__(self, seed: int, videos: float = 10.0, new_share: float = 0.2) -> None:
        self.rng = random.Random(seed)
        self.videos = videos
        self.new_share = new_share
        self.regulars = [f"r{i}" for i in range(300)]
        self.known: set[str] = set(self.regulars)
        self.recent: list[tuple[str, str, str]] = []
        self.serial = 0

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def publish(self, agg: TopicMinute, author: str, lang: str | None = None) -> None:
        lang = lang or ("fr" if self.rng.random() < 0.3 else "en")
        video = self._id("v")
        new = author not in self.known
        self.known.add(author)
        agg.add_publish(
            video_id=video, author_id=author, lang=lang, country="FR" if lang == "fr" else "US",
            hashtags=["QuitMyJob"], new_author=new,
        )  # fmt: skip
        self.recent = [*self.recent[-199:], (video, author, lang)]

    def views(self, agg: TopicMinute, updates: float, scale: float = 1.0) -> None:
        for _ in range(poisson_sample(self.rng, updates)):
            if not self.recent:
                return
            video, author, lang = self.rng.choice(self.recent)
            gain = int(100 * scale * math.exp(self.rng.gauss(0, 0.5)))
            agg.add_counters(video_id=video, author_id=author, lang=lang, views=gain)

    def minute(self, rate_factor: float = 1.0) -> TopicMinute:
        agg = TopicMinute()
        for _ in range(poisson_sample(self.rng, self.videos * rate_factor)):
            new = self.rng.random() < self.new_share
            self.publish(agg, self._id("n") if new else self.rng.choice(self.regulars))
        self.views(agg, 5 * self.videos * rate_factor)
        return agg


def config(**changes: object) -> SpikeDetectorConfig:
    """Test defaults: a short history, otherwise the product's defaults."""
    return replace(SpikeDetectorConfig(min_history=30), **changes)  # type: ignore[arg-type]


def feed(
    detector: SpikeDetector, minutes: list[TopicMinute], state: TopicBaseline | None = None,
    start: int = 0,
) -> tuple[TopicBaseline, list[tuple[int, Spike]]]:  # fmt: skip
    state = state if state is not None else TopicBaseline()
    alerts = []
    for i, minute in enumerate(minutes, start):
        for spike in detector.observe_window(state, TOPIC, T0 + i * MIN, minute):
            alerts.append((i, spike))
    return state, alerts


def warm(stream: Stream, n: int = 240) -> list[TopicMinute]:
    return [stream.minute() for _ in range(n)]


# -- distributions ------------------------------------------------------------------------
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


def nbinom_log_sf_by_summation(x: int, mean: float, dispersion: float) -> float:
    """Independent reference: log of the summed NB probabilities from x up (x above the
    mode: the terms decrease, the first is the largest)."""
    size = 1.0 / dispersion
    log_p, log_q = math.log(size / (size + mean)), math.log(mean / (size + mean))
    terms, j = [], x
    while True:
        terms.append(
            math.lgamma(j + size) - math.lgamma(size) - math.lgamma(j + 1)
            + size * log_p + j * log_q
        )  # fmt: skip
        if j > x + 10 and terms[-1] < terms[0] - 60:
            break
        j += 1
    top = terms[0]
    return top + math.log(math.fsum(math.exp(t - top) for t in terms))


@pytest.mark.parametrize(
    ("x", "mean", "dispersion"),
    [
        (10, 3.0, 0.1),
        (30, 10.0, 0.05),
        (5, 5.0, 0.5),
        (100, 20.0, 0.2),
        (3, 0.5, 1.0),
        (60, 60.0, 0.02),
        (2_000, 1_000.0, 0.01),
        (15_000, 5_000.0, 0.1),
        (12, 12.0, 0.001),
    ],
)
def test_nbinom_tail_matches_summation(x: int, mean: float, dispersion: float) -> None:
    assert nbinom_log_sf(x, mean, dispersion) == pytest.approx(
        nbinom_log_sf_by_summation(x, mean, dispersion), rel=1e-9, abs=1e-12
    )


@pytest.mark.parametrize(("x", "mean"), [(3, 0.5), (24, 3.0), (20, 10.0), (1_000, 900.0)])
def test_nbinom_without_dispersion_is_poisson(x: int, mean: float) -> None:
    assert nbinom_log_sf(x, mean, 0.0) == poisson_log_sf(x, mean)
    assert nbinom_log_sf(x, mean, 1e-9) == pytest.approx(poisson_log_sf(x, mean), rel=1e-6)


@pytest.mark.parametrize(("mean", "dispersion"), [(0.7, 0.05), (8.0, 0.02), (300.0, 0.2)])
def test_nbinom_tail_decreases_and_widens_with_dispersion(mean: float, dispersion: float) -> None:
    values = [nbinom_log_sf(k, mean, dispersion) for k in range(0, int(4 * mean) + 30)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    far = int(3 * mean) + 10
    assert nbinom_log_sf(far, mean, dispersion) > poisson_log_sf(far, mean)
    assert nbinom_log_sf(far, mean, dispersion) < nbinom_log_sf(far, mean, 2 * dispersion)


@pytest.mark.parametrize(
    ("mean", "dispersion", "p"), [(0.5, 0.05, 1e-6), (10.0, 0.03, 1e-6), (5e4, 0.1, 1e-7)]
)
def test_band_bounds_the_anomalous_values(mean: float, dispersion: float, p: float) -> None:
    lower, upper = nbinom_band(mean, dispersion, p)
    log_p = math.log(p)
    assert nbinom_log_sf(upper, mean, dispersion) <= log_p
    assert nbinom_log_sf(upper - 1, mean, dispersion) > log_p
    assert 0 <= lower < mean < upper
    if lower > 0:  # P(X <= lower) <= p < P(X <= lower + 1)
        assert 1 - math.exp(nbinom_log_sf(lower + 1, mean, dispersion)) <= p
        assert 1 - math.exp(nbinom_log_sf(lower + 2, mean, dispersion)) > p


# -- each signal ----------------------------------------------------------------------------
def wave_minute(stream: Stream, signal: str, size: float) -> TopicMinute:
    """One organic minute plus a wave on one signal, `size` × that signal's rate, every
    extra video or view from a different account."""
    agg = stream.minute()
    extra = size - 1.0
    if signal == "videos":  # regulars posting more: the videos signal, not new authors
        for author in stream.rng.sample(stream.regulars, int(extra * stream.videos)):
            stream.publish(agg, author)
    elif signal == "new_authors":  # newcomers replace regulars: same volume
        n = int(extra * stream.videos * stream.new_share)
        for _ in range(n):
            stream.publish(agg, stream._id("w"))
        agg.videos -= n  # the volume stays organic: only who posts changes
    elif signal == "views":
        stream.views(agg, extra * 5 * stream.videos)
    return agg


@pytest.mark.parametrize(
    ("signal", "size", "seed"),
    [
        ("videos", 3.0, 11),
        ("videos", 5.0, 12),
        ("views", 3.0, 13),
        ("views", 6.0, 14),
        ("new_authors", 5.0, 15),
        ("new_authors", 8.0, 16),
    ],
)
def test_each_signal_alerts_on_its_own_wave(signal: str, size: float, seed: int) -> None:
    stream = Stream(seed)
    detector = SpikeDetector(config())
    state, before = feed(detector, warm(stream))
    assert before == []
    wave = [wave_minute(stream, signal, size) for _ in range(3)]
    _, alerts = feed(detector, wave, state, start=240)
    fired = {spike.metric for _, spike in alerts if spike.lang == ""}
    assert signal in fired, alerts
    first = next(spike for _, spike in alerts if spike.metric == signal and not spike.lang)
    assert first.window_start_ms <= T0 + 241 * MIN, "within two windows"
    assert first.observed >= first.upper > first.expected, "upper: the least anomalous value"
    assert first.p_value <= detector.config.threshold
    assert first.distinct_authors >= detector.config.min_authors
    if signal != "new_authors":
        assert "new_authors" not in fired, "a wave of regulars brings no new authors"


def test_no_alert_on_a_quiet_stream() -> None:
    stream = Stream(21)
    _, alerts = feed(SpikeDetector(config()), warm(stream, 3 * DAY))
    assert alerts == []


# -- author support -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("videos_per_min", "burst", "minutes", "seed"),
    [
        (2.0, 20, 1, 31),
        (2.0, 80, 4, 32),
        (10.0, 40, 2, 33),
        (10.0, 200, 5, 34),
        (30.0, 150, 3, 35),
    ],
)
def test_a_single_account_burst_never_alerts(
    videos_per_min: float, burst: int, minutes: int, seed: int
) -> None:
    """One account posting many videos (new to the topic, its videos gaining views)."""
    stream = Stream(seed, videos=videos_per_min)
    detector = SpikeDetector(config())
    state, _ = feed(detector, warm(stream))
    spammer = "spammer"
    burst_minutes = []
    for m in range(minutes + 3):
        agg = stream.minute()
        if m < minutes:
            for _ in range(burst // minutes):
                stream.publish(agg, spammer)
            for video, author, lang in stream.recent:
                if author == spammer:  # its own videos gain a lot of views
                    agg.add_counters(video_id=video, author_id=author, lang=lang, views=50_000)
        burst_minutes.append(agg)
    assert burst_minutes[0].authors[spammer] >= burst // minutes
    _, alerts = feed(detector, burst_minutes, state, start=240)
    assert alerts == []


@pytest.mark.parametrize(("accounts", "alerts"), [(1, False), (4, False), (5, True), (12, True)])
def test_support_needs_min_authors_distinct_accounts(accounts: int, alerts: bool) -> None:
    """A burst from n accounts, each posting `author_cap` videos, on a near-silent topic:
    from 4 accounts on it is anomalous, and alerts from 5 distinct accounts on."""
    stream = Stream(41, videos=0.02)
    cfg = config(min_authors=5, min_count=1, expected_floor=0.05, family_topics=1, max_langs=0)
    detector = SpikeDetector(cfg)
    assert nbinom_log_sf(4, cfg.expected_floor, cfg.min_dispersion) < math.log(cfg.threshold)
    state, _ = feed(detector, warm(stream))
    agg = stream.minute()
    agg.videos = agg.new_authors = 0  # nothing organic in that minute
    agg.authors.clear()
    for i in range(accounts):
        for _ in range(detector.config.author_cap):
            stream.publish(agg, f"acct{i}")
    _, found = feed(detector, [agg], state, start=240)
    assert bool([s for _, s in found if s.metric == "videos"]) is alerts, found


@pytest.mark.parametrize(("cap", "observed"), [(1, 3), (2, 4), (5, 7), (9, 11)])
def test_videos_count_each_author_at_most_cap_times(cap: int, observed: int) -> None:
    agg = TopicMinute()
    for author, n in (("a", 9), ("b", 1), ("c", 1)):
        for _ in range(n):
            agg.add_publish(video_id="v", author_id=author, lang="en", country="", hashtags=[],
                            new_author=False)  # fmt: skip
    assert agg.capped_videos(cap) == observed


def test_a_single_video_surge_is_reported_as_info() -> None:
    """The issue's case: one existing video gaining millions of views in minutes."""
    stream = Stream(51)
    detector = SpikeDetector(config())
    state, _ = feed(detector, warm(stream))
    video, author, lang = stream.recent[-1]
    minutes = []
    for _ in range(5):
        agg = stream.minute()
        agg.add_counters(video_id=video, author_id=author, lang=lang, views=600_000)
        minutes.append(agg)
    _, alerts = feed(detector, minutes, state, start=240)
    assert alerts, "the surge is reported"
    spike = alerts[0][1]
    assert (spike.metric, spike.severity, spike.lang) == ("views", "info", "")
    assert spike.top_videos[0] == (video, 600_000)
    assert spike.top_video_share > 0.9
    assert spike.observed == minutes[0].views, "the whole gain, not the author-capped one"

    quiet = SpikeDetector(config(single_video_alerts=False))
    state, _ = feed(quiet, warm(Stream(51)))
    assert feed(quiet, minutes, state, start=240)[1] == []


# -- seasonality ----------------------------------------------------------------------------
def rhythm(minute: int, amplitude: float, peak_hour: float = 18.0) -> float:
    return 1.0 + amplitude * math.cos(2 * math.pi * (minute / HOUR - peak_hour) / 24)


@pytest.mark.parametrize(("amplitude", "seed"), [(0.5, 61), (0.7, 62), (0.8, 63)])
def test_a_daily_rhythm_does_not_alert_at_its_peak(amplitude: float, seed: int) -> None:
    stream = Stream(seed, videos=12.0)
    detector = SpikeDetector(config())
    days = 5
    minutes = [stream.minute(rhythm(m, amplitude)) for m in range(days * DAY)]
    state, alerts = feed(detector, minutes)
    assert alerts == []
    # the learnt hour-of-day factors have the rhythm's shape: peak at 18 h, trough at 6 h
    season = state.series["videos"].season
    assert max(range(24), key=season.__getitem__) in (17, 18)
    assert min(range(24), key=season.__getitem__) in (5, 6)
    assert season[18] / season[6] == pytest.approx((1 + amplitude) / (1 - amplitude), rel=0.3)


def test_the_seasonal_baseline_expects_the_peak() -> None:
    """At the steepest rise of the day, the baseline with hour-of-day factors is closer to
    the true rate than one without (a plain EWMA lags behind the rhythm)."""
    true_rate = 12.0 * rhythm(12 * HOUR, 0.8)  # noon, half-way up to the 18 h peak
    errors = {}
    for gamma in (0.0, 0.01):
        stream = Stream(64, videos=12.0)
        detector = SpikeDetector(config(season_gamma=gamma))
        minutes = [stream.minute(rhythm(m, 0.8)) for m in range(4 * DAY + 12 * HOUR)]
        state, _ = feed(detector, minutes)
        errors[gamma] = abs(state.series["videos"].expected - true_rate) / true_rate
    assert errors[0.01] < errors[0.0]
    assert errors[0.01] < 0.15


# -- multiple testing -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("topics", "metrics", "langs", "two", "size"),
    [(9, METRICS, 3, True, 216), (9, METRICS, 0, False, 27), (1, ("videos",), 0, False, 1),
     (9, ("videos", "views"), 2, True, 108)],
)  # fmt: skip
def test_family_size_and_threshold(
    topics: int, metrics: tuple[str, ...], langs: int, two: bool, size: int
) -> None:
    cfg = SpikeDetectorConfig(family_topics=topics, metrics=metrics, max_langs=langs,
                              two_window_test=two, family_alpha=1e-4)  # fmt: skip
    assert cfg.family_size == size
    assert cfg.threshold == pytest.approx(1e-4 / size)
    assert cfg.threshold_score == pytest.approx(4 + math.log10(size))


@pytest.mark.parametrize(("family_topics", "alerts"), [(1, True), (9, True), (1_000_000, False)])
def test_a_larger_family_needs_stronger_evidence(family_topics: int, alerts: bool) -> None:
    """The same minute is anomalous for a small family and not for a huge one."""
    stream = Stream(71)
    detector = SpikeDetector(config(family_topics=family_topics, max_langs=0))
    state, _ = feed(detector, warm(stream))
    agg = wave_minute(stream, "videos", 3.5)
    _, found = feed(detector, [agg], state, start=240)
    videos = [s for _, s in found if s.metric == "videos"]
    assert bool(videos) is alerts
    if videos:
        assert videos[0].p_value <= detector.config.threshold


# -- cooldown and severity --------------------------------------------------------------------
@pytest.mark.parametrize(("size", "severity"), [(2.2, "info"), (3.6, "warning"), (8.0, "critical")])
def test_severity_follows_the_ratio(size: float, severity: str) -> None:
    stream = Stream(81, videos=20.0)
    detector = SpikeDetector(config(max_langs=0, two_window_test=False))
    state, _ = feed(detector, warm(stream))
    _, alerts = feed(detector, [wave_minute(stream, "videos", size)], state, start=240)
    spike = next(s for _, s in alerts if s.metric == "videos")
    assert spike.severity == severity
    ratio = spike.observed / spike.expected
    cfg = detector.config
    assert (ratio >= cfg.critical_ratio) is (severity == "critical")
    assert (cfg.warning_ratio <= ratio < cfg.critical_ratio) is (severity == "warning")


def test_cooldown_then_escalation_then_again() -> None:
    stream = Stream(82, videos=20.0)
    detector = SpikeDetector(config(max_langs=0, cooldown_windows=10, two_window_test=False))
    state, _ = feed(detector, warm(stream))

    def videos_alert(i: int, size: float) -> Spike | None:
        _, found = feed(detector, [wave_minute(stream, "videos", size)], state, start=i)
        return next((s for _, s in found if s.metric == "videos"), None)

    first = videos_alert(240, 3.6)
    assert first is not None and first.severity == "warning"
    # the same level within the cooldown: suppressed (the baseline rises meanwhile)
    assert [videos_alert(241 + i, 3.0) for i in range(3)] == [None] * 3
    # more severe within the cooldown: gets through
    worse = videos_alert(244, 9.0)
    assert worse is not None and worse.severity == "critical"
    # quiet minutes until the cooldown from that alert is over, then alerts again
    _, found = feed(detector, warm(stream, 60), state, start=245)
    assert [s for _, s in found if s.metric == "videos"] == []
    again = videos_alert(305, 9.0)
    assert again is not None


# -- languages --------------------------------------------------------------------------------
def test_a_wave_in_one_language_alerts_for_that_language() -> None:
    """A French wave too small to move the whole topic is found in the French series."""
    stream = Stream(91, videos=30.0)
    detector = SpikeDetector(config(lang_min_videos=500))
    state, _ = feed(detector, warm(stream))
    assert state.tracked_langs == ["en", "fr"]
    minutes = []
    for _ in range(2):
        agg = stream.minute()
        for _ in range(18):  # fr is ~9 a minute: ×3 there, ×1.6 for the topic
            stream.publish(agg, stream._id("fr-"), "fr")
        minutes.append(agg)
    _, alerts = feed(detector, minutes, state, start=240)
    scopes = {(s.metric, s.lang) for _, s in alerts}
    assert ("videos", "fr") in scopes
    assert ("videos", "") not in scopes
    spike = next(s for _, s in alerts if (s.metric, s.lang) == ("videos", "fr"))
    assert dict(spike.languages) == {"fr": spike.languages[0][1]}
    assert dict(spike.countries) == {"FR": spike.countries[0][1]}


def test_the_topic_alert_replaces_the_language_alert_of_the_same_metric() -> None:
    stream = Stream(92, videos=30.0)
    detector = SpikeDetector(config())
    state, _ = feed(detector, warm(stream))
    agg = stream.minute()
    for _ in range(150):
        stream.publish(agg, stream._id("fr-"), "fr")
    _, alerts = feed(detector, [agg], state, start=240)
    scopes = {(s.metric, s.lang) for _, s in alerts}
    assert ("videos", "") in scopes
    assert ("videos", "fr") not in scopes


@pytest.mark.parametrize(("minimum", "cap", "tracked"), [(100, 3, 2), (100, 1, 1), (10**6, 3, 0)])
def test_languages_are_tracked_by_volume_up_to_max_langs(
    minimum: int, cap: int, tracked: int
) -> None:
    stream = Stream(93, videos=10.0)
    state, _ = feed(
        SpikeDetector(config(lang_min_videos=minimum, max_langs=cap)), warm(stream, 120)
    )
    assert len(state.tracked_langs) == tracked
    if tracked:
        assert state.tracked_langs[0] == "en", "the largest first"
    assert {"en", "fr"} <= set(state.lang_videos)


# -- two-window test ------------------------------------------------------------------------
def test_two_windows_find_what_one_window_misses() -> None:
    stream = Stream(101, videos=8.0)
    alerts_by_mode = {}
    for two in (False, True):
        stream = Stream(101, videos=8.0)
        detector = SpikeDetector(config(max_langs=0, two_window_test=two, family_topics=9))
        state, _ = feed(detector, warm(stream))
        wave = [wave_minute(stream, "videos", 2.6) for _ in range(2)]
        _, found = feed(detector, wave, state, start=240)
        alerts_by_mode[two] = [s for _, s in found if s.metric == "videos"]
    assert alerts_by_mode[False] == []
    assert alerts_by_mode[True], "the sum of the two minutes is anomalous"
    spike = alerts_by_mode[True][0]
    assert spike.windows == 2
    assert spike.window_start_ms == T0 + 241 * MIN


# -- state, order, determinism, the legacy adapter --------------------------------------------
def test_state_round_trips_through_json_and_continues_identically() -> None:
    stream = Stream(111)
    minutes = warm(stream, 300) + [wave_minute(stream, "videos", 4.0) for _ in range(3)]
    minutes += warm(stream, 30)
    detector = SpikeDetector(config())
    state, _ = feed(detector, minutes[:200])
    restored = TopicBaseline.from_dict(orjson.loads(orjson.dumps(state.to_dict())))
    assert restored == state
    _, live = feed(detector, minutes[200:], state, start=200)
    _, replayed = feed(detector, minutes[200:], restored, start=200)
    assert live == replayed and live, "the wave is found either way"
    assert restored == state
    assert TopicBaseline.from_dict(None) == TopicBaseline() == TopicBaseline.from_dict({})


def test_same_observations_same_alerts() -> None:
    minutes = [*warm(Stream(112), 300), wave_minute(Stream(113), "views", 8.0)]
    runs = [feed(SpikeDetector(config()), minutes) for _ in range(2)]
    assert runs[0] == runs[1]


def reordered(agg: TopicMinute) -> TopicMinute:
    """The same aggregate with every counter filled in the reverse order."""
    data = agg.to_dict()
    flipped = {k: dict(reversed(list(v.items()))) if isinstance(v, dict) else v
               for k, v in data.items() if k != "by_lang"}  # fmt: skip
    out = TopicMinute.from_dict(flipped)
    out.by_lang = {lang: reordered(part) for lang, part in reversed(agg.by_lang.items())}
    return out


def test_the_order_inside_an_aggregate_does_not_matter() -> None:
    """A replay builds the same aggregates in another order: same alerts, same state."""
    stream = Stream(116)
    minutes = warm(stream, 300) + [wave_minute(stream, s, 6.0) for s in METRICS]
    surge = stream.minute()  # many authors above the per-author views cap
    for i, (video, author, lang) in enumerate(stream.recent[-40:]):
        surge.add_counters(video_id=video, author_id=author, lang=lang, views=3_000 + 7 * i)
    minutes.append(surge)
    runs = [feed(SpikeDetector(config()), m) for m in (minutes, [reordered(a) for a in minutes])]
    assert runs[0][1], "the waves are found"
    assert runs[0] == runs[1]


def test_out_of_order_or_repeated_windows_are_ignored() -> None:
    detector = SpikeDetector(config())
    state, _ = feed(detector, warm(Stream(114), 60))
    snapshot = state.to_dict()
    big = wave_minute(Stream(114), "videos", 20.0)
    assert detector.observe_window(state, TOPIC, T0 + 59 * MIN, big) == []
    assert detector.observe_window(state, TOPIC, T0, big) == []
    assert state.to_dict() == snapshot


def test_single_signal_state_of_earlier_versions_carries_over() -> None:
    old = {"mean": 4.5, "windows": 120, "last_window_start_ms": T0, "last_alert_index": None}
    state = TopicBaseline.from_dict(old)
    assert state.series["videos"].level == 4.5
    assert state.mean == 4.5
    assert state.last_window_start_ms == T0


@pytest.mark.parametrize(("count", "alerts"), [(6.0, False), (40.0, True)])
def test_count_only_adapter_tests_new_videos(count: float, alerts: bool) -> None:
    """`observe(state, topic, start, count)`: what the counts agent calls until it passes
    the whole aggregate (no author support, no languages)."""
    detector = SpikeDetector(config())
    state = TopicBaseline()
    rng = random.Random(115)
    for i in range(120):
        assert detector.observe(state, TOPIC, T0 + i * MIN, poisson_sample(rng, 6.0)) is None
    spike = detector.observe(state, TOPIC, T0 + 120 * MIN, count)
    assert (spike is not None) is alerts
    assert set(state.series) == {"videos"}
    assert state.mean == pytest.approx(6.0, rel=0.3)
    if spike is not None:
        assert (spike.metric, spike.lang, spike.observed) == ("videos", "", count)


# -- the alert's forms ------------------------------------------------------------------------
def test_alert_to_row_and_message() -> None:
    stream = Stream(121)
    detector = SpikeDetector(config())
    state, _ = feed(detector, warm(stream))
    _, alerts = feed(detector, [wave_minute(stream, "videos", 6.0)], state, start=240)
    spike = alerts[0][1]
    message = orjson.loads(orjson.dumps(spike.to_dict()))
    assert message["metric"] == spike.metric and message["severity"] == spike.severity
    assert message["top_hashtags"] == [["quitmyjob", spike.top_hashtags[0][1]]]
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    row = spike_row(spike, detected_at=now, taxonomy_version="t1", source=("x", 1, 2))
    assert len(row) == len(TOPIC_SPIKES.columns)
    named = row._asdict()
    assert named["window_start"] == datetime.fromtimestamp(spike.window_start_ms / 1000, tz=UTC)
    assert named["top_video_gains"] == [g for _, g in spike.top_videos]
    assert named["countries"] == dict(spike.countries)
    assert (named["lower"], named["upper"]) == (spike.lower, spike.upper)
    assert named["src_offset"] == 2


# -- fill_gaps --------------------------------------------------------------------------------
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


# -- settings ---------------------------------------------------------------------------------
def test_every_spike_setting_reaches_the_detector() -> None:
    """One `spike_<name>` setting per parameter, with the detector's default (the bench
    and the worker run the same detector), and `spike_config` passes each one on."""
    from dataclasses import fields

    from workpulse.config import Settings, load_settings
    from workpulse.worker.runtime import spike_config

    derived = {"family_topics", "metrics"}  # the taxonomy's, not settings
    parameters = {f.name for f in fields(SpikeDetectorConfig)} - derived
    settings = {n.removeprefix("spike_") for n in Settings.model_fields if n.startswith("spike_")}
    assert settings == parameters
    assert spike_config(load_settings(environ={})) == SpikeDetectorConfig()
    for name in sorted(parameters):
        default = getattr(SpikeDetectorConfig(), name)
        changed = (not default) if isinstance(default, bool) else default + 1
        if isinstance(default, float) and default < 1 and name != "min_ratio":
            changed = default / 2
        cfg = spike_config(load_settings({f"spike_{name}": changed}, environ={}))
        assert getattr(cfg, name) == changed, name


# -- feeding ranges of windows: the counts agent's loop and the replay's ----------------------
def sparse(seed: int, n: int) -> dict[int, TopicMinute]:
    """A topic's minutes with data (some missing: empty windows), a wave near the end."""
    stream = Stream(seed, videos=4.0)
    out = {}
    for i in range(n):
        agg = wave_minute(stream, "videos", 6.0) if n - 8 <= i < n - 5 else stream.minute()
        if agg.videos or agg.views:
            out[T0 + i * MIN] = agg
    for i in (40, 41, 42, 100):  # quiet minutes: no row at all
        out.pop(T0 + i * MIN, None)
    return out


@pytest.mark.parametrize("cuts", [[300], [60, 61, 200, 300], [1, 2, 3, 150, 299, 300]])
def test_closing_in_chunks_is_one_replay(cuts: list[int]) -> None:
    """The counts agent closes ranges of windows as watermarks advance; however the
    range is cut, the state and the alerts are those of one replay."""
    minutes = sparse(131, 300)
    detector = SpikeDetector(config())
    state, chunked = TopicBaseline(), []
    for cut in cuts:
        seen = {k: v for k, v in minutes.items() if k < T0 + cut * MIN}  # data so far
        chunked += observe_range(detector, state, TOPIC, seen, T0 + cut * MIN)
    whole = replay(detector, {TOPIC: minutes}, until_ms=T0 + 300 * MIN)
    assert chunked == whole and whole, "the wave is found"
    again = TopicBaseline()
    observe_range(detector, again, TOPIC, minutes, T0 + 300 * MIN)
    assert again == state
    assert state.windows == 300, "every window from the first with data, empty ones too"


@pytest.mark.parametrize(
    ("gap", "max_empty", "observed"), [(10, 1_440, 10), (3_000, 1_440, 1_440), (50, 5, 5)]
)
def test_a_long_gap_replays_at_most_max_empty_windows(
    gap: int, max_empty: int, observed: int
) -> None:
    detector = SpikeDetector(config())
    state = TopicBaseline()
    before = {T0: TopicMinute(videos=1)}
    observe_range(detector, state, TOPIC, before, T0 + MIN)
    after = {T0 + (gap + 1) * MIN: TopicMinute(videos=1)}
    observe_range(detector, state, TOPIC, after, T0 + (gap + 2) * MIN, max_empty=max_empty)
    assert state.windows == 1 + observed + 1
    assert state.last_window_start_ms == T0 + (gap + 1) * MIN


@pytest.mark.parametrize("mean", [1e12, 1e16, 9.2e18, 1e300])
@pytest.mark.parametrize("dispersion", [0.0, 1e-9, 1e-6, 0.05, 1.0])
def test_the_band_of_huge_means_is_finite_and_never_raises(mean: float, dispersion: float) -> None:
    """A view gain near the contract's bound (or beyond: hostile data) once overflowed
    `lgamma` and crashed the counts agent, which stalled the pipeline."""
    lower, upper = nbinom_band(mean, dispersion, 1e-6)
    assert math.isfinite(lower) and math.isfinite(upper)
    assert 0.0 <= lower <= upper


@pytest.mark.parametrize("dispersion", [1e-9, 1e-6, 0.05, 1.0])
def test_the_band_scales_with_the_mean_up_to_the_contracts_bound(dispersion: float) -> None:
    """The band relative to the mean is the same at 10^6 and 10^16 (within 1 %): the
    tails keep their precision where z = mean/(mean + k) is within an ulp of 1."""
    for far in (1e12, 1e16):
        near_lo, near_hi = nbinom_band(1e9, dispersion, 1e-6)
        far_lo, far_hi = nbinom_band(far, dispersion, 1e-6)
        if dispersion >= 1e-6:  # Poisson noise is negligible from 1e9 on
            assert far_hi / far == pytest.approx(near_hi / 1e9, rel=0.01)
            assert far_lo / far == pytest.approx(near_lo / 1e9, rel=0.01, abs=1e-3)
        else:
            assert 1.0 <= far_hi / far <= near_hi / 1e9 * 1.01


def test_the_detector_takes_a_views_gain_at_int64_max() -> None:
    detector, state = SpikeDetector(SpikeDetectorConfig()), TopicBaseline()
    for i in range(40):
        minute = TopicMinute()
        for v in range(6):
            views = 2**63 - 1 if i >= 30 else 100
            minute.add_publish(video_id=f"v{i}-{v}", author_id=f"a{v}", lang="en",
                               country="", hashtags=[], new_author=False)  # fmt: skip
            minute.add_counters(video_id=f"v{i}-{v}", author_id=f"a{v}", lang="en",
                                views=views, likes=0, shares=0)  # fmt: skip
        detector.observe_window(state, "salary", i * 60_000, minute)
        for metric in ("videos", "views", "new_authors"):
            lower, upper = detector.band(state, metric)
            assert math.isfinite(upper) and lower <= upper
