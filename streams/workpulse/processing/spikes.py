"""Spike detection per topic (pure: no I/O, no clock). Design and figures: docs/spikes.md.

The caller closes event-time windows (one minute) and calls `SpikeDetector.observe_window`
once per closed window and topic, in window order, including empty windows (`fill_gaps`
lists them), with the window's `TopicMinute`. Per topic a `TopicBaseline` is kept
(JSON-serialisable, stored by the caller in a Faust table); the same observations in the
same order give the same state and the same alerts.

Signals (`METRICS`), each tested per topic and per topic × language once the language
has the volume (`lang_min_videos` new videos seen, at most `max_langs` per topic):

* ``videos``: new videos, each author counted at most ``author_cap`` times a minute;
* ``views``: view gain, each author's part counted at most ``views_author_cap`` × the
  expected whole gain (its own baseline, ``views_total``);
* ``new_authors``: authors whose first video in the topic falls in the minute.

The caps make the tested values robust: one account (or a few) cannot make a spike.

Per series (topic, metric, language):

* Baseline: multiplicative Holt-Winters without trend. ``level`` is an EWMA (``alpha``)
  of the deseasonalised value; 24 hour-of-day factors (mean 1, ``season_gamma``) learn
  the value relative to a one-day EWMA of the deseasonalised value (``daily``) and
  are interpolated linearly
  between hour centres, so the expected value follows the daily rhythm:
  ``expected = max(floor, level · factor(t))``. The level learns the value
  clipped at ``μ + learn_sigmas·sd``: a wave or a ramp raises it slowly, a lasting
  level still becomes the new normal.
* Dispersion: values are negative binomial, ``Var = μ + μ²/k``; ``1/k`` (the squared
  coefficient of variation of the underlying rate) is a slow EWMA
  (``dispersion_alpha``) of the moment estimate ``((x − μ)² − μ)/μ²``, not fed by
  outliers (beyond ``μ ± outlier_sigmas·sd``), never below ``min_dispersion``; the sum
  of two consecutive windows has its own. With ``1/k → 0`` this is the Poisson test.
* Tests: the upper tail ``P(X ≥ x)`` of NB(μ, k), exact (regularised incomplete beta,
  continued fraction, in log space), on the window and on the sum of the last two
  windows (``two_window_test``: a wave's first two minutes together); ``score =
  -log10 p`` of the more significant.
* Multiple testing: Bonferroni over the family topics × metrics × (1 + max_langs) ×
  spans: a window is anomalous when ``p ≤ family_alpha / family_size``. The family is
  fixed by the configuration, so every topic decides alone (no cross-topic
  coordination, which a worker owning some topics' partitions could not do).

An anomalous window becomes an alert only with support and practical size:

* at least ``min_count`` (count signals) and ``min_ratio`` × expected;
* at least ``min_authors`` distinct authors behind it in the window (views: authors of
  the videos that gained; new authors are distinct by definition);
* a view gain carried by one video (≥ ``single_video_ratio`` × the whole gain's
  expected value, and the whole gain anomalous) is a single-video surge: an alert of
  severity ``info`` (``single_video_alerts``): a viral video is news, not a wave;
* not within ``cooldown_windows`` of the series' last alert, unless the severity rises
  or the score grows ``regrowth`` times;
* a language's alert is dropped when the topic alerts on the same metric in the window.

Severity: ``critical`` at ≥ ``critical_ratio`` × expected, ``warning`` at ≥
``warning_ratio`` ×, else ``info``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from workpulse.model.aggregates import TopicMinute
from workpulse.model.rows import SpikeRow
from workpulse.model.topics import TOPICS

__all__ = [
    "METRICS",
    "SEVERITIES",
    "SeriesState",
    "Spike",
    "SpikeDetector",
    "SpikeDetectorConfig",
    "TopicBaseline",
    "fill_gaps",
    "nbinom_log_sf",
    "observe_range",
    "poisson_log_sf",
    "poisson_sf",
    "replay",
    "spike_row",
]

METRICS: tuple[str, ...] = ("videos", "views", "new_authors")
COUNT_METRICS = frozenset({"videos", "new_authors"})
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}

HOURS = 24
HOUR_MS = 3_600_000
DAY_MS = HOURS * HOUR_MS
WINDOW_MS = 60_000
DAY_WINDOWS = DAY_MS // WINDOW_MS

_LN10 = math.log(10.0)
_EPS = 1e-15
_FPMIN = 1e-300
_MAX_ITER = 100_000
_PREFILTER_SIGMAS = 2.0
"""A value within μ + 2 sd is never tested exactly (its p-value is far above any
threshold a family of tests can use); saves the tail computation in ~97 % of windows."""
_SINGLE_VIDEO_SHARE = 0.5
"""A single-video surge is carried by one video: at least half of the whole gain."""
_DISPERSION_PRIOR_WINDOWS = 10
"""The dispersion prior counts as this many windows while a series is young."""


_NORMAL_FROM = 1e12
"""From this rate (or value) on, Poisson tails use the normal approximation: exact
enough there (skewness 1/√λ ≤ 1e-6), where the exact series loses its float precision
(a counter near the contract's bound)."""
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


# -- distributions ------------------------------------------------------------------------
def normal_log_sf(observed: float, mean: float, variance: float) -> float:
    """Natural log of ``P(X ≥ observed)`` for an integer count approximated by a normal
    with this mean and variance (continuity-corrected); finite far into the tail."""
    if variance <= 0.0:
        return 0.0 if observed <= mean else -math.inf
    z = (math.ceil(observed) - 0.5 - mean) / math.sqrt(variance)
    if z < 8.0:
        return math.log(max(0.5 * math.erfc(z / math.sqrt(2.0)), 1e-300))
    # Mills' ratio: log φ(z)/z · (1 − 1/z²), accurate to ~1e-4 relative from z = 8
    return -0.5 * z * z - math.log(z) - _LOG_SQRT_2PI + math.log1p(-1.0 / (z * z))


def poisson_log_sf(observed: float, lam: float) -> float:
    """Natural log of ``P(X ≥ observed)`` for ``X ~ Poisson(lam)``.

    ``observed`` may be fractional (the tail starts at ``ceil(observed)``). Returns 0.0
    for ``observed ≤ 0`` and ``-inf`` when ``lam ≤ 0`` and ``observed > 0``.
    """
    k = math.ceil(observed)
    if k <= 0:
        return 0.0
    if lam <= 0.0:
        return -math.inf
    if lam >= _NORMAL_FROM or k >= _NORMAL_FROM:
        return normal_log_sf(k, lam, lam)
    a = float(k)
    log_prefix = a * math.log(lam) - lam - math.lgamma(a)
    if lam < a + 1.0:
        # series: P(a, x) = x^a e^-x / Γ(a) · Σ_n x^n / (a (a+1) … (a+n))
        term = total = 1.0 / a
        ap = a
        for _ in range(_MAX_ITER):
            ap += 1.0
            term *= lam / ap
            total += term
            if term < total * _EPS:
                break
        return log_prefix + math.log(total)
    # continued fraction (modified Lentz) for Q(a, x) = 1 − P(a, x)
    b = lam + 1.0 - a
    c = 1.0 / _FPMIN
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITER):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _FPMIN:
            d = _FPMIN
        c = b + an / c
        if abs(c) < _FPMIN:
            c = _FPMIN
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    q = math.exp(log_prefix) * h
    return math.log1p(-min(q, 1.0 - 1e-16))


