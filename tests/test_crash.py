"""The standing crash test: builds killed with SIGKILL at random moments lose nothing and
corrupt nothing (scripts/crash_suite.py runs it at scale)."""

from __future__ import annotations

import subprocess
import sys

from support import ROOT


def test_builds_killed_at_random_moments_lose_and_corrupt_nothing() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "crash_suite.py"), "--items", "2000",
         "--files", "10", "--orgs", "40", "--rounds", "2", "--kills", "2"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lost items: 0; extra items: 0; corruptions: 0" in done.stdout
    assert "published files that differ: 0; temporary files left: 0" in done.stdout
