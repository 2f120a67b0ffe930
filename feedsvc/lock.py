"""One owner per store and output directory: an advisory ``flock`` held for the process's life.

The kernel releases the lock when the process dies, however it dies, so a crash never leaves a
stale lock behind. The file holds the owner's pid, for the error message of the second comer.

Both paths are resolved first (symlinks followed, ``..`` folded): a store reached through a
symlink is the same store, so its lock must be the same file. Issue 15 item 10: two builds, one
given ``var/feedsvc.sqlite3`` and one a symlink to it, both got "their" lock and one crashed
with an IntegrityError.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from .errors import AlreadyRunning, EnvironmentFailure, environment_error


class OwnerLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`AlreadyRunning` (another owner) or
        :class:`~feedsvc.errors.EnvironmentFailure` (cannot create the lock file)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            problem = environment_error(exc, str(self.path))
            if problem is None:
                raise
            raise EnvironmentFailure(str(self.path), "cannot create the lock file: "
                                     f"{problem.reason} ({exc.filename})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(str(self.path), f"process {holder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OwnerLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def store_lock(db: Path) -> OwnerLock:
    """The lock every command that writes the store holds, beside the store (its real path:
    a symbolic link to the store must not get past it)."""
    store = db.resolve()
    return OwnerLock(store.with_name(store.name + ".lock"))


def _workers_lock(db: Path) -> Path:
    store = db.resolve()
    return store.with_name(store.name + ".workers-lock")


def hold_for_worker(db: Path) -> int:
    """Taken by each worker process of a build, for its life (a shared ``flock``): a worker
    outlives a parent killed with SIGKILL by a moment, and must not write into the output
    while the next owner does (see :class:`PreviousWorkersGone`)."""
    fd = os.open(_workers_lock(db), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


class PreviousWorkersGone:
    """Entered after the owner locks: waits until no worker of a previous owner is alive.

    Workers end themselves soon after their parent dies (feedsvc.parallel), and only then
    does the next build or daemon touch the output directory.
    """

    def __init__(self, db: Path, timeout: float = 30.0) -> None:
        self.path = _workers_lock(db)
        self.timeout = timeout

    def __enter__(self) -> PreviousWorkersGone:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return self  # the store lock beside it was made: this is as good as it gets
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return self
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise AlreadyRunning(str(self.path), "the worker processes of a "
                                             "previous build") from None
                    time.sleep(0.05)
        finally:
            os.close(fd)  # the exclusive hold is only a test: released here

    def __exit__(self, *exc: object) -> None:
        pass


def owner_locks(db: Path, out_dir: Path) -> list[OwnerLock | PreviousWorkersGone]:
    """The locks a build or daemon must hold: one beside the store, one beside the output
    directory. Not inside it: a lock file there would be published and its mtime would change
    on every run."""
    out = out_dir.resolve()
    return [store_lock(db), OwnerLock(out.with_name(f".{out.name}.feedsvc-lock")),
            PreviousWorkersGone(db)]
