"""Items -> Atom (feedgen) and OPML (lxml); the pages for people are in pages.py. Pure: bytes
out, no clock, no I/O.

Everything in a feed is derived from the stored items, so the same items always give the same
bytes: a feed's ``updated`` is its newest entry's, never "now".
"""

from __future__ import annotations

import hashlib
import html
import json
import mimetypes
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem
from lxml import etree

from . import __version__
from .links import org_news_page
from .model import ALMATY, FeedRef, Item, StoredItem, uuid5_urn
from .registry import Registry
from .text import summarise, xml_safe

PROJECT_URL = "https://github.com/feedsvc/feedsvc"
#: A fixed date for feeds that have never had an entry, so their bytes are stable too.
_EPOCH = datetime(2024, 1, 1, tzinfo=ALMATY)
#: The XSLT that shows a feed in a browser, from the output directory's root (pages.py
#: publishes it).
FEED_XSL = "static/feed.xsl"

CATEGORY_BY_KIND = {"all": "/all", "ministry": "/ministry", "org": "/organisation",
                    "topic": "/topic"}

_LABELS: dict[str, dict[str, str]] = {
    "en": {"all": "gov.kz: all news", "news": "news", "group_all": "All news",
           "group_ministry": "Ministries and top-level bodies",
           "group_org": "Organisations", "group_topic": "Topics", "source": "Source",
           "all_sub": "Every news item feedsvc has collected from gov.kz sources",
           "org_sub": "News of {name} and the bodies under it, from gov.kz",
           "topic_sub": "gov.kz news about: {name}"},
    "ru": {"all": "gov.kz: все новости", "news": "новости", "group_all": "Все новости",
           "group_ministry": "Министерства и ведомства верхнего уровня",
           "group_org": "Организации", "group_topic": "Темы", "source": "Источник",
           "all_sub": "Все новости, собранные feedsvc с gov.kz",
           "org_sub": "Новости: {name} и подведомственные организации (gov.kz)",
           "topic_sub": "Новости gov.kz по теме: {name}"},
    "kk": {"all": "gov.kz: барлық жаңалықтар", "news": "жаңалықтар",
           "group_all": "Барлық жаңалықтар", "group_ministry": "Министрліктер",
           "group_org": "Ұйымдар", "group_topic": "Тақырыптар", "source": "Дереккөз",
           "all_sub": "feedsvc gov.kz-тен жинаған барлық жаңалықтар",
           "org_sub": "{name}: жаңалықтар (gov.kz)",
           "topic_sub": "gov.kz жаңалықтары, тақырып: {name}"},
}


def labels(lang: str) -> dict[str, str]:
    return _LABELS.get(lang, _LABELS["en"])


@dataclass(frozen=True, slots=True)
class Site:
    """Everything besides the stored items that the published bytes depend on.

    Anything that changes the output must be a field here: :attr:`fingerprint` tells a
    publisher when every file has to be rendered again.
    """

    base_url: str  # ends with "/"
    default_lang: str
    registry: Registry
    topic_names: dict[str, dict[str, str]] = field(default_factory=dict)
    entry_cap: int = 50  # entries per feed
    templates: str = ""  # a fingerprint of the page templates and assets (pages.fingerprint)

    @property
    def fingerprint(self) -> str:
        names = json.dumps(self.topic_names, sort_keys=True, ensure_ascii=False)
        parts = [__version__, self.base_url, str(self.entry_cap), self.default_lang,
                 self.registry.fingerprint, names, self.templates]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def url(self, path: str) -> str:
        return self.base_url + path

    def topic_name(self, slug: str, lang: str) -> str:
        names = self.topic_names.get(slug, {})
        return names.get(lang) or names.get("en") or slug


@dataclass(frozen=True, slots=True)
class FeedSpec:
    ref: FeedRef
    title: str
    subtitle: str
    path: str
    self_url: str
    html_url: str  # the feed's page on this site (feed_page_path)
    author: str
    author_uri: str | None
    feed_id: str | None = None  # a query feed's own; else the one made from ``ref``

    @property
    def category(self) -> str:
        return CATEGORY_BY_KIND[self.ref.kind]


