"""Precision, recall and F1 of the tagger on labelled captions (TAXONOMY.md rows)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.support.taggers import shared_tagger
from workpulse.tagging import TOPICS

EVAL_DIR = Path(__file__).resolve().parents[1] / "data" / "eval"
"""The labelled sets kept in the repository (see its README)."""


def eval_rows(name: str | None = None) -> list[dict]:
    """The rows of one labelled set of `EVAL_DIR` (``name``), or of all of them."""
    paths = [EVAL_DIR / name] if name else sorted(EVAL_DIR.glob("*.jsonl"))
    return [
        json.loads(line)
        for path in paths
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def evaluate(rows: list[dict]) -> dict:
    tagger = shared_tagger()
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
            errors.append((row.get("id", "-"), row["caption"], sorted(gold), sorted(pred)))
    return {
        "micro": _prf(total["tp"], total["fp"], total["fn"]),
        "lang": {k: _prf(v["tp"], v["fp"], v["fn"]) for k, v in sorted(by_lang.items())},
        "topic": {
            k: (*_prf(v["tp"], v["fp"], v["fn"]), v["tp"] + v["fn"]) for k, v in by_topic.items()
        },
        "errors": errors,
        "version": tagger.version,
    }
