"""The writer's half of a refresh: decide what each source's read changes and store it.

Runs only on the pipeline's writer thread (:class:`Writer`), the one thread that uses the store.
Sources are stored in chunks, one transaction each, and each source in a savepoint of its own,
so a value the store cannot take fails that source alone.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from . import __version__
from .errors import FeedsvcError
from .filing import Filing
from .health import Health
from .ingest import Changes, Sighting, Snapshot, decide, group_sightings, sort_key
from .model import ALMATY, Item, Refiling
from .sources import Source, SourceResult
from .store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


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


@dataclass(slots=True)
class SourceRead:
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
class Run:
    """What one refresh remembers between the chunks it stores (only the writer touches it)."""

    number: int = field(default_factory=lambda: next(_run_numbers))
    #: Identity key -> Atom id of every key this refresh wrote, when it began on an empty
    #: store: its look-ups then need no SQL (a first build looks up 175,000 keys per 100,000
    #: items, nearly all unknown). Dropped when another refresh writes in between.
    keys: dict[str, str] | None = None


class Storer:
    """Stores what sources read, for one store, filing rules and health record."""

    def __init__(self, store: Store, filing: Filing, health: Health) -> None:
        self.store = store
        self.filing = filing
        self.health = health
        self._last_run = 0  # the refresh that wrote last

    def plan(self, chosen: list[Source]) -> tuple[dict[str, Any], bool]:
        """Each source's saved state, and whether the store is empty."""
        store = self.store
        if store.published_upto() is None:  # a store from before it was recorded
            with store.transaction():
                store.mark_published()  # everything it holds was published
        return {s.name: store.source_state(s.name) for s in chosen}, store.is_empty()

    def is_known(self, name: str, item: Item) -> bool:
        """True when the store holds exactly ``item`` as source ``name`` told it."""
        store = self.store
        keys = store.lookup_keys(item.identity_keys())
        atom_id = keys.get(item.news_key or "") or keys.get(item.title_key)
        if atom_id is None:
            return False
        stored = store.sightings([atom_id]).get(atom_id, {}).get(name)
        return stored is not None and stored[0] == item.content_hash()

    def store_chunk(self, run: Run, chunk: list[SourceRead]) -> list[SourceOutcome]:
        """Store several sources in one transaction (a crash loses no published state: the
        sources of an uncommitted chunk are read again next time, their state was not
        committed either)."""
        if run.keys is not None and self._last_run not in (0, run.number):
            run.keys = None  # another refresh wrote keys this one does not know
        self._last_run = run.number
        with self.store.transaction():
            return [self._store_one(run, read) for read in chunk]

    def _store_one(self, run: Run, read: SourceRead) -> SourceOutcome:
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
            if run.keys is not None:
                for key, _, atom_id in changes.keys:
                    run.keys.setdefault(key, atom_id)
        self.health.succeeded(source.name, now, changes.first_sightings if changes else 0)
        log.info("source.read source=%s new=%d changed=%d unchanged=%d skipped=%s",
                 source.name, outcome.new, outcome.changed, outcome.unchanged,
                 str(outcome.skipped).lower())
        return outcome

    def _apply_read(self, run: Run, read: SourceRead, now: datetime) -> Changes | None:
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
                         self.filing.file)
        store.write_items(changes.items)
        store.write_keys((key, item_id) for key, item_id, _ in changes.keys)
        store.write_sightings(changes.sightings, now)
        store.refile(changes.refilings)
        store.file_new_items(changes.new_ids, changes.new_members)
        store.record_success(name, result.state, now)
        store.add_source_items(name, changes.first_sightings)
        store.mark_dirty(changes.dirty_feeds)
        return changes

    def _snapshot(self, run: Run, sightings: list[Sighting]) -> Snapshot:
        store = self.store
        known = run.keys
        if known is None:
            keys = store.lookup_keys(key for s in sightings for key in s.keys)
        else:  # the store was empty: every key it knows, this refresh wrote and remembers
            keys = {key: known[key] for s in sightings for key in s.keys if key in known}
        atoms = set(keys.values())
        return Snapshot(keys, store.item_rows(atoms), store.sightings(atoms), store.next_item_id(),
                        store.published_upto() or 0)

    def _failed(self, outcome: SourceOutcome, message: str, now: datetime,
                source: Source) -> SourceOutcome:
        outcome.error = message
        log.error("source.failed %s", message)
        with self.store.transaction():
            state = source.state_after_failure(self.store.source_state(outcome.name), now)
            self.store.record_failure(outcome.name, message, now, state)
        self.health.failed(outcome.name, now, message)
        return outcome

    def refresh_derived(self) -> None:
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
