"""Spike statistics per topic (pure: no I/O, no clock).

The caller closes event-time windows (one minute by default) and calls
`SpikeDetector.observe` once per closed window and topic, in window order, including
empty windows (count 0; `fill_gaps` lists them). Per topic a `TopicBaseline` is kept
(JSON-serialisable, stored by the caller in a Faust table).

Statistics
----------
* Baseline: an exponentially weighted moving average (EWMA) of the per-window count,
  ``mean ← mean + a·(x − mean)`` with ``a = max(alpha, 1/n)`` for the n-th window (so the
  first windows give a plain running mean instead of trusting the first value).
* Test: under the baseline the count is Poisson with ``λ = max(mean, expected_floor)``.
  The p-value is the upper tail ``P(X ≥ observed | λ)``, computed in log space with the
  regularized lower incomplete gamma function (``P(X ≥ k) = P(k, λ)``; series when
  ``λ < k + 1``, continued fraction for the complement otherwise).
* Score: ``-log10(p_value)``, computed from the log tail, so it stays finite when the
  p-value underflows to 0.
* Alert: after ``min_history`` windows, when ``p_value ≤ threshold`` and
  ``observed ≥ min_count`` and ``observed ≥ min_ratio · expected`` (the two guards make
  the Poisson test robust to the over-dispersion of real counts).
* No self-pollution: a window whose p-value is below the threshold updates the EWMA with
  the count clipped to ``λ + clip_sigmas·√λ`` (a Poisson "3 sigma" winsorisation), so a
  wave raises the baseline only slowly; a long-lasting level does become the new normal.
* Cooldown: after an alert, the topic does not alert again within ``cooldown_windows``
  windows unless the score grows by ``regrowth`` times the last alert's score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Spike",
    "SpikeDetector",
    "SpikeDetectorConfig",
    "TopicBaseline",
    "fill_gaps",
    "poisson_log_sf",
    "poisson_sf",
]

_LN10 = math.log(10.0)
_EPS = 1e-15
_FPMIN = 1e-300
_MAX_ITER = 100_000


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


@dataclass(frozen=True, slots=True)
class Spike:
    """One alert. ``score`` is ``-log10(p_value)`` (finite even when p underflows)."""

    topic: str
    window_start_ms: int
    metric: str  # "videos"
    observed: float
    expected: float
    score: float
    p_value: float


@dataclass
class SpikeDetectorConfig:
    alpha: float = 0.1  # EWMA smoothing of the per-window baseline
    min_history: int = 20  # windows of history before any alert
    threshold: float = 1e-6  # Poisson upper-tail p-value at or below which a window is anomalous
    min_count: float = 10.0  # ... and at least this many observed
    min_ratio: float = 3.0  # ... and observed at least this many times expected
    cooldown_windows: int = 10  # no repeated alert within N windows for the same topic ...
    regrowth: float = 1.5  # ... unless the score is this many times the last alert's score
    expected_floor: float = 0.5  # λ never below this (topics with a near-zero baseline)
    clip_sigmas: float = 3.0  # anomalous windows update the baseline with λ + k·√λ at most
    metric: str = "videos"


@dataclass
class TopicBaseline:
    """Per-topic detector state; round-trips through `to_dict`/`from_dict` (JSON-safe)."""

    mean: float = 0.0
    windows: int = 0  # windows observed so far
    last_window_start_ms: int | None = None
    last_alert_window_start_ms: int | None = None
    last_alert_index: int | None = None  # value of `windows` at the last alert
    last_alert_score: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "windows": self.windows,
            "last_window_start_ms": self.last_window_start_ms,
            "last_alert_window_start_ms": self.last_alert_window_start_ms,
            "last_alert_index": self.last_alert_index,
            "last_alert_score": self.last_alert_score,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TopicBaseline:
        if not data:
            return cls()
        last = data.get("last_window_start_ms")
        alert = data.get("last_alert_window_start_ms")
        index = data.get("last_alert_index")
        return cls(
            mean=float(data.get("mean", 0.0)),
            windows=int(data.get("windows", 0)),
            last_window_start_ms=None if last is None else int(last),
            last_alert_window_start_ms=None if alert is None else int(alert),
            last_alert_index=None if index is None else int(index),
            last_alert_score=float(data.get("last_alert_score", 0.0)),
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


class SpikeDetector:
    """EWMA baseline + Poisson upper-tail test; see the module docstring."""

    def __init__(self, config: SpikeDetectorConfig | None = None) -> None:
        self.config = config if config is not None else SpikeDetectorConfig()

    def observe(
        self, state: TopicBaseline, topic: str, window_start_ms: int, count: float
    ) -> Spike | None:
        """Account one closed window of ``topic`` (mutating ``state``); the alert, if any.

        Windows at or before the last observed one are ignored (replays, duplicates).
        """
        cfg = self.config
        if state.last_window_start_ms is not None and window_start_ms <= state.last_window_start_ms:
            return None
        state.last_window_start_ms = window_start_ms
        history = state.windows
        lam = max(state.mean, cfg.expected_floor)
        log_p = poisson_log_sf(count, lam) if count > lam else 0.0
        anomalous = history > 0 and log_p <= math.log(cfg.threshold)

        # baseline update (clipped on anomalous windows)
        value = min(count, lam + cfg.clip_sigmas * math.sqrt(lam)) if anomalous else count
        state.windows = history + 1
        step = max(cfg.alpha, 1.0 / state.windows)
        state.mean += step * (value - state.mean)

        if (
            not anomalous
            or history < cfg.min_history
            or count < cfg.min_count
            or count < cfg.min_ratio * lam
        ):
            return None
        score = -log_p / _LN10
        last = state.last_alert_index
        if (
            last is not None
            and state.windows - last <= cfg.cooldown_windows
            and score < cfg.regrowth * state.last_alert_score
        ):
            return None
        state.last_alert_window_start_ms = window_start_ms
        state.last_alert_index = state.windows
        state.last_alert_score = score
        return Spike(
            topic=topic,
            window_start_ms=window_start_ms,
            metric=cfg.metric,
            observed=float(count),
            expected=lam,
            score=score,
            p_value=math.exp(log_p),
        )
