"""`workpulse bench alerts`: how far the spike detector's alerts can be trusted.

Simulated per-minute observations (`TopicMinute`, filled through the same `add_publish`
/ `add_counters` the ingest step uses) of the nine topics, fed to `SpikeDetector` in
window order, one detector state per topic, exactly as the counts agent does:

* **null runs**: ``null_weeks`` simulated weeks per topic after ``warmup_days`` of
  warm-up. Each topic has its own volume, a daily rhythm (peak/trough 1.7/0.5), a
  weekend dip, a day-to-day drift of its level, extra-Poisson minute-to-minute noise,
  a skewed author population (a few regulars post most) where ~15 % of videos come
  from authors new to the topic, five languages, and view gains arriving as many
  heavy-tailed (log-normal) updates on the topic's recent videos. Once a day per
  topic, a **single account** posts a burst (20 videos in 1 minute, 40 in 2, 80 in 4 or
  30 in 10). Alerts overlapping a burst (its minutes and the next two) count as
  ``single_account_alerts``; all others are false alarms.
* **wave runs**: ``wave_weeks`` weeks per topic with a wave every ~6 hours, cycling
  through signals (videos, views, new authors, and videos in one language), shapes
  (step of 5/15/30 minutes, ramp over 5/15 minutes then 10 at full size, spike of 1-2
  minutes) and sizes (1.5, 2, 3, 5, 10 × the signal's true rate at that moment; a views
  wave's extra views go to 30 recent videos, i.e. about 25-30 authors), plus
  single-video view surges (one video gaining 10-40 × the topic's per-minute views over
  5 minutes, the issue's "3 M views" case). A wave starts at a random second, so its
  first minute is partial; its **first full minute** is the first minute entirely at
  full size (for ramps: the first minute at the top of the ramp). A wave is **detected
  in time** when its signal's metric alerts (topic or any language) in a window from
  the wave's first (partial) minute to one window after its first full minute; its
  **authors** are the distinct authors behind its extra videos or views in its two
  full-size windows before that deadline (``full_authors``; from its first minute on:
  ``authors``, reported as ``recall_3x_20_authors_from_onset``).

The JSON line: ``recall_3x_20_authors`` (waves ≥ 3× with ≥ 20 authors in their two
full-size windows, detected in time), ``false_alarms_per_topic_week`` (by metric and by
kind: severity, or single-video surge), ``detect_windows_p95`` (windows from the first
full minute to the first alert, 95th percentile, over the detected waves of that class),
``single_account_alerts``, recall by signal, shape and size, the targets, and the run's
size and time. Seeds are derived from ``seed`` (the tests of the detector use others).
Topics run in parallel processes (``jobs``); results do not depend on it.
"""

from __future__ import annotations

import math
import os
import platform
import random
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from workpulse.model.aggregates import TopicMinute
from workpulse.processing.spikes import Spike, SpikeDetector, SpikeDetectorConfig, TopicBaseline

MINUTE_MS = 60_000
DAY_MINUTES = 1_440
WEEK_MINUTES = 7 * DAY_MINUTES
START_MS = 1_767_225_600_000  # 2026-01-01T00:00Z, a Thursday
DEFAULT_SEED = 90_210

SIGNALS = ("videos", "views", "new_authors", "videos_lang")
SHAPES = ("step", "ramp", "spike")
SIZES = (1.5, 2.0, 3.0, 5.0, 10.0)
STEP_MINUTES = (5, 15, 30)
RAMP_MINUTES = (5, 15)
RAMP_HOLD_MINUTES = 10
SPIKE_MINUTES = (1, 2)
WAVE_SPACING_MINUTES = 360
BURSTS = ((20, 1), (40, 2), (80, 4), (30, 10))  # (videos, minutes) of one account
AFTER_MINUTES = 2  # alerts this long after a burst still belong to it
VIEW_WAVE_VIDEOS = 30  # a views wave's extra views go to this many recent videos

TARGETS = {
    "recall_3x_20_authors": ">= 0.95",
    "false_alarms_per_topic_week": "<= 1",
    "detect_windows_p95": "<= 1",
    "single_account_alerts": "0",
}