def feed_spec(ref: FeedRef, site: Site) -> FeedSpec:
    """Title, links and author of a feed, in the feed's own language."""
    lang = ref.lang
    words = labels(lang)
    path = ref.path(site.default_lang)
    page = site.url(feed_page_path(path))
    if ref.kind == "all":
        return FeedSpec(ref, words["all"], words["all_sub"], path, site.url(path),
                        page, "gov.kz via feedsvc", site.base_url)
    assert ref.slug is not None
    if ref.kind == "topic":
        name = site.topic_name(ref.slug, lang)
        return FeedSpec(ref, f"gov.kz: {name}", words["topic_sub"].format(name=name), path,
                        site.url(path), page, "gov.kz via feedsvc", site.base_url)
    name = site.registry.name(ref.slug, lang)
    govkz = org_news_page(ref.slug, lang)
    return FeedSpec(ref, f"{name} — {words['news']}", words["org_sub"].format(name=name),
                    path, site.url(path), page, name, govkz)


def feed_id(ref: FeedRef) -> str:
    return uuid5_urn("feed:" + ref.key)


#: The formats every feed is published in: suffix -> media type.
FORMAT_TYPES = {".atom": "application/atom+xml", ".rss": "application/rss+xml",
                ".json": "application/feed+json"}


def format_url(url: str, suffix: str) -> str:
    """The URL of the same feed in another format: ``org/kgd.atom`` -> ``org/kgd.rss``
    (a query string stays: ``query.atom?q=x`` -> ``query.rss?q=x``)."""
    path, mark, query = url.partition("?")
    stem = path.rsplit(".", 1)[0] if path.rsplit("/", 1)[-1].count(".") else path
    return f"{stem}{suffix}{mark}{query}"


def other_formats(spec: FeedSpec, own: str) -> list[tuple[str, str]]:
    """(URL, media type) of the feed in every format but ``own``, in a fixed order."""
    return [(format_url(spec.self_url, suffix), media) for suffix, media in FORMAT_TYPES.items()
            if suffix != own]


#: The media type of links to an entry's other-language pages. The entry's own page comes first
#: (readers such as miniflux take the first alternate link); feedparser takes the last link
#: whose type is exactly text/html or application/xhtml+xml, so the charset parameter (true of
#: gov.kz pages) keeps it on the entry's own page too.
SIBLING_TYPE = "text/html; charset=utf-8"


def sibling_links(stored: StoredItem) -> list[tuple[str, str]]:
    """(language, URL) of the same gov.kz news in the other languages it is stored in."""
    url = stored.item.url
    if not stored.siblings or not url or not url.startswith("https://www.gov.kz/"):
        return []
    return [(lang, f"{url}?lang={lang}") for lang in stored.siblings]


def feed_updated(entries: Sequence[StoredItem], fallback: datetime | None) -> datetime:
    if entries:
        return max(entry.updated for entry in entries)
    return fallback or _EPOCH


class _NoFeedExtension(BaseExtension):
    """The feed half of :class:`_EntryLinks` (feedgen wants one); adds nothing."""


class _EntryLinks(BaseEntryExtension):
    """Writes entry links with their ``rel`` and ``type``.

    feedgen 1.0 drops both attributes of entry links (its loop reuses the variable holding the
    link's fields), which would turn an image enclosure into a second "alternate" link.
    """

    def __init__(self) -> None:
        self.links: list[dict[str, str]] = []

    def add(self, href: str, rel: str, type_: str, hreflang: str | None = None) -> None:
        link = {"href": href, "rel": rel, "type": type_}
        if hreflang:
            link["hreflang"] = hreflang
        self.links.append(link)

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        for link in self.links:
            xml_elem("link", entry, **link)
        return entry


def render_atom(spec: FeedSpec, entries: Sequence[StoredItem], site: Site,
                fallback_updated: datetime | None = None) -> bytes:
    """An Atom 1.0 document (RFC 4287) for ``entries``, newest first as given."""
    fg = FeedGenerator()
    fg.id(spec.feed_id or feed_id(spec.ref))
    fg.title(xml_safe(spec.title))
    fg.subtitle(xml_safe(spec.subtitle))
    fg.updated(feed_updated(entries, fallback_updated))
    fg.link(href=spec.self_url, rel="self", type="application/atom+xml")
    fg.link(href=spec.html_url, rel="alternate", type="text/html")
    for url, media in other_formats(spec, ".atom"):
        fg.link(href=url, rel="alternate", type=media)
    author = {"name": xml_safe(spec.author)}
    if spec.author_uri:
        author["uri"] = spec.author_uri
    fg.author(author)
    fg.generator("feedsvc", version=__version__, uri=PROJECT_URL)
    fg.language(spec.ref.lang)
    fg.register_extension("feedsvc", _NoFeedExtension, _EntryLinks, atom=True, rss=False)
    for stored in entries:
        _add_entry(fg, stored, site, spec.ref.lang)
    return with_stylesheet(fg.atom_str(pretty=True, encoding="UTF-8"), spec.path)


