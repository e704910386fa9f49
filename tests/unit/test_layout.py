"""Nothing imports upward (docs/layout.md), and the pure rooms import no I/O library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "streams" / "workpulse"

ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "tagging": {"model", "resources"},
    "processing": {"tagging", "model", "resources", "lines"},
    "config": set(),
    "resources": set(),
    "metrics": set(),
    "terminal": set(),
    "errors": set(),
    "lines": set(),
    "kafka": {"config", "errors", "lines"},
    "clickhouse": {"resources"},
    "sinks": {"clickhouse", "model", "metrics", "errors"},
    "report": {"clickhouse", "processing", "tagging", "model", "resources"},
    "worker": {
        "processing", "tagging", "sinks", "clickhouse", "kafka", "model", "metrics", "config",
        "resources", "errors",
    },
    "dev": {
        "worker", "processing", "tagging", "sinks", "clickhouse", "kafka", "model", "metrics",
        "config", "resources", "terminal", "report", "errors", "lines",
    },
    "cli": {
        "dev", "worker", "processing", "tagging", "sinks", "clickhouse", "kafka", "model",
        "metrics", "config", "resources", "terminal", "report", "errors", "lines",
    },
}  # fmt: skip
PURE = ("model", "tagging", "processing")
IO_LIBRARIES = ("faust", "mode", "aiokafka", "kafka", "clickhouse_connect", "chdb")


def room(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def imports(path: Path) -> list[str]:
    """Every module name imported by the file (including imports inside functions)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "schemas" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_nothing_imports_upward(path: Path) -> None:
    here = room(path)
    if here in ("__init__", "__main__"):
        return
    for name in imports(path):
        parts = name.split(".")
        if parts[0] != "workpulse" or len(parts) == 1:
            continue  # a library, or the package root (its version)
        there = parts[1]
        if there != here:
            assert there in ALLOWED[here], f"{path.name}: {here}/ must not import {name}"


@pytest.mark.parametrize(
    "path",
    [p for p in MODULES if room(p) in PURE],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_pure_rooms_import_no_io_library(path: Path) -> None:
    for name in imports(path):
        assert name.split(".")[0] not in IO_LIBRARIES, f"{path.name} imports {name}"


def test_every_room_is_known() -> None:
    rooms = {room(p) for p in MODULES} - {"__init__", "__main__"}
    assert rooms <= set(ALLOWED)