LANGS = (("en", 0.55), ("fr", 0.22), ("ar", 0.15), ("es", 0.05), ("pt", 0.03))
COUNTRIES = {"en": ("US", "GB", "IN"), "fr": ("FR", "BE"), "ar": ("SA", "EG"),
             "es": ("ES", "MX"), "pt": ("BR",)}  # fmt: skip


@dataclass(frozen=True)
class TopicProfile:
    """One simulated topic: volumes at the daily mean, rhythm, noise."""

    topic: str
    videos_per_min: float
    peak_hour: float  # UTC hour of the daily maximum
    rhythm: float = 0.6  # amplitude of the daily cosine (peak/trough = 1.6/0.4)
    new_author_share: float = 0.15  # videos by authors new to the topic
    updates_per_video: float = 8.0  # view updates per minute per new video per minute
    view_median: float = 200.0  # median view gain of one update
    view_sigma: float = 1.3  # log-normal sigma of one update's gain
    minute_cv: float = 0.15  # extra-Poisson noise of a minute's rate
    day_drift: float = 0.08  # sd of the log level's daily random walk


PROFILES: tuple[TopicProfile, ...] = (
    TopicProfile("resignation", 6.0, 19.0),
    TopicProfile("salary", 8.0, 13.0),
    TopicProfile("career_meaning", 3.0, 21.0),
    TopicProfile("harassment", 2.0, 17.0),
    TopicProfile("job_search", 12.0, 10.0),
    TopicProfile("layoffs", 4.0, 15.0),
    TopicProfile("remote_work", 5.0, 9.0),
    TopicProfile("burnout", 5.0, 22.0),
    TopicProfile("labor_action", 2.5, 12.0),
)


@dataclass
class Wave:
    """One injected wave (or single-video surge) and what the detector made of it."""

    signal: str  # SIGNALS, or "single_video"
    shape: str
    size: float
    minutes: int  # at full size (step, spike) / ramp length (ramp)
    onset_minute: int
    onset_fraction: float  # share of the onset minute the wave covers
    lang: str = ""
    authors: set[str] = field(default_factory=set)  # from the onset to the deadline
    full_authors: set[str] = field(default_factory=set)  # in the two full-size windows
    first_alert_minute: int | None = None
    video: str = ""  # single-video surge: the video
    videos: list[tuple[str, str, str]] = field(default_factory=list)  # views wave: its videos

    @property
    def ramp(self) -> int:
        return self.minutes if self.shape == "ramp" else 0

    @property
    def hold(self) -> int:
        if self.shape == "ramp":
            return RAMP_HOLD_MINUTES
        return self.minutes

    @property
    def first_full_minute(self) -> int:
        return self.onset_minute + 1 + self.ramp

    @property
    def end_minute(self) -> int:
        """First minute after the wave."""
        return self.first_full_minute + self.hold

    def level(self, minute: int) -> float:
        """Share of the full extra rate in this minute (0-1)."""
        if minute < self.onset_minute or minute >= self.end_minute:
            return 0.0
        if minute >= self.first_full_minute:
            return 1.0
        climbed = (minute - self.onset_minute + 1) / (self.ramp + 1)
        return climbed * self.onset_fraction if minute == self.onset_minute else climbed

    @property
    def deadline_minute(self) -> int:
        return self.first_full_minute + 1

    @property
    def metric(self) -> str:
        if self.signal == "videos_lang":
            return "videos"
        if self.signal == "single_video":
            return "views"
        return self.signal


@dataclass(frozen=True)
class Burst:
    author: str
    onset_minute: int
    videos: int
    minutes: int

    def covers(self, minute: int) -> bool:
        return self.onset_minute <= minute < self.onset_minute + self.minutes + AFTER_MINUTES


def _poisson(rng: random.Random, lam: float) -> int:
    """Poisson sample: Knuth's method by chunks (exact; means here stay small)."""
    total = 0
    while lam > 0:
        part = min(lam, 30.0)
        lam -= part
        limit, k, p = math.exp(-part), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        total += k
    return total


