"""The pages for people, rendered without a browser: escaping, dates, the directory's shape and
its size at the scale of the whole portal."""

from __future__ import annotations

import gzip
from datetime import datetime

import pytest
from lxml import html as lxml_html

from feedsvc.model import ALMATY, FeedRef, Item, Origin, StoredItem, atom_id_for
from feedsvc.pages import (
    FEED_FORMATS,
    Directory,
    Format,
    changed_when,
    feed_page,
    item_page,
    listing_files,
    pages_for_feed,
    published_when,
)
from feedsvc.registry import load_registry, shipped_organisations
from feedsvc.render import Listing, Site, feed_spec, render_atom
from feedsvc.topics import load_taxonomy

BASE = "http://feeds.test/"
HOSTILE_TITLE = ('<script>alert("t")</script> "><img src=x onerror=alert(1)> '
                 "\u202eevil\u202c zero\u200bwidth")
HOSTILE_BODY = ('Body <script>alert(3)</script> and "><img src=x onerror=alert(4)> and '
                "javascript:alert(5) and \u202eRTL\u202c.")


@pytest.fixture(scope="module")
def site() -> Site:
    taxonomy = load_taxonomy(None)
    return Site(BASE, "en", load_registry(), {t.slug: t.names for t in taxonomy.topics})


def stored(title: str = "A title", *, org: str | None = "mfa-brussels", url: str | None = None,
           body: str = "A body.", raw_date: str | None = None, n: int = 0,
           html_body: str | None = None) -> StoredItem:
    published = datetime(2026, 3, 1, 14, 30, tzinfo=ALMATY) if raw_date is None \
        else datetime(2026, 3, 1, tzinfo=ALMATY)
    item = Item(title, published, Origin("test.txt", n), (body,), html=html_body, org=org,
                url=url, raw_date=raw_date, publication="Hostile \"><b>Press</b>")
    return StoredItem(item, atom_id_for(f"test:{n}"), published, published)


def assert_inert(page: bytes) -> lxml_html.HtmlElement:
    """No markup of the item survived as markup: no handler, no inline script, no
    javascript: link, no element the item's text could have made."""
    tree = lxml_html.fromstring(page)
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        assert not [a for a in element.attrib if a.lower().startswith("on")], element.tag
        for attribute in ("href", "src"):
            assert not element.get(attribute, "").strip().lower().startswith("javascript:")
    scripts = tree.findall(".//script")
    assert all(s.get("src", "").endswith("static/site.js") and not (s.text or "").strip()
               for s in scripts)
    assert tree.findall(".//img") == [] and tree.findall(".//b") == []
    return tree


def test_hostile_titles_and_bodies_render_as_text_on_every_page(site: Site) -> None:
    hostile = stored(HOSTILE_TITLE, body=HOSTILE_BODY, raw_date="01.03.2026")
    spec = feed_spec(FeedRef("org", "mfa-brussels", "en"), site)
    pages = pages_for_feed(spec, [hostile], 1, site)
    listing = Listing(spec, 1, hostile.updated)
    pages.update(listing_files([listing], {spec.ref.key: hostile}, site, hostile.updated))
    checked = 0
    for path, page in pages.items():
        if not path.endswith(".html"):
            continue
        tree = assert_inert(page)
        text = tree.text_content()
        if path.startswith(("item/", "org/")) or path == "index.html":
            assert HOSTILE_TITLE in text, path
        if path.startswith("item/"):
            assert HOSTILE_BODY in text and 'Hostile "><b>Press</b>' in text
        checked += 1
    assert checked == 5  # the feed's page, the item's page and the directory in 3 languages


def test_item_markup_from_the_api_is_kept_as_sanitised_markup(site: Site) -> None:
    """The gov.kz API's HTML body was sanitised when read; the item page shows it as HTML."""
    item = stored(html_body="<p>First <strong>bold</strong> paragraph.</p>")
    tree = lxml_html.fromstring(item_page(item, site))
    assert [el.text for el in tree.findall(".//strong")] == ["bold"]


def test_dates_show_the_time_only_when_it_is_known() -> None:
    assert published_when(stored(raw_date="01.03.2026")).text == "2026-03-01"
    assert published_when(stored()).text == "2026-03-01 14:30"
    assert published_when(stored()).iso == "2026-03-01T14:30:00+05:00"
    assert changed_when(datetime(2026, 3, 1, tzinfo=ALMATY)).text == "2026-03-01"
    assert changed_when(datetime(2026, 3, 1, 9, 5, 7, 123456, tzinfo=ALMATY)).iso == \
        "2026-03-01T09:05:07+05:00"


def test_the_feed_page_has_autodiscovery_a_breadcrumb_and_links_for_every_entry(
        site: Site) -> None:
    spec = feed_spec(FeedRef("org", "mfa-brussels", "en"), site)
    entries = [stored("With a source", url="https://www.gov.kz/x", n=1), stored("Without", n=2)]
    tree = lxml_html.fromstring(feed_page(spec, entries, 2, site))
    assert [(link.get("type"), link.get("href")) for link in
            tree.xpath('//link[@rel="alternate"]')] == [
        ("application/atom+xml", BASE + "org/mfa-brussels.atom"),
        ("application/rss+xml", BASE + "org/mfa-brussels.rss"),
        ("application/feed+json", BASE + "org/mfa-brussels.json")]
    assert [a.get("href") for a in tree.xpath('//nav[@class="crumbs"]//a')] == \
        ["../index.html", "../ministry/mfa.html"]
    links = [a.get("href") for a in tree.xpath("//ol[@class='entries']//h3/a")]
    assert links == ["https://www.gov.kz/x?lang=en", "../item/" +
                     entries[1].atom_id.removeprefix("urn:uuid:") + ".html"]


