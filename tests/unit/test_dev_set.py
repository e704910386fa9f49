"""Quality on the labelled dev set (shared/eval/dev.jsonl beside the repository).

Run with ``pytest -s`` (or ``-rA``) to see the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from tests.support.tagging_eval import evaluate


def _dev_path() -> Path | None:
    candidates = []
    env = os.environ.get("WORKPULSE_EVAL_DIR")
    if env:
        candidates.append(Path(env) / "dev.jsonl")
    repo = Path(__file__).resolve().parents[2]
    candidates.append(repo.parent / "shared/eval/dev.jsonl")
    origin = _clone_origin(repo)
    if origin is not None:  # a clean clone (as CI makes) of a checkout beside shared/
        candidates.append(origin.parent / "shared/eval/dev.jsonl")
    return next((p for p in candidates if p.is_file()), None)


def _clone_origin(repo: Path) -> Path | None:
    """The local repository this one was cloned from, if any."""
    try:
        url = subprocess.run(
            ["git", "-C", str(repo), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    url = url.removeprefix("file://")
    return Path(url) if url.startswith("/") else None


def test_dev_set_quality(figures: list[str]) -> None:
    path = _dev_path()
    if path is None:
        figures.append("dev set: not found, skipped (set WORKPULSE_EVAL_DIR)")
        pytest.skip(
            "dev set not found: expected shared/eval/dev.jsonl beside the repository "
            "(or the repository it was cloned from) or $WORKPULSE_EVAL_DIR/dev.jsonl"
        )
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    report = evaluate(rows)
    p, r, f = report["micro"]
    lines = [
        f"dev set {path} ({len(rows)} captions), taxonomy {report['version']}",
        f"  micro          P={p:.3f} R={r:.3f} F1={f:.3f}",
    ]
    for lang, (lp, lr, lf) in report["lang"].items():
        lines.append(f"  lang {lang:9} P={lp:.3f} R={lr:.3f} F1={lf:.3f}")
    lines.append(f"  {'topic':15} {'P':>6} {'R':>6} {'F1':>6} {'support':>8}")
    for topic, (tp_, tr, tf, support) in report["topic"].items():
        lines.append(f"  {topic:15} {tp_:6.3f} {tr:6.3f} {tf:6.3f} {support:8d}")
    for error in report["errors"]:
        lines.append("  error: " + " | ".join(map(str, error)))
    figures.extend(lines)
    assert f >= 0.95, report["errors"]