class TopicSimulation:
    """One topic's stream, minute by minute, with its own seeded random source."""

    def __init__(self, profile: TopicProfile, seed: int) -> None:
        self.p = profile
        self.rng = random.Random(seed)
        self.authors: list[str] = []
        self.known: set[str] = set()
        self.next_author = 0
        self.next_video = 0
        self.recent: deque[tuple[str, str, str]] = deque(maxlen=300)  # video, author, lang
        self.log_level = 0.0
        self.day = -1
        self.lang_names = [lang for lang, _ in LANGS]
        self.lang_cum = [sum(w for _, w in LANGS[: i + 1]) for i in range(len(LANGS))]

    # -- the null stream ----------------------------------------------------------------
    def rate_factor(self, minute: int) -> float:
        """Rhythm × weekend × drift at this minute (mean 1 over a weekday)."""
        day = minute // DAY_MINUTES
        while self.day < day:
            self.day += 1
            self.log_level += self.rng.gauss(0.0, self.p.day_drift)
            self.log_level *= 0.9  # mean-reverting: the level wanders, no trend
        hour = (minute % DAY_MINUTES) / 60.0
        phase = 2 * math.pi * (hour - self.p.peak_hour) / 24.0
        rhythm = 1.0 + self.p.rhythm * math.cos(phase) + 0.1 * math.cos(2 * phase)
        weekday = (day + 3) % 7  # START_MS is a Thursday; 5, 6 = Saturday, Sunday
        weekend = 0.85 if weekday >= 5 else 1.0
        return max(0.05, rhythm) * weekend * math.exp(self.log_level)

    def new_author(self) -> str:
        self.next_author += 1
        return f"{self.p.topic}-a{self.next_author}"

    def regular_author(self) -> str:
        if not self.authors:
            return self.new_author()
        # a few regulars post most: index skewed to the oldest authors
        return self.authors[int(len(self.authors) * self.rng.random() ** 3)]

    def lang(self) -> str:
        u = self.rng.random()
        for name, cum in zip(self.lang_names, self.lang_cum, strict=True):
            if u < cum:
                return name
        return self.lang_names[-1]

    def publish(self, agg: TopicMinute, author: str, lang: str | None = None) -> None:
        lang = lang or self.lang()
        self.next_video += 1
        video = f"{self.p.topic}-v{self.next_video}"
        new = author not in self.known
        if new:
            self.known.add(author)
            self.authors.append(author)
        country = self.rng.choice(COUNTRIES[lang])
        tags = [self.p.topic, "work"] if self.rng.random() < 0.7 else [self.p.topic]
        agg.add_publish(
            video_id=video, author_id=author, lang=lang, country=country, hashtags=tags,
            new_author=new,
        )  # fmt: skip
        self.recent.append((video, author, lang))

    def view_updates(
        self,
        agg: TopicMinute,
        count: int,
        authors: tuple[set[str], ...] = (),
        videos: list[tuple[str, str, str]] | None = None,
    ) -> None:
        """`count` view updates (log-normal gains) on `videos` (default: the recent
        ones), one `add_counters` per video."""
        recent = videos if videos is not None else self.recent
        if not recent or count <= 0:
            return
        rng = self.rng
        gains: dict[int, int] = {}
        median, sigma, size = self.p.view_median, self.p.view_sigma, len(recent)
        for _ in range(count):
            i = int(rng.random() * size)
            gains[i] = gains.get(i, 0) + max(1, int(median * math.exp(rng.gauss(0.0, sigma))))
        for i, gain in gains.items():
            video, author, lang = recent[i]
            agg.add_counters(video_id=video, author_id=author, lang=lang, views=gain)
            for seen in authors:
                seen.add(author)

    def minute(self, minute: int, waves: list[Wave], bursts: list[Burst]) -> TopicMinute:
        """The observation of one minute: the null stream plus what is injected."""
        p, rng = self.p, self.rng
        factor = self.rate_factor(minute)
        noise = rng.gammavariate(1 / p.minute_cv**2, p.minute_cv**2)
        agg = TopicMinute()
        for _ in range(_poisson(rng, p.videos_per_min * factor * noise)):
            new = rng.random() < p.new_author_share
            self.publish(agg, self.new_author() if new else self.regular_author())
        for burst in bursts:
            if burst.onset_minute <= minute < burst.onset_minute + burst.minutes:
                share = burst.videos // burst.minutes
                extra = burst.videos - share * burst.minutes
                first = minute == burst.onset_minute
                for _ in range(share + (extra if first else 0)):
                    self.publish(agg, burst.author)
        view_noise = rng.gammavariate(1 / p.minute_cv**2, p.minute_cv**2)
        updates = p.videos_per_min * p.updates_per_video * factor * view_noise
        self.view_updates(agg, _poisson(rng, updates))
        for wave in waves:
            self.inject(agg, wave, minute, factor)
        return agg

    # -- injections ---------------------------------------------------------------------
    def inject(self, agg: TopicMinute, wave: Wave, minute: int, factor: float) -> None:
        level = wave.level(minute)
        if level <= 0:
            return
        p, rng = self.p, self.rng
        seen: tuple[set[str], ...] = ()
        if wave.onset_minute <= minute <= wave.deadline_minute:
            seen = (wave.authors,)
            if minute >= wave.first_full_minute:
                seen = (wave.authors, wave.full_authors)
        extra_size = (wave.size - 1.0) * level
        if wave.signal == "single_video":
            if minute == wave.onset_minute:
                video, author, lang = self.recent[-1]
                wave.video = f"{video}|{author}|{lang}"
            video, author, lang = wave.video.split("|")
            mean_gain = p.view_median * math.exp(p.view_sigma**2 / 2)
            typical = p.videos_per_min * p.updates_per_video * factor * mean_gain
            agg.add_counters(
                video_id=video, author_id=author, lang=lang, views=int(wave.size * typical * level)
            )
            for authors in seen:
                authors.add(author)
            return
        if wave.signal == "views":
            if minute == wave.onset_minute:  # the wave's videos, trending together
                picked = rng.sample(
                    range(len(self.recent)), min(VIEW_WAVE_VIDEOS, len(self.recent))
                )
                wave.videos = [self.recent[i] for i in picked]
            rate = p.videos_per_min * p.updates_per_video * factor * extra_size
            self.view_updates(agg, _poisson(rng, rate), seen, wave.videos)
            return
        if wave.signal == "new_authors":
            rate = p.videos_per_min * p.new_author_share * factor * extra_size
            for _ in range(_poisson(rng, rate)):
                author = self.new_author()
                self.publish(agg, author)
                for authors in seen:
                    authors.add(author)
            return
        share = dict(LANGS)[wave.lang] if wave.signal == "videos_lang" else 1.0
        rate = p.videos_per_min * share * factor * extra_size
        for _ in range(_poisson(rng, rate)):
            # copycats: half of them new to the topic, each a different account
            author = self.new_author() if rng.random() < 0.5 else self.regular_author()
            self.publish(agg, author, wave.lang or None)
            for authors in seen:
                authors.add(author)