def poisson_sf(observed: float, lam: float) -> float:
    """``P(X ≥ observed)`` for ``X ~ Poisson(lam)`` (may underflow to 0.0)."""
    return math.exp(poisson_log_sf(observed, lam))


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) >= _FPMIN else _FPMIN)
    h = d
    for m in range(1, _MAX_ITER):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) >= _FPMIN else _FPMIN)
        c = 1.0 + aa / c
        c = c if abs(c) >= _FPMIN else _FPMIN
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) >= _FPMIN else _FPMIN)
        c = 1.0 + aa / c
        c = c if abs(c) >= _FPMIN else _FPMIN
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def nbinom_log_sf(observed: float, mean: float, dispersion: float) -> float:
    """Natural log of ``P(X ≥ observed)`` for a negative binomial with this ``mean`` and
    ``Var = mean + dispersion · mean²`` (``dispersion = 1/size``; 0 is Poisson).

    Uses ``P(X ≥ x) = I_z(x, k)`` with ``k = 1/dispersion`` and ``z = mean/(mean + k)``
    (regularised incomplete beta), by its continued fraction in log space, so tails far
    beyond float range stay finite. ``observed`` may be fractional (tail from its ceiling).
    """
    x = math.ceil(observed)
    if x <= 0:
        return 0.0
    if mean <= 0.0:
        return -math.inf
    if dispersion <= 1e-12:
        return poisson_log_sf(x, mean)
    a = float(x)
    b = 1.0 / dispersion
    # log1p: z = mean/(mean + b) is within an ulp of 1 for a large mean
    log_z = -math.log1p(b / mean)
    log_1mz = math.log(b) - math.log(mean) + log_z
    z = math.exp(log_z)
    log_beta = math.lgamma(b) + _lgamma_drop(a, b)
    if z < (a + 1.0) / (a + b + 2.0):
        front = a * log_z + b * log_1mz - log_beta - math.log(a)
        return front + math.log(_beta_cf(a, b, z))
    # the complement converges there: I_z(a, b) = 1 − I_{1−z}(b, a)
    front = b * log_1mz + a * log_z - log_beta - math.log(b)
    lower = math.exp(front) * _beta_cf(b, a, 1.0 - z)
    return math.log1p(-min(lower, 1.0 - 1e-16))


def _lgamma_drop(a: float, b: float) -> float:
    """``lgamma(a) − lgamma(a + b)``, without the cancellation of two huge logs when
    ``a ≫ b`` (Stirling: −b·ln a − b(b−1)/2a + b(b−1)(2b−1)/12a², symmetric in a, b)."""
    big, small = (a, b) if a >= b else (b, a)
    if big < 1e8 or small > 1e-3 * big:
        return math.lgamma(a) - math.lgamma(a + b)
    drop = -small * math.log(big) - small * (small - 1.0) / (2.0 * big)
    drop += small * (small - 1.0) * (2.0 * small - 1.0) / (12.0 * big * big)
    # lgamma(small) − lgamma(small + big) = drop + lgamma(small) − lgamma(big)
    return drop if a >= b else drop + math.lgamma(small) - math.lgamma(big)


