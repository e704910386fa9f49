"""Tests of the synthetic workload generator (pure, seeded)."""

from __future__ import annotations

import hashlib
import re
import statistics
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

import orjson
import pytest

from workpulse.dev.generator import (
    BAD_KINDS,
    TOPIC_TAGS,
    TOPICS,
    Workload,
    WorkloadConfig,
    encode,
)
from workpulse.model.event import ALREADY_PUBLISHED
from workpulse.model.state import COUNTERS

ALLOWED_FIELDS = {
    "event_id",
    "kind",
    "video_id",
    "event_time",
    "author_id",
    "author_followers",
    "caption",
    "hashtags",
    "lang",
    "country",
    "views",
    "likes",
    "shares",
    "comments",
}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
LANG_COUNTRIES = {
    "en": {"US", "GB", "IN", "CA", "AU", "NG", "PH", "ZA", "IE"},
    "fr": {"FR", "BE", "CA", "MA", "CH", "SN"},
    "ar": {"SA", "EG", "AE", "MA", "JO", "KW", "DZ"},
    "es": {"ES", "MX", "AR", "CO"},
    "pt": {"BR", "PT"},
}
N = 10_000


def to_ms(value: int | str) -> int:
    if isinstance(value, int):
        return value
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def contract_error(obj: Any) -> str | None:
    """An independent, minimal check of the DESIGN.md input contract."""
    if not isinstance(obj, dict):
        return "not an object"
    for name in ("event_id", "kind", "video_id", "event_time"):
        if name not in obj:
            return f"missing {name}"
    for name in ("event_id", "video_id"):
        if not isinstance(obj[name], str) or not obj[name]:
            return f"bad {name}"
    if obj["kind"] not in ("publish", "stats"):
        return "bad kind"
    t = obj["event_time"]
    if isinstance(t, bool) or not isinstance(t, int | str):
        return "bad event_time type"
    if isinstance(t, str):
        if not RFC3339.match(t):
            return "bad event_time string"
        try:
            to_ms(t)
        except ValueError:
            return "bad event_time date"
    for name in (*COUNTERS, "author_followers"):
        if name in obj:
            v = obj[name]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                return f"bad {name}"
    if "caption" in obj and (not isinstance(obj["caption"], str) or len(obj["caption"]) > 20_000):
        return "bad caption"
    if "hashtags" in obj and (
        not isinstance(obj["hashtags"], list)
        or not all(isinstance(h, str) and not h.startswith("#") for h in obj["hashtags"])
    ):
        return "bad hashtags"
    for name in ("lang", "country", "author_id"):
        if name in obj and (not isinstance(obj[name], str) or not obj[name]):
            return f"bad {name}"
    if obj["kind"] == "publish" and "author_id" not in obj:
        return "publish without author_id"
    if obj["kind"] == "stats" and not any(c in obj for c in COUNTERS):
        return "stats without counter"
    return None


def decode(value: bytes) -> tuple[dict[str, Any] | None, str | None]:
    if len(value) > 64 * 1024:
        return None, "oversized"
    try:
        value.decode("utf-8")
        obj = orjson.loads(value)
    except (UnicodeDecodeError, orjson.JSONDecodeError):
        return None, "undecodable"
    err = contract_error(obj)
    return (obj, None) if err is None else (None, err)


@pytest.fixture(scope="module")
def labelled() -> list[tuple[dict[str, Any], tuple[str, ...]]]:
    return list(Workload().labelled_events(N))


@pytest.mark.parametrize(
    "config",
    [
        WorkloadConfig(),
        WorkloadConfig(seed=123, bad_fraction=0.1, duplicate_fraction=0.1),
        WorkloadConfig(wave_topic="layoffs", publish_rate_per_min=20.0),
    ],
)
def test_same_config_same_bytes(config: WorkloadConfig) -> None:
    first = list(Workload(config).messages(3_000))
    second = list(Workload(config).messages(3_000))
    assert first == second
    assert list(Workload(config).events(500)) == list(Workload(config).events(500))


def test_seed_changes_output() -> None:
    a = list(Workload(WorkloadConfig(seed=1)).messages(200))
    b = list(Workload(WorkloadConfig(seed=2)).messages(200))
    assert a != b


