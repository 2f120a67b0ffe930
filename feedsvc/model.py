"""Plain data that flows through feedsvc: sources make Items, the store keeps them, render
reads them.

No I/O here apart from loading the Asia/Almaty zone from the ``tzdata`` package (deliberately
not from the system's tables, which may be old or missing on a server).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Literal, NamedTuple, TypeVar, overload
from zoneinfo import ZoneInfo

import orjson

T = TypeVar("T")


class _AlmatyZone(ZoneInfo):
    """Asia/Almaty as read from the tzdata package.

    A zone read from a file cannot be pickled by its key (unpickling would look the key up in
    the system's tables again), so it pickles as a reference to this module's constant:
    whatever holds it may cross to the worker processes of a parallel build.
    """

    def __reduce__(self) -> str:
        return "ALMATY"


def _zone_from_tzdata(name: str) -> _AlmatyZone:
    import tzdata  # the package's own files, never the system's tables

    with (Path(tzdata.__file__).parent / "zoneinfo" / name).open("rb") as handle:
        return _AlmatyZone.from_file(handle, key=name)


#: Kazakhstan's single time zone (UTC+5 since 2024-03-01), read from the tzdata package.
ALMATY = _zone_from_tzdata("Asia/Almaty")

#: Ranks of the places an item can come from: when one story is seen in several places, the
#: highest authority supplies its title and body (the gov.kz API beats a text dump of it).
AUTHORITY_TEXT_DUMP = 0
AUTHORITY_GOVKZ_API = 10

FeedKind = Literal["all", "ministry", "org", "topic"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an item was read: a file path (and line) or a URL."""

    source: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.source}:{self.line}" if self.line is not None else self.source


class _computed_once(Generic[T]):  # lower case: used as a decorator, like cached_property
    """``functools.cached_property`` without its lock.

    Python 3.11's takes a lock on every first access, and a big build makes four such accesses
    on each of a hundred thousand items (about 2 % of a worker's time). An item is built and
    read by one thread, and computing a value twice would give the same value anyway.
    """

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> _computed_once[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None
                ) -> T | _computed_once[T]:
        if instance is None:
            return self
        # Stored in the instance's __dict__, which is looked up before this (non-data)
        # descriptor from then on; a frozen dataclass allows this write, as for cached_property.
        value = instance.__dict__[self.name] = self.compute(instance)
        return value


class ItemDigest(NamedTuple):
    """What storing a new item needs, without the item: cheap to send between processes.

    A parallel build's workers send these instead of items; decoding every item again in the
    main process cost a quarter of its time.
    """

    content_hash: str
    payload: str  # Item.to_json()
    lang: str
    news_id: int | None
    org: str | None
    published: str | None  # ISO 8601
    timestamp: int | None  # ``published`` in seconds since the epoch
    title_key: str