def _first_at_or_below(log_p: float, mean: float, dispersion: float, start: int) -> int:
    """Smallest integer x ≥ start with log P(X ≥ x) ≤ log_p (exponential + binary search)."""
    lo, hi = start, max(start, 1)
    while nbinom_log_sf(hi, mean, dispersion) > log_p:
        if hi >= 2**64:  # beyond any count ClickHouse holds: the tail never gets there
            return hi
        lo, hi = hi, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        if nbinom_log_sf(mid, mean, dispersion) > log_p:
            lo = mid + 1
        else:
            hi = mid
    return hi


def nbinom_band(mean: float, dispersion: float, p: float) -> tuple[float, float]:
    """The band ``[lower, upper]`` a value falls outside of with probability ≤ p on each
    side: ``upper`` is the smallest value the test calls anomalous at level p, ``lower``
    the largest value at or below which the lower tail is ≤ p (0 when there is none)."""
    if mean <= 0.0:
        return 0.0, 1.0
    log_p = math.log(p)
    upper = _first_at_or_below(log_p, mean, dispersion, math.floor(mean))
    # lower tail P(X ≤ l) = 1 − P(X ≥ l + 1) ≤ p  ⇔  log P(X ≥ l + 1) ≥ log(1 − p)
    log_keep = math.log1p(-p)
    if nbinom_log_sf(1, mean, dispersion) < log_keep:
        return 0.0, float(upper)
    # P(X ≥ l + 1) decreases in l: find the first l + 1 where it drops below 1 − p
    first_below = _first_at_or_below(log_keep, mean, dispersion, 1)
    return float(max(first_below - 2, 0)), float(upper)


# -- configuration ------------------------------------------------------------------------
@dataclass(frozen=True)
class SpikeDetectorConfig:
    """Every parameter of the detector; `workpulse.worker.runtime.spike_config` maps the
    `spike_*` settings onto it. docs/spikes.md explains the defaults."""

    # baseline
    alpha: float = 0.05  # EWMA of the deseasonalised level (per window)
    season_gamma: float = 0.01  # learning rate of the hour-of-day factors (per window)
    dispersion_alpha: float = 0.003  # EWMA of the dispersion estimates (~5 hours)
    dispersion_prior: float = 0.05  # 1/k before the data says otherwise
    min_dispersion: float = 0.01  # 1/k never below (model margin: rate CV ≥ 10 %)
    learn_sigmas: float = 1.5  # the level learns a value clipped at μ + k·sd
    outlier_sigmas: float = 3.0  # beyond μ ± k·sd a value teaches the dispersion nothing
    expected_floor: float = 0.5  # count signals: μ never below
    views_floor: float = 100.0  # views: μ never below
    min_history: int = 30  # windows of a series before it may alert
    # test, multiple testing
    two_window_test: bool = True  # also test the sum of the last two windows
    family_alpha: float = 2e-4  # false-alarm probability per window, whole family
    family_topics: int = len(TOPICS)  # topics in the family (Bonferroni)
    # guards, support
    min_count: float = 5.0  # count signals: least observed value for an alert
    min_ratio: float = 1.5  # least observed / expected
    min_authors: int = 5  # least distinct authors behind an alert (this window)
    author_cap: int = 1  # videos: one author counts at most this many per window
    views_author_cap: float = 0.1  # views: one author's gain counts at most this share of μ
    single_video_ratio: float = 20.0  # views: one video gaining ≥ this × μ is a single-video surge
    single_video_alerts: bool = True  # ... reported at severity info
    # languages
    max_langs: int = 3  # language series per topic
    lang_min_videos: int = 500  # new videos of a language in the topic before it is tracked
    # cooldown, severity
    cooldown_windows: int = 30
    regrowth: float = 1.5
    warning_ratio: float = 3.0
    critical_ratio: float = 5.0
    metrics: tuple[str, ...] = METRICS

    @property
    def family_size(self) -> int:
        """Tests per window in the whole family: topics × metrics × (1 + languages) ×
        spans (one or two windows)."""
        spans = 2 if self.two_window_test else 1
        return max(1, self.family_topics) * len(self.metrics) * (1 + self.max_langs) * spans

    @property
    def threshold(self) -> float:
        """Per-test p-value threshold (Bonferroni)."""
        return self.family_alpha / self.family_size

    @property
    def threshold_score(self) -> float:
        return -math.log10(self.threshold)

    def floor(self, metric: str) -> float:
        return self.views_floor if metric == "views" else self.expected_floor


