"""Quality on the labelled dev set (shared/eval/dev.jsonl beside the repository).

Run with ``pytest -s`` (or ``-rA``) to see the figures.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from workpulse.tagging import TOPICS, load_tagger


def _dev_path() -> Path | None:
    candidates = []
    env = os.environ.get("WORKPULSE_EVAL_DIR")
    if env:
        candidates.append(Path(env) / "dev.jsonl")
    candidates.append(Path(__file__).resolve().parents[3] / "shared/eval/dev.jsonl")
    return next((p for p in candidates if p.is_file()), None)


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def evaluate(rows: list[dict]) -> dict:
    tagger = load_tagger()
    results = tagger.tag_batch([(r["caption"], r["hashtags"], r.get("lang")) for r in rows])
    total = Counter()
    by_lang: dict[str, Counter] = {}
    by_topic: dict[str, Counter] = {t: Counter() for t in TOPICS}
    errors = []
    for row, result in zip(rows, results, strict=True):
        gold, pred = set(row["topics"]), set(result.topics)
        lang = by_lang.setdefault(row.get("lang") or "?", Counter())
        for topic in gold | pred:
            kind = "tp" if topic in gold and topic in pred else ("fp" if topic in pred else "fn")
            total[kind] += 1
            lang[kind] += 1
            by_topic[topic][kind] += 1
        if gold != pred:
            errors.append((row["id"], row["caption"], sorted(gold), sorted(pred)))
    return {
        "micro": _prf(total["tp"], total["fp"], total["fn"]),
        "lang": {k: _prf(v["tp"], v["fp"], v["fn"]) for k, v in sorted(by_lang.items())},
        "topic": {
            k: (*_prf(v["tp"], v["fp"], v["fn"]), v["tp"] + v["fn"]) for k, v in by_topic.items()
        },
        "errors": errors,
        "version": tagger.version,
    }


def test_dev_set_quality() -> None:
    path = _dev_path()
    if path is None:
        pytest.skip(
            "dev set not found: expected shared/eval/dev.jsonl beside the repository "
            "or $WORKPULSE_EVAL_DIR/dev.jsonl"
        )
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    report = evaluate(rows)
    p, r, f = report["micro"]
    print(f"\ndev set {path} ({len(rows)} captions), taxonomy {report['version']}")
    print(f"micro  P={p:.3f} R={r:.3f} F1={f:.3f}")
    for lang, (lp, lr, lf) in report["lang"].items():
        print(f"lang {lang:3}  P={lp:.3f} R={lr:.3f} F1={lf:.3f}")
    print(f"{'topic':15} {'P':>6} {'R':>6} {'F1':>6} {'support':>8}")
    for topic, (tp_, tr, tf, support) in report["topic"].items():
        print(f"{topic:15} {tp_:6.3f} {tr:6.3f} {tf:6.3f} {support:8d}")
    for error in report["errors"]:
        print("error:", *error)
    assert f >= 0.95, report["errors"]
