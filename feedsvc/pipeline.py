"""The one refresh path: sources -> items -> store -> render -> publish. Where the stages meet.

:func:`make_pipeline` wires the parts once (the store, the filing rules, the site the feeds are
published on, the shared client of each source kind, the writer thread, the clock).
:meth:`Pipeline.refresh` is what ``feedsvc build`` calls once and every daemon job calls for the
sources due now::

    read      each source, in name order             sources/* (in worker processes when a
                                                     batch of files is big enough to pay)
    decide    fold copies, compare with the store    storing -> ingest.decide    } on the
    store     apply the changes, a chunk of sources  storing -> store            } writer
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

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from . import pages
from .config import Config, SourceConfig
from .errors import FeedsvcError, SourceError
from .filing import Filing
from .health import Health
from .kinds import KINDS
from .model import Item
from .publisher import Publisher, PublishOutcome
from .render import Site
from .sources import Source
from .store import Store
from .storing import Run, SourceOutcome, SourceRead, Storer, Writer

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
Sleep = Callable[[float], None]
#: Below these amounts reading in worker processes would cost more than it saves.
PARALLEL_MIN_SOURCES = 2
PARALLEL_MIN_BYTES = 8_000_000
#: A refresh stores its sources in transactions of about this many items (see _chunks).
BATCH_ITEMS = 10_000
#: SQLite's page cache (MiB) while a refresh stores chunks of BATCH_ITEMS items: identity keys
#: are hashes, so inserts land all over their index, and a cache big enough for it is much of
#: the speed of a big build.
WRITE_CACHE_MIB = 64
#: ... and otherwise: the daemon's small refreshes (a few thousand items of the whole portal's
#: streams at most) and publishing. A 64 MiB cache held all the time was an eighth of the
#: daemon's memory following the whole portal (benchmarks/portal_memory.py).
CACHE_MIB = 16
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


# --- one refresh -----------------------------------------------------------------------------

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
        return self.pipeline.writer.call(self.pipeline.storer.is_known, self.name, item)


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
        self.publisher = Publisher(writer.store, site, config.out_dir, clock)
        self.health = Health(writer.call(writer.store.source_health))
        self.storer = Storer(writer.store, filing, self.health)

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
        self.writer.call(self.storer.refresh_derived)
        states, empty = self.writer.call(self.storer.plan, chosen)
        run = Run(keys={} if empty else None)
        report = BuildReport()
        workers = self._start_workers(chosen, states)
        big = False  # storing chunks of BATCH_ITEMS: with the big page cache
        try:
            reads = (self._read(source, states.get(source.name), workers)
                     for source in (progress(chosen) if progress else chosen))
            # The writer stores one chunk while this thread reads the next one (and the
            # workers, kept busy, read ahead of it): one chunk waits at most.
            storing: Future[list[SourceOutcome]] | None = None
            for chunk in _chunks(reads):
                if storing is not None:
                    report.sources.extend(storing.result())
                if not big and sum(read.size for read in chunk) >= BATCH_ITEMS:
                    big = True  # queued before the chunk: the writer runs them in order
                    self.writer.submit(self.store.set_cache, WRITE_CACHE_MIB)
                storing = self.writer.submit(self.storer.store_chunk, run, chunk)
            if storing is not None:
                report.sources.extend(storing.result())
            if publish:
                report.publish = self.writer.call(self._publish, workers)
        finally:
            if workers is not None:
                workers.close()
        if big or sum(o.new + o.changed for o in report.sources) >= BATCH_ITEMS:
            self.release_memory()
        return report

    def release_memory(self) -> None:
        """Give back what a big refresh (or a busy spell of the daemon) filled: SQLite's page
        cache back to its everyday size and emptied, the topic classifier's caches, and the
        heap pages freed meanwhile. All of it fills again as it is needed."""
        self.writer.call(self._release_on_writer)
        _return_freed_heap()

    def _release_on_writer(self) -> None:
        self.store.set_cache(CACHE_MIB)
        self.store.release_memory()
        self.filing.release_caches()

    def publish(self) -> PublishOutcome:
        """Publish whatever the store holds unpublished (and the OPML and index if missing)."""
        return self.writer.call(self._publish, None)

    # --- reading (any thread) ----------------------------------------------------------------

    def _read(self, source: Source, state: dict[str, Any] | None, workers: Any) -> SourceRead:
        now = self.clock()
        if source.resting(state, now):
            return SourceRead(source, now, resting=True)
        try:
            prepared = self._prepared(source, workers)
            if prepared is None:
                context = _Context(self, source.name, now, state)
                return SourceRead(source, now, source.read(context))
            if prepared.error:
                return SourceRead(source, now, error=prepared.error)
            return SourceRead(source, now, prepared.result, prepared.sightings)
        except (SourceError, FeedsvcError) as exc:
            return SourceRead(source, now, error=str(exc))
        except Exception as exc:  # a bug, but one source must not take the others down
            log.error("source.crashed source=%s error=%r", source.name, exc, exc_info=True)
            return SourceRead(source, now, error=f"{source.name}: internal error: {exc!r}")

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

    def _publish(self, workers: Any) -> PublishOutcome:
        try:
            outcome = self.publisher.regenerate(workers)
        except FeedsvcError as exc:  # the system refused the output directory
            self.health.published(self.clock(), [str(exc)])
            raise
        self.health.published(self.clock(), outcome.errors)
        return outcome

def _return_freed_heap() -> None:
    """Hand the memory a big refresh freed back to the system (glibc keeps it otherwise, and
    a daemon that built 100,000 items would idle at twice its size)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _chunks(reads: Iterator[SourceRead]) -> Iterator[list[SourceRead]]:
    """Reads grouped so that each group holds about ``BATCH_ITEMS`` items (or is the rest).

    Each group is one transaction: committing after every file would write every touched index
    page again per file (identity keys are hashes, all over their index).
    """
    chunk: list[SourceRead] = []
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
    writer = Writer(lambda: Store(config.db, cache_mib=CACHE_MIB))
    try:
        filing = Filing.load(config, writer.call(writer.store.live_organisations))
        site = Site(config.normalised_base_url, config.language, filing.registry,
                    filing.topic_names, config.entry_cap, pages.fingerprint())
        clients = make_clients(config, sleep)
    except BaseException:
        writer.close()
        raise
    return Pipeline(config, writer, filing, site, clients, clock=clock or default_clock(),
                    parallel=parallel)
