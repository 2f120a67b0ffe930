"""What ``/healthz`` shows, kept in memory: answering never touches the store or waits for it.

Two kinds of sources, two views:

- Sources the operator configured one by one (files, directories, single-organisation links)
  are few and each was asked for: each is listed under ``sources``, and any of them failing
  makes the service ``failing`` (HTTP 503).
- The whole portal (``https://www.gov.kz``) is thousands of streams, and on any day some
  organisation answers 404 or 500 for hours: that is news about that organisation, not about
  the service, as a feed reader shows a broken feed beside the others and keeps working
  (Miniflux counts a feed's parsing errors per feed; its health check only says whether the
  service runs). So the portal is summarised under ``portal``: counts, the failing streams
  with the most failures in a row (at most :data:`LISTED_FAILING`), and a status of its own.
  Some failing streams make the answer ``degraded`` (still 200, for a dashboard or a low
  priority alert); only a portal that is failing as a whole (:class:`PortalRule`) makes it
  ``failing`` (503), which is what should wake someone.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .model import ALMATY
from .store import SourceHealth

#: The portal's failing streams listed one by one (those failing longest in a row); the rest
#: are only counted, so the answer stays a few kilobytes whatever breaks.
LISTED_FAILING = 50
#: A listed stream's error is cut to this many characters.
ERROR_CHARS = 200
#: Statuses answered with 200; any other with 503.
HEALTHY_STATUSES = ("ok", "degraded")


@dataclass(frozen=True, slots=True)
class PortalRule:
    """When the portal as a whole counts as failing (``[portal] health_*``).

    Failing when more than ``failing_share`` of the streams read in the last ``window``
    seconds failed their latest read (out of at least ``min_reads`` streams, or all of them
    when fewer are followed, so the first read of a fresh daemon is not the whole verdict), or
    when no read of the portal has succeeded for ``stale_after`` seconds (since the follower
    started): it is not reading at all, or nothing it reads works.
    """

    window: float = 3600.0
    failing_share: float = 0.5
    stale_after: float = 21600.0
    min_reads: int = 10

    def describe(self) -> str:
        return (f"failing when more than {self.failing_share:.0%} of the streams read in the "
                f"last {self.window:g} s failed, or no read succeeded for "
                f"{self.stale_after:g} s")


@dataclass(frozen=True, slots=True)
class PortalView:
    """What ``/healthz`` needs of the follower of the whole portal (the daemon builds it)."""

    #: Every stream followed (``govkz:<slug>:<lang>``).
    streams: Collection[str]
    #: The follower's own account: mode, streams, unread, planned rate, budget and its use.
    description: dict[str, Any]
    #: When the follower started: staleness counts from here at the earliest.
    since: datetime
    #: The cross-organisation listing's last good answer (it counts as a read that worked).
    listing_ok: datetime | None
    rule: PortalRule


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

    def snapshot(self, portal: PortalView | None = None,
                 now: datetime | None = None) -> dict[str, Any]:
        """The answer of ``/healthz``. With ``portal``, its streams are summarised (as of
        ``now``) instead of listed under ``sources``."""
        streams: Collection[str] = portal.streams if portal is not None else ()
        with self._lock:
            rows = [row for name, row in sorted(self._sources.items())
                    if (not self._active or name in self._active) and name not in streams]
            portal_rows = dict(self._sources) if portal is not None else {}
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
        answer: dict[str, Any] = {"status": "ok", "sources": sources,
                                  "last_regeneration": _iso(last)}
        if portal is not None:
            assert now is not None, "the portal's summary is as of a moment"
            answer["portal"] = summary = summarise_portal(portal_rows, portal, now)
            failing = failing or summary["status"] == "failing"
            degraded = summary["status"] == "degraded"
        else:
            degraded = False
        answer["status"] = "starting" if not self.started else "failing" if failing \
            else "degraded" if degraded else "ok"
        if publish_errors:
            answer["publish_errors"] = publish_errors
        return answer


def summarise_portal(rows: dict[str, SourceHealth], view: PortalView,
                     now: datetime) -> dict[str, Any]:
    """The portal's streams in a few lines: counts, the worst failing ones, and a verdict."""
    rule = view.rule
    recent_from = now - timedelta(seconds=rule.window)
    newest = max((moment for moment in (view.since, view.listing_ok) if moment), default=None)
    healthy = read = failed = 0
    broken: list[SourceHealth] = []
    for name in view.streams:
        row = rows.get(name)
        if row is None:
            continue
        if row.failures:
            broken.append(row)
        elif row.last_success is not None:
            healthy += 1
        latest = max((m for m in (row.last_success, row.last_failure) if m), default=None)
        if latest is not None and latest >= recent_from:
            read += 1
            failed += row.failures > 0
        if row.last_success is not None and (newest is None or row.last_success > newest):
            newest = row.last_success
    floor = min(rule.min_reads, len(view.streams))
    share = failed / max(read, floor, 1)
    stale = newest is not None and (now - newest).total_seconds() > rule.stale_after
    status = "failing" if share > rule.failing_share or stale \
        else "degraded" if broken else "ok"
    worst = heapq.nsmallest(LISTED_FAILING, broken, key=_worst_first)
    summary: dict[str, Any] = {
        "status": status,
        **view.description,
        "healthy": healthy,
        "failing": len(broken),
        "last_success": _iso(newest),
        "recent": {"seconds": rule.window, "streams_read": read, "failed": failed},
        "rule": rule.describe(),
        "failing_streams": {row.name: {
            "consecutive_failures": row.failures,
            "last_failure": _iso(row.last_failure),
            "last_error": _cut(row.last_error),
            "last_success": _iso(row.last_success),
        } for row in worst},
    }
    if stale:
        summary["reason"] = f"no read succeeded since {_iso(newest)}"
    elif status == "failing":
        summary["reason"] = f"{failed} of the {read} streams read in the last " \
                            f"{rule.window:g} s failed"
    return summary


def _worst_first(row: SourceHealth) -> tuple[int, float, str]:
    """Most failures in a row first; of as many, the most recent failure; then by name."""
    moment = row.last_failure.timestamp() if row.last_failure else 0.0
    return (-row.failures, -moment, row.name)


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= ERROR_CHARS:
        return text
    return text[:ERROR_CHARS - 1] + "…"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(ALMATY).isoformat() if moment else None
