"""What ``/healthz`` shows, kept in memory: answering never touches the store or waits for it."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .model import ALMATY
from .store import SourceHealth


class Health:
    """What ``/healthz`` shows, kept in memory by the writer: answering never waits for it."""

    def __init__(self, rows: Iterable[SourceHealth]) -> None:
        self._lock = threading.Lock()
        self._sources = {row.name: row for row in rows}
        self._active: set[str] = set()
        self._publish_errors: list[str] = []
        self._last_regeneration: datetime | None = None
        self.started = True  # False in a daemon until its first refresh has finished

    def succeeded(self, name: str, now: datetime, first_sightings: int) -> None:
        with self._lock:
            old = self._sources.get(name) or SourceHealth(name, None, None, None, 0, 0)
            self._sources[name] = SourceHealth(name, now, old.last_failure, old.last_error, 0,
                                               old.items + first_sightings)
            self._active.add(name)

    def failed(self, name: str, now: datetime, error: str) -> None:
        with self._lock:
            old = self._sources.get(name) or SourceHealth(name, None, None, None, 0, 0)
            self._sources[name] = SourceHealth(name, old.last_success, now, error,
                                               old.failures + 1, old.items)
            self._active.add(name)

    def read_sources(self, names: Iterable[str]) -> None:
        """Sources of the current configuration (others, of an earlier one, are not shown)."""
        with self._lock:
            self._active.update(names)

    def published(self, now: datetime, errors: list[str]) -> None:
        with self._lock:
            self._last_regeneration = now
            self._publish_errors = list(errors)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            rows = [row for name, row in sorted(self._sources.items())
                    if not self._active or name in self._active]
            publish_errors = list(self._publish_errors)
            last = self._last_regeneration
        sources = {row.name: {
            "healthy": row.failures == 0,
            "last_success": _iso(row.last_success),
            "last_failure": _iso(row.last_failure),
            "last_error": row.last_error,
            "consecutive_failures": row.failures,
            "items": row.items,
        } for row in rows}
        failing = any(row.failures for row in rows) or bool(publish_errors)
        status = "starting" if not self.started else "failing" if failing else "ok"
        answer: dict[str, Any] = {"status": status, "sources": sources,
                                  "last_regeneration": _iso(last)}
        if publish_errors:
            answer["publish_errors"] = publish_errors
        return answer


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(ALMATY).isoformat() if moment else None
