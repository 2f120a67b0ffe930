"""Following the whole portal in the daemon: which streams to read now, within the budget.

One :class:`Follower` per daemon (and per simulation run) drives the whole-portal source
(sources/portal.py). Each :meth:`Follower.step`:

1. refreshes the registry when it is due (``[portal] registry_interval``, daily): a new
   organisation gets its streams (and, once read, its feeds) without a restart;
2. in ``global`` mode, reads the cross-organisation listing (one request per language every
   ``global_interval``) and marks the streams that have news newer than last time as urgent;
   a failing or nonsensical listing switches to ``streams`` mode (re-probed hourly), and
   per-stream polling resumes at once, so nothing published meanwhile is lost;
3. asks the planner (feedsvc/poller.py) for the streams due, about ``batch_seconds`` of the
   budget, and reads them with the one refresh of the pipeline (which stores and publishes);
4. tells the planner what each read found, and saves what it learned in the store.

Every gov.kz request goes through the shared client, whose budget is the hard limit; the
planner only decides the order. The mode, and what the planner plans, show in ``/healthz``
(``portal``) and in ``portal.*`` log lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import astuple
from datetime import UTC, datetime
from typing import Any

from .config import SourceConfig
from .errors import FeedsvcError
from .pipeline import BuildReport, Pipeline
from .poller import Planner, PollPolicy, StreamStats
from .sources.govkz import GovkzClient, ReadStats, fetch_organisations
from .sources.portal import (
    fetch_global,
    followed,
    langs_of,
    portal_orgs,
    stream,
    stream_names,
)

log = logging.getLogger(__name__)

GLOBAL = "global"
STREAMS = "streams"
#: After the listing failed, it is tried again this long after.
PROBE_AGAIN = 3600.0
#: A registry refresh that failed is tried again this long after.
REGISTRY_RETRY = 3600.0
#: Pages of the listing read at most to reach the last item seen.
GLOBAL_PAGES = 5
GLOBAL_PAGE_SIZE = 50
META_REGISTRY = "portal.registry_refreshed"


class Follower:
    """Reads the streams of the whole-portal source ``spec`` as the planner says."""

    def __init__(self, pipeline: Pipeline, spec: SourceConfig, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.pipeline = pipeline
        self.config = pipeline.config
        self.spec = spec
        self.portal = self.config.portal
        self.client: GovkzClient = pipeline.clients["govkz"]
        self.clock = clock
        self.langs = langs_of(spec, self.config)
        self.planner = Planner(PollPolicy(min_interval=self.portal.min_interval,
                                          max_interval=self.portal.max_interval),
                               self.portal.requests_per_second)
        self.mode = STREAMS
        self.cursor: dict[str, int] = {}  # newest id the listing showed, per language
        self.next_global = 0.0 if self.portal.global_listing == "auto" else float("inf")
        self.next_registry = 0.0
        self.last_report: BuildReport | None = None
        #: Requests the cross-organisation listing took, and those that found nothing new.
        self.global_requests = 0
        self.global_empty = 0
        #: For ``/healthz``: when following began, and the listing's last good answer.
        self.started = clock()
        self.listing_ok: float | None = None

    # --- start ----------------------------------------------------------------------------

    def load(self) -> None:
        """The streams configured, with what the store knows of them."""
        saved = {row[0]: row for row in self.pipeline.writer.call(self._stored)}
        for name in stream_names(self.spec, self.config, self.client):
            row = saved.get(name)
            self.planner.add(StreamStats(*row) if row else StreamStats(name))
        refreshed = self.pipeline.writer.call(self.pipeline.store.get_meta, META_REGISTRY)
        if refreshed:
            self.next_registry = float(refreshed) + self.portal.registry_interval
        log.info("portal.loaded streams=%d known=%d mode=%s", len(self.planner.streams),
                 sum(1 for n in self.planner.streams if n in saved), self.mode)

    def _stored(self) -> list[tuple[Any, ...]]:
        return self.pipeline.store.poll_stats()

    # --- one step -------------------------------------------------------------------------

    def step(self) -> float:
        """Do what is due now; seconds until something else will be (0: go on at once)."""
        now = self.clock()
        if now >= self.next_registry:
            self.refresh_registry(now)
        if now >= self.next_global:
            self.poll_global(now)
        limit = max(1, int(self.portal.batch_seconds * self.portal.requests_per_second))
        names = self.planner.due(self.clock(), limit)
        if names:
            self.read(names)
            return 0.0
        now = self.clock()
        upcoming = [self.next_registry, self.next_global]
        moment = self.planner.next_due(now)
        if moment is not None:
            upcoming.append(moment)
        return max(0.0, min(upcoming) - now)

    def read(self, names: list[str]) -> BuildReport:
        """Read these streams through the one refresh; teach the planner what they found."""
        report = self.pipeline.refresh([stream(name, self.config, self.client)
                                        for name in names])
        now = self.clock()
        for outcome in report.sources:
            stats = outcome.stats
            if outcome.error or (outcome.skipped and not stats):  # failed, or resting
                self.planner.polled(outcome.name, now, failed=True)
            elif stats.get("first"):
                self.planner.polled(outcome.name, now, history=stats.get("published", []),
                                    complete=bool(stats.get("complete")))
            else:
                self.planner.polled(outcome.name, now,
                                    new_items=outcome.new + outcome.changed)
        rows = [astuple(self.planner.streams[o.name])[:7] for o in report.sources
                if o.name in self.planner.streams]
        self.pipeline.writer.call(self._save, rows)
        self.last_report = report
        return report

    def _save(self, rows: list[tuple[Any, ...]]) -> None:
        store = self.pipeline.store
        with store.transaction():
            store.save_poll_stats(rows)

    # --- the cross-organisation listing -----------------------------------------------------

    def poll_global(self, now: float) -> None:
        """Read the listing in every language; urge the streams with news; fall back if it
        fails."""
        urged: set[str] = set()
        try:
            for lang in self.langs:
                urged |= self._poll_listing(lang)
        except FeedsvcError as exc:
            log.warning("portal.mode mode=%s reason=%r; per-stream polling, listing tried "
                        "again in %.0fs", STREAMS, str(exc), PROBE_AGAIN)
            self._switch(STREAMS, now)
            self.next_global = now + PROBE_AGAIN
            return
        if self.mode != GLOBAL:
            log.info("portal.mode mode=%s listing=every %.0fs per language", GLOBAL,
                     self.portal.global_interval)
            self._switch(GLOBAL, now)
        self.planner.urge(urged)
        self.listing_ok = now
        self.next_global = now + self.portal.global_interval

    def _poll_listing(self, lang: str) -> set[str]:
        previous = self.cursor.get(lang)
        found: list[tuple[int, tuple[str, ...]]] = []
        for page in range(1, GLOBAL_PAGES + 1):
            stats = ReadStats()
            try:
                entries = fetch_global(self.client, lang, page, GLOBAL_PAGE_SIZE, stats)
            finally:
                self.global_requests += stats.requests
            found.extend(entries)
            if previous is not None and all(news_id <= previous for news_id, _ in entries):
                self.global_empty += stats.requests
            if previous is None or len(entries) < GLOBAL_PAGE_SIZE \
                    or any(news_id <= previous for news_id, _ in entries):
                break
        else:
            log.warning("portal.listing_gap lang=%s pages=%d: more news than the listing "
                        "pages read; per-stream polls catch the rest", lang, GLOBAL_PAGES)
        if found:
            self.cursor[lang] = max(previous or 0, max(news_id for news_id, _ in found))
        if previous is None:
            return set()  # the first look: the streams' own first reads cover the past
        urged = set()
        for news_id, slugs in found:
            if news_id <= previous:
                continue
            for slug in slugs:
                if followed(slug, self.portal):
                    urged.add(self._ensure_stream(slug, lang))
        return urged

    def _ensure_stream(self, slug: str, lang: str) -> str:
        """The stream of ``slug`` in ``lang``; an organisation met for the first time is
        followed from now on."""
        name = f"govkz:{slug}:{lang}"
        if name not in self.planner.streams:
            if portal_orgs(self.client).add([slug]):
                log.info("portal.new_organisation slug=%s via=listing", slug)
            for each in self.langs:
                self.planner.add(StreamStats(f"govkz:{slug}:{each}"))
        return name

    def _switch(self, mode: str, now: float) -> None:
        self.mode = mode
        if mode == GLOBAL:
            self.planner.fixed_interval = self.portal.safety_interval
        else:
            self.planner.fixed_interval = None
            self.planner.fit(now)
            self.planner.reschedule(now)

    # --- the registry ---------------------------------------------------------------------

    def refresh_registry(self, now: float) -> None:
        """Fetch the registry (one request per language); follow organisations it adds."""
        from .updates import merge_org_records

        try:
            records = [record for lang in self.langs
                       for record in fetch_organisations(self.client, lang)]
        except FeedsvcError as exc:
            log.warning("portal.registry_failed reason=%r; again in %.0fs", str(exc),
                        REGISTRY_RETRY)
            self.next_registry = now + REGISTRY_RETRY
            return
        organisations = merge_org_records(records)
        new = portal_orgs(self.client).add(org.slug for org in organisations)
        added = 0
        for slug in new:
            if followed(slug, self.portal):
                for lang in self.langs:
                    self.planner.add(StreamStats(f"govkz:{slug}:{lang}"))
                    added += 1
        moment = datetime.fromtimestamp(now, UTC)
        self.pipeline.writer.call(self._save_registry, organisations, moment, now)
        self.next_registry = now + self.portal.registry_interval
        log.info("portal.registry organisations=%d new=%d new_streams=%d", len(organisations),
                 len(new), added)

    def _save_registry(self, organisations: list[Any], moment: datetime, now: float) -> None:
        store = self.pipeline.store
        with store.transaction():
            store.save_organisations(organisations, moment)
            store.set_meta(META_REGISTRY, repr(now))

    # --- health ---------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """For ``/healthz``: the mode, the streams, what the planner plans, the budget's use."""
        budget = getattr(self.client.http, "budget", None)
        used = {} if budget is None else {
            "requests_in_last_window": budget.used(),
            "requests_since_start": budget.granted}
        return {"mode": self.mode, "streams": len(self.planner.streams),
                "unread": self.planner.unread(),
                "planned_polls_per_second": round(self.planner.planned, 4),
                "budget": f"{self.portal.budget_limit} requests per "
                          f"{self.portal.budget_window:g} s", **used}