def test_the_directory_nests_bodies_under_their_ministry(site: Site) -> None:
    listings = [Listing(feed_spec(FeedRef(kind, slug, "en"), site), 1, None)  # type: ignore[arg-type]
                for kind, slug in [("ministry", "mfa"), ("org", "mfa-brussels"),
                                   ("ministry", "minfin"), ("org", "kgd"),
                                   ("org", "kgd-mangistau"), ("topic", "health")]]
    directory = Directory(listings, {}, site)
    assert sorted(directory.tops) == ["mfa", "minfin"]
    assert [c.key for c in directory.tops["mfa"].children] == ["mfa-brussels"]
    [kgd] = directory.tops["minfin"].children
    assert kgd.key == "kgd" and [c.key for c in kgd.children] == ["kgd-mangistau"]
    assert list(directory.topics) == ["health"]


def test_the_directory_of_the_whole_portal_stays_under_300_kb_compressed(site: Site) -> None:
    """Every organisation of the registry with a feed in each language, every topic, each
    with a long latest headline: no directory page may weigh more than 300 KB gzipped."""
    registry = site.registry
    slugs = [org.slug for org in shipped_organisations()]
    assert len(slugs) > 2000
    listings, heads = [], {}
    n = 0
    for lang in ("kk", "ru", "en"):
        refs = [FeedRef("all", None, lang)]
        refs += [FeedRef("ministry", s, lang) for s in slugs if registry.top(s) == s]
        refs += [FeedRef("org", s, lang) for s in slugs if registry.top(s) != s]
        refs += [FeedRef("topic", t, lang) for t in site.topic_names]
        for ref in refs:
            n += 1
            spec = feed_spec(ref, site)
            head = stored(f"Headline number {n} about a meeting of the akimat with residents "
                          f"on the development of the region's roads and schools", n=n,
                          url=f"https://www.gov.kz/memleket/entities/{ref.slug}/press/news/"
                              f"details/{1_000_000 + n}")
            listings.append(Listing(spec, 1234, head.updated))
            heads[ref.key] = head
    files = listing_files(listings, heads, site, datetime(2026, 3, 1, tzinfo=ALMATY))
    sizes = {path: len(gzip.compress(data)) for path, data in files.items()
             if path.endswith("index.html")}
    assert len(sizes) == 3
    assert max(sizes.values()) < 300_000, sizes


def test_every_atom_feed_names_the_stylesheet_relative_to_itself(site: Site) -> None:
    for ref, href in [(FeedRef("all", None, "en"), "static/feed.xsl"),
                      (FeedRef("org", "mfa-brussels", "en"), "../static/feed.xsl"),
                      (FeedRef("org", "mfa-brussels", "kk"), "../../static/feed.xsl")]:
        data = render_atom(feed_spec(ref, site), [stored()], site)
        assert data.split(b"\n")[1] == \
            f'<?xml-stylesheet type="text/xsl" href="{href}"?>'.encode()


def test_the_directory_says_when_feeds_were_rebuilt_and_how_new_the_newest_item_is(
        site: Site) -> None:
    newest = stored("Newest", raw_date="01.03.2026")  # a text dump's item: a date, no time
    spec = feed_spec(FeedRef("all", None, "en"), site)
    files = listing_files([Listing(spec, 1, newest.updated)], {spec.ref.key: newest}, site,
                          datetime(2026, 3, 20, 9, 0, 30, tzinfo=ALMATY))
    facts = lxml_html.fromstring(files["index.html"]).find_class("facts")[0]
    times = [(t.get("datetime"), t.text) for t in facts.iter("time")]
    assert times == [("2026-03-20T09:00:30+05:00", "2026-03-20 09:00"),
                     ("2026-03-01", "2026-03-01")]
    assert "Feeds rebuilt at" in facts.text_content()
    assert "Newest item" in facts.text_content()


def test_subscribe_actions_offer_every_format_published_beside_the_feed(site: Site) -> None:
    formats = (FEED_FORMATS[0], Format("rss", "RSS", "application/rss+xml"))
    spec = feed_spec(FeedRef("org", "mfa-brussels", "kk"), site)
    tree = lxml_html.fromstring(feed_page(spec, [stored()], 1, site, formats))
    assert [(link.get("type"), link.get("href")) for link in
            tree.xpath('//link[@rel="alternate"]')] == [
        ("application/atom+xml", BASE + "kk/org/mfa-brussels.atom"),
        ("application/rss+xml", BASE + "kk/org/mfa-brussels.rss")]
    assert [b.get("data-copy") for b in tree.xpath("//button[@class='copy']")] == [
        BASE + "kk/org/mfa-brussels.atom", BASE + "kk/org/mfa-brussels.rss"]