# -- runs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    profile: TopicProfile
    kind: str  # "null" | "waves"
    seed: int
    warmup_minutes: int
    minutes: int  # after the warm-up
    config: SpikeDetectorConfig
    first_wave: int  # index into the wave grid (spreads the grid over topics)


@dataclass
class RunResult:
    topic: str
    kind: str
    minutes: int
    alerts: list[tuple[int, str, str, str]]  # (minute, metric, lang, kind) after warm-up
    waves: list[Wave]
    bursts: list[Burst]
    seconds: float


def wave_grid() -> list[tuple[str, str, float, int]]:
    """(signal, shape, size, minutes): every signal × shape × size, lengths cycling."""
    grid = []
    for size in SIZES:
        for shape in SHAPES:
            lengths = {"step": STEP_MINUTES, "ramp": RAMP_MINUTES, "spike": SPIKE_MINUTES}[shape]
            for i, signal in enumerate(SIGNALS):
                grid.append((signal, shape, size, lengths[i % len(lengths)]))
    grid += [("single_video", "step", float(s), 5) for s in (10, 20, 40)]
    return grid


def _plan(spec: RunSpec, rng: random.Random) -> tuple[list[Wave], list[Burst]]:
    start, end = spec.warmup_minutes, spec.warmup_minutes + spec.minutes
    waves: list[Wave] = []
    bursts: list[Burst] = []
    if spec.kind == "null":
        for day in range(start // DAY_MINUTES, end // DAY_MINUTES + 1):
            onset = day * DAY_MINUTES + rng.randrange(60, DAY_MINUTES - 60)
            videos, minutes = BURSTS[day % len(BURSTS)]
            if start <= onset and onset + minutes + AFTER_MINUTES < end:
                bursts.append(Burst(f"{spec.profile.topic}-burst{day}", onset, videos, minutes))
        return waves, bursts
    grid = wave_grid()
    index = spec.first_wave
    onset = start + rng.randrange(30, WAVE_SPACING_MINUTES // 2)
    while onset + 60 < end:
        signal, shape, size, minutes = grid[index % len(grid)]
        index += 1
        lang = rng.choice(("fr", "ar")) if signal == "videos_lang" else ""
        waves.append(Wave(signal, shape, size, minutes, onset, rng.uniform(0.2, 0.9), lang))
        onset += WAVE_SPACING_MINUTES + rng.randrange(-30, 30)
    return waves, bursts


def alert_kind(spike: Spike) -> str:
    """The severity, or `single_video` for a single-video view surge."""
    single = spike.metric == "views" and spike.severity == "info" and spike.top_video_share >= 0.5
    return "single_video" if single else spike.severity


def run_topic(spec: RunSpec) -> RunResult:
    """One topic's run: simulate, detect, keep the alerts after the warm-up."""
    started = time.perf_counter()
    rng = random.Random(spec.seed ^ 0x5EED)
    waves, bursts = _plan(spec, rng)
    sim = TopicSimulation(spec.profile, spec.seed)
    detector = SpikeDetector(spec.config)
    state = TopicBaseline()
    topic = spec.profile.topic
    alerts: list[tuple[int, str, str, str]] = []
    active: list[Wave] = []
    pending = deque(waves)
    for minute in range(spec.warmup_minutes + spec.minutes):
        while pending and pending[0].onset_minute <= minute:
            active.append(pending.popleft())
        active = [w for w in active if minute < w.end_minute]
        running = [b for b in bursts if b.onset_minute <= minute < b.onset_minute + b.minutes]
        agg = sim.minute(minute, active, running)
        for spike in detector.observe_window(state, topic, START_MS + minute * MINUTE_MS, agg):
            if minute >= spec.warmup_minutes:
                alerts.append((minute, spike.metric, spike.lang, alert_kind(spike)))
    for wave in waves:
        for minute, metric, _lang, _sev in alerts:
            if metric == wave.metric and wave.onset_minute <= minute < wave.end_minute + 2:
                wave.first_alert_minute = minute
                break
    return RunResult(
        topic, spec.kind, spec.minutes, alerts, waves, bursts, time.perf_counter() - started
    )


# -- the report ---------------------------------------------------------------------------
def _p95(values: list[int]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)])


