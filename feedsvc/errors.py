"""One base error for feedsvc; every subclass names the file, URL or slug it is about.

``str(error)`` is a complete one-line message a user can act on.
"""

from __future__ import annotations


class FeedsvcError(Exception):
    """Base class of every error feedsvc raises on purpose."""


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


class DataFileError(FileLineError):
    """A data file (topics, organisations) is malformed."""


class StoreError(FeedsvcError):
    """The SQLite store cannot be used."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path


class QueryTooSlow(StoreError):
    """A query feed's query ran past its time limit and was cut off."""

    def __init__(self, path: str, seconds: float) -> None:
        super().__init__(path, f"the query took longer than {seconds:g} s and was stopped")


class AlreadyRunning(FeedsvcError):
    """Another feedsvc process owns this store or output directory."""

    def __init__(self, path: str, holder: str) -> None:
        super().__init__(f"{path}: already in use by {holder}; only one feedsvc daemon or build "
                         "may own a store and an output directory at a time")
        self.path = path


class PublishError(FeedsvcError):
    """A feed could not be written; the previously published file is left as it was."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path


class ServeError(FeedsvcError):
    """The directory to serve is missing, or the server could not listen or did not come up."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"{address}: {reason}")
        self.address = address  # host:port, or the directory
        self.reason = reason
