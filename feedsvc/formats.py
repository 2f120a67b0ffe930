"""The same feed as RSS 2.0 (feedgen) and JSON Feed 1.1. Pure: bytes out, no clock, no I/O.

Each format carries what the Atom feed carries, from the same helpers of :mod:`feedsvc.render`:
the entry ids (RSS ``guid isPermaLink="false"``, JSON Feed ``id``), links, authors,
categories, content and dates; and each links the other formats and every entry its
other-language versions. Like the Atom feed, the bytes depend on the entries only (a feed's
date is its newest entry's), so unchanged entries give unchanged files.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from datetime import datetime

import orjson
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem
from lxml import etree

from . import __version__
from .model import StoredItem
from .render import (
    PROJECT_URL,
    SIBLING_TYPE,
    FeedSpec,
    Site,
    entry_categories,
    entry_html,
    entry_link,
    feed_updated,
    format_url,
    other_formats,
    sibling_links,
    source_link,
)
from .text import summarise, xml_safe

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
_ATOM_LINK = "{http://www.w3.org/2005/Atom}link"


def render_formats(spec: FeedSpec, entries: Sequence[StoredItem], site: Site,
                   fallback_updated: datetime | None = None) -> dict[str, bytes]:
    """The feed's other formats: relative path (``org/kgd.rss``, ``org/kgd.json``) -> bytes."""
    return {format_url(spec.path, ".rss"): render_rss(spec, entries, site, fallback_updated),
            format_url(spec.path, ".json"): render_json_feed(spec, entries, site,
                                                             fallback_updated)}


# --- RSS 2.0 ---------------------------------------------------------------------------------


class _ChannelLinks(BaseExtension):
    """``atom:link rel="alternate"`` to the other formats (feedgen writes only ``self``)."""

    def __init__(self) -> None:
        self.links: list[tuple[str, str]] = []

    def extend_rss(self, feed: etree._Element) -> etree._Element:
        channel = feed.find("channel")
        for href, media in self.links:
            xml_elem(_ATOM_LINK, channel, href=href, rel="alternate", type=media)
        return feed


class _ItemLinks(BaseEntryExtension):
    """An item's other-language versions as ``atom:link rel="alternate" hreflang``."""

    def __init__(self) -> None:
        self.links: list[tuple[str, str]] = []

    def extend_rss(self, entry: etree._Element) -> etree._Element:
        for lang, href in self.links:
            xml_elem(_ATOM_LINK, entry, href=href, rel="alternate", type=SIBLING_TYPE,
                     hreflang=lang)
        return entry


def render_rss(spec: FeedSpec, entries: Sequence[StoredItem], site: Site,
               fallback_updated: datetime | None = None) -> bytes:
    """An RSS 2.0 document with ``atom:link rel="self"``, ``dc:creator`` and categories."""
    lang = spec.ref.lang
    updated = feed_updated(entries, fallback_updated)
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.register_extension("feedsvc", _ChannelLinks, _ItemLinks, atom=False, rss=True)
    fg.title(xml_safe(spec.title))
    fg.description(xml_safe(spec.subtitle))
    fg.link(href=format_url(spec.self_url, ".rss"), rel="self", type="application/rss+xml")
    fg.link(href=spec.html_url, rel="alternate", type="text/html")  # the last: <link>
    fg.feedsvc.links = other_formats(spec, ".rss")
    fg.language(lang)
    fg.lastBuildDate(updated)
    fg.generator(f"feedsvc {__version__}", uri=PROJECT_URL)
    for stored in entries:
        _add_item(fg, stored, site, lang)
    return fg.rss_str(pretty=True, encoding="UTF-8")


def _add_item(fg: FeedGenerator, stored: StoredItem, site: Site, lang: str) -> None:
    item = stored.item
    entry = fg.add_entry(order="append")
    entry.guid(stored.atom_id, permalink=False)
    entry.title(xml_safe(item.title))
    entry.link(href=entry_link(stored, site))
    entry.feedsvc.links = sibling_links(stored)
    entry.pubDate(item.published or stored.updated)
    entry.dc.dc_creator(xml_safe(_author_name(stored, site, lang)))
    categories = [{"term": xml_safe(term), "scheme": scheme}
                  for term, _label, scheme in entry_categories(stored, site, lang)]
    if categories:
        entry.category(categories)
    summary = summarise(item.text) if item.paragraphs else ""
    entry.description(xml_safe(summary or item.title))
    entry.content(xml_safe(entry_html(stored, lang, source_link(item))))
    if item.image:
        # RSS wants a length; 0 says "unknown" (we never download the picture)
        entry.enclosure(item.image, "0", mimetypes.guess_type(item.image)[0] or "image/jpeg")


def _author_name(stored: StoredItem, site: Site, lang: str) -> str:
    item = stored.item
    if item.org:
        return site.registry.name(item.org, lang)
    return item.publication or "gov.kz"


# --- JSON Feed 1.1 ---------------------------------------------------------------------------


def render_json_feed(spec: FeedSpec, entries: Sequence[StoredItem], site: Site,
                     fallback_updated: datetime | None = None) -> bytes:
    """A JSON Feed 1.1 document (https://www.jsonfeed.org/version/1.1/).

    Links to the other formats and to an item's other-language versions go in ``_feedsvc``
    objects (the specification's place for extensions: keys starting with ``_``).
    """
    lang = spec.ref.lang
    feed: dict[str, object] = {
        "version": JSON_FEED_VERSION,
        "title": spec.title,
        "home_page_url": spec.html_url,
        "feed_url": format_url(spec.self_url, ".json"),
        "description": spec.subtitle,
        "language": lang,
        "authors": [_author(spec.author, spec.author_uri)],
        "_feedsvc": {
            "updated": feed_updated(entries, fallback_updated).isoformat(),
            "alternate": [{"url": url, "type": media}
                          for url, media in other_formats(spec, ".json")],
        },
        "items": [_json_item(stored, site, lang) for stored in entries],
    }
    return orjson.dumps(feed, option=orjson.OPT_INDENT_2) + b"\n"


def _author(name: str, url: str | None) -> dict[str, str]:
    return {"name": name, "url": url} if url else {"name": name}


def _json_item(stored: StoredItem, site: Site, lang: str) -> dict[str, object]:
    item = stored.item
    data: dict[str, object] = {"id": stored.atom_id, "url": entry_link(stored, site)}
    data["title"] = item.title
    data["content_html"] = entry_html(stored, lang, source_link(item))
    summary = summarise(item.text) if item.paragraphs else ""
    if summary:
        data["summary"] = summary
    if item.image:
        data["image"] = item.image
    if item.published is not None:
        data["date_published"] = item.published.isoformat()
    data["date_modified"] = stored.updated.isoformat()
    data["authors"] = [_author(_author_name(stored, site, lang), None)]
    tags = [term for term, _label, _scheme in entry_categories(stored, site, lang)]
    if tags:
        data["tags"] = tags
    data["language"] = item.lang
    siblings = sibling_links(stored)
    if siblings:
        data["_feedsvc"] = {"translations": [{"language": sibling_lang, "url": url}
                                             for sibling_lang, url in siblings]}
    return data