# -- state --------------------------------------------------------------------------------
@dataclass
class SeriesState:
    """Baseline of one series (topic, metric, language); JSON-safe via to_dict/from_dict.

    `observed` and `expected` are the last window's, which the two-window test adds to
    the current window's."""

    level: float = 0.0  # deseasonalised, follows the last tens of minutes
    daily: float = 0.0  # deseasonalised over about a day: what the hour-of-day factors divide
    season: list[float] = field(default_factory=lambda: [1.0] * HOURS)
    dispersion: float = SpikeDetectorConfig.dispersion_prior  # 1/k of one window
    dispersion2: float = SpikeDetectorConfig.dispersion_prior  # 1/k of a two-window sum
    windows: int = 0
    expected: float = 0.0
    observed: float = 0.0
    outlier: bool = False  # the last window was beyond the clipping band
    last_alert_index: int | None = None  # value of `windows` at the last alert
    last_alert_score: float = 0.0
    last_alert_severity: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "daily": self.daily,
            "season": list(self.season),
            "dispersion": self.dispersion,
            "dispersion2": self.dispersion2,
            "windows": self.windows,
            "expected": self.expected,
            "observed": self.observed,
            "outlier": self.outlier,
            "last_alert_index": self.last_alert_index,
            "last_alert_score": self.last_alert_score,
            "last_alert_severity": self.last_alert_severity,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeriesState:
        season = [float(v) for v in data.get("season", [])]
        index = data.get("last_alert_index")
        prior = SpikeDetectorConfig.dispersion_prior
        return cls(
            level=float(data.get("level", 0.0)),
            daily=float(data.get("daily", 0.0)),
            season=season if len(season) == HOURS else [1.0] * HOURS,
            dispersion=float(data.get("dispersion", prior)),
            dispersion2=float(data.get("dispersion2", prior)),
            windows=int(data.get("windows", 0)),
            expected=float(data.get("expected", 0.0)),
            observed=float(data.get("observed", 0.0)),
            outlier=bool(data.get("outlier", False)),
            last_alert_index=None if index is None else int(index),
            last_alert_score=float(data.get("last_alert_score", 0.0)),
            last_alert_severity=str(data.get("last_alert_severity", "")),
        )


VIEWS_TOTAL = "views_total"
"""The whole view gain (not author-capped) of a topic or language: the baseline the
per-author cap is relative to, and that of single-video surges. Never alerts itself."""


def series_key(metric: str, lang: str = "") -> str:
    """`videos` for the topic, `videos@fr` for its French slice."""
    return f"{metric}@{lang}" if lang else metric


@dataclass
class TopicBaseline:
    """Per-topic detector state: one `SeriesState` per series, the languages tracked and
    the volume of each language seen. Round-trips through `to_dict`/`from_dict`."""

    windows: int = 0
    last_window_start_ms: int | None = None
    series: dict[str, SeriesState] = field(default_factory=dict)
    lang_videos: dict[str, int] = field(default_factory=dict)
    tracked_langs: list[str] = field(default_factory=list)

    @property
    def mean(self) -> float:
        """Expected new videos of the last window (the `window_expected_videos` gauge)."""
        videos = self.series.get("videos")
        return videos.expected if videos is not None else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "windows": self.windows,
            "last_window_start_ms": self.last_window_start_ms,
            "series": {k: s.to_dict() for k, s in sorted(self.series.items())},
            "lang_videos": dict(sorted(self.lang_videos.items())),
            "tracked_langs": list(self.tracked_langs),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TopicBaseline:
        """Reads `to_dict`'s form; the single-signal state of earlier versions (`mean`,
        `windows`) carries over as the videos level."""
        if not data:
            return cls()
        last = data.get("last_window_start_ms")
        state = cls(
            windows=int(data.get("windows", 0)),
            last_window_start_ms=None if last is None else int(last),
            series={k: SeriesState.from_dict(v) for k, v in (data.get("series") or {}).items()},
            lang_videos={k: int(v) for k, v in (data.get("lang_videos") or {}).items()},
            tracked_langs=[str(v) for v in data.get("tracked_langs", [])],
        )
        if "series" not in data and "mean" in data:
            mean = float(data["mean"])
            state.series["videos"] = SeriesState(level=mean, windows=state.windows, expected=mean)
        return state