def test_messages_without_faults_are_the_events_encoded() -> None:
    workload = Workload()
    events = list(workload.events(1_000))
    messages = list(workload.messages(1_000))
    assert messages == [(e["video_id"].encode(), encode(e)) for e in events]


@pytest.mark.parametrize(
    ("n", "bad", "dup"),
    [(0, 0.0, 0.0), (1, 0.0, 0.0), (1, 0.5, 0.5), (7, 0.3, 0.3), (1_000, 0.2, 0.1), (2_345, 0, 0)],
)
def test_exactly_n_messages(n: int, bad: float, dup: float) -> None:
    config = WorkloadConfig(bad_fraction=bad, duplicate_fraction=dup)
    assert sum(1 for _ in Workload(config).messages(n)) == n
    assert sum(1 for _ in Workload(config).events(n)) == n


def test_every_event_matches_the_contract(labelled: list[tuple[dict, tuple]]) -> None:
    for event, _ in labelled:
        assert contract_error(event) is None, event
        assert set(event) <= ALLOWED_FIELDS, "no ground truth or extra fields in events"
    ids = [e["event_id"] for e, _ in labelled]
    assert len(set(ids)) == len(ids)
    publish_ids = [e["video_id"] for e, _ in labelled if e["kind"] == "publish"]
    assert len(set(publish_ids)) == len(publish_ids)


def test_stats_follow_their_publish_with_monotonic_counters(
    labelled: list[tuple[dict, tuple]],
) -> None:
    published: dict[str, int] = {}
    last: dict[str, dict[str, int]] = defaultdict(dict)
    n_stats = 0
    for event, _ in labelled:
        t = to_ms(event["event_time"])
        if event["kind"] == "publish":
            published[event["video_id"]] = t
            continue
        n_stats += 1
        vid = event["video_id"]
        assert vid in published, "stats for an unknown video"
        assert t > published[vid]
        for c in COUNTERS:
            if c in event:
                assert event[c] >= last[vid].get(c, 0), (vid, c)
                last[vid][c] = event[c]
        if "likes" in event and event["views"] > 10_000:
            assert event["likes"] < event["views"] * 0.15
    n_publish = len(published)
    assert 1.2 < n_stats / n_publish < 2.5  # stats_per_publish = 2, minus warm-up and run end


def test_event_time_is_roughly_ordered_in_both_formats(labelled: list[tuple[dict, tuple]]) -> None:
    times = [e["event_time"] for e, _ in labelled]
    share_str = sum(isinstance(t, str) for t in times) / len(times)
    assert 0.15 < share_str < 0.25
    assert any(isinstance(t, str) and t.endswith("Z") for t in times)
    assert any(isinstance(t, str) and re.search(r"[+-]\d\d:\d\d$", t) for t in times)
    ms = [to_ms(t) for t in times]
    running_max = ms[0]
    late = 0
    for t in ms:
        assert t > running_max - 10_000, "jitter is at most a few seconds"
        late += t < running_max
        running_max = max(running_max, t)
    assert 0 < late < len(ms) * 0.3
    assert ms[0] >= WorkloadConfig().start_ms - 10_000
    span_min = (max(ms) - min(ms)) / 60_000
    assert 45 < span_min < 90  # ~180 events per simulated minute with the defaults


