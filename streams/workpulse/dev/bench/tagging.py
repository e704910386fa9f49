"""`workpulse bench tagging`: how fast the tagger is next to plain JSON decoding.

Both measurements run on the same ``n`` realistic encoded events in the same process:

* decode: ``orjson.loads`` + ``orjson.dumps`` of every event (the floor any consumer pays);
* tag: ``orjson.loads``, `Tagger.tag_batch` on batches of `BATCH_LINES` (100) events,
  ``topics`` and ``matched`` added, ``orjson.dumps`` — what `workpulse tag` does (it adds
  the two fields to the input line's bytes instead, which costs less than the encode).

The two passes run in pairs, ``repeats`` times (the machine's speed drifts on shared
hosts: both sides of a pair meet the same conditions); the median rates are reported, and
``ratio`` is the median of the per-pair ratios (tag rate / decode rate). The tagger's
caches are emptied before each timed tag pass; the hit rates of its caches (results of
identical inputs, normalised words, hashtag sets) during a cold pass are reported too.

A third pass in each round runs the tag pass with `NullTagger`, so that the report splits
the cost as ratio = D / (D + H + p·T): decode D and pass overhead H per event, and the
tagger's T per publish event (p is the share of publish events).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson

from workpulse.dev.generator import WORK_SHARE, Workload, WorkloadConfig
from workpulse.processing.jsonl_tagging import BATCH_LINES
from workpulse.tagging import Tagger, TagResult, freeze_lexicon_objects, load_tagger
from workpulse.tagging.tagger import EMPTY


def _events(n: int, seed: int, work_share: float = WORK_SHARE) -> tuple[list[bytes], str]:
    """``n`` encoded events from the synthetic workload."""
    config = WorkloadConfig(seed=seed, work_share=work_share)
    return [orjson.dumps(e) for e in Workload(config).events(n)], "generator"


def decode_pass(lines: list[bytes]) -> int:
    loads, dumps = orjson.loads, orjson.dumps
    size = 0
    for line in lines:
        size += len(dumps(loads(line)))
    return size


class _BatchTagger(Protocol):
    def tag_batch(
        self, items: Sequence[tuple[str, Sequence[str], str | None]]
    ) -> list[TagResult]: ...


class NullTagger:
    """Tags nothing, at no cost: the tag pass with it measures the pass's own work."""

    def tag_batch(self, items: Sequence[tuple[str, Sequence[str], str | None]]) -> list[TagResult]:
        return [EMPTY] * len(items)


def tag_pass(lines: list[bytes], tagger: _BatchTagger, batch: int = BATCH_LINES) -> int:
    """What `workpulse tag` does per batch: decode, tag, add topics and matched, encode."""
    loads, dumps = orjson.loads, orjson.dumps
    tag_batch = tagger.tag_batch
    size = 0
    for i in range(0, len(lines), batch):
        objs = list(map(loads, lines[i : i + batch]))
        results = tag_batch(
            [(o.get("caption") or "", o.get("hashtags") or (), o.get("lang")) for o in objs]
        )
        for obj, result in zip(objs, results, strict=True):
            obj["topics"] = result.topics
            obj["matched"] = result.matched
        size += sum(map(len, map(dumps, objs)))
    return size


def _events_with_topics(lines: list[bytes], tagger: Tagger) -> int:
    """How many of the events get a topic (what share of the workload is about work)."""
    items = []
    for obj in map(orjson.loads, lines):
        items.append((obj.get("caption") or "", obj.get("hashtags") or (), obj.get("lang")))
    return sum(1 for result in tagger.tag_batch(items) if result.topics)


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _interleaved(
    lines: list[bytes], tagger: Tagger, repeats: int, batch: int
) -> tuple[list[float], list[float], list[float]]:
    """Seconds of ``repeats`` decode, null-tagger and tag passes, run together (decode,
    tag pass with `NullTagger`, tag pass with emptied caches), so that the passes
    compared meet the same machine."""
    decode_s, null_s, tag_s = [], [], []
    null = NullTagger()
    for _ in range(repeats):
        decode_s.append(_timed(lambda: decode_pass(lines)))
        null_s.append(_timed(lambda: tag_pass(lines, null, batch)))
        # The tagger's caches are emptied before every timed pass: each pass meets these
        # captions for the first time, as a worker does (repeats inside a pass still hit).
        tagger.clear_caches()
        tag_s.append(_timed(lambda: tag_pass(lines, tagger, batch)))
    return decode_s, null_s, tag_s


