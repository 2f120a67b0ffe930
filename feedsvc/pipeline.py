"""One build: sources -> store -> render -> publish. The only place the stages meet.

The flow of :meth:`Pipeline.build`::

    for each source:            read it (bytes/JSON -> Items)        sources/*
                                fold copies, compare with the store  ingest.decide (pure)
                                apply the changes in one transaction store
    for each feed that changed: render its newest entries            render (pure)
                                write it if its bytes changed        publish
    then the OPML list and the index page, the same way.

A failing source is recorded (log line, health data, exit status) and the others go on; the
feeds it fed before stay as they were. The daemon calls :meth:`Pipeline.ingest` per source and
:meth:`Pipeline.regenerate` once for many, the one-shot build calls :meth:`Pipeline.build`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import __version__
from .config import Config, SourceConfig
from .errors import FeedsvcError, SourceError
from .ingest import Changes, Snapshot, decide, group_sightings, memberships, sort_key
from .model import ALMATY, FeedRef, Item
from .publish import remove_stale_temporaries, write_if_changed
from .registry import Registry, load_registry
from .render import (
    FeedSpec,
    Listing,
    Site,
    feed_spec,
    feed_updated,
    render_atom,
    render_index,
    render_opml,
)
from .sources import Source, SourceResult
from .sources.textdump import TextDumpFile, files_in
from .store import FeedRecord, Store

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class SourceOutcome:
    name: str
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    skipped: bool = False
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class PublishOutcome:
    written: list[str] = field(default_factory=list)
    unchanged: int = 0


@dataclass(slots=True)
class BuildReport:
    sources: list[SourceOutcome] = field(default_factory=list)
    publish: PublishOutcome = field(default_factory=PublishOutcome)

    @property
    def failed(self) -> list[SourceOutcome]:
        return [outcome for outcome in self.sources if outcome.error]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        read = [o for o in self.sources if not o.error]
        skipped = sum(1 for o in read if o.skipped)
        new = sum(o.new for o in read)
        changed = sum(o.changed for o in read)
        unchanged = sum(o.unchanged for o in read)
        warnings = sum(len(o.warnings) for o in self.sources)
        feeds = sum(1 for path in self.publish.written if path.endswith(".atom"))
        return (f"{len(read)} source(s) read ({skipped} unchanged since last run), "
                f"{len(self.failed)} failed; items: {new} new, {changed} changed, "
                f"{unchanged} unchanged; feeds: {feeds} written, {self.publish.unchanged} "
                f"unchanged; files written: {len(self.publish.written)}; "
                f"warnings: {warnings}; errors: {len(self.failed)}")


class _Context:
    """What a source may ask the store while it reads (see sources.SourceContext)."""

    def __init__(self, pipeline: Pipeline, name: str, now: datetime) -> None:
        self.pipeline = pipeline
        self.name = name
        self.now = now

    def previous_state(self) -> dict[str, Any] | None:
        with self.pipeline.lock:
            return self.pipeline.store.source_state(self.name)

    def is_known(self, item: Item) -> bool:
        with self.pipeline.lock:
            store = self.pipeline.store
            keys = store.lookup_keys(item.identity_keys())
            atom_id = keys.get(item.news_key or "") or keys.get(item.title_key)
            if atom_id is None:
                return False
            stored = store.sightings([atom_id]).get(atom_id, {}).get(self.name)
        return stored is not None and stored[0] == item.content_hash()


class Pipeline:
    """Owns the store for the life of a build or a daemon; thread-safe through ``lock``."""

    def __init__(self, config: Config, *, clock: Clock = utc_now,
                 classifier: Callable[..., tuple[str, ...]] | None = None) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self.store = Store(config.db)
        self.registry: Registry = load_registry(self.store.live_organisations())
        self.taxonomy = _load_taxonomy(config)
        self._classifier = classifier
        self.pending: set[str] = set()
        self.last_regeneration: datetime | None = None
        self.active_sources: set[str] = set()

    def close(self) -> None:
        with self.lock:
            self.store.close()

    # --- wiring ---------------------------------------------------------------------------

    @property
    def site(self) -> Site:
        names = {topic.slug: topic.names for topic in self.taxonomy.topics} \
            if self.taxonomy else {}
        return Site(self.config.normalised_base_url, self.config.language, self.registry, names)

    def classify(self, item: Item) -> tuple[str, ...]:
        if self._classifier is not None:
            return self._classifier(item)
        if self.taxonomy is None:
            return ()
        from .topics import assign_topics

        chain = self.registry.chain(item.org) if item.org else ()
        kind = self.registry.get(item.org).kind if item.org else None
        return assign_topics(self.taxonomy, item, org_kind=kind, org_chain=chain)

    def sources(self) -> list[Source]:
        """Every configured, enabled source; a directory expands to its text files now."""
        return [found for spec in self.config.sources if spec.enabled
                for found in self.sources_for(spec)]

    def sources_for(self, spec: SourceConfig) -> list[Source]:
        """The sources one configured entry stands for (a directory: each of its files)."""
        if spec.kind == "file":
            return [TextDumpFile(path) for path in files_in(Path(spec.location))]
        from .sources.govkz import sources_for_link

        return list(sources_for_link(spec.location, spec.langs, self.govkz_client(),
                                     self.config.govkz))

    def govkz_client(self) -> Any:
        client = getattr(self, "_govkz_client", None)
        if client is None:
            from .sources.govkz import GovkzClient

            client = GovkzClient(self.config.govkz)
            self._govkz_client = client
        return client

    # --- one build ------------------------------------------------------------------------

    def build(self, sources: Iterable[Source] | None = None,
              progress: Callable[[Iterable[Source]], Iterable[Source]] | None = None
              ) -> BuildReport:
        """Read every source, store what is new, publish what changed."""
        report = BuildReport()
        self.refresh_derived()
        fresh: set[str] = set()
        chosen = list(sources) if sources is not None else self.sources()
        for source in (progress(chosen) if progress else chosen):
            report.sources.append(self.ingest(source, fresh))
        report.publish = self.regenerate()
        return report

    def ingest(self, source: Source, fresh: set[str] | None = None) -> SourceOutcome:
        """Read one source and store what it brought. Never raises for a bad source."""
        now = self.clock().astimezone(ALMATY)
        outcome = SourceOutcome(source.name)
        self.active_sources.add(source.name)
        try:
            result = source.read(_Context(self, source.name, now))
        except (SourceError, FeedsvcError) as exc:
            return self._failed(outcome, str(exc), now)
        except Exception as exc:  # a bug, but one source must not take the others down
            log.error("source.crashed source=%s error=%r", source.name, exc, exc_info=True)
            return self._failed(outcome, f"{source.name}: internal error: {exc!r}", now)
        outcome.warnings = result.warnings
        outcome.stats = result.stats
        for warning in result.warnings:
            log.warning("source.warning %s", warning)
        self._store(source.name, result, outcome, now, fresh if fresh is not None else set())
        log.info("source.read source=%s new=%d changed=%d unchanged=%d skipped=%s",
                 source.name, outcome.new, outcome.changed, outcome.unchanged,
                 str(outcome.skipped).lower())
        return outcome

    def _failed(self, outcome: SourceOutcome, message: str, now: datetime) -> SourceOutcome:
        outcome.error = message
        log.error("source.failed %s", message)
        with self.lock, self.store.transaction():
            self.store.record_failure(outcome.name, message, now)
        return outcome

    def _store(self, name: str, result: SourceResult, outcome: SourceOutcome, now: datetime,
               fresh: set[str]) -> None:
        with self.lock:
            if result.unchanged:
                outcome.skipped = True
                with self.store.transaction():
                    self.store.record_success(name, result.state, now)
                return
            sightings = group_sightings(result.items)
            with self.store.transaction():
                changes = decide(name, sightings, self._snapshot(sightings), now,
                                 self.classify, self.registry, fresh)
                self._apply(changes, now)
                self.store.record_success(name, result.state, now)
                self.store.count_source_items(name)
            fresh |= changes.created
            self.pending |= changes.dirty_feeds
        outcome.new, outcome.changed, outcome.unchanged = (changes.new, changes.changed,
                                                           changes.unchanged)

    def _snapshot(self, sightings: list[Any]) -> Snapshot:
        store = self.store
        keys = store.lookup_keys(key for s in sightings for key in s.keys)
        atoms = set(keys.values())
        return Snapshot(keys, store.item_rows(atoms), store.sightings(atoms),
                        store.memberships(atoms))

    def _apply(self, changes: Changes, now: datetime) -> None:
        self.store.write_items(changes.items)
        self.store.write_keys(changes.keys)
        self.store.write_sightings(changes.sightings, now)
        self.store.set_memberships(changes.memberships, changes.created)

    # --- derived data: topics and memberships -----------------------------------------------

    def refresh_derived(self) -> None:
        """Re-file every stored item when the registry or the topics file changed.

        Editing the taxonomy or fetching organisation names must show in the next build's
        feeds without re-reading any source.
        """
        fingerprint = "|".join([__version__, self.registry.fingerprint,
                                self.taxonomy.fingerprint if self.taxonomy else "no-topics"])
        with self.lock:
            previous = self.store.get_meta("derived")
            if previous == fingerprint:
                return
            if previous is not None:
                log.info("refile.start reason=registry-or-topics-changed items=%d",
                         self.store.count_items())
                self._refile_all()
            with self.store.transaction():
                self.store.set_meta("derived", fingerprint)

    def _refile_all(self) -> None:
        old_feeds = self.store.all_member_feeds()
        with self.store.transaction():
            for batch in self.store.iter_items():
                rows = []
                topic_pairs = []
                for atom_id, item, first_seen in batch:
                    topics = self.classify(item)
                    topic_pairs.append((atom_id, topics))
                    rows.append((atom_id, memberships(item, topics, self.registry),
                                 sort_key(item, atom_id, first_seen)))
                self.store.update_topics(topic_pairs)
                self.store.set_memberships(rows)
        self.pending |= old_feeds | self.store.all_member_feeds()

    # --- publishing -----------------------------------------------------------------------

    def regenerate(self, dirty: set[str] | None = None) -> PublishOutcome:
        """Render and publish the feeds that may have changed, then the OPML and index."""
        with self.lock:
            out = self.config.out_dir
            remove_stale_temporaries(out)
            records = self.store.feed_records()
            todo = set(self.pending if dirty is None else dirty)
            self.pending -= todo
            settings = self._render_fingerprint()
            if self.store.get_meta("render") != settings:
                todo |= set(records) | self.store.all_member_feeds()
            todo |= {key for key, rec in records.items() if not (out / rec.path).exists()}
            outcome = PublishOutcome()
            site = self.site
            new_records = [self._publish_feed(key, site, records.get(key), outcome)
                           for key in sorted(todo)]
            changed = [r for r in new_records if records.get(r.feed) != r]
            with self.store.transaction():
                self.store.save_feed_records(changed)
                self.store.set_meta("render", settings)
            if changed or todo or any(not (out / name).exists()
                                      for name in ("feeds.opml", "index.html")):
                self._publish_listings(site, outcome)
            self.last_regeneration = self.clock()
        if outcome.written:
            log.info("publish.done written=%d unchanged=%d", len(outcome.written),
                     outcome.unchanged)
        return outcome

    def _publish_feed(self, key: str, site: Site, previous: FeedRecord | None,
                      outcome: PublishOutcome) -> FeedRecord:
        ref = FeedRef.from_key(key)
        spec = feed_spec(ref, site)
        entries = self.store.feed_entries(key, self.config.entry_cap)
        fallback = previous.updated if previous else None
        data = render_atom(spec, entries, site, fallback)
        path = self.config.out_dir / spec.path
        if write_if_changed(path, data):
            outcome.written.append(spec.path)
        else:
            outcome.unchanged += 1
        return FeedRecord(key, spec.title, spec.path, self.store.feed_total(key),
                          feed_updated(entries, fallback) if entries or fallback else None,
                          hashlib.sha256(data).hexdigest())

    def _publish_listings(self, site: Site, outcome: PublishOutcome) -> None:
        listings = [Listing(_spec_for(record, site), record.total, record.updated)
                    for record in self.store.feed_records().values()]
        for name, data in (("feeds.opml", render_opml(listings, site)),
                           ("index.html", render_index(listings, site))):
            if write_if_changed(self.config.out_dir / name, data):
                outcome.written.append(name)

    def _render_fingerprint(self) -> str:
        config = self.config
        parts = [__version__, config.normalised_base_url, str(config.entry_cap),
                 config.language, self.registry.fingerprint,
                 self.taxonomy.fingerprint if self.taxonomy else "no-topics"]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    # --- health ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        with self.lock:
            rows = self.store.source_health()
        sources = {}
        failing = False
        for row in rows:
            if self.active_sources and row.name not in self.active_sources:
                continue  # a source from an earlier configuration
            healthy = row.failures == 0
            failing |= not healthy
            sources[row.name] = {
                "healthy": healthy,
                "last_success": row.last_success.isoformat() if row.last_success else None,
                "last_failure": row.last_failure.isoformat() if row.last_failure else None,
                "last_error": row.last_error,
                "consecutive_failures": row.failures,
                "items": row.items,
            }
        return {
            "status": "failing" if failing else "ok",
            "sources": sources,
            "last_regeneration": self.last_regeneration.astimezone(ALMATY).isoformat()
            if self.last_regeneration else None,
        }


def _spec_for(record: FeedRecord, site: Site) -> FeedSpec:
    return feed_spec(FeedRef.from_key(record.feed), site)


def _load_taxonomy(config: Config) -> Any:
    try:
        from .topics import load_taxonomy
    except ImportError:  # the topics module is optional until it lands
        return None
    return load_taxonomy(config.topics_file)