def with_stylesheet(document: bytes, path: str) -> bytes:
    """``document`` with an ``xml-stylesheet`` instruction after its XML declaration, so a
    browser shows the feed as a page; feed readers ignore it.

    The address is relative to the feed: browsers apply only a stylesheet from the feed's
    own origin, wherever the directory is served from.
    """
    declaration, rest = document.split(b"\n", 1)
    if not declaration.startswith(b"<?xml "):
        raise ValueError("an XML document starts with its declaration")
    href = posixpath.relpath(FEED_XSL, posixpath.dirname(path) or ".")
    instruction = f'<?xml-stylesheet type="text/xsl" href="{html.escape(href)}"?>'.encode()
    return b"\n".join((declaration, instruction, rest))


def feed_page_path(feed_path: str) -> str:
    """The page published beside a feed: ``org/mfa.atom`` -> ``org/mfa.html``."""
    return feed_path.removesuffix(".atom") + ".html"


def item_page_path(atom_id: str) -> str:
    """The page of an item without a source URL, named after its Atom id (which never
    changes): ``item/<uuid>.html``."""
    return f"item/{atom_id.removeprefix('urn:uuid:')}.html"


def _add_entry(fg: FeedGenerator, stored: StoredItem, site: Site, lang: str) -> None:
    item = stored.item
    entry = fg.add_entry(order="append")
    entry.id(stored.atom_id)
    entry.title(xml_safe(item.title))
    entry.updated(stored.updated)
    if item.published is not None:
        entry.published(item.published)
    link = entry_link(stored, site)
    entry.feedsvc.add(link, "alternate", "text/html")
    for sibling_lang, url in sibling_links(stored):
        entry.feedsvc.add(url, "alternate", SIBLING_TYPE, sibling_lang)
    if item.image:
        entry.feedsvc.add(item.image, "enclosure",
                          mimetypes.guess_type(item.image)[0] or "image/jpeg")
    entry.author(_entry_author(stored, site, lang))
    categories = [{"term": term, "label": xml_safe(label), "scheme": scheme}
                  for term, label, scheme in entry_categories(stored, site, lang)]
    if categories:
        entry.category(categories)  # one call: feedgen redoes its list on every call
    entry.content(xml_safe(entry_html(stored, lang, link if item.url else None)), type="html")
    summary = summarise(item.text) if item.paragraphs else ""
    if summary:
        entry.summary(xml_safe(summary))


def entry_link(stored: StoredItem, site: Site) -> str:
    """Where an entry leads: its source, or else its page on this site (item_page_path)."""
    return source_link(stored.item) or site.url(item_page_path(stored.atom_id))


def source_link(item: Item) -> str | None:
    """The item's own page on gov.kz or elsewhere, when its source named one."""
    if not item.url:
        return None
    if item.url.startswith("https://www.gov.kz/"):
        return f"{item.url}?lang={item.url_lang or item.lang}"
    return item.url


def _entry_author(stored: StoredItem, site: Site, lang: str) -> dict[str, str]:
    item = stored.item
    if item.org:
        return {"name": xml_safe(site.registry.name(item.org, lang)),
                "uri": org_news_page(item.org, lang)}
    if item.publication:
        return {"name": xml_safe(item.publication)}
    return {"name": "gov.kz"}


def entry_categories(stored: StoredItem, site: Site, lang: str) -> list[tuple[str, str, str]]:
    """(term, label, scheme) triples: organisation, its ministry, topics, sections, tags."""
    item = stored.item
    found: list[tuple[str, str, str]] = []
    if item.org:
        top = site.registry.top(item.org)
        found.append((item.org, site.registry.name(item.org, lang), site.url("org/")))
        if top != item.org:
            found.append((top, site.registry.name(top, lang), site.url("ministry/")))
    for topic in stored.topics:
        found.append((topic, site.topic_name(topic, lang), site.url("topic/")))
    for section in item.sections:
        found.append((section, section, site.url("section/")))
    for tag in item.categories:
        found.append((tag, tag, "https://www.gov.kz/"))
    return found