def run_tagging_bench(
    n: int,
    seed: int = 7,
    repeats: int = 7,
    tagger: Tagger | None = None,
    work_share: float = WORK_SHARE,
    engine: str | None = None,
    batch: int = BATCH_LINES,
) -> dict[str, Any]:
    """Measure decode-only and decode+tag throughput on the same ``n`` events.

    ``work_share``: the share of (non-wave) published videos that are about work. The
    default is the demo's workload; a platform's whole stream has far fewer, and videos
    without a topic are the cheap ones to tag. ``engine``: see `Tagger` (used when no
    ``tagger`` is given; its load time is reported). ``batch``: events per `tag_batch`
    call (`workpulse tag`'s by default).
    """
    if n <= 0:
        raise ValueError("n must be positive")
    if batch <= 0:
        raise ValueError("batch must be positive")
    load_start = time.perf_counter()
    tagger = tagger if tagger is not None else load_tagger(engine=engine)
    load_s = time.perf_counter() - load_start  # ~0 when a tagger is passed in
    freeze_lexicon_objects()  # as the worker and `workpulse tag` do after loading
    lines, source = _events(n, seed, work_share)
    publish = sum(1 for line in lines if b'"kind":"publish"' in line)

    decode_pass(lines)  # warm-up (allocator, code paths)
    tag_pass(lines, tagger, batch)

    decode_s, null_s, tag_s = _interleaved(lines, tagger, repeats, batch)
    median = statistics.median
    ratios = [d / t for d, t in zip(decode_s, tag_s, strict=True)]
    decode_rate = n / median(decode_s)
    tag_rate = n / median(tag_s)
    # Cache use during one cold pass (the last timed one): how much the caches helped.
    caches = tagger.cache_stats()
    with_topics = _events_with_topics(lines, tagger)
    warm_rate = n / median(_timed(lambda: tag_pass(lines, tagger, batch)) for _ in range(3))
    return {
        "n": n,
        "publish_events": publish,
        "events_with_topics": with_topics,
        "seed": seed,
        "source": source,
        "work_share": work_share,
        "repeats": repeats,
        "batch": batch,
        "decode_events_per_s": round(decode_rate),
        "tag_events_per_s": round(tag_rate),
        "ratio": round(median(ratios), 3),
        "ratio_runs": [round(r, 3) for r in ratios],
        # The cost model, ratio = D / (D + H + p·T): what each part costs.
        "decode_us_per_event": round(median(decode_s) / n * 1e6, 2),
        "pass_overhead_us_per_event": round(
            median(n_ - d for n_, d in zip(null_s, decode_s, strict=True)) / n * 1e6, 2
        ),
        "tagger_us_per_publish_event": round(
            median(t - n_ for t, n_ in zip(tag_s, null_s, strict=True)) / max(publish, 1) * 1e6, 2
        ),
        "tag_events_per_s_all_cached": round(warm_rate),
        "engine": tagger.engine,
        "cold_pass_cache_hit_rates": {
            name: round(caches[f"{name}_hits"] / caches[f"{name}_lookups"], 3)
            if caches.get(f"{name}_lookups")
            else None
            for name in sorted(
                key[: -len("_lookups")] for key in caches if key.endswith("_lookups")
            )
        },
        # videos the compiled engine handed to the Python engine (beyond its limits)
        "python_fallbacks": caches.get("python_fallbacks", 0),
        "decode_runs": [round(n / d) for d in decode_s],
        "tag_runs": [round(n / t) for t in tag_s],
        "taxonomy_version": tagger.version,
        "lexicon_load_s": round(load_s, 3),
        "lexicon": dict(tagger.lexicon.stats),
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "cpu_count": os.cpu_count(),
        },
    }


if __name__ == "__main__":  # pragma: no cover
    print(
        orjson.dumps(
            run_tagging_bench(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000),
            option=orjson.OPT_INDENT_2,
        ).decode()
    )
