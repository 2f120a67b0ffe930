"""gov.kz answers are untrusted: a hostile (or broken) server on 127.0.0.1 must not get a URL of
its choosing published, send us elsewhere, hold a build past its deadline or fill the memory.

The servers are real: tests/govkz_fake.py (with hostile answers) and, for what werkzeug cannot do
(dripping a body byte by byte), the small socket server in tests/hostile_server.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hostile_server import HostileServer, free_port
from test_govkz import FakeContext, Sleeps, api_object, make_source
from test_govkz_pipeline import build, link

from feedsvc.config import GovkzConfig
from feedsvc.errors import FetchError
from feedsvc.http import json_values_at_most
from feedsvc.sources.govkz import (
    GovkzClient,
    GovkzSource,
    item_from_api,
    safe_url,
    sources_for_link,
)

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




# --- redirects --------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["ticket", "news", "graphql"])
def test_a_redirect_to_another_host_is_not_followed(site: Site, govkz_server: GovkzFake,
                                                     target: str) -> None:
    with GovkzFake(orgs=["mfa-brussels"], items=3) as elsewhere:
        secret = f"{elsewhere.base_url}/internal-secret/"
        govkz_server.fault(target, 302, "", headers={"Location": secret}, times=None)
        if target == "graphql":
            govkz_server.rest_status = 405  # so the read goes on through GraphQL
        report, _ = build(site, govkz_server, link(lang="en"), retries=3)
        assert elsewhere.requests() == []  # never asked
    assert not report.ok
    message = report.failed[0].error
    assert message.startswith("https://www.gov.kz/memleket/entities/mfa-brussels/press/news"
                              "?lang=en (en): ")
    assert f"redirected to {secret}, which is not followed" in message
    assert "another host" in message
    assert len(govkz_server.requests(target)) == 1  # not retried either
    assert not (site.out / "org" / "mfa-brussels.atom").exists()


def test_a_redirect_to_the_same_host_is_not_followed_either(govkz_server: GovkzFake) -> None:
    govkz_server.fault("news", 301, "", headers={"Location": "/api/v1/public/elsewhere"})
    with pytest.raises(FetchError, match=r"redirected to /api/v1/public/elsewhere, which is not "
                                         r"followed .*the same host"):
        make_source(govkz_server).read(FakeContext())
    assert [r.path for r in govkz_server.requests()][-1].endswith("/content-manager/news")


# --- the deadline -----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["drip-length", "drip-chunked", "drip-headers"])
def test_a_dripping_answer_fails_at_the_deadline(mode: str) -> None:
    # deadline = connect + 2 x read = 2 s; a byte every 0.1 s never trips the read timeout
    with HostileServer(mode, interval=0.1, give_up=20) as server:
        settings = GovkzConfig(base_url=server.base_url, delay=0, retries=3,
                               connect_timeout=0.5, read_timeout=0.75)
        source = GovkzSource("mfa", "en", GovkzClient(settings, sleep=Sleeps()), 10, 10)
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            source.read(FakeContext())
        elapsed = time.monotonic() - started
        assert len(server.requests) == 1  # a missed deadline is not retried
    assert elapsed < 2.0 + 3.0, f"took {elapsed:.1f} s with a 2 s deadline"
    message = str(caught.value)
    assert message.startswith("https://www.gov.kz/memleket/entities/mfa (en): 127.0.0.1:")
    assert "did not finish answering within the 2 s deadline" in message
    assert "(POST .../_/c/k6, " in message


# --- memory -----------------------------------------------------------------------------------

def test_an_answer_of_millions_of_tiny_objects_is_refused_undecoded(
        govkz_server: GovkzFake) -> None:
    body = b"[" + b",".join([b"{}"] * 3_000_000) + b"]"  # 9 MB: inside the 10 MB cap
    govkz_server.fault("news", 200, body, times=None)
    with pytest.raises(FetchError, match=r"answer is too big to decode \(GET .*up to "
                                         r"12,000,001 JSON values, the limit is 250,000"):
        make_source(govkz_server).read(FakeContext())
    assert len(govkz_server.requests("news")) == 1  # not retried


def test_a_page_with_far_more_objects_than_asked_for_is_refused(govkz_server: GovkzFake) -> None:
    govkz_server.put("mfa", "en", [api_object(id=1_000_000 + n) for n in range(150)])
    govkz_server.fault("news", 200, [{"id": 1}] * 1000)
    with pytest.raises(FetchError, match=r"answered 1,000 news objects at once .*more than the "
                                         r"100 accepted"):
        make_source(govkz_server).read(FakeContext())  # pages of 10
    # a full page of the size asked for is fine
    assert len(make_source(govkz_server, page_size=100, backfill=100)
               .read(FakeContext()).items) == 100


def test_json_values_at_most_is_an_upper_bound() -> None:
    samples: list[Any] = [[], {}, [{}] * 5, [[]] * 5, {"a": 1, "b": [1, 2, {"c": None}]},
                          [{"id": 1, "title": "a, b, {c} [d]", "x": "\\\" ,"}] * 3, "s", 1]
    for sample in samples:
        text = json.dumps(sample).encode()
        assert json_values_at_most(text) >= count_values(sample)


def count_values(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(1 + count_values(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(count_values(v) for v in value)
    return 1


# --- errors lead with the source and a plain reason ---------------------------------------------

def dead_source(base_url: str, link_text: str) -> GovkzSource:
    settings = GovkzConfig(base_url=base_url, delay=0, retries=2, connect_timeout=2.0)
    return sources_for_link(link_text, ("en",), GovkzClient(settings, sleep=Sleeps()),
                            settings)[0]


def test_an_unresolvable_host_is_said_plainly() -> None:
    source = dead_source("http://feedsvc-test.invalid",
                         "https://www.gov.kz/memleket/entities/mfa-brussels")
    with pytest.raises(FetchError) as caught:
        source.read(FakeContext())
    assert str(caught.value) == (
        "https://www.gov.kz/memleket/entities/mfa-brussels (en): cannot reach "
        "feedsvc-test.invalid: the name does not resolve (POST .../_/c/k6, gave up after 2 "
        "attempts)")


def test_a_refused_connection_is_said_plainly() -> None:
    port = free_port()
    source = dead_source(f"http://127.0.0.1:{port}", "gov.kz/memleket/entities/mfa-brussels/")
    with pytest.raises(FetchError) as caught:
        source.read(FakeContext())
    assert str(caught.value) == (
        f"gov.kz/memleket/entities/mfa-brussels/ (en): cannot reach 127.0.0.1:{port}: the "
        "connection was refused (POST .../_/c/k6, gave up after 2 attempts)")


def test_a_tls_failure_is_said_plainly(govkz_server: GovkzFake) -> None:
    host = govkz_server.base_url.removeprefix("http://")  # speaks plain HTTP, not TLS
    source = dead_source(f"https://{host}", "https://www.gov.kz/memleket/entities/mfa")
    with pytest.raises(FetchError) as caught:
        source.read(FakeContext())
    assert str(caught.value).startswith(f"https://www.gov.kz/memleket/entities/mfa (en): cannot "
                                        f"talk securely to {host}: TLS error (POST .../_/c/k6, ")
    assert len(govkz_server.requests()) == 0  # the handshake failed: nothing was asked


@pytest.mark.parametrize(("fault", "problem"), [
    ({"status": 500, "body": "oops", "times": None}, "answered HTTP 500: a server error"),
    ({"status": 403, "body": "Forbidden"}, "answered HTTP 403"),
    ({"status": 200, "body": "<html>proxy</html>", "times": None},
     "answered something that is not JSON"),
    ({"status": 200, "body": {"items": []}}, "answered in an unexpected format"),
    ({"status": None, "hang": 3.0, "times": None}, "did not answer within the 0.5 s read timeout"),
])
def test_each_failure_leads_with_a_plain_reason(govkz_server: GovkzFake, fault: dict[str, Any],
                                                problem: str) -> None:
    govkz_server.fault("news", **fault)
    with pytest.raises(FetchError) as caught:
        make_source(govkz_server, retries=2, read_timeout=0.5).read(FakeContext())
    host = govkz_server.base_url.removeprefix("http://")
    assert str(caught.value).startswith(f"https://www.gov.kz/memleket/entities/mfa (en): {host} "
                                        f"{problem}")
    assert "(GET .../content-manager/news page 1" in str(caught.value)


def test_the_build_prints_the_source_first(tmp_path: Path) -> None:
    config_file = tmp_path / "feedsvc.toml"
    config_file.write_text('[govkz]\nbase_url = "http://feedsvc-test.invalid"\nretries = 1\n',
                           encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "feedsvc.cli", "build", "--config", str(config_file), "--source",
         "https://www.gov.kz/memleket/entities/mfa-brussels", "--lang", "en", "--out",
         str(tmp_path / "out"), "--db", str(tmp_path / "store.sqlite3")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 1
    assert ("error: https://www.gov.kz/memleket/entities/mfa-brussels (en): cannot reach "
            "feedsvc-test.invalid: the name does not resolve (POST .../_/c/k6, gave up after 1 "
            "attempt)\n") in result.stderr


def test_commas_inside_texts_do_not_count_as_values(govkz_server: GovkzFake) -> None:
    # 300,000 commas in one body: far over the budget if strings were not set apart
    govkz_server.put("mfa", "en", [api_object(body="<p>" + "a, " * 300_000 + "</p>")])
    items = make_source(govkz_server).read(FakeContext()).items
    assert len(items) == 1 and items[0].paragraphs[0].startswith("a, a, a")
