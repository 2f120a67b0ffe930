"""Atomic writes of only what changed: bytes and paths in, never Items.

A file is written to a temporary name in its own directory, flushed, and renamed over the old
one, so a reader (or the HTTP server) sees either the old feed or the new one, never half of
one. Identical bytes are not written at all, so an unchanged feed keeps its mtime and ETag.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import PublishError


def write_if_changed(path: Path, data: bytes, *, durable: bool = True) -> bool:
    """Write ``data`` to ``path`` atomically unless it holds exactly that; True if written.

    ``durable=False`` skips the fsync before the rename: the swap is still atomic for every
    reader and survives the process dying, but not a power cut. For the pages, which are many
    (hundreds per big build, each an fsync of its own otherwise) and made again from the store.
    """
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise PublishError(str(path), f"cannot read the published file: {exc.strerror}") from exc
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise PublishError(str(path), f"cannot write: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise PublishError(str(path), f"cannot write: {exc.strerror}") from exc
    return True


def remove_stale_temporaries(out_dir: Path) -> int:
    """Delete ``.tmp-*`` files an interrupted run left behind; they are never served."""
    removed = 0
    if not out_dir.is_dir():
        return 0
    for temp in out_dir.rglob(".tmp-*.part"):
        temp.unlink(missing_ok=True)
        removed += 1
    return removed
