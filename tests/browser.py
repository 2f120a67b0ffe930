"""Headless Chromium for the browser tests: Debian's build, driven by Playwright.

Playwright's own browser download cannot work here, so the system's Chromium is launched by
path. When it (or the Java runtime, or axe-core) is missing the tests skip, except under
``CI=true``, where a missing tool is a failure: CI must run them (scripts/install-test-deps.sh
installs everything).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def require(present: bool, what: str) -> None:
    """Skip (locally) or fail (in CI) when a tool the test needs is missing."""
    if present:
        return
    message = f"{what} is missing: run scripts/install-test-deps.sh"
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(message)
    pytest.skip(message)


def require_chromium() -> None:
    require(CHROMIUM.exists(), f"Chromium ({CHROMIUM})")


def require_java() -> None:
    require(shutil.which("java") is not None, "a Java runtime (default-jre-headless)")


def require_axe() -> None:
    require(AXE.is_file(), f"axe-core ({AXE})")