@dataclass(frozen=True)
class Item:
    """One news story as one source saw it.

    ``paragraphs`` is always plain text (what topic rules and summaries read). ``html`` is set only
    by sources that deliver markup (the gov.kz API), already sanitised; render prefers it.
    """

    title: str
    published: datetime | None
    origin: Origin
    paragraphs: tuple[str, ...] = ()
    html: str | None = None
    lang: str = "en"
    url: str | None = None
    url_lang: str | None = None
    org: str | None = None
    news_id: int | None = None
    sections: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    attribution: str | None = None
    image: str | None = None
    publication: str | None = None
    raw_date: str | None = None
    authority: int = AUTHORITY_TEXT_DUMP

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)

    @property
    def news_key(self) -> str | None:
        """The strongest identity: gov.kz's own news id, per language."""
        return news_key_for(self.news_id, self.lang) if self.news_id is not None else None

    @_computed_once
    def title_key(self) -> str:
        """Identity for items without a news id: the normalised title and the date as written."""
        day = self.published.date().isoformat() if self.published else (self.raw_date or "")
        digest = hashlib.sha1(f"{normalise_title(self.title)}|{day}".encode()).hexdigest()[:20]
        return f"title:{self.lang}:{digest}"

    def identity_keys(self) -> tuple[str, ...]:
        news = self.news_key
        return (news, self.title_key) if news else (self.title_key,)

    @_computed_once
    def _content_hash(self) -> str:
        return self._compute_content_hash()

    def content_hash(self) -> str:
        """A hash of what a reader sees; where the item was read (origin) does not count.

        Cached on the instance: the ingest path asks for it several times per item.
        """
        return self._content_hash

    def _compute_content_hash(self) -> str:
        payload = [
            self.title,
            self._published_iso,
            list(self.paragraphs),
            self.html,
            self.lang,
            self.url,
            self.url_lang,
            self.org,
            self.news_id,
            sorted(self.sections),
            sorted(self.categories),
            self.attribution,
            self.image,
        ]
        # orjson writes the same bytes as json.dumps(ensure_ascii=False, separators=(",", ":"))
        # did when stores were first filled (a test pins known hashes), five times faster.
        return hashlib.sha256(orjson.dumps(payload)).hexdigest()

    def digest(self) -> ItemDigest:
        published = self.published
        return ItemDigest(self.content_hash(), self.to_json(), self.lang, self.news_id, self.org,
                          self._published_iso,
                          int(published.timestamp()) if published else None, self.title_key)

    @_computed_once
    def _published_iso(self) -> str | None:
        return self.published.isoformat() if self.published else None

    def to_json(self) -> str:
        """The item as compact JSON (how the store keeps it); cached, items never change."""
        return self._json

    @_computed_once
    def _json(self) -> str:
        data = {
            "title": self.title,
            "published": self._published_iso,
            "origin": [self.origin.source, self.origin.line],
            "paragraphs": list(self.paragraphs),
            "html": self.html,
            "lang": self.lang,
            "url": self.url,
            "url_lang": self.url_lang,
            "org": self.org,
            "news_id": self.news_id,
            "sections": list(self.sections),
            "categories": list(self.categories),
            "attribution": self.attribution,
            "image": self.image,
            "publication": self.publication,
            "raw_date": self.raw_date,
            "authority": self.authority,
        }
        return orjson.dumps(data).decode()

    @classmethod
    def from_json(cls, blob: str, content_hash: str | None = None) -> Item:
        """The item :meth:`to_json` wrote (and its hash, when the caller already knows it)."""
        data = orjson.loads(blob)
        source, line = data.pop("origin")
        published = data.pop("published")
        item = cls(
            published=datetime.fromisoformat(published) if published else None,
            origin=Origin(source, line),
            paragraphs=tuple(data.pop("paragraphs")),
            sections=tuple(data.pop("sections")),
            categories=tuple(data.pop("categories")),
            **data,
        )
        item.__dict__["_json"] = blob
        if content_hash is not None:
            item.__dict__["_content_hash"] = content_hash
        return item


def merge_sightings(sightings: list[Item]) -> Item:
    """One item from every place the same story was seen, independent of their order.

    The most authoritative, then the fullest, text wins (a copy with its quotes stripped loses to
    the one that kept them); sections and categories are the union of all copies.
    """
    if not sightings:
        raise ValueError("merge_sightings needs at least one item")
    if len(sightings) == 1:
        return sightings[0]
    ranked = sorted(sightings, key=lambda it: (it.authority, len(it.text) + len(it.html or ""),
                                               it.content_hash()), reverse=True)
    winner = ranked[0]

    def first(attribute: str) -> Any:
        return next((getattr(it, attribute) for it in ranked
                     if getattr(it, attribute) is not None), None)

    return replace(
        winner,
        sections=_ordered_union(it.sections for it in sightings),
        categories=_ordered_union(it.categories for it in sightings),
        url=first("url"),
        url_lang=first("url_lang"),
        org=first("org"),
        news_id=first("news_id"),
        attribution=first("attribution"),
        image=first("image"),
        publication=first("publication"),
        published=first("published"),
    )


