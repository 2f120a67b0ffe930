"""The pure half of storing items: which story is which, and what must change.

:func:`group_sightings` folds the copies of one story within a source into one sighting.
:func:`decide` compares those sightings with what the store already holds (a
:class:`Snapshot`) and returns the :class:`Changes` to apply — no SQL, no clock, no files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .model import (
    Filed,
    Item,
    ItemDigest,
    ItemRow,
    ItemWrite,
    Refiling,
    SortKey,
    atom_id_for,
    merge_sightings,
    news_key_for,
    order_tie,
)

#: Files an item: its topics and feeds (see :meth:`feedsvc.filing.Filing.file`).
Filer = Callable[[Item], Filed]


class Sighting:
    """One story as one source tells it, with every identity key its copies carried.

    A worker process of a parallel build sends a sighting as its keys, its item's
    :class:`~feedsvc.model.ItemDigest` and where it is filed; the item itself is decoded again
    only if the main process has to merge it with another copy.
    """

    __slots__ = ("_digest", "_item", "filed", "keys")

    def __init__(self, keys: frozenset[str], item: Item | None = None,
                 digest: ItemDigest | None = None, filed: Filed | None = None) -> None:
        if item is None and digest is None:
            raise ValueError("a sighting needs its item or its digest")
        self.keys = keys
        self.filed = filed
        self._item = item
        self._digest = digest

    @property
    def item(self) -> Item:
        if self._item is None:
            assert self._digest is not None
            self._item = Item.from_json(self._digest.payload, self._digest.content_hash)
        return self._item

    @property
    def digest(self) -> ItemDigest:
        if self._digest is None:
            assert self._item is not None
            self._digest = self._item.digest()
        return self._digest

    @property
    def news_id(self) -> int | None:
        return self._item.news_id if self._item is not None else self.digest.news_id

    @property
    def title_key(self) -> str:
        return self._item.title_key if self._item is not None else self.digest.title_key

    @property
    def news_key(self) -> str | None:
        if self._item is not None:
            return self._item.news_key
        digest = self.digest
        return news_key_for(digest.news_id, digest.lang) if digest.news_id is not None else None

    def to_row(self) -> tuple[Any, ...]:
        """The sighting as one flat tuple of strings and numbers: what a worker sends (several
        times cheaper to pickle and unpickle than the objects), for :meth:`from_row`."""
        filed = self.filed
        return (tuple(self.keys), *self.digest,
                filed.topics if filed else None, tuple(filed.feeds) if filed else None)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Sighting:
        *fields, topics, feeds = row
        return cls(frozenset(fields[0]), None, ItemDigest(*fields[1:]),
                   Filed(topics, frozenset(feeds)) if feeds is not None else None)


def group_sightings(items: Iterable[Item]) -> list[Sighting]:
    """Fold copies of the same story (same news id, or same title and date) into one sighting.

    A copy without a news id joins the copy that has one when their titles and dates agree and
    only one news id claims that title; two different gov.kz items that happen to share a title
    and a date stay apart.
    """
    by_news: dict[str, list[Item]] = {}
    news_by_title: dict[str, set[str]] = {}
    loose: dict[str, list[Item]] = {}
    for item in items:
        news_key = item.news_key
        if news_key:
            by_news.setdefault(news_key, []).append(item)
            news_by_title.setdefault(item.title_key, set()).add(news_key)
        else:
            loose.setdefault(item.title_key, []).append(item)
    groups = list(by_news.values())
    for title_key, copies in loose.items():
        owners = news_by_title.get(title_key, set())
        if len(owners) == 1:
            by_news[next(iter(owners))].extend(copies)
        else:
            groups.append(copies)
    return [Sighting(frozenset(k for it in copies for k in it.identity_keys()),
                     merge_sightings(copies)) for copies in groups]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the store holds about the stories a batch mentions."""

    keys: dict[str, str]  # identity key -> Atom id
    rows: dict[str, ItemRow]
    sightings: dict[str, dict[str, tuple[str, Item]]]  # atom -> source -> (hash, item)
    next_id: int = 1  # the store's id for the first new item
    #: Items with a higher id have never been published: no reader has seen them yet.
    published_upto: int = 0


@dataclass(slots=True)
class Changes:
    items: list[ItemWrite] = field(default_factory=list)
    sightings: list[tuple[int, str, ItemDigest, bool]] = field(default_factory=list)
    keys: list[tuple[str, int, str]] = field(default_factory=list)  # (key, item id, Atom id)
    refilings: list[Refiling] = field(default_factory=list)  # stored items that move
    new_ids: range = range(0)  # ids of the new items; the store files them from their rows
    new_members: dict[str, int] = field(default_factory=dict)  # feed -> new items in it
    changed_feeds: set[str] = field(default_factory=set)  # left or joined by stored items
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    first_sightings: int = 0  # stories this source had not told before

    @property
    def dirty_feeds(self) -> set[str]:
        """Every feed whose entries these changes touch."""
        return self.changed_feeds | self.new_members.keys()


def resolve(sightings: list[Sighting], snapshot: Snapshot) -> dict[str, list[Sighting]]:
    """Atom id of each sighting: its news key's, else a compatible title key's, else a new one."""
    resolved: dict[str, list[Sighting]] = {}
    for sighting in sightings:
        atom_id = _existing_atom(sighting, snapshot)
        if atom_id is None:
            atom_id = atom_id_for(sighting.news_key or sighting.title_key)
        resolved.setdefault(atom_id, []).append(sighting)
    return resolved