def entry_html(stored: StoredItem, lang: str, link: str | None = None) -> str:
    """The entry's full content as an HTML fragment (escaped text, or sanitised API markup);
    ``link``: the item's source link, when the caller has it already."""
    item = stored.item
    parts: list[str] = []
    if item.image:
        parts.append(f'<p><img src="{html.escape(item.image)}" alt=""/></p>')
    if item.html:
        parts.append(item.html)
    else:
        parts.extend(f"<p>{html.escape(paragraph, quote=False)}</p>"
                     for paragraph in item.paragraphs)
    if item.attribution:
        parts.append(f"<p><em>{html.escape(item.attribution, quote=False)}</em></p>")
    link = link or source_link(item)
    if link:
        label = labels(lang)["source"]
        parts.append(f'<p>{label}: <a href="{html.escape(link)}">{html.escape(link)}</a></p>')
    return "\n".join(parts) if parts else f"<p>{html.escape(item.title)}</p>"


# --- OPML -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listing:
    """One published feed as the OPML and the directory pages show it."""

    spec: FeedSpec
    total: int
    updated: datetime | None


_GROUP_ORDER = ("all", "ministry", "org", "topic")


def _groups(listings: Sequence[Listing]) -> list[tuple[str, list[Listing]]]:
    """Listings by kind, each kind by language and title: the same order whatever order the
    listings come in (a parallel build collects them in the order its workers finish)."""
    grouped: dict[str, list[Listing]] = {kind: [] for kind in _GROUP_ORDER}
    for listing in listings:
        grouped[listing.spec.ref.kind].append(listing)
    for members in grouped.values():
        members.sort(key=lambda li: (li.spec.ref.lang, li.spec.title.casefold(), li.spec.ref.key))
    return [(kind, members) for kind, members in grouped.items() if members]


def render_opml(listings: Sequence[Listing], site: Site,
                title: str = "feedsvc: gov.kz news feeds") -> bytes:
    """OPML 2.0 subscription list: one outline per feed, grouped like folders in a reader."""
    words = labels(site.default_lang)
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    newest = max((li.updated for li in listings if li.updated), default=_EPOCH)
    from email.utils import format_datetime  # RFC 822 dates; only the OPML needs them

    etree.SubElement(head, "dateModified").text = format_datetime(newest.astimezone(UTC),
                                                                  usegmt=True)
    body = etree.SubElement(root, "body")
    for kind, members in _groups(listings):
        group = etree.SubElement(body, "outline", text=words[f"group_{kind}"])
        for listing in members:
            spec = listing.spec
            title = _with_language(spec.title, spec.ref.lang, site.default_lang)
            etree.SubElement(group, "outline", type="rss",
                             text=xml_safe(title), title=xml_safe(title),
                             xmlUrl=spec.self_url, htmlUrl=spec.html_url,
                             category=spec.category, language=spec.ref.lang,
                             # the same feed as RSS 2.0 and JSON Feed (OPML allows any
                             # attribute; readers that know only xmlUrl take the Atom)
                             rssUrl=format_url(spec.self_url, ".rss"),
                             jsonUrl=format_url(spec.self_url, ".json"))
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


DISTINCT_OPML = "feeds-distinct.opml"


def distinct_listings(listings: Sequence[Listing]) -> list[Listing]:
    """Feeds that hold every story exactly once, per language.

    A story keeps one Atom id in every feed it is in (RFC 4287: the id names the entry, not its
    place), and readers that store an entry once per id, not once per feed (newsboat, one
    Thunderbird account), show it under only one of the subscribed feeds that hold it, leaving
    the others empty (issue 14). For them: a language's ministry feeds when they share out all
    of its stories between them (every story with an organisation is in exactly one ministry
    feed), otherwise its ``all`` feed alone: a story without an organisation is in no ministry
    feed, and a list that left it out would lose it silently.
    """
    chosen: list[Listing] = []
    for lang in sorted({listing.spec.ref.lang for listing in listings}):
        own = [li for li in listings if li.spec.ref.lang == lang]
        everything = [li for li in own if li.spec.ref.kind == "all"]
        ministries = [li for li in own if li.spec.ref.kind == "ministry"]
        covered = sum(li.total for li in ministries)
        if ministries and everything and covered == everything[0].total:
            chosen.extend(ministries)
        else:
            chosen.extend(everything or ministries)
    return chosen


def render_distinct_opml(listings: Sequence[Listing], site: Site) -> bytes:
    """The OPML of :func:`distinct_listings`: for readers that keep one copy of an entry id."""
    return render_opml(distinct_listings(listings), site,
                       title="feedsvc: gov.kz news feeds, each story once")


def _with_language(title: str, lang: str, default_lang: str) -> str:
    return title if lang == default_lang else f"{title} [{lang}]"
