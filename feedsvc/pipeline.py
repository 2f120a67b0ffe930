"""The one refresh path: sources -> items -> store -> render -> publish. Where the stages meet.

:func:`make_pipeline` wires the parts once (the store, the filing rules, the site the feeds are
published on, the shared client of each source kind, the writer thread, the clock).
:meth:`Pipeline.refresh` is what ``feedsvc build`` calls once and every daemon job calls for the
sources due now::

    read      each source, in name order             sources/* (in worker processes when a
                                                     batch of files is big enough to pay)
    decide    fold copies, compare with the store    ingest.decide (pure)        } on the
    store     apply the changes, a chunk of sources  store                       } writer
              per transaction                                                    } thread
    publish   render the feeds that changed, write   publisher -> render, publish }
              the files whose bytes changed

Exactly one thread, the writer, touches the store; whoever reads a source hands it what was
read. Sources are stored in the order of their names, whatever order they were given or read
in, so the result of a refresh depends on what the sources hold, not on how they were listed.
A failing source is recorded (log line, health, exit status) and the others go on; the feeds
it fed before stay as they were.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, TypeVar

from . import __version__
from .config import Config, SourceConfig
from .errors import FeedsvcError, SourceError
from .filing import Filing
from .ingest import Changes, Sighting, Snapshot, decide, group_sightings, sort_key
from .model import ALMATY, Item, Refiling
from .publisher import Publisher, PublishOutcome
from .render import Site
from .sources import KINDS, Source, SourceResult
from .store import SourceHealth, Store

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
Sleep = Callable[[float], None]
T = TypeVar("T")
#: Below these amounts reading in worker processes would cost more than it saves.
PARALLEL_MIN_SOURCES = 2
PARALLEL_MIN_BYTES = 8_000_000
#: A refresh stores its sources in transactions of about this many items (see _chunks).
BATCH_ITEMS = 10_000
#: The environment variable that fixes the clock (reproducible builds, and the tests).
EPOCH_ENV = "SOURCE_DATE_EPOCH"


def utc_now() -> datetime:
    return datetime.now(UTC)


def default_clock() -> Clock:
    """The wall clock, or the fixed instant ``SOURCE_DATE_EPOCH`` names (seconds since 1970).

    The convention of reproducible builds: with it set, two runs on the same inputs write the
    same bytes, whatever the time, the mode (build or daemon) or the machine.
    """
    fixed = os.environ.get(EPOCH_ENV)
    if not fixed:
        return utc_now
    moment = datetime.fromtimestamp(int(fixed), UTC)
    return lambda: moment


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
class BuildReport:
    sources: list[SourceOutcome] = field(default_factory=list)
    publish: PublishOutcome = field(default_factory=PublishOutcome)

    @property
    def failed(self) -> list[SourceOutcome]:
        return [outcome for outcome in self.sources if outcome.error]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.publish.errors

    def summary(self) -> str:
        read = [o for o in self.sources if not o.error]
        skipped = sum(1 for o in read if o.skipped)
        new = sum(o.new for o in read)
        changed = sum(o.changed for o in read)
        unchanged = sum(o.unchanged for o in read)
        warnings = sum(len(o.warnings) for o in self.sources)
        feeds = sum(1 for path in self.publish.written if path.endswith(".atom"))
        errors = len(self.failed) + len(self.publish.errors)
        return (f"{len(read)} source(s) read ({skipped} unchanged since last run), "
                f"{len(self.failed)} failed; items: {new} new, {changed} changed, "
                f"{unchanged} unchanged; feeds: {feeds} written, {self.publish.unchanged} "
                f"unchanged; files written: {len(self.publish.written)}; "
                f"warnings: {warnings}; errors: {errors}")


# --- the writer thread -----------------------------------------------------------------------

class Writer:
    """The one thread that uses the store. Others hand it functions and wait for the result.

    The store's connection is made on this thread, and SQLite's own check refuses its use from
    any other, so "one writer" is enforced, not a convention.
    """

    def __init__(self, open_store: Callable[[], Store]) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="feedsvc-store")
        try:
            self.store = self.call(open_store)
        except BaseException:
            self._executor.shutdown()
            raise

    def submit(self, function: Callable[..., T], *args: Any) -> Future[T]:
        return self._executor.submit(function, *args)

    def call(self, function: Callable[..., T], *args: Any) -> T:
        return self.submit(function, *args).result()

    def close(self) -> None:
        try:
            self.call(self.store.close)
        finally:
            self._executor.shutdown()


# --- health, kept in memory ------------------------------------------------------------------

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


# --- one refresh -----------------------------------------------------------------------------

@dataclass(slots=True)
class _Read:
    """What reading one source gave, for the writer to store."""

    source: Source
    now: datetime
    result: SourceResult | None = None
    sightings: list[Sighting] | None = None  # already folded and filed by a worker
    error: str | None = None
    resting: bool = False

    @property
    def size(self) -> int:
        if self.sightings is not None:
            return len(self.sightings)
        return len(self.result.items) if self.result else 0


_run_numbers = itertools.count(1)


@dataclass(slots=True)
class _Run:
    """What one refresh remembers between the chunks it stores (only the writer touches it)."""

    number: int = field(default_factory=lambda: next(_run_numbers))
    #: Atom ids this refresh created: their ``updated`` stays their publication time however
    #: many of its sources add to them, so the result does not depend on how sources are split.
    fresh: set[str] = field(default_factory=set)
    #: Identity key -> Atom id of every key this refresh wrote, when it began on an empty
    #: store: its look-ups then need no SQL (a first build looks up 175,000 keys per 100,000
    #: items, nearly all unknown). Dropped when another refresh writes in between.
    keys: dict[str, str] | None = None


class _Context:
    """What a source may ask the store while it reads (see sources.SourceContext)."""

    def __init__(self, pipeline: Pipeline, name: str, now: datetime,
                 state: dict[str, Any] | None) -> None:
        self.pipeline = pipeline
        self.name = name
        self.now = now
        self._state = state

    def previous_state(self) -> dict[str, Any] | None:
        return self._state

    def is_known(self, item: Item) -> bool:
        return self.pipeline.writer.call(self.pipeline.is_known, self.name, item)


class Pipeline:
    """The parts of feedsvc wired together; made by :func:`make_pipeline`."""

    def __init__(self, config: Config, writer: Writer, filing: Filing, site: Site,
                 clients: dict[str, Any], *, clock: Clock, parallel: bool) -> None:
        self.config = config
        self.writer = writer
        self.filing = filing
        self.site = site
        self.clients = clients
        self.clock = clock
        self.parallel = parallel
        self.publisher = Publisher(writer.store, site, config.out_dir)
        self.health = Health(writer.call(writer.store.source_health))
        self._last_run = 0  # the refresh that wrote last (writer only)

    def close(self) -> None:
        try:
            self.writer.close()
        finally:
            for client in self.clients.values():
                if client is not None:
                    client.close()

    @property
    def store(self) -> Store:
        """The store, for functions run on the writer (:meth:`Writer.call`) only."""
        return self.writer.store

    def sources(self, specs: Sequence[SourceConfig] | None = None) -> list[Source]:
        """The sources configured entries stand for (a directory: each of its files now)."""
        chosen = self.config.sources if specs is None else specs
        return [source for spec in chosen if spec.enabled
                for source in expand(spec, self.config, self.clients)]

    def refresh(self, sources: Iterable[Source] | None = None, *,
                progress: Callable[[list[Source]], Iterable[Source]] | None = None,
                publish: bool = True) -> BuildReport:
        """Read ``sources`` (default: every configured one), store what is new or changed,
        and publish what changed. Never raises for a bad source."""
        chosen = sorted(self.sources() if sources is None else sources,
                        key=attrgetter("name"))
        self.health.read_sources(source.name for source in chosen)
        self.writer.call(self._refresh_derived)
        states, empty = self.writer.call(self._plan, chosen)
        run = _Run(keys={} if empty else None)
        report = BuildReport()
        workers = self._start_workers(chosen, states)
        try:
            reads = (self._read(source, states.get(source.name), workers)
                     for source in (progress(chosen) if progress else chosen))
            for chunk in _chunks(reads):
                report.sources.extend(self.writer.call(self._store_chunk, run, chunk))
            if publish:
                report.publish = self.writer.call(self._publish, workers)
        finally:
            if workers is not None:
                workers.close()
        if sum(outcome.new + outcome.changed for outcome in report.sources) >= BATCH_ITEMS:
            self.writer.call(self.store.release_memory)
            _return_freed_heap()
        return report

    def publish(self) -> PublishOutcome:
        """Publish whatever the store holds unpublished (and the OPML and index if missing)."""
        return self.writer.call(self._publish, None)

    # --- reading (any thread) ----------------------------------------------------------------

    def _read(self, source: Source, state: dict[str, Any] | None, workers: Any) -> _Read:
        now = self.clock()
        if source.resting(state, now):
            return _Read(source, now, resting=True)
        try:
            prepared = self._prepared(source, workers)
            if prepared is None:
                return _Read(source, now, source.read(_Context(self, source.name, now, state)))
            if prepared.error:
                return _Read(source, now, error=prepared.error)
            return _Read(source, now, prepared.result, prepared.sightings)
        except (SourceError, FeedsvcError) as exc:
            return _Read(source, now, error=str(exc))
        except Exception as exc:  # a bug, but one source must not take the others down
            log.error("source.crashed source=%s error=%r", source.name, exc, exc_info=True)
            return _Read(source, now, error=f"{source.name}: internal error: {exc!r}")

    @staticmethod
    def _prepared(source: Source, workers: Any) -> Any:
        """What a worker read of ``source``, or None to read it here."""
        if workers is None or source.name not in workers:
            return None
        try:
            return workers.take(source.name)
        except Exception as exc:  # a dead worker: read this one here
            log.warning("build.parallel_failed source=%s error=%r; reading it here",
                        source.name, exc)
            return None

    def _start_workers(self, chosen: list[Source], states: dict[str, Any]) -> Any:
        """Workers for the sources that can be read in other processes, when there are
        enough of them to pay for starting Python; None when one core is enough."""
        if not self.parallel:
            return None
        now = self.clock()
        jobs = []
        size = 0
        for source in chosen:
            state = states.get(source.name)
            amount = source.worker_bytes(state)
            if amount is not None and not source.resting(state, now):
                jobs.append((source, state, now))
                size += amount
        if len(jobs) < PARALLEL_MIN_SOURCES or size < PARALLEL_MIN_BYTES:
            return None
        from .parallel import Workers

        log.info("build.parallel sources=%d bytes=%d", len(jobs), size)
        workers = Workers(self.config, self.writer.call(self.store.live_organisations),
                          self.site)
        # The first source is read here, while the workers start (spawning Python and loading
        # the registry and topics takes them longer than that file takes this process).
        workers.prepare(jobs[1:])
        return workers

    # --- on the writer thread ------------------------------------------------------------------

    def _plan(self, chosen: list[Source]) -> tuple[dict[str, Any], bool]:
        """Each source's saved state, and whether the store is empty."""
        return {s.name: self.store.source_state(s.name) for s in chosen}, self.store.is_empty()

    def is_known(self, name: str, item: Item) -> bool:
        """True when the store holds exactly ``item`` as source ``name`` told it."""
        store = self.store
        keys = store.lookup_keys(item.identity_keys())
        atom_id = keys.get(item.news_key or "") or keys.get(item.title_key)
        if atom_id is None:
            return False
        stored = store.sightings([atom_id]).get(atom_id, {}).get(name)
        return stored is not None and stored[0] == item.content_hash()

    def _store_chunk(self, run: _Run, chunk: list[_Read]) -> list[SourceOutcome]:
        """Store several sources in one transaction (a crash loses no published state: the
        sources of an uncommitted chunk are read again next time, their state was not
        committed either)."""
        if run.keys is not None and self._last_run not in (0, run.number):
            run.keys = None  # another refresh wrote keys this one does not know
        self._last_run = run.number
        with self.store.transaction():
            return [self._store_one(run, read) for read in chunk]

    def _store_one(self, run: _Run, read: _Read) -> SourceOutcome:
        source, now = read.source, read.now
        outcome = SourceOutcome(source.name)
        if read.resting:
            outcome.skipped = True
            log.info("source.resting source=%s", source.name)
            return outcome
        if read.error is not None or read.result is None:
            return self._failed(outcome, read.error or "nothing read", now, source)
        result = read.result
        outcome.warnings, outcome.stats = result.warnings, result.stats
        for warning in result.warnings:
            log.warning("source.warning %s", warning)
        try:
            with self.store.transaction():  # a savepoint: this source only
                changes = self._apply_read(run, read, now)
        except (FeedsvcError, ValueError, OverflowError, TypeError) as exc:
            # A value the store cannot take: this source fails, the others go on.
            log.error("source.unstorable source=%s error=%r", source.name, exc, exc_info=True)
            return self._failed(outcome, f"{source.name}: cannot store what was read: {exc}",
                                now, source)
        if changes is None:
            outcome.skipped = True
        else:
            outcome.new, outcome.changed, outcome.unchanged = (changes.new, changes.changed,
                                                               changes.unchanged)
            run.fresh |= changes.created
            if run.keys is not None:
                for key, _, atom_id in changes.keys:
                    run.keys.setdefault(key, atom_id)
        self.health.succeeded(source.name, now, changes.first_sightings if changes else 0)
        log.info("source.read source=%s new=%d changed=%d unchanged=%d skipped=%s",
                 source.name, outcome.new, outcome.changed, outcome.unchanged,
                 str(outcome.skipped).lower())
        return outcome

    def _apply_read(self, run: _Run, read: _Read, now: datetime) -> Changes | None:
        """Decide and write what one source's read changes; None if it saw nothing new."""
        store, name, result = self.store, read.source.name, read.result
        assert result is not None
        if result.unchanged:
            store.record_success(name, result.state, now)
            return None
        sightings = read.sightings
        if sightings is None:
            sightings = group_sightings(result.items)
        now = now.astimezone(ALMATY)
        changes = decide(name, sightings, self._snapshot(run, sightings), now,
                         self.filing.file, run.fresh)
        store.write_items(changes.items)
        store.write_keys((key, item_id) for key, item_id, _ in changes.keys)
        store.write_sightings(changes.sightings, now)
        store.refile(changes.refilings)
        store.file_new_items(changes.new_ids, changes.new_members)
        store.record_success(name, result.state, now)
        store.add_source_items(name, changes.first_sightings)
        store.mark_dirty(changes.dirty_feeds)
        return changes

    def _snapshot(self, run: _Run, sightings: list[Sighting]) -> Snapshot:
        store = self.store
        known = run.keys
        if known is None:
            keys = store.lookup_keys(key for s in sightings for key in s.keys)
        else:  # the store was empty: every key it knows, this refresh wrote and remembers
            keys = {key: known[key] for s in sightings for key in s.keys if key in known}
        atoms = set(keys.values())
        return Snapshot(keys, store.item_rows(atoms), store.sightings(atoms), store.next_item_id())

    def _failed(self, outcome: SourceOutcome, message: str, now: datetime,
                source: Source) -> SourceOutcome:
        outcome.error = message
        log.error("source.failed %s", message)
        with self.store.transaction():
            state = source.state_after_failure(self.store.source_state(outcome.name), now)
            self.store.record_failure(outcome.name, message, now, state)
        self.health.failed(outcome.name, now, message)
        return outcome

    def _publish(self, workers: Any) -> PublishOutcome:
        outcome = self.publisher.regenerate(workers)
        self.health.published(self.clock(), outcome.errors)
        return outcome

    def _refresh_derived(self) -> None:
        """Re-file every stored item when the registry or the topics file changed.

        Editing the taxonomy or fetching organisation names must show in the next build's
        feeds without re-reading any source.
        """
        fingerprint = f"{__version__}|{self.filing.fingerprint}"
        store = self.store
        previous = store.get_meta("derived")
        if previous == fingerprint:
            return
        if previous is not None:
            log.info("refile.start reason=registry-or-topics-changed items=%d",
                     store.count_items())
            self._refile_all()
        with store.transaction():
            store.set_meta("derived", fingerprint)

    def _refile_all(self) -> None:
        store = self.store
        with store.transaction():
            store.mark_dirty(store.all_member_feeds())
            for batch in store.iter_items():
                filings = []
                moves = []
                for row, item in batch:
                    topics, feeds = self.filing.file(item)
                    key = sort_key(item, row.atom_id, row.first_seen)
                    filings.append((row.item_id, topics, feeds, key))
                    moves.append(Refiling(row.item_id, feeds, key, row.feeds, row.sort_key))
                store.update_filing(filings)
                store.refile(moves)
            store.mark_dirty(store.all_member_feeds())


