"""A hostile environment, through the real command line: each refusal of the system is one line
naming the path (or the port) and the reason, with its documented exit status, never a
traceback.

We run as root, and root ignores permission bits, so "read-only" is made with ``chattr +i``
(the immutable attribute, which binds root too); a full disk with a small tmpfs mount; a store
"under a file" needs nothing special. Tests that need ``chattr`` or ``mount`` are skipped where
the system does not allow them.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from feedsvc.errors import (
    EXIT_ENVIRONMENT,
    EXIT_IN_USE,
    EnvironmentFailure,
    StoreError,
    StoreFull,
    environment_error,
)

from support import SEEDS

FEEDSVC = [sys.executable, "-m", "feedsvc.cli"]
FIRST, SECOND = "000_b0f3105e8a9764a0.txt", "003_9838bf1a0f284c14.txt"
DEADLINE = 20.0


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FEEDSVC, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refusal prints (after any log lines of the work done before it)."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "seeds").mkdir()
    shutil.copy(SEEDS / FIRST, tmp_path / "seeds" / FIRST)
    return tmp_path


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """``path`` read-only even for root (``chattr +i``), for the duration."""
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not available here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A new tmpfs mounted at ``path`` with ``options``, unmounted afterwards."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def small_disk(path: Path, size: str = "4m") -> AbstractContextManager[Path]:
    return tmpfs(path, f"size={size}")


def read_only_mount(path: Path) -> AbstractContextManager[Path]:
    """An empty read-only file system at ``path``: writes fail with EROFS, as on a real one."""
    return tmpfs(path, "ro,size=64k")


def fill(disk: Path, leave_kib: int) -> None:
    """Fill ``disk`` up to ``leave_kib`` KiB free."""
    free = shutil.disk_usage(disk).free // 1024
    with (disk / "filler").open("wb") as handle:
        handle.write(b"\0" * max(0, free - leave_kib) * 1024)


def test_store_under_a_file_is_refused_in_one_line(project: Path) -> None:
    (project / "afile").write_text("not a directory")
    result = run("build", "--db", "afile/store.db", cwd=project)
    assert result.returncode == EXIT_ENVIRONMENT
    assert "afile/store.db.lock: cannot create the lock file: a file is where a directory " \
           "must be" in error_line(result)


def test_output_under_a_file_is_refused_in_one_line(project: Path) -> None:
    (project / "afile").write_text("not a directory")
    result = run("build", "--out", "afile/feeds", cwd=project)
    assert result.returncode == EXIT_ENVIRONMENT
    assert "cannot create the lock file" in error_line(result)


def test_unwritable_store_directory_is_refused_in_one_line(project: Path) -> None:
    (project / "var").mkdir()
    with immutable(project / "var"):
        result = run("build", "--db", "var/store.db", cwd=project)
    assert result.returncode == EXIT_ENVIRONMENT
    line = error_line(result)
    assert "var/store.db.lock: cannot create the lock file: operation not permitted" in line


def test_read_only_output_parent_is_refused_in_one_line(project: Path) -> None:
    (project / "public").mkdir()
    with immutable(project / "public"):
        result = run("build", "--out", "public/feeds", cwd=project)
    assert result.returncode == EXIT_ENVIRONMENT
    assert "public/.feeds.feedsvc-lock: cannot create the lock file" in error_line(result)


@pytest.mark.parametrize("flag", ["--out", "--db"])
def test_read_only_file_system_is_refused_in_one_line(project: Path, flag: str) -> None:
    with read_only_mount(project / "ro"):
        result = run("build", flag, "ro/target", cwd=project)
    assert result.returncode == EXIT_ENVIRONMENT
    assert "cannot create the lock file: read-only file system" in error_line(result)


def test_read_only_output_directory_keeps_the_published_feeds(project: Path) -> None:
    assert run("build", cwd=project).returncode == 0
    (project / "feeds" / "all.atom").unlink()
    with immutable(project / "feeds"):
        result = run("build", cwd=project)
    assert result.returncode == EXIT_ENVIRONMENT
    assert "feeds/all.atom: cannot write: Operation not permitted" in error_line(result)


def test_read_only_store_file_is_refused_in_one_line(project: Path) -> None:
    assert run("build", "--db", "store.db", cwd=project).returncode == 0
    shutil.copy(SEEDS / SECOND, project / "seeds" / SECOND)
    with immutable(project / "store.db"):
        result = run("build", "--db", "store.db", cwd=project)
    assert result.returncode == EXIT_ENVIRONMENT
    assert "store.db: the store is read-only" in error_line(result)


def test_full_disk_under_the_store_is_refused_in_one_line(project: Path) -> None:
    with small_disk(project / "disk") as disk:
        assert run("build", "--db", "disk/store.db", cwd=project).returncode == 0
        shutil.copy(SEEDS / SECOND, project / "seeds" / SECOND)
        fill(disk, leave_kib=64)  # room to open the store, not to write the new items
        result = run("build", "--db", "disk/store.db", cwd=project)
    assert result.returncode == EXIT_ENVIRONMENT
    assert "disk/store.db: the disk is full (database or disk is full)" in error_line(result)


def test_full_disk_under_the_output_is_refused_in_one_line(project: Path) -> None:
    with small_disk(project / "disk", size="64k"):
        result = run("build", "--out", "disk/feeds", cwd=project)
    assert result.returncode == EXIT_ENVIRONMENT
    assert ": cannot write: No space left on device" in error_line(result)


def test_a_full_store_maps_to_store_full_from_a_real_sqlite_error(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "s.db")
    db.execute("PRAGMA max_page_count = 2")  # the store may not grow: SQLITE_FULL
    with pytest.raises(sqlite3.OperationalError) as caught:
        db.execute("CREATE TABLE t (x)")
        db.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * 100)
        db.commit()
    mapped = environment_error(caught.value, "s.db")
    assert isinstance(mapped, StoreFull)
    assert str(mapped) == "s.db: the disk is full (database or disk is full)"
    assert mapped.exit_status == EXIT_ENVIRONMENT


def test_a_read_only_store_maps_to_store_error_from_a_real_sqlite_error(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "s.db").execute("CREATE TABLE t (x)").connection.commit()
    db = sqlite3.connect(f"file:{tmp_path / 's.db'}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as caught:
        db.execute("INSERT INTO t VALUES (1)")
    mapped = environment_error(caught.value, "s.db")
    assert type(mapped) is StoreError and "the store is read-only" in str(mapped)


def test_other_errors_are_not_mapped_they_are_bugs() -> None:
    assert environment_error(sqlite3.OperationalError("no such table: items")) is None
    assert environment_error(ValueError("x")) is None
    assert isinstance(environment_error(OSError(28, "No space", "f")), EnvironmentFailure)


@pytest.fixture
def taken_port() -> Iterator[int]:
    holder = socket.create_server(("127.0.0.1", 0))
    try:
        yield holder.getsockname()[1]
    finally:
        holder.close()


@pytest.mark.parametrize("command", ["serve", "daemon"])
def test_taken_port_says_how_to_choose_another(project: Path, taken_port: int,
                                               command: str) -> None:
    if command == "serve":
        (project / "feeds").mkdir()
    result = run(command, "--port", str(taken_port), cwd=project)
    assert result.returncode == EXIT_ENVIRONMENT
    line = error_line(result)
    assert f"127.0.0.1:{taken_port}: cannot listen: Address already in use" in line
    assert "choose another port with --port, or 'port' in the [server] table" in line


def test_symlinked_store_is_locked_as_the_store_itself(project: Path) -> None:
    """Two real processes: a daemon owns var/store.db, a build given a symlink to it refuses."""
    (project / "var").mkdir()
    (project / "link.db").symlink_to(project / "var" / "store.db")
    log = project / "daemon.log"
    with log.open("w") as handle:
        daemon = subprocess.Popen([*FEEDSVC, "daemon", "--db", "var/store.db", "--port", "0"],
                                  cwd=project, stdout=handle, stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + DEADLINE
        while "daemon.started" not in log.read_text():
            assert daemon.poll() is None and time.monotonic() < end, log.read_text()
            time.sleep(0.05)
        result = run("build", "--db", "link.db", "--out", "other", cwd=project)
    finally:
        daemon.terminate()
        daemon.wait(DEADLINE)
    assert result.returncode == EXIT_IN_USE
    assert f"{project / 'var' / 'store.db.lock'}: already in use by process {daemon.pid}" \
        in error_line(result)
    assert not (project / "other").exists()