# -- alerts -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Spike:
    """One alert with the context a person needs to act on it (docs/spikes.md).

    ``observed`` is the tested value (author-capped for videos and views; the whole view
    gain for a single-video surge) and ``expected`` its baseline, both summed over
    ``windows`` (1 or 2) minutes ending with ``window_start_ms``; ``[lower, upper]`` is
    the band outside which a value is anomalous at the test's level; ``score`` is
    ``-log10(p_value)`` (finite even when p underflows)."""

    topic: str
    window_start_ms: int
    metric: str
    observed: float
    expected: float
    score: float
    p_value: float
    lang: str = ""
    severity: str = "info"
    windows: int = 1
    lower: float = 0.0
    upper: float = 0.0
    distinct_authors: int = 0
    new_authors: int = 0
    new_author_share: float = 0.0
    top_author_share: float = 0.0
    distinct_videos: int = 0
    top_video_share: float = 0.0
    top_videos: tuple[tuple[str, int], ...] = ()
    top_hashtags: tuple[tuple[str, int], ...] = ()
    languages: tuple[tuple[str, int], ...] = ()
    countries: tuple[tuple[str, int], ...] = ()

    @property
    def key(self) -> tuple[str, int, str, str]:
        """What identifies an alert (the ORDER BY of `topic_spikes`)."""
        return (self.topic, self.window_start_ms, self.metric, self.lang)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: the Kafka spike message and `workpulse spikes --format json`."""
        return {
            "topic": self.topic,
            "window_start_ms": self.window_start_ms,
            "metric": self.metric,
            "lang": self.lang,
            "severity": self.severity,
            "windows": self.windows,
            "observed": self.observed,
            "expected": self.expected,
            "lower": self.lower,
            "upper": self.upper,
            "score": self.score,
            "p_value": self.p_value,
            "distinct_authors": self.distinct_authors,
            "new_authors": self.new_authors,
            "new_author_share": self.new_author_share,
            "top_author_share": self.top_author_share,
            "distinct_videos": self.distinct_videos,
            "top_video_share": self.top_video_share,
            "top_videos": [list(v) for v in self.top_videos],
            "top_hashtags": [list(h) for h in self.top_hashtags],
            "languages": dict(self.languages),
            "countries": dict(self.countries),
        }


def spike_row(
    spike: Spike,
    *,
    detected_at: datetime,
    taxonomy_version: str,
    source: tuple[str, int, int] = ("", 0, 0),
) -> SpikeRow:
    """The `topic_spikes` row of an alert."""
    return SpikeRow(
        topic=spike.topic,
        window_start=datetime.fromtimestamp(spike.window_start_ms / 1000, tz=UTC),
        metric=spike.metric,
        observed=float(spike.observed),
        expected=float(spike.expected),
        score=float(spike.score),
        p_value=float(spike.p_value),
        detected_at=detected_at,
        top_videos=[v for v, _ in spike.top_videos],
        top_hashtags=[h for h, _ in spike.top_hashtags],
        languages=dict(spike.languages),
        taxonomy_version=taxonomy_version,
        src_topic=source[0],
        src_partition=source[1],
        src_offset=source[2],
        lang=spike.lang,
        severity=spike.severity,
        windows=spike.windows,
        lower=float(spike.lower),
        upper=float(spike.upper),
        distinct_authors=spike.distinct_authors,
        new_authors=spike.new_authors,
        new_author_share=float(spike.new_author_share),
        top_author_share=float(spike.top_author_share),
        distinct_videos=spike.distinct_videos,
        top_video_share=float(spike.top_video_share),
        top_video_gains=[int(g) for _, g in spike.top_videos],
        countries=dict(spike.countries),
    )


def fill_gaps(
    last_window_start_ms: int | None,
    new_window_start_ms: int,
    window_ms: int,
    max_windows: int = 1_440,
) -> list[int]:
    """Starts of the empty windows strictly between the last observed window and the new
    one, to be observed with count 0 before it. At most the last ``max_windows`` of them
    (a long outage need not replay days of empty minutes)."""
    if last_window_start_ms is None or window_ms <= 0:
        return []
    first = last_window_start_ms + window_ms
    if new_window_start_ms - first > max_windows * window_ms:
        first = new_window_start_ms - max_windows * window_ms
    return list(range(first, new_window_start_ms, window_ms))


# -- the detector -------------------------------------------------------------------------
def _season_weights(window_start_ms: int) -> tuple[int, int, float]:
    """Hour-of-day slots around the window's middle and the weight of the second: the
    factor is interpolated linearly between hour centres (UTC)."""
    middle = (window_start_ms + WINDOW_MS // 2) % DAY_MS
    position = middle / HOUR_MS - 0.5  # hour h's centre is at h + 0.5
    first = math.floor(position)
    weight = position - first
    return first % HOURS, (first + 1) % HOURS, weight


@dataclass(frozen=True, slots=True)
class _Support:
    """Who is behind a value: the support rule's input and the alert's context."""

    distinct_authors: int
    top_author_share: float
    distinct_videos: int
    top_video_share: float
    top_video_gain: int


def _top_share(counter: Counter[str], total: float) -> float:
    if total <= 0 or not counter:
        return 0.0
    return min(1.0, max(counter.values()) / total)


def _ranked(counter: Counter[str], n: int) -> tuple[tuple[str, int], ...]:
    """Top n entries, by count then key (deterministic whatever the insertion order)."""
    items = sorted(
        ((k, int(v)) for k, v in counter.items() if v > 0), key=lambda kv: (-kv[1], kv[0])
    )
    return tuple(items[:n])


def _capped_gain(gains: Counter[str], total: int, cap: float) -> float:
    """`total` with each entry counted at most `cap` (the entries above the cap are the
    largest, which the aggregate keeps). fsum: exactly rounded, so the same entries in
    any order give the same value (replays build aggregates in another order)."""
    return total - math.fsum(g - cap for g in gains.values() if g > cap)


@dataclass(frozen=True, slots=True)
class _Test:
    """The outcome of a series' tests on one window."""

    log_p: float
    windows: int
    observed: float
    expected: float
    dispersion: float