def _ordered_union(groups: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    seen: set[str] = set()
    for group in groups:
        seen.update(group)
    return tuple(sorted(seen, key=str.casefold))


_WORD = re.compile(r"\w+")
_APOSTROPHES = str.maketrans("", "", "'’ʼ`")


def normalise_title(title: str) -> str:
    """Casefolded words only: quotes, apostrophes, dashes and spacing differences disappear.

    "PEOPLE'S COUNCIL – INSTITUTE" and "Peoples Council - Institute" normalise alike. Part of
    every title identity key: any change to what this returns would split stored stories.
    """
    text = title if title.isascii() else unicodedata.normalize("NFKC", title)
    return " ".join(_WORD.findall(text.casefold().translate(_APOSTROPHES)))


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item as the store knows it: merged content plus the identity and times it was given."""

    item: Item
    atom_id: str
    updated: datetime
    first_seen: datetime
    topics: tuple[str, ...] = ()
    #: Other languages the same gov.kz news (same news id) is stored in; entries link them.
    siblings: tuple[str, ...] = ()


def news_key_for(news_id: int, lang: str) -> str:
    """The identity key of gov.kz news ``news_id`` in ``lang``, as the store keeps it."""
    return f"news:{news_id}:{lang}"


def order_tie(atom_id: str) -> int:
    """Orders items of the same time and news id: the first 60 bits of the Atom id's UUID.

    Numbers sort as the ids' text does, and they are the same in every store.
    """
    digits = atom_id.removeprefix("urn:uuid:").replace("-", "")[:15]
    try:
        return int(digits, 16)
    except ValueError:  # not a UUID: any stable number will do
        return int(hashlib.sha1(atom_id.encode()).hexdigest()[:15], 16)


def feed_key(kind: FeedKind, slug: str | None, lang: str) -> str:
    """How the store names a feed: ``en/all``, ``kk/org/mfa-brussels``, ``ru/topic/health``."""
    return f"{lang}/all" if kind == "all" else f"{lang}/{kind}/{slug}"


@dataclass(frozen=True, slots=True)
class FeedRef:
    """One feed: everything (``all``), a ministry/top-level body, an organisation or a topic, in one
    language. ``key`` is how the store and the publisher name it."""

    kind: FeedKind
    slug: str | None
    lang: str

    @property
    def key(self) -> str:
        return feed_key(self.kind, self.slug, self.lang)

    @classmethod
    def from_key(cls, key: str) -> FeedRef:
        parts = key.split("/")
        if len(parts) == 2 and parts[1] == "all":
            return cls("all", None, parts[0])
        lang, kind, slug = parts
        if kind not in ("ministry", "org", "topic"):
            raise ValueError(f"not a feed key: {key!r}")
        return cls(kind, slug, lang)  # type: ignore[arg-type]

    def path(self, default_lang: str) -> str:
        """Where the feed lives under the output directory.

        Feeds in the default language sit at the top (``all.atom``, ``org/mfa-brussels.atom``);
        other languages get a directory of their own (``kk/all.atom``), so a feed never mixes
        languages and adding a language never moves an existing feed.
        """
        name = "all.atom" if self.kind == "all" else f"{self.kind}/{self.slug}.atom"
        return name if self.lang == default_lang else f"{self.lang}/{name}"


# --- identity ------------------------------------------------------------------------------

_ID_NAMESPACE = bytes.fromhex("6f1c2a8e3f535b3e9d2a8a1f0c9e4b71")


def atom_id_for(key: str) -> str:
    """The permanent Atom id of an item first known by identity ``key``."""
    return uuid5_urn(key)


def uuid5_urn(name: str) -> str:
    """``urn:uuid:`` + RFC 4122 version-5 UUID of ``name`` in our namespace.

    The same value as ``uuid.uuid5``, computed directly: it runs once per stored item, and the
    uuid module costs more to import and call than the hash itself.
    """
    digest = bytearray(hashlib.sha1(_ID_NAMESPACE + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# --- what the store and the ingest decider exchange ---------------------------------------

class Filed(NamedTuple):
    """Where an item goes: its topics and the keys of the feeds it is an entry of."""

    topics: tuple[str, ...]
    feeds: frozenset[str]


#: Where an item sits in its feeds, newest first: (time in seconds, news id, tie-breaker).
SortKey = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class ItemRow:
    """What the ingest decider needs to know about a stored item."""

    item_id: int
    atom_id: str
    news_id: int | None
    content_hash: str
    updated: datetime
    first_seen: datetime
    topics: tuple[str, ...]
    feeds: frozenset[str] = frozenset()
    sort_key: SortKey | None = None


@dataclass(frozen=True, slots=True)
class ItemWrite:
    digest: ItemDigest
    item_id: int
    atom_id: str
    updated: str  # ISO 8601, as stored
    first_seen: str
    topics: tuple[str, ...]
    feeds: frozenset[str]
    sort_key: SortKey
    source: str | None = None  # the item's only source, whose sighting the item is


@dataclass(frozen=True, slots=True)
class Refiling:
    """An item leaves ``old_feeds`` (filed under ``old_key``) for ``feeds`` (under ``key``)."""

    item_id: int
    feeds: frozenset[str]
    key: SortKey
    old_feeds: frozenset[str] = frozenset()
    old_key: SortKey | None = None
