"""Large builds on several cores: files are parsed and classified, and feeds rendered, in
worker processes while the main process keeps the store.

Workers are *spawned*, not forked: a forked child would inherit the main process's SQLite
connection, and SQLite forbids carrying a connection across fork(). Each worker builds its own
:class:`~feedsvc.filing.Filing` from the configuration; a render worker opens its own read-only
use of the store. Everything that crosses the process boundary is plain data (sources that
pickle as a path, dicts, flat tuples, feed records).

Workers exit with their parent: each one watches the parent's process id and ends itself when
the parent is gone, whatever killed it (SIGKILL included).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .config import Config
from .errors import SourceError
from .filing import Filing
from .ingest import Sighting, group_sightings
from .lock import hold_for_worker
from .model import Item
from .publisher import publish_feeds
from .registry import Organisation
from .render import Site
from .sources import Source, SourceResult
from .store import FeedRecord, Store

_filing: Filing | None = None
_site: Site | None = None
_workers_hold: int | None = None  # see lock.hold_for_worker
RENDER_CACHE_MIB = 8
#: How much lower the workers' scheduling priority is than the main process's (see below).
WORKER_NICENESS = 5
#: How often a worker checks that its parent is still alive.
PARENT_CHECK_SECONDS = 0.5


def relax_garbage_collection() -> None:
    """Collect reference cycles far less often, for a one-shot build or a worker.

    A big build keeps hundreds of thousands of objects alive, and CPython's default (a young
    collection every 700 new containers, an old one scanning everything now and then) spent
    a large share of its time re-scanning them; a build makes few cycles. Objects alive now
    (modules, the registry, the taxonomy) are moved out of the collector's sight for good.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def worker_count() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _exit_with(parent: int) -> None:
    """End this worker as soon as ``parent`` is gone (then this process is re-parented)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="feedsvc-parent-watch", daemon=True).start()


def _start_worker(config: Config, live: list[Organisation], site: Site, parent: int) -> None:
    """Set up a worker process: its own filing, and a lower priority than the main process.

    The main process stores what the workers send, one file after the other, so it sets the
    pace of a big build. With three processes on two cores the scheduler would give it only
    two thirds of a core while the workers read ahead; at a lower priority they take what it
    leaves (a 100,000-item build: 4-7 % faster in alternating runs, and less CPU in all).
    """
    global _filing, _site, _workers_hold
    _exit_with(parent)
    _workers_hold = hold_for_worker(config.db)
    if hasattr(os, "nice"):
        os.nice(WORKER_NICENESS)
    _filing = Filing.load(config, live)
    _site = site
    relax_garbage_collection()


@dataclass(slots=True)
class Prepared:
    """A source read, parsed, folded and classified by a worker."""

    name: str
    result: SourceResult | None = None
    rows: list[tuple[Any, ...]] = field(default_factory=list)  # see Sighting.to_row
    error: str | None = None

    @property
    def sightings(self) -> list[Sighting]:
        return [Sighting.from_row(row) for row in self.rows]


@dataclass(slots=True)
class _WorkerContext:
    """What a source read in a worker may know: its previous state, nothing of the store."""

    now: datetime
    state: dict[str, Any] | None

    def previous_state(self) -> dict[str, Any] | None:
        return self.state

    def is_known(self, item: Item) -> bool:
        return False


def _prepare(source: Source, previous: dict[str, Any] | None, now: datetime) -> Prepared:
    assert _filing is not None
    name = source.name
    try:
        result = source.read(_WorkerContext(now, previous))
    except SourceError as exc:
        return Prepared(name, error=str(exc))
    if result.unchanged:
        return Prepared(name, result)
    sightings = group_sightings(result.items)
    result.items = []  # the sightings carry them; no need to send them twice
    for sighting in sightings:
        sighting.filed = _filing.file(sighting.item)
    return Prepared(name, result, [sighting.to_row() for sighting in sightings])


class Workers:
    """The worker processes of one build: they read files ahead of the main process, then
    render feeds. One pool for both, so a build pays for starting Python only once per core.

    ``take(name)`` hands prepared files over in the caller's order; it raises what a worker
    raised (a bug or a dead worker, never a bad file: those come back as ``Prepared.error``).
    """

    def __init__(self, config: Config, live: list[Organisation], site: Site) -> None:
        self._size = worker_count()
        self._pool = ProcessPoolExecutor(self._size,
                                         mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start_worker,
                                         initargs=(config, live, site, os.getpid()))
        self._waiting: deque[tuple[Source, dict[str, Any] | None, datetime]] = deque()
        self._running: dict[str, Future[Prepared]] = {}
        self._ahead = 2 * self._size  # bounded, so parsed files never pile up in memory

    def prepare(self, jobs: list[tuple[Source, dict[str, Any] | None, datetime]]) -> None:
        """Queue (source, its previous state, the time) jobs to be read ahead."""
        self._waiting.extend(jobs)
        self._fill()

    def __contains__(self, name: str) -> bool:
        return name in self._running or any(job[0].name == name for job in self._waiting)

    def _fill(self) -> None:
        while self._waiting and len(self._running) < self._ahead:
            source, previous, now = self._waiting.popleft()
            self._running[source.name] = self._pool.submit(_prepare, source, previous, now)

    def take(self, name: str) -> Prepared:
        while name not in self._running:
            if not self._waiting:
                raise KeyError(name)
            self._ahead += 1
            self._fill()
        future = self._running.pop(name)
        self._fill()
        return future.result()

    def render(self, keys: list[str], previous: dict[str, FeedRecord],
               meanwhile: Callable[[], None] | None = None
               ) -> list[tuple[FeedRecord | str, list[str]]]:
        """Render and publish ``keys`` split over the workers: the results of
        :func:`~feedsvc.publisher.publish_feeds`, in the order of ``keys``. ``meanwhile`` runs
        here while they work."""
        # Several chunks per worker, so a worker that finishes early takes another one.
        count = min(len(keys), 4 * self._size)
        chunks = [keys[start::count] for start in range(count)]
        futures = [self._pool.submit(_render, chunk,
                                     {k: previous[k] for k in chunk if k in previous})
                   for chunk in chunks if chunk]
        if meanwhile is not None:
            meanwhile()
        by_key: dict[str, tuple[FeedRecord | str, list[str]]] = {}
        for chunk, future in zip((c for c in chunks if c), futures, strict=True):
            by_key.update(zip(chunk, future.result(), strict=True))
        return [by_key[key] for key in keys]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _render(keys: list[str], previous: dict[str, FeedRecord]
            ) -> list[tuple[FeedRecord | str, list[str]]]:
    assert _filing is not None and _site is not None
    # Rendering reads each entry once or twice: a small page cache does, and keeps the
    # workers' memory down (with 16 KiB pages the default 64 MiB would fill up).
    store = Store(_filing.config.db, cache_mib=RENDER_CACHE_MIB)
    try:
        return publish_feeds(store, keys, _site, _filing.config.out_dir, previous)
    finally:
        store.close()