def _in_time(wave: Wave) -> bool:
    return wave.first_alert_minute is not None and wave.first_alert_minute <= wave.deadline_minute


def _recall(waves: list[Wave]) -> dict[str, Any]:
    hit = sum(1 for w in waves if _in_time(w))
    return {"waves": len(waves), "recall": round(hit / len(waves), 3) if waves else None}


def summarise(results: list[RunResult], config: SpikeDetectorConfig) -> dict[str, Any]:
    null = [r for r in results if r.kind == "null"]
    null_weeks = sum(r.minutes for r in null) / WEEK_MINUTES
    false_alarms = single_account = 0
    false_by_metric: Counter[str] = Counter()
    false_by_kind: Counter[str] = Counter()
    for r in null:
        for minute, metric, _lang, kind in r.alerts:
            if any(b.covers(minute) for b in r.bursts):
                single_account += 1
            else:
                false_alarms += 1
                false_by_metric[metric] += 1
                false_by_kind[kind] += 1
    waves = [w for r in results if r.kind == "waves" for w in r.waves]
    regular = [w for w in waves if w.signal != "single_video"]
    headline = [w for w in regular if w.size >= 3 and len(w.full_authors) >= 20]
    from_onset = [w for w in regular if w.size >= 3 and len(w.authors) >= 20]
    delays = [
        max(0, w.first_alert_minute - w.first_full_minute)
        for w in headline
        if w.first_alert_minute is not None
    ]
    outside = 0
    for r in results:
        if r.kind != "waves":
            continue
        for minute, *_ in r.alerts:
            if not any(w.onset_minute <= minute < w.end_minute + 30 for w in r.waves):
                outside += 1
    wave_weeks = sum(r.minutes for r in results if r.kind == "waves") / WEEK_MINUTES
    topics = len({r.topic for r in results})
    return {
        "recall_3x_20_authors": _recall(headline)["recall"],
        "false_alarms_per_topic_week": round(false_alarms / null_weeks, 3) if null_weeks else None,
        "detect_windows_p95": _p95(delays),
        "single_account_alerts": single_account,
        "recall_3x_20_authors_from_onset": _recall(from_onset)["recall"],
        "headline_waves": len(headline),
        "headline_detected_ever": sum(1 for w in headline if w.first_alert_minute is not None),
        "recall_by_signal_3x_20_authors": {
            s: _recall([w for w in headline if w.signal == s]) for s in SIGNALS
        },
        "recall_by_shape_3x_20_authors": {
            s: _recall([w for w in headline if w.shape == s]) for s in SHAPES
        },
        "recall_by_size": {str(s): _recall([w for w in regular if w.size == s]) for s in SIZES},
        "recall_by_size_20_authors": {
            str(s): _recall([w for w in regular if w.size == s and len(w.full_authors) >= 20])
            for s in SIZES
        },
        "single_video_surges": _recall([w for w in waves if w.signal == "single_video"]),
        "false_alarms_by_metric": dict(sorted(false_by_metric.items())),
        "false_alarms_by_kind": dict(sorted(false_by_kind.items())),
        "bursts": sum(len(r.bursts) for r in null),
        "alerts_outside_waves_per_topic_week": (
            round(outside / wave_weeks, 3) if wave_weeks else None
        ),
        "targets": TARGETS,
        "topics": topics,
        "null_topic_weeks": round(null_weeks, 2),
        "wave_topic_weeks": round(wave_weeks, 2),
        "threshold_p": config.threshold,
        "family_size": config.family_size,
    }


