"""SQLite storage: items, their identities and sightings, feed memberships, source state.

The only module that speaks SQL. An item's permanent identity is its Atom id (``urn:uuid:...``);
inside the store, tables refer to items by an integer id, which never leaves it. Schema changes
are numbered steps under ``PRAGMA user_version``, each applied in one transaction; a database
newer than this code is refused rather than damaged.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from .errors import QueryTooSlow, StoreError
from .model import (
    Item,
    ItemDigest,
    ItemRow,
    ItemWrite,
    Refiling,
    SortKey,
    StoredItem,
    news_key_for,
    order_tie,
)
from .registry import Organisation

_MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE items (
        atom_id TEXT PRIMARY KEY,
        lang TEXT NOT NULL,
        news_id INTEGER,
        org TEXT,
        published TEXT,
        updated TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        payload TEXT NOT NULL,
        topics TEXT NOT NULL DEFAULT '[]',
        feeds TEXT NOT NULL DEFAULT '[]',
        sort_key TEXT
    );
    CREATE TABLE item_keys (
        key TEXT PRIMARY KEY,
        atom_id TEXT NOT NULL REFERENCES items(atom_id)
    ) WITHOUT ROWID;
    -- payload NULL: the same as items.payload (the item's only sighting), which saves
    -- writing every text twice in the common case
    CREATE TABLE sightings (
        atom_id TEXT NOT NULL REFERENCES items(atom_id),
        source TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        payload TEXT,
        seen TEXT NOT NULL
    );
    CREATE UNIQUE INDEX sightings_item_source ON sightings(atom_id, source);
    -- sort_key ends with the Atom id, so (feed, sort_key) is unique and is the feed's order;
    -- an item's own row lists its feeds and sort key, so no index by item is needed here
    CREATE TABLE feed_members (
        feed TEXT NOT NULL,
        sort_key TEXT NOT NULL,
        atom_id TEXT NOT NULL REFERENCES items(atom_id),
        PRIMARY KEY (feed, sort_key)
    ) WITHOUT ROWID;
    -- members per feed, kept up to date by refile(): counting a 100,000-item feed each time
    -- it is published costs more than publishing it
    CREATE TABLE feed_counts (feed TEXT PRIMARY KEY, total INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE feeds (
        feed TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        path TEXT NOT NULL,
        total INTEGER NOT NULL,
        updated TEXT,
        sha256 TEXT NOT NULL
    );
    CREATE TABLE sources (
        name TEXT PRIMARY KEY,
        state TEXT,
        last_success TEXT,
        last_failure TEXT,
        last_error TEXT,
        failures INTEGER NOT NULL DEFAULT 0,
        items INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE organisations (
        slug TEXT PRIMARY KEY,
        kind TEXT,
        parent TEXT,
        name_en TEXT,
        name_ru TEXT,
        name_kk TEXT,
        fetched TEXT NOT NULL
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    -- feeds whose entries changed and that are not yet published: kept in the store, in the
    -- same transaction as the change, so a crash before publishing loses no update
    CREATE TABLE dirty_feeds (feed TEXT PRIMARY KEY) WITHOUT ROWID;
    """,
    # 2: items get integer ids and other tables refer to them by id; a feed's order is three
    # integers instead of a 70-character text. The store shrinks by a third and a big build
    # writes half as much (the Atom id, a random UUID, was repeated in four tables).
    """
    CREATE TABLE items_v2 (
        id INTEGER PRIMARY KEY,
        atom_id TEXT NOT NULL UNIQUE,
        lang TEXT NOT NULL,
        news_id INTEGER,
        org TEXT,
        published TEXT,
        updated TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        payload TEXT NOT NULL,
        topics TEXT NOT NULL DEFAULT '[]',
        feeds TEXT NOT NULL DEFAULT '[]',
        -- the feed order, newest first: publication (or first-seen) time in seconds, then the
        -- news id, then a number drawn from the Atom id (stable across stores)
        ts INTEGER NOT NULL,
        tie INTEGER NOT NULL,
        -- the one source that told this story, when only one has: its sighting is the item
        -- itself, and the sightings table has no row for it (most items of a big build)
        source TEXT
    );
    INSERT INTO items_v2(atom_id, lang, news_id, org, published, updated, first_seen,
                         content_hash, payload, topics, feeds, ts, tie)
        SELECT atom_id, lang, news_id, org, published, updated, first_seen, content_hash,
               payload, topics, feeds, CAST(substr(COALESCE(sort_key, '0'), 1, 12) AS INTEGER),
               feedsvc_tie(atom_id)
        FROM items ORDER BY sort_key, atom_id;
    CREATE TABLE item_keys_v2 (
        key TEXT PRIMARY KEY,
        item INTEGER NOT NULL REFERENCES items(id)
    ) WITHOUT ROWID;
    INSERT INTO item_keys_v2 SELECT k.key, i.id FROM item_keys k JOIN items_v2 i USING (atom_id);
    CREATE TABLE sightings_v2 (
        item INTEGER NOT NULL REFERENCES items(id),
        source TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        payload TEXT,
        seen TEXT NOT NULL,
        PRIMARY KEY (item, source)
    ) WITHOUT ROWID;
    INSERT INTO sightings_v2
        SELECT i.id, s.source, s.content_hash, s.payload, s.seen
        FROM sightings s JOIN items_v2 i USING (atom_id);
    CREATE TABLE feed_members_v2 (
        feed TEXT NOT NULL,
        ts INTEGER NOT NULL,
        news INTEGER NOT NULL,
        tie INTEGER NOT NULL,
        item INTEGER NOT NULL REFERENCES items(id),
        PRIMARY KEY (feed, ts, news, tie, item)
    ) WITHOUT ROWID;
    INSERT INTO feed_members_v2
        SELECT m.feed, i.ts, COALESCE(i.news_id, 0), i.tie, i.id
        FROM feed_members m JOIN items_v2 i USING (atom_id);
    DROP TABLE feed_members;
    DROP TABLE sightings;
    DROP TABLE item_keys;
    DROP TABLE items;
    ALTER TABLE items_v2 RENAME TO items;
    ALTER TABLE item_keys_v2 RENAME TO item_keys;
    ALTER TABLE sightings_v2 RENAME TO sightings;
    ALTER TABLE feed_members_v2 RENAME TO feed_members;
    INSERT OR IGNORE INTO dirty_feeds SELECT DISTINCT feed FROM feed_members;
    """,
    # 3: full-text search over titles and bodies (query feeds' ``q``). The index holds no copy
    # of the text: its content is a view of the items' own JSON. New items are indexed in one
    # statement when a build publishes (Store.clear_dirty; ``fts_indexed`` is the highest item
    # id indexed): indexing them row by row while a big build writes them made it about twice
    # as slow. Triggers kept items already indexed in step when their text changed or they went
    # (step 5 replaced the update trigger with Store.write_items).
    # unicode61 folds the case of Cyrillic (Kazakh letters included, kept as letters) and
    # Latin; word forms are matched at query time (a stem used as a prefix), so no stemmer
    # runs while a build writes. No per-row sizes (columnsize=0): results are ordered by date,
    # never ranked. The body is indexed as the JSON text of its paragraphs (the tokenizer skips
    # the brackets, quotes and commas; SQLite cannot run json_each() inside the view the index
    # is rebuilt from). automerge 16 instead of 4: segments are merged less often (a third
    # less indexing time, measured), for a query cost that stays under a few milliseconds.
    # An older store's index is built here from its items.
    """
    CREATE VIEW items_text(id, title, body) AS
        SELECT id, json_extract(payload, '$.title'),
               json_extract(payload, '$.paragraphs')
        FROM items;
    CREATE VIRTUAL TABLE items_fts USING fts5(
        title, body, content='items_text', content_rowid='id', columnsize=0,
        tokenize='unicode61 remove_diacritics 2');
    INSERT INTO items_fts(items_fts, rank) VALUES ('automerge', 16);
    CREATE TRIGGER items_fts_delete AFTER DELETE ON items
    WHEN old.id <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_indexed') BEGIN
        INSERT INTO items_fts(items_fts, rowid, title, body) VALUES (
            'delete', old.id, json_extract(old.payload, '$.title'),
            json_extract(old.payload, '$.paragraphs'));
    END;
    CREATE TRIGGER items_fts_update AFTER UPDATE OF payload ON items
    WHEN old.payload IS NOT new.payload
         AND old.id <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_indexed')
    BEGIN
        INSERT INTO items_fts(items_fts, rowid, title, body) VALUES (
            'delete', old.id, json_extract(old.payload, '$.title'),
            json_extract(old.payload, '$.paragraphs'));
        INSERT INTO items_fts(rowid, title, body) VALUES (
            new.id, json_extract(new.payload, '$.title'),
            json_extract(new.payload, '$.paragraphs'));
    END;
    INSERT INTO items_fts(items_fts) VALUES ('rebuild');
    INSERT INTO meta(key, value) SELECT 'fts_indexed', COALESCE(MAX(id), 0) FROM items;
    -- every feed is published again: each gains its RSS and JSON Feed files and the links
    -- between the formats
    INSERT OR IGNORE INTO dirty_feeds SELECT feed FROM feed_counts WHERE total > 0;
    """,
]
#: What the planner of the whole-portal source learned of each stream (feedsvc/poller.py),
#: so a restart neither starts over nor stampedes. Times are seconds since 1970.
_STEP_POLL_STATS = """
    CREATE TABLE poll_stats (
        stream TEXT PRIMARY KEY,
        last_poll REAL,
        next_poll REAL NOT NULL,
        events REAL NOT NULL,
        span REAL NOT NULL,
        errors INTEGER NOT NULL,
        last_new REAL
    ) WITHOUT ROWID;
    """