class SpikeDetector:
    """Three signals per topic and language; see the module docstring."""

    def __init__(self, config: SpikeDetectorConfig | None = None) -> None:
        self.config = config if config is not None else SpikeDetectorConfig()
        self._log_threshold = math.log(self.config.threshold)

    # -- public API ---------------------------------------------------------------------
    def observe_window(
        self, state: TopicBaseline, topic: str, window_start_ms: int, minute: TopicMinute
    ) -> list[Spike]:
        """Account one closed window of ``topic`` (mutating ``state``); its alerts, topic
        level first, then languages by name. Windows at or before the last observed one
        are ignored (replays, duplicates)."""
        return self._observe(state, topic, window_start_ms, minute, support_known=True)

    def observe(
        self, state: TopicBaseline, topic: str, window_start_ms: int, count: float
    ) -> Spike | None:
        """Adapter for a caller that only has the window's new-video count (the counts
        agent before it passes the whole `TopicMinute`): the videos signal alone, without
        author support or languages. Prefer `observe_window`."""
        minute = TopicMinute(videos=int(count))
        spikes = self._observe(
            state, topic, window_start_ms, minute, support_known=False, metrics=("videos",)
        )
        return spikes[0] if spikes else None

    def band(self, state: TopicBaseline, metric: str, lang: str = "") -> tuple[float, float]:
        """The one-window band of the series' last window (for gauges): `nbinom_band`."""
        series = state.series.get(series_key(metric, lang))
        if series is None or series.windows == 0:
            return 0.0, 0.0
        return nbinom_band(series.expected, self._dispersion(series), self.config.threshold)

    # -- internals ----------------------------------------------------------------------
    def _dispersion(self, series: SeriesState) -> float:
        return max(self.config.min_dispersion, series.dispersion)

    def _observe(
        self,
        state: TopicBaseline,
        topic: str,
        window_start_ms: int,
        minute: TopicMinute,
        *,
        support_known: bool,
        metrics: Sequence[str] | None = None,
    ) -> list[Spike]:
        cfg = self.config
        if state.last_window_start_ms is not None and window_start_ms <= state.last_window_start_ms:
            return []
        state.last_window_start_ms = window_start_ms
        state.windows += 1
        metrics = cfg.metrics if metrics is None else metrics
        slots = _season_weights(window_start_ms)

        topic_alerts: list[Spike] = []
        for metric in metrics:
            spike = self._series(state, topic, window_start_ms, slots, metric, "", minute,
                                 support_known)  # fmt: skip
            if spike is not None:
                topic_alerts.append(spike)

        lang_alerts: list[Spike] = []
        if support_known and cfg.max_langs > 0:
            self._track_languages(state, minute)
            fired = {s.metric for s in topic_alerts}
            for lang in sorted(state.tracked_langs):
                part = minute.by_lang.get(lang) or TopicMinute()
                for metric in metrics:
                    spike = self._series(state, topic, window_start_ms, slots, metric, lang,
                                         part, support_known)  # fmt: skip
                    if spike is not None and metric not in fired:
                        lang_alerts.append(spike)
        return topic_alerts + lang_alerts

    def _track_languages(self, state: TopicBaseline, minute: TopicMinute) -> None:
        """Languages with enough volume get their own series (at most max_langs)."""
        cfg = self.config
        for lang, n in minute.langs.items():
            if lang and n > 0:
                state.lang_videos[lang] = state.lang_videos.get(lang, 0) + int(n)
        if len(state.tracked_langs) >= cfg.max_langs:
            return
        ready = sorted(
            (-n, lang)
            for lang, n in state.lang_videos.items()
            if n >= cfg.lang_min_videos and lang not in state.tracked_langs
        )
        for _, lang in ready[: cfg.max_langs - len(state.tracked_langs)]:
            state.tracked_langs.append(lang)

    def _series_state(self, state: TopicBaseline, key: str) -> SeriesState:
        series = state.series.get(key)
        if series is None:
            prior = self.config.dispersion_prior
            series = state.series[key] = SeriesState(dispersion=prior, dispersion2=prior)
        return series

    def _value(
        self, metric: str, scope: TopicMinute, views_cap: float, support_known: bool
    ) -> float:
        """The tested value: new videos with each author counted at most `author_cap`
        times; view gain with each author's part at most `views_cap`; new authors as
        they are."""
        if metric == "videos":
            return float(
                scope.capped_videos(self.config.author_cap) if support_known else scope.videos
            )
        if metric == "new_authors":
            return float(scope.new_authors)
        if not support_known:
            return float(scope.views)
        return _capped_gain(scope.author_views, scope.views, views_cap)

    @staticmethod
    def _support(metric: str, scope: TopicMinute) -> _Support:
        top_gain = max(scope.video_views.values(), default=0)
        video_share = _top_share(scope.video_views, scope.views)
        if metric == "views":
            return _Support(
                distinct_authors=sum(1 for v in scope.author_views.values() if v > 0),
                top_author_share=_top_share(scope.author_views, scope.views),
                distinct_videos=sum(1 for v in scope.video_views.values() if v > 0),
                top_video_share=video_share,
                top_video_gain=int(top_gain),
            )
        if metric == "new_authors":
            n = scope.new_authors
            return _Support(n, 1.0 / n if n else 0.0, scope.videos, video_share, int(top_gain))
        return _Support(
            distinct_authors=scope.distinct_authors,
            top_author_share=_top_share(scope.authors, scope.videos),
            distinct_videos=scope.videos,
            top_video_share=video_share,
            top_video_gain=int(top_gain),
        )

    def _test(self, metric: str, x: float, mean: float, series: SeriesState) -> _Test:
        """One-window and two-window NB tests (each only when it could be anomalous);
        the more significant one."""
        cfg = self.config
        best = _Test(0.0, 1, x, mean, self._dispersion(series))
        if series.windows < cfg.min_history:
            return best
        candidates = [(x, mean, self._dispersion(series), 1)]
        if cfg.two_window_test:
            dispersion2 = max(cfg.min_dispersion / 2, series.dispersion2)
            candidates.append((x + series.observed, mean + series.expected, dispersion2, 2))
        for value, mu, dispersion, windows in candidates:
            sd = math.sqrt(mu + dispersion * mu * mu)
            if (
                value < mu + _PREFILTER_SIGMAS * sd
                or value < cfg.min_ratio * mu
                or (metric in COUNT_METRICS and x < cfg.min_count)
            ):
                continue
            log_p = nbinom_log_sf(value, mu, dispersion)
            if log_p < best.log_p:
                best = _Test(log_p, windows, value, mu, dispersion)
        return best

    def _series(
        self,
        state: TopicBaseline,
        topic: str,
        window_start_ms: int,
        slots: tuple[int, int, float],
        metric: str,
        lang: str,
        scope: TopicMinute,
        support_known: bool,
    ) -> Spike | None:
        """Test one series on this window, update its baseline; the alert, if any."""
        cfg = self.config
        series = self._series_state(state, series_key(metric, lang))
        mean, factor = self._expected(series, metric, slots)
        views_cap, surge = 0.0, None
        if metric == "views":
            # The whole (uncapped) gain has its own baseline: it sets the per-author cap
            # (relative to a baseline the cap does not change) and single-video surges.
            total = self._series_state(state, series_key(VIEWS_TOTAL, lang))
            total_mean, total_factor = self._expected(total, metric, slots)
            # no cap while that baseline is young: a cap moving with it would teach the
            # capped series a spurious dispersion
            grown = total.windows >= cfg.min_history
            views_cap = cfg.views_author_cap * total_mean if grown else math.inf
            if not lang and support_known:
                surge = self._single_video(total, scope, total_mean)
            self._learn(total, float(scope.views), total_mean, total_factor, slots)
        x = self._value(metric, scope, views_cap, support_known)
        test = self._test(metric, x, mean, series)
        self._learn(series, x, mean, factor, slots)
        single_video = False
        if test.log_p > self._log_threshold and surge is not None:
            test, single_video = surge, True
        if test.log_p > self._log_threshold:
            return None

        support = self._support(metric, scope) if support_known else _Support(0, 0.0, 0, 0.0, 0)
        if single_video:
            severity = "info"
        elif support_known and support.distinct_authors < cfg.min_authors:
            return None
        else:
            severity = self._severity(test.observed / test.expected)
        score = -test.log_p / _LN10
        last = series.last_alert_index
        if (
            last is not None
            and series.windows - last <= cfg.cooldown_windows
            and _SEVERITY_RANK[severity] <= _SEVERITY_RANK.get(series.last_alert_severity, -1)
            and score < cfg.regrowth * series.last_alert_score
        ):
            return None
        series.last_alert_index = series.windows
        series.last_alert_score = score
        series.last_alert_severity = severity
        lower, upper = nbinom_band(test.expected, test.dispersion, cfg.threshold)
        distinct = scope.distinct_authors
        return Spike(
            topic=topic,
            window_start_ms=window_start_ms,
            metric=metric,
            observed=test.observed,
            expected=test.expected,
            score=score,
            p_value=math.exp(test.log_p),
            lang=lang,
            severity=severity,
            windows=test.windows,
            lower=lower,
            upper=upper,
            distinct_authors=support.distinct_authors,
            new_authors=scope.new_authors,
            new_author_share=min(1.0, scope.new_authors / distinct) if distinct else 0.0,
            top_author_share=support.top_author_share,
            distinct_videos=support.distinct_videos,
            top_video_share=support.top_video_share,
            top_videos=_ranked(scope.video_views, 5),
            top_hashtags=_ranked(scope.hashtags, 5),
            languages=_ranked(scope.langs, 10),
            countries=_ranked(scope.countries, 10),
        )

    def _expected(
        self, series: SeriesState, metric: str, slots: tuple[int, int, float]
    ) -> tuple[float, float]:
        """The series' expected value in this window, and the hour-of-day factor."""
        first, second, weight = slots
        factor = (1.0 - weight) * series.season[first] + weight * series.season[second]
        return max(self.config.floor(metric), series.level * factor), factor

    def _single_video(self, total: SeriesState, scope: TopicMinute, mean: float) -> _Test | None:
        """A view surge carried by one video: that video gained ≥ single_video_ratio ×
        the whole gain's expected value and at least half the gain, and the whole gain
        is anomalous (one window)."""
        cfg = self.config
        top_gain = max(scope.video_views.values(), default=0)
        if (
            not cfg.single_video_alerts
            or total.windows < cfg.min_history
            or top_gain < cfg.single_video_ratio * mean
            or top_gain < _SINGLE_VIDEO_SHARE * scope.views
        ):
            return None
        dispersion = self._dispersion(total)
        log_p = nbinom_log_sf(scope.views, mean, dispersion)
        return _Test(log_p, 1, float(scope.views), mean, dispersion)

    def _severity(self, ratio: float) -> str:
        cfg = self.config
        if ratio >= cfg.critical_ratio:
            return "critical"
        if ratio >= cfg.warning_ratio:
            return "warning"
        return "info"

    def _learn(
        self,
        series: SeriesState,
        x: float,
        mean: float,
        factor: float,
        slots: tuple[int, int, float],
    ) -> None:
        """Update level, hour-of-day factors and dispersions with this window's value.

        The level learns the value clipped at μ + learn_sigmas·sd, so a wave or a ramp
        raises it slowly (a lasting level still becomes the new normal); an outlier
        (beyond μ ± outlier_sigmas·sd) teaches the dispersions nothing: a wave must not
        widen the band it is tested against. Young series (before min_history) learn
        fast (running mean) and unclipped."""
        cfg = self.config
        n = series.windows
        dispersion = self._dispersion(series)
        sd = math.sqrt(mean + dispersion * mean * mean)
        grown = n >= cfg.min_history
        outlier = grown and abs(x - mean) > cfg.outlier_sigmas * sd
        clipped = min(x, mean + cfg.learn_sigmas * sd) if grown else x
        deseasonalised = clipped / factor if factor > 0 else clipped
        series.level += max(cfg.alpha, 1.0 / (n + 1)) * (deseasonalised - series.level)
        # The factors learn the value relative to a slow (one-day) deseasonalised level,
        # not to the fast one: the fast level follows the rhythm itself and would leave
        # them only a lagged residual (level and season would not be identifiable).
        series.daily += max(1.0 / DAY_WINDOWS, 1.0 / (n + 1)) * (deseasonalised - series.daily)
        if series.daily > 0 and n > 0:
            first, second, weight = slots
            ratio = clipped / series.daily
            season = series.season
            g = cfg.season_gamma
            season[first] += g * (1.0 - weight) * (ratio - season[first])
            season[second] += g * weight * (ratio - season[second])
            if n % 60 == 0:  # keep the factors' mean at 1 (level and season identifiable)
                scale = HOURS / sum(season)
                for h in range(HOURS):
                    season[h] *= scale
        if n > 0 and not outlier:
            d_step = max(cfg.dispersion_alpha, 1.0 / (n + _DISPERSION_PRIOR_WINDOWS))
            moment = ((x - mean) ** 2 - mean) / (mean * mean)
            series.dispersion += d_step * (moment - series.dispersion)
            if not series.outlier:
                x2, mean2 = x + series.observed, mean + series.expected
                moment2 = ((x2 - mean2) ** 2 - mean2) / (mean2 * mean2)
                series.dispersion2 += d_step * (moment2 - series.dispersion2)
        series.expected = mean
        series.observed = x
        series.outlier = outlier
        series.windows = n + 1


