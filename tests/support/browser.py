"""Headless Chromium (Debian's `chromium` package) for tests: the DOM after scripts ran,
and screenshots. Each call is one browser process, waited for and ended by its PID."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-extensions",
    "--disable-background-networking",
]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        raise RuntimeError("chromium not found: install Debian's chromium package")
    return path


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def dump_dom(page: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran (`--dump-dom`)."""
    out = _run(["--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri()], profile)
    if out.returncode != 0:
        raise RuntimeError(f"chromium failed: {out.stderr[-2000:]}")
    return out.stdout


def screenshot(page: Path, png: Path, profile: Path, width: int = 1280, height: int = 2000) -> Path:
    out = _run(
        [f"--window-size={width},{height}", f"--screenshot={png}", page.resolve().as_uri()],
        profile,
    )
    if out.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium screenshot failed: {out.stderr[-2000:]}")
    return png
