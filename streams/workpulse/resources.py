"""The one place that finds workpulse's data files.

The contract (JSON Schema), the ClickHouse DDL and the lexicons have one copy in the
repository, `schemas/`, which ships inside the package as `workpulse/schemas` (a link in
the source tree, real files in the wheel) and is found with `importlib.resources`, so a
wheel installed anywhere finds them. The demo's caption corpus ships the same way
(`workpulse/dev/corpus`). The `schemas_dir` and `lexicon_dir` settings override the
packaged copies; callers pass them in (this module reads no configuration itself).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _package_path(*parts: str) -> Path:
    # Installed packages live on the file system (not in a zip): a Traversable of
    # a regular package is a Path.
    return Path(str(files("workpulse").joinpath(*parts)))


def schemas_dir(override: Path | None = None) -> Path:
    """The directory holding `video_event.schema.json`, `clickhouse/` and `lexicons/`."""
    return Path(override) if override is not None else _package_path("schemas")


def contract_path(schemas: Path | None = None) -> Path:
    """The input contract: the JSON Schema of one video event."""
    return schemas_dir(schemas) / "video_event.schema.json"


def ddl_dir(schemas: Path | None = None, *, cluster: bool = False) -> Path:
    """The numbered ClickHouse DDL files (single node, or the cluster variant)."""
    base = schemas_dir(schemas) / "clickhouse"
    return base / "cluster" if cluster else base


def lexicon_dir(override: Path | None = None, schemas: Path | None = None) -> Path:
    """The tagging lexicons: `override`, else `lexicons/` of the schemas directory."""
    return Path(override) if override is not None else schemas_dir(schemas) / "lexicons"


def corpus_dir() -> Path:
    """The synthetic workload's caption corpus (data files of `workpulse.dev`)."""
    return _package_path("dev", "corpus")
