"""Where the project's data files live (schemas, lexicons, dashboards)."""

from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


def repo_root() -> Path:
    return _REPO_ROOT


def schemas_dir() -> Path:
    """`schemas/` of the checkout: the single source of the contract, DDL and lexicons.

    WORKPULSE_SCHEMAS_DIR overrides it for installs outside a checkout.
    """
    override = os.environ.get("WORKPULSE_SCHEMAS_DIR")
    return Path(override) if override else _REPO_ROOT / "schemas"
