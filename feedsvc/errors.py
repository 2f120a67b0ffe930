"""One base error for feedsvc; every subclass names the file, URL or slug it is about.

``str(error)`` is a complete one-line message a user can act on, and ``exit_status`` is the
status a command exits with when the error stops it (the table is in README.md and in every
command's ``--help``): 1 the work failed, 2 misuse or an invalid configuration, 3 another
feedsvc owns the store or output directory, 4 the system refused (permissions, a read-only or
full disk, a port in use).
"""

from __future__ import annotations

import errno
import sqlite3

EXIT_OK = 0
EXIT_FAILED = 1  # a source could not be read (the rest was published), gov.kz did not answer
EXIT_USAGE = 2  # a bad flag or setting: nothing was started (click uses 2 for misuse too)
EXIT_IN_USE = 3  # another feedsvc process owns the store or output directory: try again later
EXIT_ENVIRONMENT = 4  # the system refused: permissions, read-only or full disk, port in use


class FeedsvcError(Exception):
    """Base class of every error feedsvc raises on purpose."""

    exit_status = EXIT_FAILED


class SourceError(FeedsvcError):
    """A source (a file or a URL) could not be read; other sources are not affected."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class SourceFileError(SourceError):
    """A text-dump file is missing, unreadable, empty, binary or in an unknown encoding."""


class FetchError(SourceError):
    """A gov.kz request failed after its retries, or answered something unexpected."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(url, reason if status is None else f"HTTP {status}: {reason}")
        self.url = url
        self.status = status


class InvalidSourceURL(FeedsvcError):
    """A URL that is not a gov.kz organisation link."""

    exit_status = EXIT_USAGE

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url


class FileLineError(FeedsvcError):
    """A file a person edits is wrong at a line: the message starts with ``path:line:``."""

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class ConfigError(FileLineError):
    """The configuration file (or a flag) is invalid; nothing starts."""

    exit_status = EXIT_USAGE


class DataFileError(FileLineError):
    """A data file (topics, organisations) is malformed."""

    exit_status = EXIT_USAGE


class EnvironmentFailure(FeedsvcError):
    """The system refused what feedsvc needs: a path it cannot write, a full disk, a port."""

    exit_status = EXIT_ENVIRONMENT

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class StoreError(EnvironmentFailure):
    """The SQLite store cannot be used."""


class StoreFull(StoreError):
    """SQLite could not write because the disk (or the file system's quota) is full."""


class QueryTooSlow(StoreError):
    """A query feed's query ran past its time limit and was cut off."""

    def __init__(self, path: str, seconds: float) -> None:
        super().__init__(path, f"the query took longer than {seconds:g} s and was stopped")


class AlreadyRunning(FeedsvcError):
    """Another feedsvc process owns this store or output directory."""

    exit_status = EXIT_IN_USE

    def __init__(self, path: str, holder: str) -> None:
        super().__init__(f"{path}: already in use by {holder}; only one feedsvc daemon or build "
                         "may own a store and an output directory at a time")
        self.path = path


class PublishError(EnvironmentFailure):
    """A feed could not be written; the previously published file is left as it was."""


class ServeError(EnvironmentFailure):
    """The directory to serve is missing, or the server could not listen or did not come up."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(address, reason)
        self.address = address  # host:port, or the directory


# errno values that mean "this system will not let us", not "feedsvc has a bug"
_REFUSALS = {
    errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded", errno.ENOTDIR: "a part of the path is not a directory",
    errno.EISDIR: "is a directory", errno.EEXIST: "a file is where a directory must be",
    errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files in the system",
}
_SQLITE_REFUSALS = (
    ("database or disk is full", "the disk is full"),
    ("attempt to write a readonly database", "the store is read-only"),
    ("unable to open database file", "cannot open the store"),
    ("disk i/o error", "disk I/O error"),
)


def environment_error(exc: BaseException, path: str | None = None
                      ) -> EnvironmentFailure | None:
    """The domain error for a refusal of the system (``OSError``, ``sqlite3.OperationalError``),
    or None when ``exc`` is something else (a bug, which must surface).

    ``path`` names the store for SQLite errors, which do not say which file they are about.
    """
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        for needle, reason in _SQLITE_REFUSALS:
            if needle in text:
                kind = StoreFull if needle == "database or disk is full" else StoreError
                return kind(path or "the store", f"{reason} ({exc})")
        return None
    if isinstance(exc, OSError) and exc.errno in _REFUSALS:
        where = exc.filename if exc.filename is not None else path or "a file"
        reason = _REFUSALS[exc.errno]
        if exc.filename2 is not None:
            reason += f" (renaming to {exc.filename2})"
        return EnvironmentFailure(str(where), reason)
    return None
