"""Web pages for people: the directory (``index.html`` per language), a page beside every feed
(``org/mfa.html`` next to ``org/mfa.atom``), a page for every item that has no source URL
(``item/<id>.html``), and the static assets (CSS, the search/copy script, the feeds' XSLT).

Pure like render.py (Jinja2 templates, autoescaped; bytes out; the clock passed in), apart from
:func:`write_pages`, which publishes them.
Links between pages are relative, so a built directory works on any host; addresses to
subscribe to are absolute (built on the base URL), since they are copied into a reader.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from . import __version__
from .links import LANGUAGES
from .model import ALMATY, FeedKind, FeedRef, StoredItem
from .publish import write_if_changed
from .render import (
    PROJECT_URL,
    FeedSpec,
    Listing,
    Site,
    entry_link,
    feed_page_path,
    item_page_path,
    render_opml,
)
from .text import summarise

STATIC_FILES = ("style.css", "site.js", "feed.xsl")
STATIC_DIR = "static"
#: Files the listings step always publishes: when one is missing, it runs again.
LISTING_FILES = ("index.html", *(f"{STATIC_DIR}/{name}" for name in STATIC_FILES))


@dataclass(frozen=True, slots=True)
class Format:
    """A feed format published beside each ``.atom`` file (same path, another extension)."""

    ext: str
    label: str
    mime: str


#: The formats every feed is published in. Another format (RSS, JSON Feed) is added here and
#: appears in every subscribe action and autodiscovery link.
FEED_FORMATS: tuple[Format, ...] = (Format("atom", "Atom", "application/atom+xml"),
                                     Format("rss", "RSS", "application/rss+xml"),
                                     Format("json", "JSON Feed", "application/feed+json"))


@dataclass(frozen=True, slots=True)
class Subscription:
    """One way to subscribe to one feed: a format and its absolute address."""

    label: str
    mime: str
    url: str


def subscriptions(spec: FeedSpec, site: Site,
                  formats: Sequence[Format] = FEED_FORMATS) -> list[Subscription]:
    stem = spec.path.removesuffix(".atom")
    return [Subscription(f.label, f.mime, site.url(f"{stem}.{f.ext}")) for f in formats]


page_path = feed_page_path
item_path = item_page_path


def index_path(lang: str, default_lang: str) -> str:
    return "index.html" if lang == default_lang else f"{lang}/index.html"


def ministry_opml_path(slug: str) -> str:
    return f"opml/{slug}.opml"


def relative(from_path: str, to_path: str) -> str:
    """A link from the page at ``from_path`` to ``to_path`` (both from the output root).

    Up to the root, then down: ``org/a.html`` -> ``all.html`` is ``../all.html``. Simpler than
    ``posixpath.relpath`` and ten times faster (a big build makes a hundred thousand links).
    """
    return "../" * from_path.count("/") + to_path


def root_of(path: str) -> str:
    """The prefix that leads from the page at ``path`` to the output root ("" at the top)."""
    return "../" * path.count("/")


# --- words of the pages themselves ------------------------------------------------------------

_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "site": "gov.kz news feeds", "language": "Language",
        "intro": "Follow the news of Kazakhstan's ministries, agencies, akimats and embassies "
                 "in your feed reader. Copy a feed's address into your reader, or import them "
                 "all as OPML.",
        "search": "Find an organisation", "search_hint": "Any of its names in kk, ru or en",
        "no_match": "No organisation matches.", "all": "All news",
        "ministries": "Ministries and top-level bodies", "regions": "Regions",
        "topics": "Topics", "others": "Other bodies", "n_items": "Items", "latest": "Latest",
        "changed": "changed", "rebuilt": "Feeds rebuilt at", "newest": "Newest item",
        "copy_address": "Copy address", "copied": "Copied", "opml_all": "OPML of every feed",
        "opml_one": "OPML of all its feeds", "home": "Feeds", "subscribe": "Subscribe",
        "page_feed": "This page shows the latest entries of a feed. To follow it, copy its "
                     "address into your feed reader.",
        "entries": "Latest entries", "no_entries": "No entries yet.", "source": "Source",
        "read_more": "Read", "sections": "Sections", "topics_of": "Topics",
        "publication": "Publication", "organisation": "Organisation",
        "everything_under": "everything under it", "own": "its own news",
        "under": "bodies under it", "on_govkz": "On gov.kz", "made_by": "Made by",
        "date_unknown": "date unknown",
    },
    "ru": {
        "site": "Ленты новостей gov.kz", "language": "Язык",
        "intro": "Читайте новости министерств, ведомств, акиматов и посольств Казахстана в "
                 "своей программе для лент. Скопируйте адрес ленты в программу или "
                 "импортируйте все ленты в виде OPML.",
        "search": "Найти организацию", "search_hint": "Любое из её названий: kk, ru или en",
        "no_match": "Ничего не найдено.", "all": "Все новости",
        "ministries": "Министерства и ведомства верхнего уровня", "regions": "Регионы",
        "topics": "Темы", "others": "Другие органы", "n_items": "Записей",
        "latest": "Последняя", "changed": "изменено", "rebuilt": "Ленты пересобраны",
        "newest": "Самая новая запись", "copy_address": "Копировать адрес", "copied": "Скопировано",
        "opml_all": "OPML всех лент", "opml_one": "OPML всех его лент",
        "home": "Ленты", "subscribe": "Подписаться",
        "page_feed": "Здесь последние записи ленты. Чтобы читать её, скопируйте адрес в "
                     "программу для лент.",
        "entries": "Последние записи", "no_entries": "Записей пока нет.",
        "source": "Источник", "read_more": "Читать", "sections": "Разделы",
        "topics_of": "Темы", "publication": "Издание", "organisation": "Организация",
        "everything_under": "вместе с подведомственными", "own": "только свои новости",
        "under": "подведомственные", "on_govkz": "На gov.kz", "made_by": "Сделано",
        "date_unknown": "дата неизвестна",
    },
    "kk": {
        "site": "gov.kz жаңалық арналары", "language": "Тіл",
        "intro": "Қазақстанның министрліктері, агенттіктері, әкімдіктері мен елшіліктерінің "
                 "жаңалықтарын арна оқитын бағдарламада оқыңыз. Арнаның мекенжайын "
                 "бағдарламаға көшіріңіз немесе барлығын OPML түрінде импорттаңыз.",
        "search": "Ұйымды табу", "search_hint": "Кез келген атауы: kk, ru немесе en",
        "no_match": "Ештеңе табылмады.", "all": "Барлық жаңалықтар",
        "ministries": "Министрліктер мен жоғарғы органдар", "regions": "Өңірлер",
        "topics": "Тақырыптар", "others": "Басқа органдар", "n_items": "Жазбалар",
        "latest": "Соңғысы", "changed": "өзгерді", "rebuilt": "Арналар жаңартылды",
        "newest": "Ең жаңа жазба", "copy_address": "Мекенжайды көшіру", "copied": "Көшірілді",
        "opml_all": "Барлық арналардың OPML", "opml_one": "Барлық арналарының OPML",
        "home": "Арналар", "subscribe": "Жазылу",
        "page_feed": "Бұл бетте арнаның соңғы жазбалары. Оқып отыру үшін мекенжайын арна "
                     "оқитын бағдарламаға көшіріңіз.",
        "entries": "Соңғы жазбалар", "no_entries": "Әзірге жазба жоқ.",
        "source": "Дереккөз", "read_more": "Оқу", "sections": "Бөлімдер",
        "topics_of": "Тақырыптар", "publication": "Басылым", "organisation": "Ұйым",
        "everything_under": "бағынысты органдарымен", "own": "өз жаңалықтары",
        "under": "бағынысты органдар", "on_govkz": "gov.kz сайтында", "made_by": "Жасаған",
        "date_unknown": "күні белгісіз",
    },
}
LANGUAGE_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}


def words(lang: str) -> dict[str, str]:
    return _WORDS.get(lang, _WORDS["en"])


# --- dates ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class When:
    """A moment as a page shows it: Almaty time, or only the date when the time is unknown."""

    iso: str
    text: str


def when(moment: datetime | None, time_known: bool = True) -> When | None:
    if moment is None:
        return None
    local = moment.astimezone(ALMATY)
    if time_known:
        return When(local.isoformat(timespec="seconds"), local.strftime("%Y-%m-%d %H:%M"))
    return When(local.date().isoformat(), local.date().isoformat())


def changed_when(moment: datetime | None) -> When | None:
    """When a feed last changed: its newest entry's time, which for an item of a text dump
    is its publication date at midnight (the time of day is not known)."""
    if moment is None:
        return None
    local = moment.astimezone(ALMATY)
    return when(local, time_known=(local.hour, local.minute, local.second) != (0, 0, 0))


def published_when(stored: StoredItem) -> When | None:
    """An item's publication date; text dumps give a date without a time of day."""
    item = stored.item
    time_known = item.raw_date is None or ":" in item.raw_date
    return when(item.published, time_known)


