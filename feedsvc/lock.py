"""One owner per store and output directory: an advisory ``flock`` held for the process's life.

The kernel releases the lock when the process dies, however it dies, so a crash never leaves a
stale lock behind. The file holds the owner's pid, for the error message of the second comer.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import AlreadyRunning


class OwnerLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
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
    """The lock every command that writes the store holds, beside the store."""
    return OwnerLock(db.with_name(db.name + ".lock"))


def owner_locks(db: Path, out_dir: Path) -> list[OwnerLock]:
    """The locks a build or daemon must hold: one beside the store, one beside the output
    directory. Not inside it: a lock file there would be published and its mtime would change
    on every run."""
    out = out_dir.resolve()
    return [store_lock(db), OwnerLock(out.with_name(f".{out.name}.feedsvc-lock"))]