def test_language_country_and_work_mix(labelled: list[tuple[dict, tuple]]) -> None:
    pubs = [(e, t) for e, t in labelled[: N // 2] if e["kind"] == "publish"]  # before the wave
    langs = Counter(e.get("lang") for e, _ in pubs if "lang" in e)
    total = sum(langs.values())
    assert langs["en"] / total > 0.4
    assert langs["fr"] / total > 0.12
    assert langs["ar"] / total > 0.1
    assert set(langs) <= set(LANG_COUNTRIES)
    for e, _ in pubs:
        if "lang" in e and "country" in e:
            assert e["country"] in LANG_COUNTRIES[e["lang"]]
    work_share = sum(1 for _, t in pubs if t) / len(pubs)
    assert 0.3 <= work_share <= 0.4
    seen_topics = {topic for _, t in pubs for topic in t}
    assert seen_topics == set(TOPICS)
    captions = [e["caption"] for e, _ in pubs]
    assert len(set(captions)) > len(captions) * 0.6, "captions vary"


@pytest.mark.parametrize(
    ("caption_part", "must_be_topicless"),
    [("quitting sugar", True), ("salary cap", True), ("bowling", True), ("TV remote", True)],
)
def test_tricky_negatives_present(
    labelled: list[tuple[dict, tuple]], caption_part: str, must_be_topicless: bool
) -> None:
    hits = [t for e, t in labelled if caption_part in e.get("caption", "")]
    assert hits, caption_part
    assert all((not t) == must_be_topicless for t in hits)


def test_power_law_authors_and_heavy_tails(labelled: list[tuple[dict, tuple]]) -> None:
    pubs = [e for e, _ in labelled if e["kind"] == "publish"]
    per_author = Counter(e["author_id"] for e in pubs)
    counts = sorted(per_author.values(), reverse=True)
    top = sum(counts[: max(1, len(counts) // 100)])
    assert top / len(pubs) > 0.08, "the top 1% of authors post a lot"
    assert counts[0] >= 10
    followers = [e["author_followers"] for e in pubs if "author_followers" in e]
    assert max(followers) > 100 * statistics.median(followers)
    views = [e["views"] for e, _ in labelled if e["kind"] == "stats"]
    assert max(views) > 100 * statistics.median(views)


@pytest.mark.parametrize(
    ("bad", "dup"), [(0.0, 0.0), (0.05, 0.0), (0.0, 0.1), (0.1, 0.05), (0.3, 0.2)]
)
def test_fault_shares_and_kinds(bad: float, dup: float) -> None:
    n = 20_000
    labels: Counter[str] = Counter()
    seen: set[bytes] = set()
    bad_kinds: Counter[str] = Counter()
    published: set[str] = set()
    published_ids: set[str] = set()
    config = WorkloadConfig(bad_fraction=bad, duplicate_fraction=dup)
    for key, value, label in Workload(config).labelled_messages(n):
        kind = label.split(":")[0]
        labels[kind] += 1
        obj, err = decode(value)
        if kind == "valid":
            assert err is None, (err, value[:200])
            assert obj is not None and key == obj["video_id"].encode()
            assert value not in seen
            seen.add(value)
        elif kind == "duplicate":
            assert value in seen, "a duplicate re-sends an earlier message"
        elif label == f"bad:{ALREADY_PUBLISHED}":  # valid, dead-lettered while processed
            assert err is None and obj is not None and obj["kind"] == "publish"
            assert obj["video_id"] in published and obj["event_id"] not in published_ids
            bad_kinds[ALREADY_PUBLISHED] += 1
        else:
            assert err is not None, (label, value[:200])
            bad_kinds[label.split(":")[1]] += 1
        if kind == "valid" and obj is not None and obj["kind"] == "publish":
            published.add(obj["video_id"])
            published_ids.add(obj["event_id"])
    assert sum(labels.values()) == n
    assert labels["bad"] / n == pytest.approx(bad, abs=0.01)
    assert labels["duplicate"] / n == pytest.approx(dup, abs=0.01)
    if bad >= 0.05:
        assert set(bad_kinds) == set(BAD_KINDS)


@pytest.mark.parametrize("topic", ["resignation", "salary", "layoffs"])
def test_wave_spikes_the_wave_topic(topic: str) -> None:
    workload = Workload(WorkloadConfig(wave_topic=topic))
    ws, we = workload.wave_window(N)
    per_minute: Counter[int] = Counter()
    tagged: list[bool] = []
    wave_views: list[int] = []
    base_views: list[int] = []
    topic_of_video: dict[str, bool] = {}
    in_wave_video: dict[str, bool] = {}
    events = list(workload.labelled_events(N))
    start = to_ms(events[0][0]["event_time"])
    for i, (event, topics) in enumerate(events):
        if event["kind"] == "publish":
            topic_of_video[event["video_id"]] = topic in topics
            in_wave_video[event["video_id"]] = ws <= i < we
            if topic in topics:
                per_minute[(to_ms(event["event_time"]) - start) // 60_000] += 1
                if ws <= i < we:
                    tags = set(event.get("hashtags", [])) | set(
                        re.findall(r"#(\w+)", event["caption"])
                    )
                    tagged.append(bool(tags & set(TOPIC_TAGS[event.get("lang", "en")][topic])))
        elif in_wave_video[event["video_id"]]:  # same publish times: compare like with like
            (wave_views if topic_of_video[event["video_id"]] else base_views).append(event["views"])
    wave_start_min = (to_ms(events[ws][0]["event_time"]) - start) // 60_000
    wave_end_min = (to_ms(events[we - 1][0]["event_time"]) - start) // 60_000
    assert wave_start_min >= 20, "enough per-minute history before the wave"
    before = [per_minute[m] for m in range(5, wave_start_min - 1)]
    during = [per_minute[m] for m in range(wave_start_min + 1, wave_end_min)]
    assert len(during) >= 4
    assert statistics.mean(during) > 4 * statistics.mean(before)
    assert min(during) > 2 * statistics.mean(before)
    assert sum(tagged) / len(tagged) > 0.6, "wave videos carry the topic's hashtags"
    assert statistics.median(wave_views) > 2 * statistics.median(base_views)


def test_wave_brings_new_authors() -> None:
    """Authors never seen before posting the wave topic, per event, during the wave
    versus an equally long stretch just before it."""
    workload = Workload()
    ws, we = workload.wave_window(N)
    before_start = ws - (we - ws)
    seen: set[str] = set()
    new_in_wave = new_before = 0
    for i, (event, topics) in enumerate(workload.labelled_events(N)):
        if event["kind"] != "publish" or "resignation" not in topics:
            continue
        fresh = event["author_id"] not in seen
        seen.add(event["author_id"])
        if ws <= i < we:
            new_in_wave += fresh
        elif before_start <= i < ws:
            new_before += fresh
    assert new_in_wave > 4 * new_before


@pytest.mark.parametrize(
    "config",
    [
        WorkloadConfig(wave_topic="nope"),
        WorkloadConfig(publish_rate_per_min=0),
        WorkloadConfig(bad_fraction=0.8, duplicate_fraction=0.5),
        WorkloadConfig(work_share=1.5),
        WorkloadConfig(work_share=-0.1),
    ],
)
def test_invalid_config_rejected(config: WorkloadConfig) -> None:
    with pytest.raises(ValueError):
        Workload(config)


@pytest.mark.parametrize(
    ("share", "low", "high"), [(0.0, 0.0, 0.0), (0.05, 0.02, 0.08), (1.0, 1.0, 1.0)]
)
def test_work_share_sets_the_mix(share: float, low: float, high: float) -> None:
    events = Workload(WorkloadConfig(work_share=share)).labelled_events(N // 2)  # before the wave
    pubs = [topics for event, topics in events if event["kind"] == "publish"]
    assert low <= sum(1 for t in pubs if t) / len(pubs) <= high


def _fingerprint(config: WorkloadConfig, n: int) -> str:
    digest = hashlib.sha256()
    for key, value in Workload(config).messages(n):
        digest.update((key or b"") + b"\0" + value + b"\n")
    return digest.hexdigest()


@pytest.mark.parametrize(
    ("config", "n", "expected"),
    [
        # Measured with the generator before its caption corpus moved from Python literals
        # to dev/corpus/*.json: the same seeds must keep giving the same bytes.
        (
            WorkloadConfig(),
            20_000,
            "b04a45ba0fdfd234548d09c4fec1ae6ff2499f07258d41751c490a3ff3e81d24",
        ),
        (
            # Changed on 2026-12-04, on purpose: a second publish joined the bad kinds.
            WorkloadConfig(seed=11, bad_fraction=0.05, duplicate_fraction=0.05),
            5_000,
            "116ab323e913ba2d67622c3a9c78f9d12b160cca6a07bf30f5c063d4f7f03116",
        ),
        (
            WorkloadConfig(seed=3, work_share=0.05),
            5_000,
            "59cf6bff17328dc550769bc93d2eba27a7662875ddfc213bf9821b6c08b81a23",
        ),
    ],
    ids=["default", "faults", "quiet"],
)
def test_same_seed_same_bytes_as_before(config: WorkloadConfig, n: int, expected: str) -> None:
    assert _fingerprint(config, n) == expected