# --- templates --------------------------------------------------------------------------------


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("feedsvc", "templates"),
        autoescape=True,  # every template, whatever its name: all of them write HTML
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.globals.update(version=__version__, project_url=PROJECT_URL,
                       language_names=LANGUAGE_NAMES)
    return env


def _render(template: str, **context: Any) -> bytes:
    return environment().get_template(template).render(**context).encode("utf-8")


@cache
def static_files() -> dict[str, bytes]:
    """The assets published under ``static/``, from the package."""
    folder = resources.files("feedsvc") / "static"
    return {f"{STATIC_DIR}/{name}": (folder / name).read_bytes() for name in STATIC_FILES}


@cache
def fingerprint() -> str:
    """Changes whenever a template or an asset changes: then every page is rendered again."""
    digest = hashlib.sha256()
    folder = resources.files("feedsvc") / "templates"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".html"):
            digest.update(entry.name.encode() + entry.read_bytes())
    for path, data in sorted(static_files().items()):
        digest.update(path.encode() + data)
    return digest.hexdigest()[:16]


# --- what a page says about one entry ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryView:
    title: str
    link: str  # relative for an item page of this site, absolute for gov.kz
    date: When | None
    source: str  # organisation or publication
    summary: str


def entry_view(stored: StoredItem, site: Site, lang: str, from_path: str) -> EntryView:
    item = stored.item
    link = entry_link(stored, site)  # every entry has one: its source or its item page
    if link.startswith(site.base_url):
        link = relative(from_path, link.removeprefix(site.base_url))
    return EntryView(item.title, link, published_when(stored), source_name(stored, site, lang),
                     summarise(item.text) if item.paragraphs else "")


