"""The command line as a user runs it: a real subprocess, exit codes and messages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest

from feedsvc.lock import OwnerLock

from support import SEEDS

FEEDSVC = [sys.executable, "-m", "feedsvc.cli"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FEEDSVC, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    return tmp_path


def test_build_without_arguments_runs_the_embedded_default(project: Path) -> None:
    result = run("build", cwd=project)
    assert result.returncode == 0, result.stderr
    feed = feedparser.parse((project / "feeds" / "all.atom").read_bytes())
    assert not feed.bozo and len(feed.entries) == 25
    assert (project / "var" / "feedsvc.sqlite3").exists()
    assert "items: 25 new, 0 changed, 0 unchanged" in result.stderr
    assert "errors: 0" in result.stderr


def test_second_build_reports_nothing_to_do_and_touches_no_file(project: Path) -> None:
    run("build", cwd=project)

    def snapshot() -> dict[str, int]:
        return {str(p): p.stat().st_mtime_ns for p in (project / "feeds").rglob("*")}

    before = snapshot()
    result = run("build", cwd=project)
    assert result.returncode == 0
    assert "2 source(s) read (2 unchanged since last run)" in result.stderr
    assert "files written: 0" in result.stderr
    assert snapshot() == before


def test_bad_source_fails_the_exit_status_but_publishes_the_rest(project: Path) -> None:
    (project / "seeds" / "empty.txt").write_bytes(b"")
    result = run("build", cwd=project)
    assert result.returncode == 1
    assert f"error: {Path('seeds') / 'empty.txt'}: empty file" in result.stderr
    assert "Traceback" not in result.stderr
    assert (project / "feeds" / "all.atom").exists()


def test_explicit_flags_choose_source_output_store_and_base(project: Path) -> None:
    result = run("build", "--source", "seeds/003_9838bf1a0f284c14.txt", "--out", "public",
                 "--db", "s.db", "--base-url", "https://feeds.example.org/x/", cwd=project)
    assert result.returncode == 0, result.stderr
    feed = feedparser.parse((project / "public" / "all.atom").read_bytes())
    assert len(feed.entries) == 5
    assert feed.feed.links[0].href == "https://feeds.example.org/x/all.atom"


def test_relative_base_url_is_a_usage_error(project: Path) -> None:
    result = run("build", "--base-url", "feeds.example.org", cwd=project)
    assert result.returncode == 2
    assert "--base-url" in result.stderr


def test_bad_config_file_is_one_line_naming_file_and_line(project: Path) -> None:
    (project / "bad.toml").write_text('entry_cap = 5\nnonsense = 1\n', encoding="utf-8")
    result = run("build", "--config", "bad.toml", cwd=project)
    assert result.returncode == 2
    assert "bad.toml:2: unknown key 'nonsense'" in result.stderr
    assert "Traceback" not in result.stderr


def test_build_refuses_while_another_process_owns_the_store(project: Path) -> None:
    lock = OwnerLock(project / "var" / "feedsvc.sqlite3.lock")
    lock.acquire()
    try:
        result = run("build", cwd=project)
    finally:
        lock.release()
    assert result.returncode == 3
    assert "already in use" in result.stderr


@pytest.mark.parametrize("command", ["build", "daemon", "serve"])
def test_every_command_has_help_with_an_example(command: str, tmp_path: Path) -> None:
    result = run(command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "Example" in result.stdout


@pytest.mark.parametrize(("command", "statuses"), [
    (["build"], [0, 1, 2, 3, 4]),
    (["daemon"], [0, 2, 3, 4]),
    (["serve"], [0, 2, 4]),
    (["explain-topics"], [0, 2, 4]),
    (["registry", "update"], [0, 1, 2, 4]),
])
def test_every_command_documents_its_exit_statuses(command: list[str], statuses: list[int],
                                                   tmp_path: Path) -> None:
    from feedsvc.cli import EXIT_STATUSES

    result = run(*command, "--help", cwd=tmp_path)
    help_text = " ".join(result.stdout.split())
    assert "Exit status:" in help_text
    for status in statuses:
        assert f"{status} {' '.join(EXIT_STATUSES[status].split())}" in help_text


def test_readme_documents_every_exit_status() -> None:
    from feedsvc.cli import EXIT_STATUSES

    from support import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for status in EXIT_STATUSES:
        assert f"\n| {status} | " in readme


def test_a_link_that_is_not_gov_kz_is_misuse(project: Path) -> None:
    result = run("build", "--source", "https://example.org/memleket/entities/mfa", cwd=project)
    assert result.returncode == 2
    assert "not a gov.kz link" in result.stderr and "Traceback" not in result.stderr
