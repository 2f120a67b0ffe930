"""gov.kz answers are untrusted: a hostile (or broken) server on 127.0.0.1 must not get a URL of
its choosing published, send us elsewhere, hold a build past its deadline or fill the memory.

The servers are real: tests/govkz_fake.py (with hostile answers) and, for what werkzeug cannot do
(dripping a body byte by byte), the small socket server in tests/hostile_server.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_govkz import FakeContext, api_object, make_source
from test_govkz_pipeline import build, link

from feedsvc.sources.govkz import item_from_api, safe_url

from govkz_fake import GovkzFake
from support import Site


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


# --- URLs taken from answers ------------------------------------------------------------------

REFUSED_URLS = [
    "javascript:alert('hero')", " JaVaScRiPt:alert(1)", "java\tscript:alert(1)",
    "data:image/png;base64,AAAA", "vbscript:msgbox(1)", "file:///etc/passwd",
    "ftp://www.gov.kz/x.jpg", "http://127.0.0.1:9/internal-secret/", "https://evil.example/p.gif",
    "//evil.example/p.gif", "https://www.gov.kz.evil.example/p.gif", "https://evilgov.kz/p.gif",
    "https://evil.example\\@www.gov.kz/p.gif", "https://user@www.gov.kz/p.gif",
    "https://www.gov.kz:8443/p.gif", "http:p.gif", "https://[::1/p.gif",
]
KEPT_URLS = {
    "/uploads/photo.jpg": "https://www.gov.kz/uploads/photo.jpg",
    "uploads/photo.jpg": "https://www.gov.kz/uploads/photo.jpg",
    "https://www.gov.kz/uploads/a b.jpg": "https://www.gov.kz/uploads/a%20b.jpg",
    "//www.gov.kz/uploads/p.jpg": "https://www.gov.kz/uploads/p.jpg",
    "http://gov.kz/uploads/p.jpg": "http://gov.kz/uploads/p.jpg",
    "https://primeminister.gov.kz:443/ru/news": "https://primeminister.gov.kz:443/ru/news",
}


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_urls_not_http_on_gov_kz_are_refused(url: str) -> None:
    assert safe_url(url) is None and safe_url(url, link=True) is None


@pytest.mark.parametrize(("url", "expected"), KEPT_URLS.items())
def test_gov_kz_and_relative_urls_are_kept_absolute(url: str, expected: str) -> None:
    assert safe_url(url) == expected


def test_a_link_may_also_be_mail_phone_or_fragment_but_a_picture_may_not() -> None:
    for url in ("mailto:press@mfa.kz", "tel:+77172720000", "#section-2"):
        assert safe_url(url, link=True) == url
    assert safe_url("mailto:press@mfa.kz") is None and safe_url("tel:+77172720000") is None


def test_body_links_and_pictures_off_gov_kz_are_dropped_and_counted() -> None:
    # (nh3 itself drops a URL it cannot parse, like the bad IPv6 literal, before we could count)
    counted = [url for url in REFUSED_URLS if "[" not in url]
    body = "".join(f'<p><a href="{url}">link {n}</a><img src="{url}"></p>'
                   for n, url in enumerate(REFUSED_URLS))
    body += '<p><a href="/uploads/doc.pdf" title="t">doc</a><img src="/uploads/p.jpg"></p>'
    dropped: list[str] = []
    item = item_from_api(api_object(body=body, heropic="javascript:alert('hero')"),
                         slug="mfa", lang="en", dropped=dropped)
    assert item.image is None and item.html is not None
    assert item.html.count("href=") == 1 and item.html.count("src=") == 1
    assert 'href="https://www.gov.kz/uploads/doc.pdf"' in item.html
    assert 'src="https://www.gov.kz/uploads/p.jpg"' in item.html
    # every refused URL counted twice (link and picture), plus the hero picture
    assert len(dropped) == 2 * len(counted) + 1
    assert "link 0" in item.paragraphs[0]  # the link's text stays


def test_a_hostile_hero_picture_and_body_never_reach_the_feed(site: Site,
                                                             govkz_server: GovkzFake) -> None:
    hostile: dict[str, Any] = {
        "heropic": "javascript:alert('hero')",
        "body": '<p>Text <a href="http://127.0.0.1:9/internal-secret/">here</a>'
                '<img src="https://evil.example/track.gif"></p>'}
    govkz_server.put("mfa-brussels", "en", [api_object(id=1157092, **hostile),
                                            api_object(id=1157091, heropic="/uploads/ok.jpg")])
    report, _ = build(site, govkz_server, link(lang="en"))
    assert report.ok
    published = (site.out / "org" / "mfa-brussels.atom").read_text(encoding="utf-8")
    for banned in ("javascript", "127.0.0.1", "evil.example"):
        assert banned not in published
    entries = {entry.link.split("/details/")[1].split("?")[0]: entry
               for entry in site.feed("org/mfa-brussels.atom").entries}
    assert not [li for li in entries["1157092"].links if li.rel == "enclosure"]
    assert [li.href for li in entries["1157091"].links if li.rel == "enclosure"] == \
        ["https://www.gov.kz/uploads/ok.jpg"]
    warnings = report.sources[0].warnings
    assert len(warnings) == 1 and "left out 3 link(s) or picture(s)" in warnings[0]
    assert warnings[0].startswith(govkz_server.base_url + "/api/v1/public/content-manager/news")


def test_dropped_urls_are_counted_per_page_through_the_source(govkz_server: GovkzFake) -> None:
    govkz_server.put("mfa", "en", [api_object(id=1157092, heropic="data:image/gif;base64,AA")])
    result = make_source(govkz_server).read(FakeContext())
    assert [item.image for item in result.items] == [None]
    assert len(result.warnings) == 1 and "'data:image/gif;base64,AA'" in result.warnings[0]


