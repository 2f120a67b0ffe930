"""gov.kz links as sources of a real build: the fake API on loopback, a real store and feeds."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from feedsvc.config import GovkzConfig, SourceConfig

from govkz_fake import GovkzFake
from support import SEEDS, Site


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def govkz(server: GovkzFake, **overrides: object) -> GovkzConfig:
    settings = dict(base_url=server.base_url, delay=0.0, connect_timeout=1.0, read_timeout=1.0,
                    retries=2, backfill=10, page_size=5, failure_threshold=2,
                    rest_seconds=600.0)
    settings.update(overrides)
    return GovkzConfig(**settings)  # type: ignore[arg-type]


def link(slug: str = "mfa-brussels", lang: str | None = None) -> SourceConfig:
    url = f"https://www.gov.kz/memleket/entities/{slug}/press/news"
    return SourceConfig(url + (f"?lang={lang}" if lang else ""), "govkz")


def build(site: Site, server: GovkzFake, *sources: SourceConfig, **govkz_overrides: object):
    config = site.config().with_overrides(sources=sources,
                                          govkz=govkz(server, **govkz_overrides))
    from feedsvc.pipeline import make_pipeline

    pipeline = make_pipeline(config, clock=site.clock, sleep=site.clock.sleep)
    try:
        result = pipeline.refresh(), pipeline.health.snapshot()
        assert pipeline.writer.call(pipeline.store.integrity_problems) == []
        return result
    finally:
        pipeline.close()


def test_organisation_link_fills_its_feeds_in_its_language(site: Site,
                                                           govkz_server: GovkzFake) -> None:
    report, _ = build(site, govkz_server, link(lang="en"), link(lang="kk"))
    assert report.ok
    english = site.feed("org/mfa-brussels.atom")
    kazakh = site.feed("kk/org/mfa-brussels.atom")
    assert len(english.entries) == 10 and len(kazakh.entries) == 10
    assert len(site.feed("ministry/mfa.atom").entries) == 10
    assert all("жаңалық" in e.title for e in kazakh.entries)
    root = etree.parse(str(site.out / "kk" / "all.atom")).getroot()
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "kk"
    entry = english.entries[0]
    assert entry.link.startswith("https://www.gov.kz/memleket/entities/mfa-brussels/press/news/"
                                 "details/")
    assert entry.link.endswith("?lang=en")


def test_hero_picture_becomes_enclosure_and_leading_image(site: Site,
                                                          govkz_server: GovkzFake) -> None:
    build(site, govkz_server, link(lang="en"))
    with_image = [e for e in site.feed("org/mfa-brussels.atom").entries
                  if any(li.rel == "enclosure" for li in e.links)]
    assert with_image
    entry = with_image[0]
    enclosure = next(li for li in entry.links if li.rel == "enclosure")
    assert enclosure.href.startswith("https://www.gov.kz/uploads/")
    first_paragraph = entry.content[0].value.split("</p>")[0]
    assert first_paragraph.startswith("<p><img") and f'src="{enclosure.href}"' in first_paragraph


def test_poll_with_nothing_new_costs_two_requests_per_source_and_writes_nothing(
        site: Site, govkz_server: GovkzFake) -> None:
    build(site, govkz_server, link(lang="en"), link("mfa", lang="en"))
    before = site.snapshot()
    govkz_server.clear_log()
    report, _ = build(site, govkz_server, link(lang="en"), link("mfa", lang="en"))
    assert report.ok
    assert len(govkz_server.requests()) == 4
    assert report.publish.written == []
    assert site.snapshot() == before


def test_edited_item_keeps_its_id_and_moves_updated(site: Site, govkz_server: GovkzFake) -> None:
    build(site, govkz_server, link(lang="en"))
    first = site.feed("org/mfa-brussels.atom").entries[0]
    news_id = int(first.link.split("/details/")[1].split("?")[0])
    govkz_server.edit("mfa-brussels", "en", news_id, title="A corrected title")
    site.clock.advance(hours=1)
    build(site, govkz_server, link(lang="en"))
    entry = next(e for e in site.feed("org/mfa-brussels.atom").entries if e.id == first.id)
    assert entry.title == "A corrected title"
    assert entry.updated > first.updated


def test_dump_and_api_copies_of_one_story_are_one_entry(site: Site,
                                                        govkz_server: GovkzFake) -> None:
    newest = govkz_server.news("mfa-brussels", "en")[0]
    site.add("dump.txt", f"World\nAn English dump copy of the story 20.03.2026\n"
             "Body as the dump had it.Source : https://www.gov.kz/memleket/entities/"
             f"mfa-brussels/press/news/details/{newest['id']}?lang=en\n")
    report, _ = build(site, govkz_server, SourceConfig(str(site.src), "file"), link(lang="en"))
    assert report.ok
    entries = [e for e in site.feed("all.atom").entries if str(newest["id"]) in e.link]
    assert len(entries) == 1
    assert entries[0].title == newest["title"]  # the API's text wins
    assert "World" in {t.term for t in entries[0].tags}  # the dump's section stays


def test_dead_host_fails_that_source_only(site: Site, govkz_server: GovkzFake) -> None:
    site.copy_seeds()
    dead = replace(link(lang="en"))
    config_url = "http://127.0.0.1:9"  # discard port: nothing listens
    config = site.config().with_overrides(
        sources=(SourceConfig(str(site.src), "file"), dead),
        govkz=replace(govkz(govkz_server), base_url=config_url, retries=1))
    from feedsvc.pipeline import make_pipeline

    pipeline = make_pipeline(config, clock=site.clock)
    try:
        report = pipeline.refresh()
        health = pipeline.health.snapshot()
    finally:
        pipeline.close()
    assert [o.name for o in report.failed] == ["govkz:mfa-brussels:en"]
    assert "127.0.0.1:9" in report.failed[0].error
    assert len(site.feed("all.atom").entries) == 25
    assert health["status"] == "failing"
    assert health["sources"]["govkz:mfa-brussels:en"]["last_error"]


def test_repeated_failures_make_the_source_rest(site: Site, govkz_server: GovkzFake) -> None:
    govkz_server.fault("*", 500, times=None)
    for _ in range(2):
        report, _ = build(site, govkz_server, link(lang="en"))
        assert not report.ok
    govkz_server.clear_log()
    report, health = build(site, govkz_server, link(lang="en"))
    assert govkz_server.requests() == []  # resting: gov.kz is not asked
    assert report.sources[0].skipped
    assert health["sources"]["govkz:mfa-brussels:en"]["consecutive_failures"] == 2


def test_a_link_that_is_not_an_organisation_is_a_failed_source(site: Site,
                                                               govkz_server: GovkzFake) -> None:
    site.copy_seeds()
    bad = SourceConfig("https://example.org/memleket/entities/mfa", "govkz")
    report, _ = build(site, govkz_server, SourceConfig(str(site.src), "file"), bad)
    assert len(report.failed) == 1
    assert "not a gov.kz link" in report.failed[0].error
    assert len(site.feed("all.atom").entries) == 25


def test_registry_update_gives_feeds_the_real_names(site: Site) -> None:
    # Two bodies without curated names (curated names win over live ones: issue 14).
    with GovkzFake(orgs=["adilet-akm", "kgd-alm"], items=5) as server:
        env = {**os.environ, "FEEDSVC_GOVKZ_BASE_URL": server.base_url}
        result = subprocess.run(
            [sys.executable, "-m", "feedsvc.cli", "registry", "update", "--db", str(site.db),
             "--lang", "en", "--lang", "ru"], capture_output=True, text=True, timeout=60,
            env=env)
        assert result.returncode == 0, result.stderr
        # neither had a Russian name; both had (other) English names
        assert "2 organisations fetched; 2 slugs gained names" in result.stdout
        assert "2 names changed" in result.stdout
        build(site, server, link("kgd-alm", "en"))
    assert site.feed("org/kgd-alm.atom").feed.title.startswith("KGD-ALM (en) & co")


def test_cli_refuses_a_link_to_another_host_with_a_hint(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "feedsvc.cli", "build", "--source",
         "https://example.org/news", "--out", str(tmp_path / "out"), "--db",
         str(tmp_path / "db")], capture_output=True, text=True, timeout=60, cwd=SEEDS.parent)
    assert result.returncode == 2  # misuse: not a gov.kz organisation link
    assert "not a gov.kz link" in result.stderr
    assert "https://www.gov.kz/memleket/entities/" in result.stderr