def run_alerts_bench(
    *,
    null_weeks: float = 2.0,
    wave_weeks: float = 2.0,
    warmup_days: float = 2.0,
    seed: int = DEFAULT_SEED,
    config: SpikeDetectorConfig | None = None,
    profiles: tuple[TopicProfile, ...] = PROFILES,
    jobs: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the null and wave runs of every topic profile; the JSON-safe report."""
    config = config or SpikeDetectorConfig()
    started = time.perf_counter()
    warmup = int(warmup_days * DAY_MINUTES)
    specs: list[RunSpec] = []
    for i, profile in enumerate(profiles):
        for k, (kind, weeks) in enumerate((("null", null_weeks), ("waves", wave_weeks))):
            if weeks > 0:
                specs.append(
                    RunSpec(
                        profile, kind, seed * 1_000 + i * 10 + k, warmup,
                        int(weeks * WEEK_MINUTES), config, first_wave=i * 7,
                    )
                )  # fmt: skip
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(specs)))
    results: list[RunResult] = []

    def done(result: RunResult) -> None:
        results.append(result)
        if progress is not None:
            progress(
                f"[{len(results)}/{len(specs)}] {result.topic} {result.kind}: "
                f"{len(result.alerts)} alerts in {result.minutes / WEEK_MINUTES:.1f} weeks "
                f"({result.seconds:.1f} s)"
            )

    if jobs == 1:
        for spec in specs:
            done(run_topic(spec))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for result in pool.map(run_topic, specs):
                done(result)
    results.sort(key=lambda r: (r.kind, r.topic))
    report = summarise(results, config)
    report.update(
        seed=seed,
        warmup_days=warmup_days,
        seconds=round(time.perf_counter() - started, 1),
        jobs=jobs,
        python=platform.python_version(),
        machine=f"{platform.machine()} {os.cpu_count()} cpus",
    )
    return report


def stderr_progress(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