def source_name(stored: StoredItem, site: Site, lang: str) -> str:
    item = stored.item
    if item.org:
        return site.registry.name(item.org, lang)
    return item.publication or "gov.kz"


# --- the page beside a feed ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Crumb:
    label: str
    href: str | None


def breadcrumb(ref: FeedRef, site: Site, here: str) -> list[Crumb]:
    """Home, then the ministry and every body above this one (each has a feed page of its
    own in the same language: an item is filed under all of them)."""
    lang = ref.lang
    crumbs = [Crumb(words(lang)["home"], relative(here, index_path(lang, site.default_lang)))]
    if ref.kind == "org" and ref.slug:
        chain = site.registry.chain(ref.slug)
        above = list(reversed(chain[1:]))
        for depth, slug in enumerate(above):
            kind: FeedKind = "ministry" if depth == 0 else "org"
            path = page_path(FeedRef(kind, slug, lang).path(site.default_lang))
            crumbs.append(Crumb(site.registry.name(slug, lang), relative(here, path)))
    return crumbs


def feed_page(spec: FeedSpec, entries: Sequence[StoredItem], total: int, site: Site,
              formats: Sequence[Format] = FEED_FORMATS) -> bytes:
    """The page beside a feed: what it holds, where it sits, how to subscribe."""
    here = page_path(spec.path)
    lang = spec.ref.lang
    return _render(
        "feed.html", lang=lang, w=words(lang), here=here, root=root_of(here),
        home=relative(here, index_path(lang, site.default_lang)),
        title=spec.title, subtitle=spec.subtitle, total=total,
        crumbs=breadcrumb(spec.ref, site, here),
        subscriptions=subscriptions(spec, site, formats),
        govkz=spec.author_uri if spec.ref.kind in ("org", "ministry") else None,
        entries=[entry_view(stored, site, lang, here) for stored in entries],
    )


# --- the page of an item without a source URL -------------------------------------------------


def item_page(stored: StoredItem, site: Site) -> bytes:
    """The page an entry links to when the item has no source URL: its whole text."""
    item = stored.item
    lang = item.lang if item.lang in _WORDS else site.default_lang
    here = item_path(stored.atom_id)
    org = None
    if item.org:
        ref = FeedRef("org", item.org, lang)
        if site.registry.top(item.org) == item.org:
            ref = FeedRef("ministry", item.org, lang)
        org = Crumb(site.registry.name(item.org, lang),
                    relative(here, page_path(ref.path(site.default_lang))))
    body = Markup(item.html) if item.html else None  # sanitised by nh3 when it was read
    return _render(
        "item.html", lang=lang, w=words(lang), here=here, root=root_of(here),
        title=item.title, date_=published_when(stored), org=org, publication=item.publication,
        paragraphs=item.paragraphs, body=body, attribution=item.attribution,
        image=item.image, sections=item.sections,
        topics=[Crumb(site.topic_name(t, lang),
                      relative(here, page_path(FeedRef("topic", t, lang).path(site.default_lang))))
                for t in stored.topics],
        home=relative(here, index_path(lang, site.default_lang)),
    )


