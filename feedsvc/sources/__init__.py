"""Source kinds: each turns bytes (a file, an API answer) into Items.

A source has a stable ``name`` and a ``read(context)`` method (:class:`BaseSource` gives the
rest its defaults). The pipeline gives it a :class:`SourceContext` (what it stored last time,
what the store already knows) and gets back a :class:`SourceResult`. Expected failures are
raised as :class:`feedsvc.errors.SourceError`; the pipeline records them and goes on.

A kind of source is one module here plus one line in :data:`KINDS`. The module provides
``expand(spec, config, client) -> list[Source]`` (the sources one configured entry stands for),
``make_client(config, sleep)`` (what its sources share, made once before any is read, or
None) and
``check(location)`` (raises a FeedsvcError for a location that can never work).
Modules are imported only when a source of their kind is configured: a build of text files
never imports the HTTP stack.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Any, Protocol

from ..errors import SourceError
from ..model import Item


class SourceContext(Protocol):
    now: datetime

    def previous_state(self) -> dict[str, Any] | None:
        """The ``state`` this source returned after its last successful read, if any."""

    def is_known(self, item: Item) -> bool:
        """True when the store already holds exactly this item (same identity, same content) as
        seen by this source: an incremental reader can stop there."""


@dataclass(slots=True)
class SourceResult:
    items: list[Item] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Saved by the pipeline after a successful read, handed back next time.
    state: dict[str, Any] | None = None
    #: The source saw nothing new (an unchanged file): the pipeline skips storing.
    unchanged: bool = False
    #: Counters for logs and benchmarks (requests made, pages read, ...).
    stats: dict[str, Any] = field(default_factory=dict)


class Source(Protocol):
    """What the pipeline asks of a source (:class:`BaseSource` gives all but ``name`` and
    ``read`` their defaults)."""

    @property
    def name(self) -> str:
        """Stable identity of the source: the key of its saved state and of its health."""

    def read(self, context: SourceContext) -> SourceResult: ...

    def resting(self, state: dict[str, Any] | None, now: datetime) -> bool: ...

    def state_after_failure(self, state: dict[str, Any] | None,
                            now: datetime) -> dict[str, Any] | None: ...

    def worker_bytes(self, state: dict[str, Any] | None) -> int | None: ...


class BaseSource:
    """What every source has besides ``name`` and ``read``, with the defaults most need."""

    def read(self, context: SourceContext) -> SourceResult:
        raise NotImplementedError

    def resting(self, state: dict[str, Any] | None, now: datetime) -> bool:
        """True while the source must not be read (a circuit breaker resting)."""
        return False

    def state_after_failure(self, state: dict[str, Any] | None,
                            now: datetime) -> dict[str, Any] | None:
        """The state to save after a failed read; None keeps the previous one."""
        return None

    def worker_bytes(self, state: dict[str, Any] | None) -> int | None:
        """How much there is to read, when the source can be read in a worker process (it
        pickles small and needs nothing of the store but ``state``); None when it cannot or
        has nothing new."""
        return None


class BrokenSource(BaseSource):
    """A configured source that cannot even be set up (a bad link): it fails when read."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message

    def read(self, context: SourceContext) -> SourceResult:
        raise SourceError(self.name, self.message.removeprefix(self.name + ": "))


@dataclass(frozen=True, slots=True)
class SourceKind:
    """One kind of source, as the configuration and the daemon see it."""

    name: str  # ``kind`` in a ``[[sources]]`` table
    location_key: str  # the key of its location in that table
    interval_setting: str  # the Config attribute with its default seconds between reads
    module: str  # its implementation (see this module's docstring)
    #: A ``--source`` value matching this is of this kind; None: the kind of everything else.
    claims: str | None = None

    def implementation(self) -> ModuleType:
        return importlib.import_module(self.module)


KINDS: dict[str, SourceKind] = {kind.name: kind for kind in (
    SourceKind("govkz", "url", "govkz_interval", "feedsvc.sources.portal", r"(?i)^https?://"),
    SourceKind("file", "path", "file_interval", "feedsvc.sources.textdump"),
)}


_PORTAL_LINK = re.compile(r"(?i)^https?://(?:www\.)?gov\.kz/*(?:\?[^#]*)?$")


def is_portal_link(text: str) -> bool:
    """``https://www.gov.kz`` itself: a source standing for every organisation of the portal
    (see sources/portal.py), read through the gov.kz kind's shared client."""
    return bool(_PORTAL_LINK.match(text.strip()))


def kind_of(text: str) -> SourceKind:
    """The kind of source a ``--source`` value names."""
    fallback = None
    for kind in KINDS.values():
        if kind.claims is None:
            fallback = kind
        elif re.match(kind.claims, text):
            return kind
    assert fallback is not None
    return fallback