_MIGRATIONS.append(_STEP_POLL_STATS)
# 5: items already indexed for search are kept in step by Store.write_items itself, not by a
# trigger. While step 3's update trigger existed, every upsert of the items table cost more
# the more items the store held (a fresh 100,000-item build spent 6.4 s in write_items with
# it, 1.2 s without, though the trigger never fired there: nothing is indexed until the
# build publishes). The delete trigger stays: items are never deleted, and it costs nothing.
_MIGRATIONS.append("DROP TRIGGER IF EXISTS items_fts_update;")
SCHEMA_VERSION = len(_MIGRATIONS)
PAGE_SIZE = 16384  # of new stores
WAL_CHECKPOINT_BYTES = 64 * 1024 * 1024
#: What the full-text index holds of an item (its title, body), as its view items_text
#: (schema step 3) reads it from the item's JSON.
_INDEXED_TEXT = "json_extract(payload, '$.title'), json_extract(payload, '$.paragraphs')"
_CHUNK = 400  # ids per IN (...): some queries use each twice, under SQLite's old 999


@dataclass(frozen=True, slots=True)
class SourceHealth:
    name: str
    last_success: datetime | None
    last_failure: datetime | None
    last_error: str | None
    failures: int
    items: int


@dataclass(frozen=True, slots=True)
class FeedRecord:
    feed: str
    title: str
    path: str
    total: int
    updated: datetime | None
    sha256: str


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class Store:
    """One SQLite file, used by the thread that opened it (the pipeline's writer thread)."""

    def __init__(self, path: Path, cache_mib: int = 64) -> None:
        """``cache_mib``: SQLite's page cache. Writing a big build wants a large one (see
        below); a process that only reads a few feeds does as well with a few MiB."""
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._depth = 0  # transactions open: 1 for BEGIN, more for savepoints inside it
            self.db = sqlite3.connect(path, isolation_level=None,
                                      timeout=10)
            self._refuse_newer()  # before anything below writes to the file
            # A new store gets 16 KiB pages instead of 4 KiB: an item's row (about 1.5 KB)
            # packs ten to a page instead of two or three, and a big build writes and indexes
            # far fewer pages (a first build of 100,000 items: 12 % faster, measured). SQLite
            # fixes the page size when it first writes a file; an existing store keeps its own.
            self.db.execute(f"PRAGMA page_size={PAGE_SIZE}")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            # Identity keys are hashes, so inserts land all over their index: a page cache
            # big enough for it (64 MiB instead of 2 MiB) is much of the speed of a big build.
            self.set_cache(cache_mib)
            self.db.execute("PRAGMA temp_store=MEMORY")
            # Checkpoint the write-ahead log every 64 MiB rather than every 1,000 pages (SQLite's
            # default): a big build otherwise pays a checkpoint (and its fsync) on almost
            # every commit.
            page_size = self.db.execute("PRAGMA page_size").fetchone()[0]
            self.db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_BYTES // page_size}")
            self.db.create_function("feedsvc_tie", 1, order_tie, deterministic=True)
            self._migrate()
        except StoreError:
            self.db.close()
            raise
        except sqlite3.DatabaseError as exc:
            raise StoreError(str(path), f"cannot open the store: {exc}") from exc
        except OSError as exc:
            raise StoreError(str(path), f"cannot create the store: {exc.strerror}") from exc

    def close(self) -> None:
        self.db.close()

    def release_memory(self) -> None:
        """Give back the page cache a big write filled (a long-running process then idles
        small; the cache fills again as it is needed)."""
        self.db.execute("PRAGMA shrink_memory")

    def set_cache(self, mib: int) -> None:
        """Resize SQLite's page cache; pages beyond a smaller size are freed at once."""
        self.db.execute(f"PRAGMA cache_size=-{mib * 1024}")

    def cache_mib(self) -> float:
        """The page cache's size limit now, in MiB."""
        size = self.db.execute("PRAGMA cache_size").fetchone()[0]
        if size < 0:  # in KiB
            return -size / 1024
        return size * self.db.execute("PRAGMA page_size").fetchone()[0] / 2**20

    def _refuse_newer(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(str(self.path), f"made by a newer feedsvc (schema {version}, this "
                             f"version knows up to {SCHEMA_VERSION}); upgrade feedsvc")

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        # Tables are rebuilt under new names and renamed (SQLite's recommended way); references
        # are checked once each step is complete instead of statement by statement.
        self.db.execute("PRAGMA foreign_keys=OFF")
        try:
            for number in range(version, SCHEMA_VERSION):
                with self.transaction():
                    for statement in _split_sql(_MIGRATIONS[number]):
                        self.db.execute(statement)
                    self.db.execute(f"PRAGMA user_version = {number + 1}")
                    problems = self.db.execute("PRAGMA foreign_key_check").fetchall()
                    if problems:
                        raise StoreError(str(self.path),
                                         f"migration {number + 1} broke references")
        finally:
            self.db.execute("PRAGMA foreign_keys=ON")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing. Inside another transaction this is a savepoint: a failure undoes
        this block only, and the outer transaction decides when all of it is committed."""
        if self._depth:
            yield from self._savepoint()
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")
        finally:
            self._depth = 0

    def _savepoint(self) -> Iterator[None]:
        name = f"nested_{self._depth}"
        self.db.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self.db.execute(f"ROLLBACK TO {name}")
            raise
        finally:
            self._depth -= 1
            self.db.execute(f"RELEASE {name}")

    def commit_so_far(self) -> None:
        """Inside an outermost transaction: make everything so far durable and go on in a new
        one. A big build commits every few thousand items instead of after every file: each
        commit writes again every index page it touched, and identity keys are hashes that
        touch pages all over their index."""
        if self._depth != 1:
            raise RuntimeError("commit_so_far() needs to be in an outermost transaction")
        self.db.execute("COMMIT")
        self.db.execute("BEGIN IMMEDIATE")

    # --- meta -----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    # --- sources --------------------------------------------------------------------------

    def source_state(self, name: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT state FROM sources WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def record_success(self, name: str, state: dict[str, Any] | None, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO sources(name, state, last_success, failures) VALUES (?, ?, ?, 0) "
            "ON CONFLICT(name) DO UPDATE SET state = excluded.state, "
            "last_success = excluded.last_success, failures = 0",
            (name, json.dumps(state, sort_keys=True) if state is not None else None,
             now.isoformat()),
        )

    def record_failure(self, name: str, error: str, now: datetime,
                       state: dict[str, Any] | None = None) -> None:
        self.db.execute(
            "INSERT INTO sources(name, last_failure, last_error, failures, state) "
            "VALUES (?, ?, ?, 1, ?) ON CONFLICT(name) DO UPDATE SET "
            "last_failure = excluded.last_failure, last_error = excluded.last_error, "
            "failures = sources.failures + 1, state = COALESCE(excluded.state, sources.state)",
            (name, now.isoformat(), error,
             json.dumps(state, sort_keys=True) if state is not None else None),
        )

    def add_source_items(self, name: str, count: int) -> None:
        """Count stories a source told for the first time (kept as a counter: counting the
        sightings table per source would scan it for every file of a big build)."""
        if count:
            self.db.execute("UPDATE sources SET items = items + ? WHERE name = ?", (count, name))

    def source_health(self) -> list[SourceHealth]:
        rows = self.db.execute(
            "SELECT name, last_success, last_failure, last_error, failures, items FROM sources "
            "ORDER BY name").fetchall()
        return [SourceHealth(name, _dt(ok), _dt(bad), error, failures, items)
                for name, ok, bad, error, failures, items in rows]

    # --- items ----------------------------------------------------------------------------

    def lookup_keys(self, keys: Iterable[str]) -> dict[str, str]:
        """Identity key -> Atom id, for the keys that are known."""
        found: dict[str, str] = {}
        for chunk in _chunks(list(set(keys))):
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(
                "SELECT k.key, i.atom_id FROM item_keys k JOIN items i ON i.id = k.item "
                f"WHERE k.key IN ({marks})", chunk))
        return found

    def published_upto(self) -> int | None:
        """The highest item id the last publication covered (items above it were never
        published), or None in a store from before this was recorded."""
        value = self.get_meta("published_upto")
        return int(value) if value is not None else None

    def mark_published(self) -> None:
        """Record that every item stored so far has been published."""
        self.set_meta("published_upto", str(self.next_item_id() - 1))

    def next_item_id(self) -> int:
        """The id the next new item gets. Ask inside a write transaction, which keeps it
        valid until the transaction ends: ids are handed out by the caller, so one batch of
        items, their keys and sightings is written without asking SQLite back for ids."""
        return int(self.db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM items").fetchone()[0])

    def item_rows(self, atom_ids: Iterable[str]) -> dict[str, ItemRow]:
        rows: dict[str, ItemRow] = {}
        for chunk in _chunks(list(set(atom_ids))):
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                    f"SELECT {_ROW_COLUMNS} FROM items WHERE atom_id IN ({marks})", chunk):
                rows[row[1]] = _item_row(row)
        return rows

    def sightings(self, atom_ids: Iterable[str]) -> dict[str, dict[str, tuple[str, Item]]]:
        """Atom id -> source -> (content hash, item) for every stored sighting."""
        found: dict[str, dict[str, tuple[str, Item]]] = {}
        for chunk in _chunks(list(set(atom_ids))):
            marks = ",".join("?" * len(chunk))
            for atom_id, source, content_hash, payload in self.db.execute(
                    "SELECT i.atom_id, s.source, s.content_hash, COALESCE(s.payload, i.payload) "
                    "FROM items i JOIN sightings s ON s.item = i.id "
                    f"WHERE i.atom_id IN ({marks}) UNION ALL "
                    "SELECT atom_id, source, content_hash, payload FROM items "
                    f"WHERE source IS NOT NULL AND atom_id IN ({marks})", chunk + chunk):
                found.setdefault(atom_id, {})[source] = (content_hash, Item.from_json(payload))
        return found

    def write_items(self, writes: Sequence[ItemWrite]) -> None:
        """Insert new items and replace changed ones; a replaced item that the search index
        already holds leaves it with its old text and enters it again with its new."""
        indexed = self._indexed([w.item_id for w in writes])
        if indexed:
            self.db.executemany(
                "INSERT INTO items_fts(items_fts, rowid, title, body) "
                f"SELECT 'delete', id, {_INDEXED_TEXT} FROM items WHERE id = ?", indexed)
        self._upsert_items(writes)
        if indexed:
            self.db.executemany("INSERT INTO items_fts(rowid, title, body) "
                                f"SELECT id, {_INDEXED_TEXT} FROM items WHERE id = ?", indexed)

    def _indexed(self, ids: Sequence[int]) -> list[tuple[int]]:
        """Those of ``ids`` whose items the full-text index holds (``fts_indexed`` is the
        highest id indexed, and every stored item up to it is)."""
        upto = int(self.get_meta("fts_indexed") or 0)
        return [(item_id,) for item_id in sorted(set(ids)) if item_id <= upto]

    def _upsert_items(self, writes: Sequence[ItemWrite]) -> None:
        self.db.executemany(
            "INSERT INTO items(id, atom_id, lang, news_id, org, published, updated, first_seen, "
            "content_hash, payload, topics, feeds, ts, tie, source) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET lang=excluded.lang, news_id=excluded.news_id, "
            "org=excluded.org, published=excluded.published, updated=excluded.updated, "
            "content_hash=excluded.content_hash, payload=excluded.payload, "
            "topics=excluded.topics, feeds=excluded.feeds, ts=excluded.ts, tie=excluded.tie, "
            "source=excluded.source",
            [(w.item_id, w.atom_id, w.digest.lang, w.digest.news_id, w.digest.org,
              w.digest.published, w.updated, w.first_seen, w.digest.content_hash,
              w.digest.payload, _json_list(w.topics), _json_list(sorted(w.feeds)),
              w.sort_key[0], w.sort_key[2], w.source) for w in writes],
        )

    def write_sightings(self, rows: Sequence[tuple[int, str, ItemDigest, bool]],
                        now: datetime) -> None:
        """(item id, source, item, only) rows; each replaces what that source said before.

        ``only`` marks the item's only sighting: its text is the item's own, not stored twice.
        An item that gets a sighting of its own here no longer has an only source.
        """
        seen = now.isoformat()
        self.db.executemany("UPDATE items SET source = NULL WHERE id = ? AND source IS NOT NULL",
                            [(item_id,) for item_id, _, _, only in rows if not only])
        self.db.executemany(
            "INSERT INTO sightings(item, source, content_hash, payload, seen) "
            "VALUES (?,?,?,?,?) ON CONFLICT(item, source) DO UPDATE SET "
            "content_hash=excluded.content_hash, payload=excluded.payload, seen=excluded.seen",
            [(item_id, source, digest.content_hash, None if only else digest.payload, seen)
             for item_id, source, digest, only in rows],
        )

    def write_keys(self, pairs: Iterable[tuple[str, int]]) -> None:
        """(identity key, item id) pairs; a key already known keeps its item."""
        self.db.executemany("INSERT OR IGNORE INTO item_keys(key, item) VALUES (?, ?)",
                            list(pairs))

    def refile(self, moves: Sequence[Refiling]) -> None:
        """Move items between feeds (the items' own rows already say where they are now)."""
        self.db.executemany(
            "DELETE FROM feed_members WHERE feed = ? AND ts = ? AND news = ? AND tie = ? "
            "AND item = ?",
            [(feed, *move.old_key, move.item_id) for move in moves if move.old_key
             for feed in move.old_feeds])
        self.db.executemany(
            "INSERT INTO feed_members(feed, ts, news, tie, item) VALUES (?, ?, ?, ?, ?)",
            [(feed, *move.key, move.item_id) for move in moves for feed in move.feeds])
        deltas: dict[str, int] = {}
        for move in moves:
            for feed in move.feeds - move.old_feeds:
                deltas[feed] = deltas.get(feed, 0) + 1
            for feed in move.old_feeds - move.feeds:
                deltas[feed] = deltas.get(feed, 0) - 1
        self.db.executemany(
            "INSERT INTO feed_counts(feed, total) VALUES (?, ?) "
            "ON CONFLICT(feed) DO UPDATE SET total = total + excluded.total",
            [(feed, delta) for feed, delta in deltas.items() if delta])

    def file_new_items(self, ids: range, counts: dict[str, int]) -> None:
        """Enter new items (their rows already written) in the feeds their rows name.

        Done by SQLite from the rows' ``feeds`` lists: for the 100,000 new items of a first
        build that is 450,000 memberships SQLite makes without a round trip through Python.
        ``counts``: how many of the new items each feed gets.
        """
        if not ids:
            return
        bounds = (ids.start, ids.stop)
        self.db.execute(
            "INSERT INTO feed_members(feed, ts, news, tie, item) "
            "SELECT f.value, i.ts, COALESCE(i.news_id, 0), i.tie, i.id "
            "FROM items i, json_each(i.feeds) f WHERE i.id >= ? AND i.id < ?", bounds)
        self.db.executemany(
            "INSERT INTO feed_counts(feed, total) VALUES (?, ?) "
            "ON CONFLICT(feed) DO UPDATE SET total = total + excluded.total",
            counts.items())

    def iter_items(self, batch: int = 2000) -> Iterator[list[tuple[ItemRow, Item]]]:
        """Every stored item, in batches."""
        cursor = self.db.execute(f"SELECT {_ROW_COLUMNS}, payload FROM items ORDER BY id")
        while rows := cursor.fetchmany(batch):
            yield [(_item_row(row), Item.from_json(row[-1])) for row in rows]

    def update_filing(self, rows: Sequence[tuple[int, tuple[str, ...], frozenset[str], SortKey]]
                      ) -> None:
        """(item id, topics, feeds, sort key) for items filed anew."""
        self.db.executemany(
            "UPDATE items SET topics = ?, feeds = ?, ts = ?, tie = ? WHERE id = ?",
            [(_json_list(t), _json_list(sorted(f)), k[0], k[2], i)
             for i, t, f, k in rows])

    def integrity_problems(self) -> list[str]:
        """SQLite's own consistency check plus dangling references; empty when all is well."""
        rows = [row[0] for row in self.db.execute("PRAGMA integrity_check")]
        problems = [] if rows == ["ok"] else rows
        problems += [f"dangling reference in {row[0]}"
                     for row in self.db.execute("PRAGMA foreign_key_check")]
        problems += [f"item {atom_id} has both an only source and rows of sightings"
                     if only else f"item {atom_id} has no sighting at all"
                     for atom_id, only in self.db.execute(
                         "SELECT atom_id, source IS NOT NULL FROM items i WHERE "
                         "(source IS NULL) = NOT EXISTS (SELECT 1 FROM sightings s "
                         "WHERE s.item = i.id)")]
        problems += [f"feed {feed}: counted {counted}, has {members}" for feed, counted, members
                     in self.db.execute(
                         "SELECT feed, total, (SELECT COUNT(*) FROM feed_members m "
                         "WHERE m.feed = c.feed) AS members FROM feed_counts c "
                         "WHERE total != members")]
        problems += [f"item {atom_id} is filed in {feeds} but is a member of {member_of}"
                     for atom_id, feeds, member_of in self.db.execute(
                         "SELECT i.atom_id, i.feeds, COALESCE(m.member_of, '[]') AS member_of "
                         "FROM items i LEFT JOIN (SELECT item, json_group_array(feed) AS "
                         "member_of FROM (SELECT item, feed FROM feed_members ORDER BY item, "
                         "feed) GROUP BY item) m ON m.item = i.id "
                         "WHERE json(i.feeds) != COALESCE(m.member_of, '[]')")]
        try:  # the full-text index against the items it was made from
            self.db.execute("INSERT INTO items_fts(items_fts, rank) VALUES ('integrity-check', 1)")
        except sqlite3.DatabaseError as exc:
            problems.append(f"full-text index: {exc}")
        return problems

    def is_empty(self) -> bool:
        return self.db.execute("SELECT NOT EXISTS (SELECT 1 FROM items)").fetchone()[0] == 1

    def count_items(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def find_item(self, key_or_id: str) -> StoredItem | None:
        return _find_item(self.db, key_or_id)

    # --- feeds ----------------------------------------------------------------------------

    def feed_entries(self, feed: str, limit: int) -> list[StoredItem]:
        rows = self.db.execute(
            "SELECT i.atom_id, i.payload, i.updated, i.first_seen, i.topics "
            "FROM feed_members m JOIN items i ON i.id = m.item "
            "WHERE m.feed = ? ORDER BY m.ts DESC, m.news DESC, m.tie DESC, m.item DESC LIMIT ?",
            (feed, limit)).fetchall()
        return _with_siblings(self.db, [_stored(row) for row in rows])

    def feed_heads(self, feeds: Iterable[str]) -> dict[str, StoredItem]:
        """The newest entry of each feed that has one (the directory's latest headlines)."""
        heads = {}
        for feed in feeds:
            newest = self.feed_entries(feed, 1)
            if newest:
                heads[feed] = newest[0]
        return heads

    def feed_total(self, feed: str) -> int:
        row = self.db.execute("SELECT total FROM feed_counts WHERE feed = ?", (feed,)).fetchone()
        return int(row[0]) if row else 0

    def all_member_feeds(self) -> set[str]:
        """Every feed with at least one entry (from the counters: the same set, without
        reading every membership)."""
        return {row[0] for row in self.db.execute("SELECT feed FROM feed_counts WHERE total > 0")}

    def feed_records(self) -> dict[str, FeedRecord]:
        return {row[0]: FeedRecord(row[0], row[1], row[2], row[3], _dt(row[4]), row[5])
                for row in self.db.execute(
                    "SELECT feed, title, path, total, updated, sha256 FROM feeds")}

    def save_feed_records(self, records: Sequence[FeedRecord]) -> None:
        self.db.executemany(
            "INSERT INTO feeds(feed, title, path, total, updated, sha256) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT(feed) DO UPDATE SET title=excluded.title, path=excluded.path, "
            "total=excluded.total, updated=excluded.updated, sha256=excluded.sha256",
            [(r.feed, r.title, r.path, r.total, r.updated.isoformat() if r.updated else None,
              r.sha256) for r in records],
        )

    def mark_dirty(self, feeds: Iterable[str]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO dirty_feeds(feed) VALUES (?)",
                            [(feed,) for feed in feeds])

    def dirty_feeds(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT feed FROM dirty_feeds")}

    def clear_dirty(self, feeds: Iterable[str]) -> None:
        """Forget feeds just published. A publication of changes also brings the search index
        up to the items (see :meth:`index_new_items`) and moves the store's ``publication``
        number on, which tells the server's query feeds to recompute their answers."""
        rows = [(f,) for f in feeds]
        self.db.executemany("DELETE FROM dirty_feeds WHERE feed = ?", rows)
        if rows:
            self.index_new_items()
            self.db.execute(
                "INSERT INTO meta(key, value) VALUES ('publication', '1') ON CONFLICT(key) "
                "DO UPDATE SET value = CAST(value AS INTEGER) + 1")

    def index_new_items(self) -> None:
        """Enter the items stored since the last call in the full-text index, in one
        statement (items already indexed are kept in step by triggers)."""
        self.db.execute(
            f"INSERT INTO items_fts(rowid, title, body) SELECT id, {_INDEXED_TEXT} "
            "FROM items WHERE id > (SELECT CAST(value AS INTEGER) FROM meta "
            "WHERE key = 'fts_indexed')")
        self.db.execute("UPDATE meta SET value = (SELECT COALESCE(MAX(id), 0) FROM items) "
                        "WHERE key = 'fts_indexed'")

    # --- what the poll planner learned (rows of feedsvc.poller.StreamStats) --------------

    def poll_stats(self) -> list[tuple[str, float | None, float, float, float, int,
                                       float | None]]:
        """(stream, last_poll, next_poll, events, span, errors, last_new) of every stream."""
        return self.db.execute("SELECT stream, last_poll, next_poll, events, span, errors, "
                               "last_new FROM poll_stats").fetchall()

    def save_poll_stats(self, rows: Sequence[tuple[str, float | None, float, float, float,
                                                   int, float | None]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO poll_stats(stream, last_poll, next_poll, "
                            "events, span, errors, last_new) VALUES (?,?,?,?,?,?,?)", rows)

    # --- organisations fetched live -----------------------------------------------------

    def live_organisations(self) -> list[Organisation]:
        return _live_organisations(self.db)

    def save_organisations(self, organisations: Sequence[Organisation], now: datetime) -> None:
        self.db.executemany(
            "INSERT INTO organisations(slug, kind, parent, name_en, name_ru, name_kk, fetched) "
            "VALUES (?,?,?,?,?,?,?) ON CONFLICT(slug) DO UPDATE SET "
            "kind=COALESCE(excluded.kind, organisations.kind), "
            "parent=COALESCE(excluded.parent, organisations.parent), "
            "name_en=COALESCE(excluded.name_en, organisations.name_en), "
            "name_ru=COALESCE(excluded.name_ru, organisations.name_ru), "
            "name_kk=COALESCE(excluded.name_kk, organisations.name_kk), "
            "fetched=excluded.fetched",
            [(o.slug, o.kind if o.kind != "other" else None, o.parent, o.names.get("en"),
              o.names.get("ru"), o.names.get("kk"), now.isoformat()) for o in organisations],
        )


class ReadOnlyStore:
    """A read-only connection to a store, for answering queries beside a writer.

    One per thread (SQLite connections must not be shared across threads; ``check_same_thread``
    stays on to make sure). It never migrates: a store of another schema is refused, and the
    next build (which owns the store) upgrades it.
    """

    def __init__(self, path: Path, cache_mib: int = 16, progress_steps: int = 1000) -> None:
        """``progress_steps``: how many SQLite virtual-machine steps run between two checks of
        a query's time limit (each check is a call into Python)."""
        self.path = path
        self.progress_steps = progress_steps
        if not path.is_file():
            raise StoreError(str(path), "no such store; run 'feedsvc build' first")
        try:
            self.db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                      timeout=5)
            self.db.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(str(path), f"cannot open the store: {exc}") from exc
        if version != SCHEMA_VERSION:
            self.db.close()
            raise StoreError(str(path), f"schema {version}, this feedsvc reads "
                             f"{SCHEMA_VERSION}; run 'feedsvc build' to upgrade the store")

    def close(self) -> None:
        self.db.close()

    def publication(self) -> str:
        """Changes every time the writer publishes changes (see :meth:`Store.clear_dirty`)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'publication'").fetchone()
        return row[0] if row else "0"

    def live_organisations(self) -> list[Organisation]:
        return _live_organisations(self.db)

    def find_item(self, key_or_id: str) -> StoredItem | None:
        """An item by its Atom id or any identity key (``explain-topics``)."""
        return _find_item(self.db, key_or_id)

    def query_items(self, langs: Sequence[str], groups: Sequence[Sequence[str]],
                    match: str | None, limit: int, seconds: float) -> list[StoredItem]:
        """The newest ``limit`` items in ``langs`` that are a member of at least one feed of
        every group in ``groups`` and match the FTS5 expression ``match``, newest first (the
        feeds' order).

        ``match`` must come from a builder that quotes every user word (query.py does): it is
        passed as a parameter, so it can never change the SQL, only the FTS5 query. The whole
        query is cut off after ``seconds`` (:class:`QueryTooSlow`).
        """
        sql, params = _query_sql(langs, groups, match, limit)
        deadline = time.monotonic() + seconds
        self.db.set_progress_handler(lambda: time.monotonic() > deadline,
                                     self.progress_steps)
        try:
            keys = self.db.execute(sql, params).fetchall()
            rows = self.db.execute(
                "SELECT id, atom_id, payload, updated, first_seen, topics FROM items "
                f"WHERE id IN ({','.join('?' * len(keys))})", [k[0] for k in keys]).fetchall()
        except sqlite3.OperationalError as exc:
            # cut off by the handler: "interrupted", or whatever step it was in says so
            if "interrupted" in str(exc) or time.monotonic() > deadline:
                raise QueryTooSlow(str(self.path), seconds) from None
            raise StoreError(str(self.path), f"query failed: {exc}") from exc
        finally:
            self.db.set_progress_handler(None, 0)
        by_id = {row[0]: _stored(row[1:]) for row in rows}
        return _with_siblings(self.db, [by_id[key[0]] for key in keys if key[0] in by_id])


_ORDER = "ORDER BY ts DESC, news DESC, tie DESC, item DESC"


def _query_sql(langs: Sequence[str], groups: Sequence[Sequence[str]], match: str | None,
               limit: int) -> tuple[str, list[Any]]:
    """The SQL of :meth:`ReadOnlyStore.query_items` and its parameters.

    Driven by the first group's memberships (already in feed order, so few rows are read when
    the filters are loose), or, with no group, by the full-text matches when there is a
    search, else by the languages' ``all`` feeds. Other groups are checked per candidate by
    primary-key look-ups; the search by membership in its set of matches.
    """
    params: list[Any] = []
    filters: list[str] = []

    def marks(values: Sequence[Any]) -> str:
        params.extend(values)
        return ",".join("?" * len(values))

    if groups or not match:
        driver = list(groups[0]) if groups else [f"{lang}/all" for lang in langs]
        source = f"feed_members m WHERE m.feed IN ({marks(driver)})"
        for group in groups[1:]:
            filters.append(
                "EXISTS (SELECT 1 FROM feed_members t WHERE t.feed IN "
                f"({marks(list(group))}) AND t.ts = m.ts AND t.news = m.news "
                "AND t.tie = m.tie AND t.item = m.item)")
        if match:
            filters.append("m.item IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)")
            params.append(match)
        where = " AND ".join([source, *filters])
        sql = ("SELECT DISTINCT m.item AS item, m.ts AS ts, m.news AS news, m.tie AS tie "
               f"FROM {where}")
    else:
        params.append(match)
        sql = ("SELECT i.id AS item, i.ts AS ts, COALESCE(i.news_id, 0) AS news, i.tie AS tie "
               "FROM items i WHERE i.id IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)"
               f" AND i.lang IN ({marks(list(langs))})")
    params.append(limit)
    return f"{sql} {_ORDER} LIMIT ?", params


_ROW_COLUMNS = ("id, atom_id, news_id, content_hash, updated, first_seen, topics, feeds, ts, "
                "tie")


def _item_row(row: Sequence[Any]) -> ItemRow:
    item_id, atom_id, news_id, content_hash, updated, first_seen, topics, feeds, ts, tie = \
        row[:10]
    return ItemRow(item_id, atom_id, news_id, content_hash, datetime.fromisoformat(updated),
                   datetime.fromisoformat(first_seen), tuple(orjson.loads(topics)),
                   frozenset(orjson.loads(feeds)), (ts, news_id or 0, tie))


def _stored(row: tuple[str, str, str, str, str]) -> StoredItem:
    atom_id, payload, updated, first_seen, topics = row
    return StoredItem(Item.from_json(payload), atom_id, datetime.fromisoformat(updated),
                      datetime.fromisoformat(first_seen), tuple(orjson.loads(topics)))


def _live_organisations(db: sqlite3.Connection) -> list[Organisation]:
    rows = db.execute("SELECT slug, kind, parent, name_en, name_ru, name_kk FROM organisations")
    return [Organisation(slug, kind or "other", parent or None,
                         {lang: name for lang, name in
                          (("en", en), ("ru", ru), ("kk", kk)) if name})
            for slug, kind, parent, en, ru, kk in rows]


_LANGUAGES = ("en", "kk", "ru")  # every language an item can be in (config.LANGUAGES)


def _with_siblings(db: sqlite3.Connection, entries: list[StoredItem]) -> list[StoredItem]:
    """``entries`` with the other languages each one's gov.kz news id is stored in (from the
    identity keys: one look-up by primary key per entry and language)."""
    wanted = {news_key_for(e.item.news_id, lang): e.item.news_id for e in entries
              if e.item.news_id is not None for lang in _LANGUAGES if lang != e.item.lang}
    if not wanted:
        return entries
    found: dict[int, list[str]] = {}
    keys = list(wanted)
    for chunk in _chunks(keys):
        for (key,) in db.execute(
                f"SELECT key FROM item_keys WHERE key IN ({','.join('?' * len(chunk))})", chunk):
            found.setdefault(wanted[key], []).append(key.rsplit(":", 1)[1])
    return [replace(e, siblings=tuple(sorted(
        lang for lang in found.get(e.item.news_id, ()) if lang != e.item.lang)))
            if e.item.news_id in found else e for e in entries]


def _find_item(db: sqlite3.Connection, key_or_id: str) -> StoredItem | None:
    found = db.execute(
        "SELECT i.atom_id, i.payload, i.updated, i.first_seen, i.topics FROM items i "
        "WHERE i.atom_id = ?1 OR i.id = (SELECT item FROM item_keys WHERE key = ?1)",
        (key_or_id,)).fetchone()
    return _stored(found) if found else None


def _json_list(values: Sequence[str]) -> str:
    return orjson.dumps(list(values)).decode()


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def _split_sql(script: str) -> list[str]:
    """The statements of a migration step, to run one by one inside the step's transaction.

    Not ``executescript``: it commits the open transaction first, so a step failing halfway
    would stay half applied. Not a split on every ";" either: that cuts a string literal or a
    trigger body holding one. SQLite's own tokenizer (``sqlite3.complete_statement``) says
    where a statement really ends.
    """
    statements: list[str] = []
    pending = ""
    pieces = script.split(";")
    for number, piece in enumerate(pieces, start=1):
        pending += piece if number == len(pieces) else piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())  # a last statement without its ";"
    return statements