def _existing_atom(sighting: Sighting, snapshot: Snapshot) -> str | None:
    if not snapshot.keys:
        return None
    news_key = sighting.news_key
    if news_key and news_key in snapshot.keys:
        return snapshot.keys[news_key]
    for key in sorted(sighting.keys):
        atom_id = snapshot.keys.get(key)
        if atom_id is None or not key.startswith("title:"):
            continue
        row = snapshot.rows.get(atom_id)
        stored_news = row.news_id if row else None
        if stored_news is None or sighting.news_id in (None, stored_news):
            return atom_id
    return None


def sort_key(item: Item, atom_id: str, first_seen: datetime) -> SortKey:
    """Newest first: publication time, then gov.kz's growing news id, then identity."""
    moment = item.published or first_seen
    return feed_order(int(moment.timestamp()), item.news_id, atom_id)


def feed_order(seconds: int, news_id: int | None, atom_id: str) -> SortKey:
    """:func:`sort_key` from its parts: the time in seconds, the news id, the Atom id."""
    return seconds, news_id or 0, order_tie(atom_id)


def decide(source: str, sightings: list[Sighting], snapshot: Snapshot, now: datetime,
           file: Filer) -> Changes:
    """What storing ``sightings`` from ``source`` changes.

    A story no reader has seen yet (never published: its id is above
    ``snapshot.published_upto``) keeps its publication time as ``updated`` however many
    sources add to it, before or after a crash, in one refresh or several: the published
    result does not depend on how the sources were split between runs. Once published, a
    change moves ``updated`` to ``now``.
    """
    changes = Changes()
    next_id = snapshot.next_id
    now_iso, now_seconds = now.isoformat(), int(now.timestamp())
    for atom_id, parts in resolve(sightings, snapshot).items():
        keys = parts[0].keys if len(parts) == 1 else frozenset().union(*(p.keys for p in parts))
        row = snapshot.rows.get(atom_id)
        if row is None:
            item_id, next_id = next_id, next_id + 1
        else:
            item_id = row.item_id
        changes.keys.extend((key, item_id, atom_id) for key in sorted(keys)
                            if key not in snapshot.keys)
        if row is None and len(parts) == 1:
            _decide_new(changes, source, atom_id, item_id, parts[0], now_iso, now_seconds, file)
            continue
        sighting = parts[0].item if len(parts) == 1 else merge_sightings([p.item for p in parts])
        _decide_one(changes, source, atom_id, item_id, sighting, snapshot, now, file)
    changes.new_ids = range(snapshot.next_id, next_id)
    return changes


def _decide_new(changes: Changes, source: str, atom_id: str, item_id: int, sighting: Sighting,
                now_iso: str, now_seconds: int, file: Filer) -> None:
    """A story the store has never seen, told by one source: the common case of a big build,
    decided from the sighting's digest without decoding the item."""
    digest = sighting.digest
    filed = sighting.filed or file(sighting.item)
    moment = digest.timestamp if digest.timestamp is not None else now_seconds
    key = feed_order(moment, digest.news_id, atom_id)
    changes.new += 1
    changes.first_sightings += 1
    changes.items.append(ItemWrite(digest, item_id, atom_id, digest.published or now_iso,
                                   now_iso, filed.topics, filed.feeds, key, source))
    _count_new(changes, filed.feeds)


def _decide_one(changes: Changes, source: str, atom_id: str, item_id: int, sighting: Item,
                snapshot: Snapshot, now: datetime, file: Filer) -> None:
    row = snapshot.rows.get(atom_id)
    stored = snapshot.sightings.get(atom_id, {})
    previous = stored.get(source)
    sighting_hash = sighting.content_hash()
    if row is not None and previous is not None and previous[0] == sighting_hash:
        changes.unchanged += 1
        return
    if previous is None:
        changes.first_sightings += 1
    others = {name: item for name, (_, item) in stored.items() if name != source}
    if others:
        changes.sightings.append((item_id, source, sighting.digest(), False))
    if len(others) == 1 and len(stored) == 1:
        # The other source's sighting was the item itself: spell it out now that the item
        # becomes a merge of two.
        (name, item), = others.items()
        changes.sightings.append((item_id, name, item.digest(), False))
    merged = merge_sightings([*others.values(), sighting]) if others else sighting
    if row is not None and row.content_hash == merged.content_hash():
        if not others:  # nothing to write the sighting with: keep it as a row of its own
            changes.sightings.append((item_id, source, sighting.digest(), True))
        changes.unchanged += 1
        return
    topics, feeds = file(merged)
    if row is None:
        changes.new += 1
        first_seen, updated = now, merged.published or now
    elif row.item_id > snapshot.published_upto:
        # Another copy of a story not yet published: still one new item, not a change, and
        # dated as if all its copies had come at once.
        first_seen, updated = row.first_seen, merged.published or row.first_seen
        changes.unchanged += 1
    else:
        first_seen, updated = row.first_seen, now
        changes.changed += 1
    if merged.published is not None and updated < merged.published:
        updated = merged.published  # an entry is never updated before it was published
    key = sort_key(merged, atom_id, first_seen)
    changes.items.append(ItemWrite(merged.digest(), item_id, atom_id, updated.isoformat(),
                                   first_seen.isoformat(), topics, feeds, key,
                                   None if others else source))
    if row is None:
        _count_new(changes, feeds)
    else:
        if (feeds, key) != (row.feeds, row.sort_key):
            changes.refilings.append(Refiling(item_id, feeds, key, row.feeds, row.sort_key))
        changes.changed_feeds |= feeds | row.feeds


def _count_new(changes: Changes, feeds: frozenset[str]) -> None:
    counts = changes.new_members
    for feed in feeds:
        counts[feed] = counts.get(feed, 0) + 1
