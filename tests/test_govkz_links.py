"""gov.kz links in text dumps and API answers are untrusted: impossible news ids and slugs are
reported and not taken, and the item that carried them is still published."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import feedparser
import pytest
from test_govkz import FakeContext, api_object, config, make_source

from feedsvc.errors import InvalidSourceURL
from feedsvc.links import MAX_SLUG_CHARS, parse_govkz_link, parse_govkz_url
from feedsvc.sources.govkz import GovkzClient, fetch_organisations

from govkz_fake import GovkzFake
from support import ROOT

ENTITIES = "https://www.gov.kz/memleket/entities"
HUGE_ID = "99999999999999999999"  # > 2**63: SQLite cannot store it
LONG_SLUG = "mfa-" + "x" * 296


def dump(title: str, link: str) -> str:
    return (f"Enbekshi QazaQ\nWorld\n{title} 14.02.2026\n"
            f"The ministry held a meeting on cooperation with partners in the region.\n"
            f"Source : {link}\n")


def run_build(tmp_path: Path, *files: tuple[str, str]) -> subprocess.CompletedProcess[str]:
    src = tmp_path / "src"
    src.mkdir()
    for name, text in files:
        (src / name).write_text(text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "feedsvc.cli", "build", "--source", str(src), "--out",
         str(tmp_path / "out"), "--db", str(tmp_path / "store.sqlite3")],
        capture_output=True, text=True, timeout=120, cwd=ROOT)


def titles(tmp_path: Path, feed: str = "all.atom") -> set[str]:
    parsed = feedparser.parse((tmp_path / "out" / feed).read_bytes())
    assert not parsed.bozo
    return {entry.title for entry in parsed.entries}


def test_a_news_id_too_large_for_the_store_is_reported_and_its_item_published(
        tmp_path: Path) -> None:
    result = run_build(
        tmp_path,
        ("a_good.txt", dump("GOOD NEWS", f"{ENTITIES}/mfa-brussels/press/news/details/"
                                         "1157092?lang=en")),
        ("b_bad.txt", dump("HUGE ID NEWS", f"{ENTITIES}/mfa/press/news/details/{HUGE_ID}"
                                           "?lang=en")))
    assert result.returncode == 0, result.stderr  # warnings do not fail a build
    assert titles(tmp_path) == {"GOOD NEWS", "HUGE ID NEWS"}
    assert f"b_bad.txt:3: news id {HUGE_ID} is too large" in result.stderr
    assert "warnings: 1;" in result.stderr
    # the organisation is still taken from the link: the item is filed under mfa
    assert "HUGE ID NEWS" in titles(tmp_path, "ministry/mfa.atom")


def test_an_impossible_slug_is_reported_and_its_item_published(tmp_path: Path) -> None:
    result = run_build(
        tmp_path,
        ("a_good.txt", dump("GOOD NEWS", f"{ENTITIES}/mfa-brussels/press/news/details/"
                                         "1157092?lang=en")),
        ("b_long.txt", dump("LONG SLUG NEWS", f"{ENTITIES}/{LONG_SLUG}/press/news/details/"
                                              "1157093?lang=en")))
    assert result.returncode == 0, result.stderr
    assert titles(tmp_path) == {"GOOD NEWS", "LONG SLUG NEWS"}
    assert "b_long.txt:3: organisation slug of 300 characters" in result.stderr
    assert not any(len(path.name) > 100 for path in (tmp_path / "out").rglob("*"))


@pytest.mark.parametrize("slug", [LONG_SLUG, "mfa_brussels", "mfa--x", "-mfa", "mfa%2F..",
                                  "мид"])
def test_links_with_slugs_gov_kz_cannot_have_are_not_organisations(slug: str) -> None:
    problems: list[str] = []
    assert parse_govkz_url(f"{ENTITIES}/{slug}/press/news/details/1157092", problems.append) \
        is None
    assert len(problems) == 1 and "slug" in problems[0]
    with pytest.raises(InvalidSourceURL, match=r"not a gov\.kz organisation"):
        parse_govkz_link(f"{ENTITIES}/{slug}")


def test_the_longest_known_slugs_are_accepted() -> None:
    registry = (ROOT / "feedsvc" / "data" / "organisations.tsv").read_text(encoding="utf-8")
    slugs = [line.split("\t", 1)[0] for line in registry.splitlines()[1:]]
    assert max(map(len, slugs)) < MAX_SLUG_CHARS
    problems: list[str] = []
    for slug in slugs:
        link = parse_govkz_url(f"{ENTITIES}/{slug}/press/news/details/1157092", problems.append)
        assert link is not None and link.slug == slug and link.news_id == 1157092
    assert problems == []


@pytest.mark.parametrize("news_id", [HUGE_ID, "0", "1" * 5000, "1000000000000"])
def test_impossible_news_ids_keep_the_organisation_but_not_the_id(news_id: str) -> None:
    problems: list[str] = []
    link = parse_govkz_url(f"{ENTITIES}/mfa/press/news/details/{news_id}?lang=ru",
                           problems.append)
    assert link is not None and (link.slug, link.news_id, link.lang) == ("mfa", None, "ru")
    assert len(problems) == 1 and "news id" in problems[0] and len(problems[0]) < 400
    with pytest.raises(InvalidSourceURL, match=r"not a gov\.kz news item"):
        parse_govkz_link(f"{ENTITIES}/mfa/press/news/details/{news_id}")


def test_the_largest_plausible_news_id_is_accepted() -> None:
    link = parse_govkz_url(f"{ENTITIES}/mfa/press/news/details/999999999999")
    assert link is not None and link.news_id == 999_999_999_999


# --- the same rules for what the API answers ----------------------------------------------------

def test_an_api_object_with_an_impossible_id_is_skipped_with_a_warning_naming_the_url(
        govkz_server: GovkzFake) -> None:
    govkz_server.put("mfa", "en", [api_object(id=1157094), api_object(id=int(HUGE_ID)),
                                   api_object(id=HUGE_ID), api_object(id=1157092)])
    result = make_source(govkz_server).read(FakeContext())
    assert [item.news_id for item in result.items] == [1157094, 1157092]
    assert len(result.warnings) == 2
    for warning in result.warnings:
        assert warning.startswith(govkz_server.base_url + "/api/v1/public/content-manager/news")
        assert "news id" in warning and "too large" in warning


def test_registry_rows_with_impossible_slugs_are_skipped(govkz_server: GovkzFake) -> None:
    rows = [{"id": 1, "project_name": "Good", "slug": "mfa", "parent_govorg": None},
            {"id": 2, "project_name": "Long", "slug": LONG_SLUG, "parent_govorg": {"id": 1}},
            {"id": 3, "project_name": "Path", "slug": "../../etc", "parent_govorg": None},
            {"id": 4, "project_name": "Child", "slug": "mfa-x", "parent_govorg": {"id": 2}}]
    govkz_server.fault("graphql", 200, {"data": {"projectdetails": rows}})
    records = fetch_organisations(GovkzClient(config(govkz_server)), "en")
    assert [(r.slug, r.parent) for r in records] == [("mfa", None), ("mfa-x", None)]
