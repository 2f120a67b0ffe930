"""Topic feeds in a real build: valid Atom, listed in the OPML, and driven by the data file."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from feedsvc.errors import DataFileError
from feedsvc.topics import load_taxonomy

from support import BASE, Site

SHIPPED = Path(load_taxonomy().source) if Path(str(load_taxonomy().source)).exists() else None


@pytest.fixture
def site(tmp_path: Path) -> Site:
    site = Site(tmp_path)
    site.copy_seeds()
    return site


def shipped_text() -> str:
    from importlib import resources

    return resources.files("feedsvc").joinpath("data", "topics.toml").read_text("utf-8")


def test_topic_feeds_parse_and_hold_the_stories_of_their_topic(site: Site) -> None:
    site.build()
    constitution = site.feed("topic/constitution-and-referendum.atom")
    assert constitution.feed.title == "gov.kz: Constitution and referendum"
    titles = {e.title for e in constitution.entries}
    assert "NEW PREAMBLE OF THE CONSTITUTION: VALUES AND FUTURE DIRECTIONS" in titles
    taxes = site.feed("topic/taxes-and-finance.atom")
    assert any("tax reporting forms" in e.title for e in taxes.entries)
    for entry in constitution.entries:
        assert "constitution-and-referendum" in {t.term for t in entry.tags
                                                 if t.scheme == BASE + "topic/"}


def test_topic_feeds_are_listed_in_the_opml_and_the_index(site: Site) -> None:
    site.build()
    root = etree.parse(str(site.out / "feeds.opml")).getroot()
    topic_urls = {o.get("xmlUrl") for o in root.findall(".//outline[@category='/topic']")}
    files = {BASE + str(p.relative_to(site.out)) for p in site.out.glob("topic/*.atom")}
    assert topic_urls == files and files
    page = (site.out / "index.html").read_text(encoding="utf-8")
    assert f'href="{BASE}topic/constitution-and-referendum.atom"' in page


def test_adding_a_keyword_to_the_data_file_changes_the_next_build(site: Site) -> None:
    typo = "Minister of defence of Kazakhstan met with the Ambassadoe of China"
    site.build()
    assert typo not in {e.title for e in site.feed("topic/foreign-policy.atom").entries}
    custom = site.root / "topics.toml"
    text = shipped_text()
    table = text.index("[topics.en]\n", text.index('slug = "foreign-policy"'))
    table += len("[topics.en]\n")
    custom.write_text(text[:table] + '"ambassadoe" = 3\n' + text[table:], encoding="utf-8")
    site.build(topics_file=custom)
    assert typo in {e.title for e in site.feed("topic/foreign-policy.atom").entries}


def test_adding_a_topic_to_the_data_file_adds_a_feed(site: Site) -> None:
    site.build()
    custom = site.root / "topics.toml"
    custom.write_text(shipped_text() + '''
[[topics]]
slug = "kuwait"
names = { en = "Kuwait", ru = "Кувейт", kk = "Кувейт" }
scope = "Everything about Kuwait."

[topics.en]
"kuwait" = 5
''', encoding="utf-8")
    site.build(topics_file=custom)
    kuwait = site.feed("topic/kuwait.atom")
    assert len(kuwait.entries) == 2
    assert kuwait.feed.title == "gov.kz: Kuwait"


def test_malformed_topics_file_stops_the_build_before_anything_is_published(
        site: Site) -> None:
    site.build()
    before = site.snapshot()
    custom = site.root / "topics.toml"
    custom.write_text(shipped_text().replace('threshold = 3.0', 'threshold = "high"'),
                      encoding="utf-8")
    site.add("new.txt", "A NEW STORY ABOUT TAXES 01.03.2026\nTax forms.\n")
    with pytest.raises(DataFileError) as caught:
        site.build(topics_file=custom)
    assert str(caught.value).startswith(f"{custom}:")
    assert caught.value.line is not None
    assert site.snapshot() == before
