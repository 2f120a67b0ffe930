"""Publishing: render the feeds whose entries changed, write the files whose bytes changed.

The store keeps the list of feeds waiting to be published (``dirty_feeds``), in the same
transaction as the change that dirtied them, and it is cleared only once they are written, so a
run that dies half way is completed by the next one. A feed that cannot be written is reported
and stays on that list; every other feed is still published. Then the OPML list and the index.

Render is pure (:mod:`feedsvc.render`), writing is atomic (:mod:`feedsvc.publish`); this module
joins them to the store, and runs where the store is written (the pipeline's writer thread), or
in a worker process of a big build (:func:`publish_feed`).
"""

from __future__ import annotations

import errno
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from .errors import PublishError
from .formats import render_formats
from .model import FeedRef
from .pages import LISTING_FILES, listing_files, pages_for_feed, write_pages
from .publish import remove_stale_temporaries, write_if_changed
from .render import (
    DISTINCT_OPML,
    FORMAT_TYPES,
    Listing,
    Site,
    feed_page_path,
    feed_spec,
    feed_updated,
    format_url,
    render_atom,
    render_distinct_opml,
    render_opml,
)
from .store import FeedRecord, Store

log = logging.getLogger(__name__)
#: Below this many feeds, rendering in worker processes costs more than it saves.
PARALLEL_MIN_FEEDS = 64
LISTINGS = ("feeds.opml", DISTINCT_OPML, *LISTING_FILES)


@dataclass(slots=True)
class PublishOutcome:
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    #: One line per file that could not be written (it is tried again next time).
    errors: list[str] = field(default_factory=list)


def publish_feed(store: Store, key: str, site: Site, out_dir: Path,
                 previous: FeedRecord | None) -> tuple[FeedRecord, list[str]]:
    """Render one feed from the store (in every format, with its page and its entries' pages)
    and write the files whose bytes changed: its record and the paths written.

    Raises PublishError when a file cannot be written.
    """
    spec = feed_spec(FeedRef.from_key(key), site)
    entries = store.feed_entries(key, site.entry_cap)
    fallback = previous.updated if previous else None
    data = render_atom(spec, entries, site, fallback)
    written = [spec.path] if write_if_changed(out_dir / spec.path, data) else []
    others = render_formats(spec, entries, site, fallback)  # the same feed as .rss and .json
    written += [path for path, body in others.items() if write_if_changed(out_dir / path, body)]
    total = store.feed_total(key)
    written += write_pages(out_dir, pages_for_feed(spec, entries, total, site))
    record = FeedRecord(key, spec.title, spec.path, total,
                        feed_updated(entries, fallback) if entries or fallback else None,
                        hashlib.sha256(data + b"".join(others.values())).hexdigest())
    return record, written


def _missing_file(out_dir: Path, path: str) -> bool:
    """Whether a file of this feed is gone from the output (deleted by hand, or lost): the
    feed is published again, though nothing of it changed."""
    files = [format_url(path, suffix) for suffix in FORMAT_TYPES] + [feed_page_path(path)]
    return not all((out_dir / name).exists() for name in files)


#: Failures of the output directory as a whole, not of one file: publishing stops at the first.
_SYSTEM_REFUSALS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES,
                              errno.EPERM})


def _refused_by_system(exc: PublishError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, OSError) and cause.errno in _SYSTEM_REFUSALS


def publish_feeds(store: Store, keys: list[str], site: Site, out_dir: Path,
                  previous: dict[str, FeedRecord]) -> list[tuple[FeedRecord | str, list[str]]]:
    """:func:`publish_feed` for each key; a feed that fails gives its error line instead.

    A refusal of the system (read-only or full disk, no permission) is raised: every other
    feed would fail the same way, and the operator needs one clear line, not one per feed.
    """
    published: list[tuple[FeedRecord | str, list[str]]] = []
    for key in keys:
        try:
            published.append(publish_feed(store, key, site, out_dir, previous.get(key)))
        except PublishError as exc:
            if _refused_by_system(exc):
                raise
            published.append((str(exc), []))
    return published


