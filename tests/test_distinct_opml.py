"""The "each story once" OPML: for readers that store one copy of an entry id (newsboat), a list
of feeds that together hold every story of a real build, and no story twice (issue 14)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from feedsvc.config import GovkzConfig, SourceConfig
from feedsvc.model import ALMATY, FeedRef
from feedsvc.pipeline import make_pipeline
from feedsvc.registry import load_registry
from feedsvc.render import Listing, distinct_listings, feed_spec, render_distinct_opml
from feedsvc.render import Site as RenderSite

from govkz_fake import GovkzFake
from support import SEEDS, Site, entry_ids

BASE = "http://127.0.0.1:8080/"  # tests/support.Site's base URL


def build_from_govkz(site: Site, server: GovkzFake, *links: tuple[str, str]) -> None:
    """A real build of gov.kz organisation links, read from the loopback fake."""
    govkz = GovkzConfig(base_url=server.base_url, delay=0.0, retries=1, backfill=10)
    sources = tuple(SourceConfig(f"https://www.gov.kz/memleket/entities/{slug}/press/news"
                                 f"?lang={lang}", "govkz") for slug, lang in links)
    pipeline = make_pipeline(site.config().with_overrides(sources=sources, govkz=govkz),
                             clock=site.clock)
    try:
        assert pipeline.refresh().ok
    finally:
        pipeline.close()


def published_listings(out: Path, site: RenderSite) -> list[Listing]:
    """Every published feed as the pipeline lists it, read back from the files."""
    listings = []
    for path in sorted(out.rglob("*.atom")):
        parts = list(path.relative_to(out).with_suffix("").parts)
        lang = parts.pop(0) if parts[0] in ("kk", "ru") else "en"
        ref = FeedRef("all", None, lang) if parts == ["all"] else \
            FeedRef(parts[0], parts[1], lang)  # type: ignore[arg-type]
        parsed = feedparser.parse(path.read_bytes())
        listings.append(Listing(feed_spec(ref, site), len(parsed.entries),
                                datetime.fromisoformat(parsed.feed.updated)))
    return listings


def subscribed(opml: bytes) -> list[tuple[str, str]]:
    """(language, path under the output directory) of every feed the OPML lists."""
    root = etree.fromstring(opml)
    return [(o.get("language"), o.get("xmlUrl").removeprefix(BASE))
            for o in root.iter("outline") if o.get("xmlUrl")]


def assert_each_story_once(out: Path, opml: bytes) -> list[str]:
    """Every entry of every language's all.atom is in exactly one listed feed."""
    feeds = subscribed(opml)
    for lang in {lang for lang, _ in feeds}:
        everything = out / ("all.atom" if lang == "en" else f"{lang}/all.atom")
        ids = Counter(i for feed_lang, path in feeds if feed_lang == lang
                      for i in entry_ids(feedparser.parse((out / path).read_bytes())))
        assert sorted(ids) == sorted(entry_ids(feedparser.parse(everything.read_bytes())))
        assert set(ids.values()) == {1}
    return [path for _, path in feeds]


def test_with_stories_that_have_no_organisation_it_lists_the_all_feed(tmp_path: Path) -> None:
    site = Site(tmp_path)
    site.build(SEEDS)  # the newspaper's stories name no gov.kz body: in no ministry feed
    render_site = RenderSite(BASE, "en", load_registry())
    listings = published_listings(site.out, render_site)
    assert len(listings) == 31
    opml = render_distinct_opml(listings, render_site)
    assert assert_each_story_once(site.out, opml) == ["all.atom"]
    assert b"each story once" in opml


def test_when_every_story_has_an_organisation_it_lists_the_ministry_feeds(
        tmp_path: Path) -> None:
    site = Site(tmp_path)
    orgs = ["mfa-brussels", "mfa-kuveyt", "kgd-mangistau", "kostanai-mendykarin-audany-akimat"]
    with GovkzFake(orgs=orgs, items=8) as server:
        build_from_govkz(site, server, *((slug, "en") for slug in orgs), ("mfa-brussels", "kk"))
    render_site = RenderSite(BASE, "en", load_registry())
    opml = render_distinct_opml(published_listings(site.out, render_site), render_site)
    assert assert_each_story_once(site.out, opml) == [
        "ministry/kostanay.atom", "ministry/minfin.atom", "ministry/mfa.atom",
        "kk/ministry/mfa.atom"]
    assert b'<outline text="Ministries and top-level bodies">' in opml


def listing(kind: str, slug: str | None, lang: str, total: int) -> Listing:
    spec = feed_spec(FeedRef(kind, slug, lang),  # type: ignore[arg-type]
                     RenderSite(BASE, "en", load_registry()))
    return Listing(spec, total, datetime(2026, 2, 9, tzinfo=ALMATY))


@pytest.mark.parametrize(("listings", "chosen"), [
    ([listing("all", None, "en", 5), listing("ministry", "mfa", "en", 3),
      listing("ministry", "minfin", "en", 2), listing("org", "kgd", "en", 2),
      listing("topic", "health", "en", 4)], ["en/ministry/mfa", "en/ministry/minfin"]),
    ([listing("all", None, "en", 6), listing("ministry", "mfa", "en", 3),
      listing("ministry", "minfin", "en", 2)], ["en/all"]),
    ([listing("all", None, "en", 1), listing("all", None, "kk", 2),
      listing("ministry", "mfa", "kk", 2)], ["en/all", "kk/ministry/mfa"]),
])
def test_each_language_gets_its_finest_list_that_misses_no_story(
        listings: list[Listing], chosen: list[str]) -> None:
    assert [li.spec.ref.key for li in distinct_listings(listings)] == chosen