def observe_range(
    detector: SpikeDetector,
    state: TopicBaseline,
    topic: str,
    minutes: Mapping[int, TopicMinute],
    until_ms: int,
    *,
    window_ms: int = WINDOW_MS,
    max_empty: int = 1_440,
) -> list[Spike]:
    """Feed one topic's windows to its state, in order, up to `until_ms` (exclusive):
    from the window after the state's last one (a new state: from the first window with
    data), empty windows included, at most `max_empty` of them in a row (the newest;
    a long outage need not replay days of empty minutes). `minutes`: window start →
    aggregate, windows without data absent. The loop of both the counts agent and the
    replay, so that they see the same windows."""
    starts = sorted(start for start in minutes if start < until_ms)
    last = state.last_window_start_ms
    if last is None:
        if not starts:
            return []
        start = starts[0]
    else:
        start = last + window_ms
    spikes: list[Spike] = []
    index = bisect_left(starts, start)
    while start < until_ms:
        if index < len(starts) and starts[index] == start:
            spikes += detector.observe_window(state, topic, start, minutes[start])
            index += 1
            start += window_ms
            continue
        gap_end = starts[index] if index < len(starts) else until_ms
        for empty in range(max(start, gap_end - max_empty * window_ms), gap_end, window_ms):
            spikes += detector.observe_window(state, topic, empty, TopicMinute())
        start = gap_end
    return spikes


def replay(
    detector: SpikeDetector,
    observations: Mapping[str, Mapping[int, TopicMinute]],
    *,
    until_ms: int,
    report_from_ms: int | None = None,
    window_ms: int = WINDOW_MS,
) -> list[Spike]:
    """Feed per-topic observations (window start → aggregate) to fresh detector states
    with `observe_range`, as the counts agent does. The alerts of windows from
    `report_from_ms` on, ordered by window, then topic, then as detected."""
    found: list[tuple[int, int, int, Spike]] = []
    for topic_index, topic in enumerate(sorted(observations)):
        spikes = observe_range(
            detector, TopicBaseline(), topic, observations[topic], until_ms, window_ms=window_ms
        )
        for order, spike in enumerate(spikes):
            if report_from_ms is None or spike.window_start_ms >= report_from_ms:
                found.append((spike.window_start_ms, topic_index, order, spike))
    return [spike for *_, spike in sorted(found, key=lambda f: f[:3])]