class FeedRenderer(Protocol):
    """Renders and publishes many feeds elsewhere (the worker processes of a big build)."""

    def render(self, keys: list[str], previous: dict[str, FeedRecord],
               meanwhile: Callable[[], None] | None = None
               ) -> list[tuple[FeedRecord | str, list[str]]]: ...


class Publisher:
    """Publishes what the store marks as changed into ``out_dir``, for one :class:`Site`."""

    def __init__(self, store: Store, site: Site, out_dir: Path,
                 clock: Callable[[], datetime]) -> None:
        self.store = store
        self.site = site
        self.out_dir = out_dir
        self.clock = clock  # the directory says when the feeds were rebuilt
        self._swept = False  # leftovers of an interrupted run are removed once per process

    def regenerate(self, workers: FeedRenderer | None = None) -> PublishOutcome:
        """Render and publish the feeds that may have changed, then the OPML and index.

        ``workers``: worker processes to render a large number of feeds in.
        """
        store, out = self.store, self.out_dir
        if not self._swept:
            remove_stale_temporaries(out)
            self._swept = True
        records = store.feed_records()
        dirty = store.dirty_feeds()
        newest_item = store.next_item_id() - 1  # the writer's: no item comes in meanwhile
        todo = set(dirty)
        fingerprint = self.site.fingerprint
        if store.get_meta("render") != fingerprint:
            todo |= set(records) | store.all_member_feeds()
        todo |= {key for key, rec in records.items() if _missing_file(out, rec.path)}
        outcome = PublishOutcome()
        published = self._render(sorted(todo), records, workers)
        failed: set[str] = set()
        changed = []
        for key, (record, written) in zip(sorted(todo), published, strict=True):
            if isinstance(record, str):
                outcome.errors.append(record)
                failed.add(key)
                log.error("publish.failed feed=%s error=%s", key, record)
                continue
            outcome.written += written
            if record.path not in written:
                outcome.unchanged += 1
            if records.get(record.feed) != record:
                changed.append(record)
        if changed or todo or any(not (out / name).exists() for name in LISTINGS):
            self._publish_listings({**records, **{r.feed: r for r in changed}}, outcome)
        with store.transaction():
            store.save_feed_records(changed)
            store.set_meta("render", fingerprint)
            store.set_meta("published_upto", str(newest_item))
            store.clear_dirty(set(dirty) - failed)
            store.mark_dirty(failed)
        if outcome.written:
            log.info("publish.done written=%d unchanged=%d", len(outcome.written),
                     outcome.unchanged)
        return outcome

    def _render(self, keys: list[str], records: dict[str, FeedRecord],
                workers: FeedRenderer | None) -> list[tuple[FeedRecord | str, list[str]]]:
        if workers is not None and len(keys) >= PARALLEL_MIN_FEEDS:
            try:
                # The search index is brought up to the new items while the workers render
                # (else clear_dirty does it, after them): the main process would only wait.
                return workers.render(keys, records, meanwhile=self._index_new_items)
            except Exception as exc:  # a worker died: render here
                log.warning("publish.parallel_failed error=%r; rendering in one process", exc)
        return publish_feeds(self.store, keys, self.site, self.out_dir, records)

    def _index_new_items(self) -> None:
        with self.store.transaction():
            self.store.index_new_items()

    def _publish_listings(self, records: dict[str, FeedRecord], outcome: PublishOutcome) -> None:
        site = self.site
        listings = [Listing(feed_spec(FeedRef.from_key(record.feed), site), record.total,
                            record.updated) for record in records.values()]
        heads = self.store.feed_heads(records)
        files = {"feeds.opml": render_opml(listings, site),
                 DISTINCT_OPML: render_distinct_opml(listings, site),
                 **listing_files(listings, heads, site, self.clock())}
        for name, data in files.items():
            try:
                if write_if_changed(self.out_dir / name, data, durable=name.endswith(".opml")):
                    outcome.written.append(name)
            except PublishError as exc:
                if _refused_by_system(exc):
                    raise
                outcome.errors.append(str(exc))
                log.error("publish.failed file=%s error=%s", name, exc)
