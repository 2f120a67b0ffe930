"""What the README tells a newcomer to run: its pasted output is true, and it leaves no litter.

Both tests run the real commands in subprocesses, in a copy of the repository's files.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import ROOT, SEEDS

FEEDSVC = [sys.executable, "-m", "feedsvc.cli"]
SUMMARY = re.compile(r"^feedsvc build: .*?(?= \(\d+\.\d+ s\)$)", re.MULTILINE)
DEADLINE = 30.0


def readme_one_shot_block() -> str:
    """The console block under "A one-shot build" in README.md."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    after = readme.split("A one-shot build", 1)[1]
    return after.split("```console\n", 1)[1].split("```", 1)[0]


def build(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FEEDSVC, "build"], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def test_readme_one_shot_example_prints_what_the_build_prints(tmp_path: Path) -> None:
    """The counts of each summary line (not its time) as a real run on seeds/ prints them."""
    block = readme_one_shot_block()
    commands = [line for line in block.splitlines() if line.startswith("$ ")]
    assert commands == ["$ .venv/bin/feedsvc build"] * 2
    expected = SUMMARY.findall(block)
    shutil.copytree(SEEDS, tmp_path / "seeds")
    printed = []
    for _ in commands:
        run = build(tmp_path)
        assert run.returncode == 0, run.stderr
        printed += SUMMARY.findall(run.stderr)
    assert len(expected) == len(commands)
    assert printed == expected, "README.md's one-shot example is out of date; paste a real run"


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@invalid",
                           *args], cwd=cwd, capture_output=True, text=True, check=True,
                          timeout=60).stdout


def copy_of_repository(target: Path) -> Path:
    """The repository's files as they are now (committed or not), as a fresh git repository."""
    names = git("ls-files", "-z", "--cached", "--others", "--exclude-standard",
                cwd=ROOT).split("\0")
    for name in filter(None, names):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is left out
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git("init", "-q", cwd=target)
    git("add", "-A", cwd=target)
    git("commit", "-q", "-m", "copy", cwd=target)
    return target


def run_daemon_until_published(repo: Path, log: Path) -> None:
    """README command 1's daemon (on a free port), until it has published; then SIGTERM."""
    with log.open("w") as handle:
        daemon = subprocess.Popen([*FEEDSVC, "daemon", "--port", "0"], cwd=repo,
                                  stdout=handle, stderr=subprocess.STDOUT, text=True)
        try:
            end = time.monotonic() + DEADLINE
            while not ("serve.listening" in log.read_text() and
                       (repo / "feeds" / "all.atom").exists()):
                assert daemon.poll() is None, log.read_text()
                assert time.monotonic() < end, log.read_text()
                time.sleep(0.05)  # polling a real process, with a deadline
        finally:
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=DEADLINE) == 0, log.read_text()


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs git and a git checkout")
def test_following_the_readme_leaves_git_status_clean(tmp_path: Path) -> None:
    """Install, build twice, run the daemon: ``git status --porcelain`` shows nothing new.

    ``pip install .`` leaves ``build/`` and ``*.egg-info`` in the tree; the build and the
    daemon leave ``feeds/``, ``var/`` and the lock file beside ``feeds/``. The install goes to
    a throw-away target, without dependencies; like the README's, it fetches its build backend
    (setuptools) from the package index or pip's cache.
    """
    repo = copy_of_repository(tmp_path / "repo")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
         str(tmp_path / "site"), "."],
        cwd=repo, capture_output=True, text=True, timeout=300, check=False)
    assert install.returncode == 0, install.stderr
    for _ in range(2):
        assert build(repo).returncode == 0
    run_daemon_until_published(repo, tmp_path / "daemon.log")
    assert (repo / "feeds" / "all.atom").exists() and (repo / "build").exists()
    assert git("status", "--porcelain", "--ignored=no", cwd=repo) == ""