def _return_freed_heap() -> None:
    """Hand the memory a big refresh freed back to the system (glibc keeps it otherwise, and
    a daemon that built 100,000 items would idle at twice its size)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _chunks(reads: Iterator[_Read]) -> Iterator[list[_Read]]:
    """Reads grouped so that each group holds about ``BATCH_ITEMS`` items (or is the rest).

    Each group is one transaction: committing after every file would write every touched index
    page again per file (identity keys are hashes, all over their index).
    """
    chunk: list[_Read] = []
    size = 0
    for read in reads:
        chunk.append(read)
        size += read.size
        if size >= BATCH_ITEMS:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def make_clients(config: Config, sleep: Sleep | None = None) -> dict[str, Any]:
    """The shared client of each source kind the configuration uses, made once, before any
    source is read (a kind's module is imported only when a source of it is configured).

    ``sleep``: how clients wait (between requests, before retries); tests pass one that
    does not really wait.
    """
    kinds = {spec.kind for spec in config.sources if spec.enabled}
    return {name: KINDS[name].implementation().make_client(config, sleep)
            for name in sorted(kinds)}


def expand(spec: SourceConfig, config: Config, clients: dict[str, Any]) -> list[Source]:
    """The sources one configured entry stands for (a directory: each of its files)."""
    module = KINDS[spec.kind].implementation()
    return list(module.expand(spec, config, clients.get(spec.kind)))


def make_pipeline(config: Config, *, clock: Clock | None = None, sleep: Sleep | None = None,
                  parallel: bool = False) -> Pipeline:
    """Open the store and wire every part once: what ``feedsvc build`` and the daemon run on.

    ``clock``: the time items are stored at (default: the wall clock, or SOURCE_DATE_EPOCH);
    ``sleep``: how source clients wait (default: really); ``parallel``: read big batches of
    files, and render many feeds, in worker processes.
    """
    writer = Writer(lambda: Store(config.db))
    try:
        filing = Filing.load(config, writer.call(writer.store.live_organisations))
        site = Site(config.normalised_base_url, config.language, filing.registry,
                    filing.topic_names, config.entry_cap)
        clients = make_clients(config, sleep)
    except BaseException:
        writer.close()
        raise
    return Pipeline(config, writer, filing, site, clients, clock=clock or default_clock(),
                    parallel=parallel)
