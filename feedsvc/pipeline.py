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

import gc
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import __version__
from .config import Config, SourceConfig
from .errors import FeedsvcError, InvalidSourceURL, SourceError
from .filing import Filing
from .ingest import Changes, Sighting, Snapshot, decide, group_sightings, sort_key
from .model import ALMATY, FeedRef, Item
from .pages import LISTING_FILES, listing_files, pages_for_feed, write_pages
from .pages import fingerprint as pages_fingerprint
from .publish import remove_stale_temporaries, write_if_changed
from .render import (
    FeedSpec,
    Listing,
    Site,
    feed_spec,
    feed_updated,
    render_atom,
    render_opml,
)
from .sources import Source, SourceResult
from .sources.textdump import TextDumpFile, files_in, unchanged_since
from .store import FeedRecord, Refiling, Store

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
#: Below these amounts a parallel build would spend more starting workers than it saves.
PARALLEL_MIN_FEEDS = 64
PARALLEL_MIN_BYTES = 8_000_000
#: A big build commits after about this many new or changed items (see Pipeline._batch).
BATCH_ITEMS = 10_000


def relax_garbage_collection() -> None:
    """Collect reference cycles far less often, for a one-shot build or a worker.

    A big build keeps hundreds of thousands of objects alive, and CPython's default (a young
    collection every 700 new containers, an old one scanning everything now and then) spent
    a large share of its time re-scanning them; a build makes few cycles. Objects alive now
    (modules, the registry, the taxonomy) are moved out of the collector's sight for good.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


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


class _Broken:
    """A configured source that cannot even be set up (a bad link): it fails when read."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message

    def read(self, context: Any) -> SourceResult:
        raise SourceError(self.name, self.message.removeprefix(self.name + ": "))


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

    def __init__(self, config: Config, *, clock: Clock = utc_now, parallel: bool = False) -> None:
        self.config = config
        self.clock = clock
        self.parallel = parallel
        self.lock = threading.RLock()
        self.store = Store(config.db)
        self.filing = Filing.load(config, self.store.live_organisations())
        self.last_regeneration: datetime | None = None
        self.active_sources: set[str] = set()
        self._govkz_client: Any = None  # made on first use: text-only builds never import HTTP
        self._swept = False  # leftovers of an interrupted run are removed once per process
        self._workers: Any = None  # parallel.Workers during a big build
        # Identity key -> Atom id of every key written by a build that began on an empty
        # store: its look-ups then need no SQL (a first build looks up 175,000 keys per
        # 100,000 items, nearly all of them unknown).
        self._keys_of_build: dict[str, str] | None = None

    def close(self) -> None:
        with self.lock:
            self._stop_workers()
            self.store.close()
            if self._govkz_client is not None:
                self._govkz_client.close()

    # --- wiring ---------------------------------------------------------------------------

    @property
    def site(self) -> Site:
        return self.filing.site

    def sources(self) -> list[Source]:
        """Every configured, enabled source; a directory expands to its text files now."""
        return [found for spec in self.config.sources if spec.enabled
                for found in self.sources_for(spec)]

    def sources_for(self, spec: SourceConfig) -> list[Source]:
        """The sources one configured entry stands for (a directory: each of its files)."""
        if spec.kind == "file":
            return [TextDumpFile(path) for path in files_in(Path(spec.location))]
        from .sources.govkz import sources_for_link

        try:
            return list(sources_for_link(spec.location, spec.langs, self.govkz_client(),
                                         self.config.govkz))
        except InvalidSourceURL as exc:
            return [_Broken(spec.location, str(exc))]

    def govkz_client(self) -> Any:
        """One client for every gov.kz source, so the host sees one request at a time."""
        if self._govkz_client is None:
            from .sources.govkz import GovkzClient

            self._govkz_client = GovkzClient(self.config.govkz)
        return self._govkz_client

    # --- one build ------------------------------------------------------------------------

    def build(self, sources: Iterable[Source] | None = None,
              progress: Callable[[Iterable[Source]], Iterable[Source]] | None = None
              ) -> BuildReport:
        """Read every source, store what is new, publish what changed."""
        report = BuildReport()
        self.refresh_derived()
        fresh: set[str] = set()
        chosen = list(sources) if sources is not None else self.sources()
        self._workers = self._start_workers(chosen)
        self._keys_of_build = {} if self.store.is_empty() else None
        try:
            with self._batch() as written_since_commit:
                for source in (progress(chosen) if progress else chosen):
                    outcome = self.ingest(source, fresh, self._prepared(source))
                    report.sources.append(outcome)
                    written_since_commit(outcome.new + outcome.changed)
            report.publish = self.regenerate()
        finally:
            self._stop_workers()
            self._keys_of_build = None
        return report

    @contextmanager
    def _batch(self) -> Iterator[Callable[[int], None]]:
        """With workers (a big build), sources are stored in transactions of several files,
        committed every ``BATCH_ITEMS`` items; else each source commits on its own.

        Either way a crash loses no published state: the sources of an uncommitted batch
        are read again by the next run, since their new state was not committed either.
        """
        if self._workers is None:
            yield lambda count: None
            return
        pending = 0

        def written(count: int) -> None:
            nonlocal pending
            pending += count
            if pending >= BATCH_ITEMS:
                self.store.commit_so_far()
                pending = 0

        with self.lock, self.store.transaction():
            yield written

    def _prepared(self, source: Source) -> Any:
        """What a worker read of ``source``, or None to read it here."""
        workers = self._workers
        if workers is None or source.name not in workers:
            return None
        try:
            return workers.take(source.name)
        except Exception as exc:  # a dead worker: finish on one core
            log.warning("build.parallel_failed error=%r; going on in one process", exc)
            self._stop_workers()
            return None

    def _stop_workers(self) -> None:
        if self._workers is not None:
            self._workers.close()
            self._workers = None

    def _start_workers(self, chosen: list[Source]) -> Any:
        """Workers for the changed files of a big build, or None when one core is enough."""
        if not self.parallel:
            return None
        jobs = []
        size = 0
        for source in chosen:
            if not isinstance(source, TextDumpFile):
                continue
            previous = self.store.source_state(source.name)
            if unchanged_since(source.path, previous):
                continue
            jobs.append((source.name, previous))
            size += source.path.stat().st_size if source.path.is_file() else 0
        if len(jobs) < 2 or size < PARALLEL_MIN_BYTES:
            return None
        from .parallel import Workers

        log.info("build.parallel files=%d bytes=%d", len(jobs), size)
        workers = Workers(self.config, self.store.live_organisations())
        # The first file is read here, while the workers start (spawning Python and loading
        # the registry and topics takes them longer than that file takes the main process).
        workers.prepare(jobs[1:])
        return workers

    def ingest(self, source: Source, fresh: set[str] | None = None,
               prepared: Any = None) -> SourceOutcome:
        """Read one source (or take what a worker read) and store it. Never raises for a bad
        source: the failure is logged and recorded, and the caller goes on."""
        now = self.clock().astimezone(ALMATY)
        outcome = SourceOutcome(source.name)
        self.active_sources.add(source.name)
        sightings = None
        if self._resting(source, now):
            outcome.skipped = True
            log.info("source.resting source=%s", source.name)
            return outcome
        try:
            if prepared is None:
                result = source.read(_Context(self, source.name, now))
            elif prepared.error:
                return self._failed(outcome, prepared.error, now)
            else:
                result, sightings = prepared.result, prepared.sightings
        except (SourceError, FeedsvcError) as exc:
            return self._failed(outcome, str(exc), now, source)
        except Exception as exc:  # a bug, but one source must not take the others down
            log.error("source.crashed source=%s error=%r", source.name, exc, exc_info=True)
            return self._failed(outcome, f"{source.name}: internal error: {exc!r}", now, source)
        outcome.warnings = result.warnings
        outcome.stats = result.stats
        for warning in result.warnings:
            log.warning("source.warning %s", warning)
        self._store(source.name, result, outcome, now, fresh if fresh is not None else set(),
                    sightings)
        log.info("source.read source=%s new=%d changed=%d unchanged=%d skipped=%s",
                 source.name, outcome.new, outcome.changed, outcome.unchanged,
                 str(outcome.skipped).lower())
        return outcome

    def _resting(self, source: Source, now: datetime) -> bool:
        """Sources with a circuit breaker (gov.kz) rest after repeated failures."""
        resting = getattr(source, "resting", None)
        if resting is None:
            return False
        with self.lock:
            state = self.store.source_state(source.name)
        return bool(resting(state, now))

    def _failed(self, outcome: SourceOutcome, message: str, now: datetime,
                source: Source | None = None) -> SourceOutcome:
        outcome.error = message
        log.error("source.failed %s", message)
        with self.lock, self.store.transaction():
            after_failure = getattr(source, "state_after_failure", None)
            state = after_failure(self.store.source_state(outcome.name), now) \
                if after_failure else None
            self.store.record_failure(outcome.name, message, now, state)
        return outcome

    def _store(self, name: str, result: SourceResult, outcome: SourceOutcome, now: datetime,
               fresh: set[str], sightings: list[Sighting] | None = None) -> None:
        with self.lock:
            if result.unchanged:
                outcome.skipped = True
                with self.store.transaction():
                    self.store.record_success(name, result.state, now)
                return
            if sightings is None:
                sightings = group_sightings(result.items)
            with self.store.transaction():
                changes = decide(name, sightings, self._snapshot(sightings), now,
                                 self.filing.file, fresh)
                self._apply(changes, now)
                self.store.record_success(name, result.state, now)
                self.store.add_source_items(name, changes.first_sightings)
                self.store.mark_dirty(changes.dirty_feeds)
            fresh |= changes.created
            if self._keys_of_build is not None:
                for key, _, atom_id in changes.keys:
                    self._keys_of_build.setdefault(key, atom_id)
        outcome.new, outcome.changed, outcome.unchanged = (changes.new, changes.changed,
                                                           changes.unchanged)

    def _snapshot(self, sightings: list[Sighting]) -> Snapshot:
        store = self.store
        known = self._keys_of_build
        if known is None:
            keys = store.lookup_keys(key for s in sightings for key in s.keys)
        else:  # the store was empty: every key it knows, this build wrote and remembers
            keys = {key: known[key] for s in sightings for key in s.keys if key in known}
        atoms = set(keys.values())
        return Snapshot(keys, store.item_rows(atoms), store.sightings(atoms), store.next_item_id())

    def _apply(self, changes: Changes, now: datetime) -> None:
        self.store.write_items(changes.items)
        self.store.write_keys((key, item_id) for key, item_id, _ in changes.keys)
        self.store.write_sightings(changes.sightings, now)
        self.store.refile(changes.refilings)
        self.store.file_new_items(changes.new_ids, changes.new_members)

    # --- derived data: topics and memberships -----------------------------------------------

    def refresh_derived(self) -> None:
        """Re-file every stored item when the registry or the topics file changed.

        Editing the taxonomy or fetching organisation names must show in the next build's
        feeds without re-reading any source.
        """
        fingerprint = f"{__version__}|{self.filing.fingerprint}"
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
        with self.store.transaction():
            self.store.mark_dirty(self.store.all_member_feeds())
            for batch in self.store.iter_items():
                filings = []
                moves = []
                for row, item in batch:
                    topics, feeds = self.filing.file(item)
                    key = sort_key(item, row.atom_id, row.first_seen)
                    filings.append((row.item_id, topics, feeds, key))
                    moves.append(Refiling(row.item_id, feeds, key, row.feeds, row.sort_key))
                self.store.update_filing(filings)
                self.store.refile(moves)
            self.store.mark_dirty(self.store.all_member_feeds())

    # --- publishing -----------------------------------------------------------------------

    @property
    def has_pending(self) -> bool:
        """Whether some stored change still waits to be published."""
        with self.lock:
            return bool(self.store.dirty_feeds())

    def regenerate(self) -> PublishOutcome:
        """Render and publish the feeds that may have changed, then the OPML and index.

        The list of feeds to publish lives in the store and is cleared only once they are
        published, so a run that dies half way is completed by the next one.
        """
        with self.lock:
            out = self.config.out_dir
            if not self._swept:
                remove_stale_temporaries(out)
                self._swept = True
            records = self.store.feed_records()
            dirty = self.store.dirty_feeds()
            todo = set(dirty)
            settings = self._render_fingerprint()
            if self.store.get_meta("render") != settings:
                todo |= set(records) | self.store.all_member_feeds()
            todo |= {key for key, rec in records.items() if not (out / rec.path).exists()}
            outcome = PublishOutcome()
            site = self.site
            new_records = self._publish_feeds(sorted(todo), site, records, outcome)
            changed = [r for r in new_records if records.get(r.feed) != r]
            if changed or todo or any(not (out / name).exists()
                                      for name in ("feeds.opml", *LISTING_FILES)):
                self._publish_listings(site, {**records, **{r.feed: r for r in changed}},
                                       outcome)
            with self.store.transaction():
                self.store.save_feed_records(changed)
                self.store.set_meta("render", settings)
                self.store.clear_dirty(dirty)
            self.last_regeneration = self.clock()
        if outcome.written:
            log.info("publish.done written=%d unchanged=%d", len(outcome.written),
                     outcome.unchanged)
        return outcome

    def _publish_feeds(self, keys: list[str], site: Site, records: dict[str, FeedRecord],
                       outcome: PublishOutcome) -> list[FeedRecord]:
        published = None
        if self.parallel and len(keys) >= PARALLEL_MIN_FEEDS:
            workers = self._workers  # a build's, which read its files
            try:
                if workers is None:
                    from .parallel import Workers

                    workers = Workers(self.config, self.store.live_organisations())
                published = workers.render(keys, records)
            except Exception as exc:  # workers could not start or died: render here
                log.warning("publish.parallel_failed error=%r; rendering in one process", exc)
            finally:
                if workers is not None and workers is not self._workers:
                    workers.close()
        if published is None:
            published = [publish_feed(self.store, key, site, self.config, records.get(key))
                         for key in keys]
        for record, written in published:
            if written:
                outcome.written.append(record.path)
            else:
                outcome.unchanged += 1
        return [record for record, _ in published]

    def _publish_listings(self, site: Site, records: dict[str, FeedRecord],
                          outcome: PublishOutcome) -> None:
        listings = [Listing(_spec_for(record, site), record.total, record.updated)
                    for record in records.values()]
        if write_if_changed(self.config.out_dir / "feeds.opml", render_opml(listings, site)):
            outcome.written.append("feeds.opml")
        heads = self.store.feed_heads(records)
        outcome.written += write_pages(self.config.out_dir,
                                       listing_files(listings, heads, site, self.clock()))

    def _render_fingerprint(self) -> str:
        config = self.config
        parts = [__version__, config.normalised_base_url, str(config.entry_cap),
                 config.language, self.filing.fingerprint, pages_fingerprint()]
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


def publish_feed(store: Store, key: str, site: Site, config: Config,
                 previous: FeedRecord | None) -> tuple[FeedRecord, bool]:
    """Render one feed from the store and write it if its bytes changed."""
    spec = feed_spec(FeedRef.from_key(key), site)
    entries = store.feed_entries(key, config.entry_cap)
    fallback = previous.updated if previous else None
    data = render_atom(spec, entries, site, fallback)
    written = write_if_changed(config.out_dir / spec.path, data)
    total = store.feed_total(key)
    write_pages(config.out_dir, pages_for_feed(spec, entries, total, site))
    record = FeedRecord(key, spec.title, spec.path, total,
                        feed_updated(entries, fallback) if entries or fallback else None,
                        hashlib.sha256(data).hexdigest())
    return record, written


def _spec_for(record: FeedRecord, site: Site) -> FeedSpec:
    return feed_spec(FeedRef.from_key(record.feed), site)


