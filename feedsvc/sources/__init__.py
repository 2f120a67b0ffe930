"""Source kinds: each turns bytes (a file, an API answer) into Items.

A source is anything with a stable ``name`` and a ``read(context)`` method. The pipeline gives it a
:class:`SourceContext` (what it stored last time, what the store already knows) and gets back a
:class:`SourceResult`. Expected failures are raised as :class:`feedsvc.errors.SourceError`; the
pipeline records them and goes on with the other sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

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
    @property
    def name(self) -> str:
        """Stable identity of the source: the key of its saved state and of its health."""

    def read(self, context: SourceContext) -> SourceResult: ...