def pages_for_feed(spec: FeedSpec, entries: Sequence[StoredItem], total: int, site: Site,
                   formats: Sequence[Format] = FEED_FORMATS) -> dict[str, bytes]:
    """Every page a feed's publication writes: its own page and the pages of its entries
    that have no source URL (the entries' links)."""
    pages = {page_path(spec.path): feed_page(spec, entries, total, site, formats)}
    for stored in entries:
        if not stored.item.url:
            pages[item_path(stored.atom_id)] = item_page(stored, site)
    return pages


# --- the directory ----------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    """A feed (or an organisation's feeds in every language) as the directory lists it."""

    key: str  # slug, or "all"
    names: dict[str, str]
    feeds: dict[str, Listing] = field(default_factory=dict)  # by language
    aliases: tuple[str, ...] = ()  # other names to find it by (see registry.Organisation)
    children: list[Row] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RowView:
    name: str
    search: str
    lang: str  # of the feed shown
    page: str
    others: list[tuple[str, str]]  # (language, page) of the same feed in other languages
    total: int
    changed: When | None
    headline: str | None
    headline_date: When | None
    headline_link: str | None
    subscriptions: list[Subscription]
    children: list[RowView]
    opml: str | None = None


class Directory:
    """Listings arranged for people: all news, ministries with their bodies nested, regions,
    topics; rendered once per language of the page's own words."""

    def __init__(self, listings: Iterable[Listing], heads: Mapping[str, StoredItem], site: Site,
                 formats: Sequence[Format] = FEED_FORMATS) -> None:
        self.site = site
        self.heads = heads
        self.formats = formats
        self.all = Row("all", {})
        self.tops: dict[str, Row] = {}
        self.topics: dict[str, Row] = {}
        orgs: dict[str, Row] = {}
        self.listings = sorted(listings, key=lambda li: li.spec.ref.key)
        registry = site.registry
        for listing in self.listings:
            ref = listing.spec.ref
            if ref.kind == "all":
                self.all.feeds[ref.lang] = listing
            elif ref.kind == "topic":
                assert ref.slug is not None
                self.topics.setdefault(ref.slug, Row(ref.slug, self._topic_names(ref.slug))
                                       ).feeds[ref.lang] = listing
            elif ref.kind == "ministry":
                assert ref.slug is not None
                self._top(ref.slug).feeds[ref.lang] = listing
            else:
                assert ref.slug is not None
                orgs.setdefault(ref.slug, Row(ref.slug, self._org_names(ref.slug),
                                              aliases=self.site.registry.get(ref.slug).aliases)
                                ).feeds[ref.lang] = listing
        for slug in sorted(orgs):  # nest each body under the nearest one above it that is listed
            chain = registry.chain(slug)
            parent = next((orgs.get(s) for s in chain[1:-1] if s in orgs), None) \
                or self._top(chain[-1])
            parent.children.append(orgs[slug])

    def _top(self, slug: str) -> Row:
        row = self.tops.get(slug)
        if row is None:
            row = self.tops[slug] = Row(slug, self._org_names(slug),
                                        aliases=self.site.registry.get(slug).aliases)
        return row

    def _org_names(self, slug: str) -> dict[str, str]:
        return {lang: self.site.registry.name(slug, lang) for lang in LANGUAGES}

    def _topic_names(self, slug: str) -> dict[str, str]:
        return {lang: self.site.topic_name(slug, lang) for lang in LANGUAGES}

    def ministry_opml(self) -> dict[str, bytes]:
        """One OPML per ministry or top-level body that has bodies under it: its feeds and
        theirs, every language (a body alone is one feed per language, subscribed directly)."""
        files = {}
        for slug, row in self.tops.items():
            if not row.children:
                continue
            listings = [*row.feeds.values(), *(li for child in _descendants(row)
                                               for li in child.feeds.values())]
            files[ministry_opml_path(slug)] = render_opml(listings, self.site)
        return files

    def pages(self, now: datetime) -> dict[str, bytes]:
        """The directory in each language of the pages' words."""
        published = [self.heads[li.spec.ref.key].item.published for li in self.all.feeds.values()
                     if li.spec.ref.key in self.heads]
        newest = max((moment for moment in published if moment is not None), default=None)
        newest_item = next((self.heads[li.spec.ref.key] for li in self.all.feeds.values()
                            if li.spec.ref.key in self.heads
                            and self.heads[li.spec.ref.key].item.published == newest), None)
        return {index_path(lang, self.site.default_lang): self._page(lang, now, newest_item)
                for lang in LANGUAGES}

    def _page(self, lang: str, now: datetime, newest: StoredItem | None) -> bytes:
        here = index_path(lang, self.site.default_lang)
        registry = self.site.registry

        def sort_name(row: Row) -> tuple[str, str]:
            return (row.names.get(lang, row.key).casefold(), row.key)

        tops = sorted(self.tops.values(), key=sort_name)
        regions = [row for row in tops if registry.get(row.key).kind == "akimat"]
        ministries = [row for row in tops if registry.get(row.key).kind != "akimat"]
        topics = sorted(self.topics.values(), key=sort_name)
        all_view = self._view(self.all, lang, here, sort_name) if self.all.feeds else None
        discovery = [(li.spec.title, s.mime, s.url) for li in self.all.feeds.values()
                     if li.spec.ref.lang == lang or len(self.all.feeds) == 1
                     for s in subscriptions(li.spec, self.site, self.formats)]
        return _render(
            "index.html", lang=lang, w=words(lang), here=here, root=root_of(here),
            home=here.rsplit("/", 1)[-1],
            languages=[(code, relative(here, index_path(code, self.site.default_lang)))
                       for code in LANGUAGES],
            rebuilt=when(now), newest=published_when(newest) if newest else None,
            all=all_view, discovery=discovery,
            opml=relative(here, "feeds.opml"),
            ministries=[self._view(row, lang, here, sort_name, True) for row in ministries],
            regions=[self._view(row, lang, here, sort_name, True) for row in regions],
            topics=[self._view(row, lang, here, sort_name) for row in topics],
        )

    def _view(self, row: Row, lang: str, here: str, sort_name: Any, top: bool = False
              ) -> RowView:
        chosen = row.feeds.get(lang) or row.feeds.get(self.site.default_lang) \
            or next(iter(row.feeds.values()), None)
        names = row.names or {lang: words(lang)["all"]}
        children = [self._view(child, lang, here, sort_name)
                    for child in sorted(row.children, key=sort_name)]
        opml = relative(here, ministry_opml_path(row.key)) if top and row.children else None
        if chosen is None:  # a body listed only through the bodies under it
            return RowView(names.get(lang, row.key), _search_text(row), lang, "", [], 0, None,
                           None, None, None, [], children, opml)
        spec = chosen.spec
        head = self.heads.get(spec.ref.key)
        headline_link = None
        if head is not None:
            link = entry_link(head, self.site)
            headline_link = relative(here, link.removeprefix(self.site.base_url)) \
                if link.startswith(self.site.base_url) else link
        return RowView(
            name=names.get(lang, row.key) if row.names else words(lang)["all"],
            search=_search_text(row),
            lang=spec.ref.lang,
            page=relative(here, page_path(spec.path)),
            others=[(code, relative(here, page_path(li.spec.path)))
                    for code, li in sorted(row.feeds.items()) if li is not chosen],
            total=chosen.total,
            changed=changed_when(chosen.updated),
            headline=head.item.title if head else None,
            headline_date=published_when(head) if head else None,
            headline_link=headline_link,
            subscriptions=subscriptions(spec, self.site, self.formats),
            children=children,
            opml=opml,
        )


def _descendants(row: Row) -> Iterable[Row]:
    for child in row.children:
        yield child
        yield from _descendants(child)


def _search_text(row: Row) -> str:
    """Everything a search may match: every name in every language and the slug."""
    return " ".join(dict.fromkeys([*row.names.values(), *row.aliases, row.key])).casefold()


def listing_files(listings: Sequence[Listing], heads: Mapping[str, StoredItem], site: Site,
                  now: datetime, formats: Sequence[Format] = FEED_FORMATS) -> dict[str, bytes]:
    """Everything published with the OPML: the directory pages, an OPML per ministry, and
    the static assets. ``heads``: the newest entry of each feed, by feed key."""
    directory = Directory(listings, heads, site, formats)
    return {**directory.pages(now), **directory.ministry_opml(), **static_files()}


def write_pages(out_dir: Path, files: Mapping[str, bytes]) -> list[str]:
    """Write the files that changed (atomically, without waiting for the disk: they are
    made again from the store); the paths written."""
    return [path for path, data in files.items()
            if write_if_changed(out_dir / path, data, durable=False)]
