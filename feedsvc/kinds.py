"""The kinds of source feedsvc knows: the one place a new kind is registered.

Each kind is implemented by one module under ``feedsvc/sources/`` (see its ``__init__``); this
table says what the configuration and the daemon need to know of it, without importing it (a
build of text files never imports the HTTP stack).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True, slots=True)
class SourceKind:
    """One kind of source, as the configuration and the daemon see it."""

    name: str  # ``kind`` in a ``[[sources]]`` table
    location_key: str  # the key of its location in that table
    interval_setting: str  # the Config attribute with its default seconds between reads
    module: str  # its implementation (see feedsvc/sources/__init__.py)
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
