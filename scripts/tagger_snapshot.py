"""Snapshot the tagger's results, to show that a change of the tagger's code changes none.

    python scripts/tagger_snapshot.py save /tmp/before.json    # on the old code
    python scripts/tagger_snapshot.py check /tmp/before.json   # on the new code
    python scripts/tagger_snapshot.py save /tmp/p.json --engine python  # either engine

(tests/unit/test_tagging_engines.py compares the two engines on every run; this script is
for a change of one engine's code.)

Inputs (about 96k): 90k generator events (seeds 7, 1, 2), tagged in batches of 1000
through the caches; the dev set's captions with and without their language and
hashtags; 3,000 pairs of dev-set captions joined by a sentence break, a newline or a
hashtag, tagged in a batch and one at a time on a cold tagger. A snapshot holds the
topics and `matched` of each; `check` prints how many differ and the first ones.

The dev set is read from $WORKPULSE_EVAL_DIR/dev.jsonl or ../shared/eval/dev.jsonl.
This is a tool for refactoring the hot path, not for lexicon changes (those change
results on purpose: look at the dev-set test's figures instead).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path
from typing import Any

import orjson

from workpulse.dev.bench.tagging import _events
from workpulse.tagging import load_tagger
from workpulse.tagging.tagger import ENGINES

Item = tuple[str, tuple[str, ...], str | None]


def _dev_rows() -> list[dict[str, Any]]:
    env = os.environ.get("WORKPULSE_EVAL_DIR")
    repo = Path(__file__).resolve().parents[1]
    for path in ([Path(env) / "dev.jsonl"] if env else []) + [
        repo.parent / "shared/eval/dev.jsonl"
    ]:
        if path.exists():
            return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]
    sys.exit("dev set not found: set WORKPULSE_EVAL_DIR")


def _item(obj: dict[str, Any]) -> Item:
    return (obj.get("caption") or "", tuple(obj.get("hashtags") or ()), obj.get("lang"))


def inputs() -> tuple[list[Item], list[Item]]:
    """(inputs tagged in batches, inputs tagged one at a time on a cold tagger)."""
    batched = [_item(orjson.loads(line)) for line in _events(50_000, 7)[0]]
    for seed in (1, 2):
        batched += [_item(orjson.loads(line)) for line in _events(20_000, seed)[0]]
    rows = _dev_rows()
    for row in rows:
        caption, tags, lang = _item(row)
        batched += [(caption, tags, lang), (caption, tags, None), (caption, (), lang)]
    rng = random.Random(3)
    pairs = []
    for _ in range(3000):
        a, b = rng.sample(rows, 2)
        sep = rng.choice([" ", ". ", "\n", " and ", " #"])
        lang = rng.choice([a.get("lang"), None, "fr-CA"])
        pairs.append(
            (a["caption"] + sep + b["caption"], (*a["hashtags"], *b["hashtags"][:1]), lang)
        )
    return batched + pairs, pairs


def snapshot(engine: str | None = None) -> list[list[Any]]:
    tagger = load_tagger(engine=engine)
    batched, single = inputs()
    out = []
    for i in range(0, len(batched), 1000):
        out.extend(tagger.tag_batch(batched[i : i + 1000]))
    tagger.clear_caches()
    out.extend(tagger.tag(*item) for item in single)
    return [[r.topics, r.matched] for r in out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["save", "check"])
    parser.add_argument("path", type=Path)
    parser.add_argument("--engine", choices=ENGINES, default=None)
    args = parser.parse_args()
    data = orjson.loads(orjson.dumps(snapshot(args.engine), option=orjson.OPT_SORT_KEYS))
    if args.action == "save":
        args.path.write_bytes(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
        print(f"saved {len(data)} results ({sum(1 for d in data if d[0])} with topics)")
        return
    base = orjson.loads(args.path.read_bytes())
    diffs = [i for i, (a, b) in enumerate(zip(base, data, strict=True)) if a != b]
    print(f"compared {len(data)} results: {len(diffs)} differ")
    for i in diffs[:10]:
        print(f"  #{i}: before {base[i]} after {data[i]}")
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
