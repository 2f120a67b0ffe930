"""The gov.kz live source against a real loopback server (tests/govkz_fake.py).

Nothing here patches requests: every network behaviour goes through 127.0.0.1. Sleeps are
injected (recorded, not slept); the one real wait is a 0.3 s read timeout.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from feedsvc.config import GovkzConfig
from feedsvc.errors import FetchError, InvalidSourceURL
from feedsvc.http import HttpSettings, PoliteClient, default_user_agent, parse_retry_after
from feedsvc.links import GovkzLink, parse_govkz_link
from feedsvc.model import ALMATY, AUTHORITY_GOVKZ_API, Item
from feedsvc.sources.govkz import (
    GovkzClient,
    GovkzSource,
    ReadStats,
    breaker_after_failure,
    breaker_allows,
    fetch_organisations,
    item_from_api,
    sources_for_link,
)

from govkz_fake import GovkzFake

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=ALMATY)


# --- helpers ----------------------------------------------------------------------------------

class FakeContext:
    """What the pipeline hands a source: saved state, and what the store already holds."""

    def __init__(self, state: dict[str, Any] | None = None, known: Iterable[Item] = (),
                 now: datetime = NOW) -> None:
        self.now = now
        self.state = state
        self.known = {(item.news_key, item.content_hash()) for item in known}

    def previous_state(self) -> dict[str, Any] | None:
        return self.state

    def is_known(self, item: Item) -> bool:
        return (item.news_key, item.content_hash()) in self.known

    def after(self, result: Any) -> FakeContext:
        """The context of the next read: this read's state saved, its items stored."""
        following = FakeContext(result.state, now=self.now)
        following.known = self.known | {(i.news_key, i.content_hash()) for i in result.items}
        return following


@dataclass
class Sleeps:
    """An injected sleep: records what it was asked, waits for nothing."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def config(server: GovkzFake, **overrides: Any) -> GovkzConfig:
    values: dict[str, Any] = {"base_url": server.base_url, "delay": 0.0, "retries": 3,
                              "connect_timeout": 2.0, "read_timeout": 2.0, "backfill": 100,
                              "page_size": 10}
    values.update(overrides)
    return GovkzConfig(**values)


def make_source(server: GovkzFake, slug: str = "mfa", lang: str = "en",
                sleeps: Sleeps | None = None, **overrides: Any) -> GovkzSource:
    settings = config(server, **overrides)
    client = GovkzClient(settings, sleep=sleeps if sleeps is not None else Sleeps())
    return GovkzSource(slug, lang, client, settings.backfill, settings.page_size)


def kinds(server: GovkzFake) -> list[str]:
    return [request.kind for request in server.requests()]


def news_ids(items: Iterable[Item]) -> list[int]:
    return [item.news_id for item in items if item.news_id is not None]


def api_object(**fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": 1157092, "title": "Title", "created_date": "2026-02-14T10:30:00",
                           "body": "<p>Body.</p>", "short_description": None, "heropic": None,
                           "projects": "mfa", "directions": []}
    obj.update(fields)
    return obj


# --- the ticket and the listing -------------------------------------------------------------------

def test_listing_without_a_ticket_is_refused_with_not_allowed(govkz_server: GovkzFake) -> None:
    client = PoliteClient(HttpSettings(delay=0))
    response = client.request("GET", govkz_server.base_url + "/api/v1/public/content-manager/"
                              "news?projects=eq:mfa&page=1&size=5")
    assert response.status == 400
    assert response.json() == {"message": "notAllowed"}


def test_a_read_takes_a_ticket_then_lists_in_the_same_cookie_session(
        govkz_server: GovkzFake) -> None:
    make_source(govkz_server, backfill=5).read(FakeContext())
    ticket, listing = govkz_server.requests()
    assert (ticket.method, ticket.kind, ticket.body) == ("POST", "ticket", b"")
    assert ticket.headers["content-type"] == "application/json"
    assert ticket.headers["origin"] == "https://www.gov.kz"
    assert (listing.method, listing.kind) == ("GET", "news")
    assert "gov_ticket=" in listing.headers["cookie"]
    assert listing.headers["accept-language"] == "en"
    assert listing.query == {"projects": "eq:mfa", "sort-by": "created_date:DESC", "page": "1",
                             "size": "5"}


def test_every_request_carries_an_honest_user_agent(govkz_server: GovkzFake) -> None:
    make_source(govkz_server, backfill=5).read(FakeContext())
    agents = {request.headers["user-agent"] for request in govkz_server.requests()}
    assert agents == {default_user_agent()}
    assert default_user_agent().startswith("feedsvc/")
    assert "(+https://github.com/feedsvc/feedsvc)" in default_user_agent()


def test_an_expired_ticket_is_renewed_once(govkz_server: GovkzFake) -> None:
    govkz_server.fault("news", 400, {"message": "notAllowed"})
    result = make_source(govkz_server, backfill=5).read(FakeContext())
    assert len(result.items) == 5
    assert kinds(govkz_server) == ["ticket", "news", "ticket", "news"]
    assert result.stats == {"requests": 4, "pages": 1, "graphql": False}


@pytest.mark.parametrize("shape", ["list", "page"])
def test_both_response_shapes_give_the_same_items(shape: str) -> None:
    with GovkzFake(orgs=["mfa"], items=12, shape=shape) as server:
        result = make_source(server).read(FakeContext())
    assert news_ids(result.items) == sorted(news_ids(result.items), reverse=True)
    assert len(result.items) == 12


def test_first_read_pages_to_the_end(govkz_server: GovkzFake) -> None:
    result = make_source(govkz_server, page_size=10).read(FakeContext())
    assert len(result.items) == 25
    assert news_ids(result.items) == sorted(news_ids(result.items), reverse=True)
    assert [r.query["page"] for r in govkz_server.requests("news")] == ["1", "2", "3"]
    assert result.stats == {"requests": 4, "pages": 3, "graphql": False}
    assert result.state is not None and result.state["backfilled"] is True
    assert result.state["newest_id"] == result.items[0].news_id


def test_first_read_stops_at_the_backfill_limit(govkz_server: GovkzFake) -> None:
    result = make_source(govkz_server, backfill=12, page_size=10).read(FakeContext())
    assert len(result.items) == 12
    assert len(govkz_server.requests("news")) == 2


def test_an_exactly_full_last_page_is_followed_by_an_empty_one() -> None:
    with GovkzFake(orgs=["mfa"], items=20) as server:
        result = make_source(server, page_size=10).read(FakeContext())
        assert len(result.items) == 20
        assert [r.query["page"] for r in server.requests("news")] == ["1", "2", "3"]


def test_a_quiet_poll_costs_one_ticket_and_one_listing(govkz_server: GovkzFake) -> None:
    source = make_source(govkz_server)
    first = FakeContext()
    result = source.read(first)
    govkz_server.clear_log()
    again = source.read(first.after(result))
    assert kinds(govkz_server) == ["ticket", "news"]
    assert again.items == [] and again.unchanged
    assert again.stats == {"requests": 2, "pages": 1, "graphql": False}


def test_a_poll_returns_only_new_items_and_stops_at_a_known_page(
        govkz_server: GovkzFake) -> None:
    source = make_source(govkz_server)
    first = FakeContext()
    result = source.read(first)
    fresh = [govkz_server.publish("mfa", "en")["id"] for _ in range(3)]
    govkz_server.clear_log()
    again = source.read(first.after(result))
    assert news_ids(again.items) == sorted(fresh, reverse=True)
    assert kinds(govkz_server) == ["ticket", "news", "news"]  # page 2 is all known: stop
    assert again.state is not None and again.state["newest_id"] == max(fresh)
    assert not again.unchanged


def test_an_edited_item_is_returned_by_the_next_poll(govkz_server: GovkzFake) -> None:
    source = make_source(govkz_server)
    first = FakeContext()
    result = source.read(first)
    edited = result.items[3].news_id
    assert edited is not None
    govkz_server.edit("mfa", "en", edited, title="Corrected title")
    again = source.read(first.after(result))
    assert [(item.news_id, item.title) for item in again.items] == [(edited, "Corrected title")]


def test_a_read_after_a_failure_only_state_still_backfills(govkz_server: GovkzFake) -> None:
    state = breaker_after_failure(None, NOW, config(govkz_server))
    result = make_source(govkz_server, backfill=15).read(FakeContext(state=state))
    assert len(result.items) == 15
    assert result.state is not None and "failures" not in result.state


# --- items ------------------------------------------------------------------------------------

def test_an_item_has_its_identity_link_and_authority() -> None:
    item = item_from_api(api_object(id="1157092", title="  A &quot;quoted&quot;\n title "),
                         slug="mfa-brussels", lang="kk", origin="http://x/list")
    assert (item.news_id, item.lang, item.url_lang, item.org) == (1157092, "kk", "kk",
                                                                  "mfa-brussels")
    assert item.url == ("https://www.gov.kz/memleket/entities/mfa-brussels/press/news/details/"
                        "1157092")
    assert item.title == 'A "quoted" title'
    assert item.authority == AUTHORITY_GOVKZ_API
    assert str(item.origin) == "http://x/list"


@pytest.mark.parametrize("raw_id", [1157092, "1157092", " 1157092 ", 1157092.0])
def test_ids_may_be_numbers_or_strings(raw_id: Any) -> None:
    assert item_from_api(api_object(id=raw_id), slug="mfa", lang="ru").news_id == 1157092


@pytest.mark.parametrize("raw_id", [None, "", "abc", True, -5, [1]])
def test_an_object_without_a_usable_id_is_refused(raw_id: Any) -> None:
    with pytest.raises(ValueError, match="news id"):
        item_from_api(api_object(id=raw_id), slug="mfa", lang="ru")


@pytest.mark.parametrize("raw, expected", [
    ("2026-02-14T10:30:00", datetime(2026, 2, 14, 10, 30, tzinfo=ALMATY)),
    ("2026-02-14T10:30:00Z", datetime(2026, 2, 14, 10, 30, tzinfo=UTC)),
    ("2026-02-14T10:30:00.123Z", datetime(2026, 2, 14, 10, 30, 0, 123000, tzinfo=UTC)),
    ("2026-02-14T10:30:00.123", datetime(2026, 2, 14, 10, 30, 0, 123000, tzinfo=ALMATY)),
    ("2026-02-14T10:30:00+05:00", datetime(2026, 2, 14, 10, 30,
                                           tzinfo=timezone(timedelta(hours=5)))),
    ("2019-05-01T00:00:00", datetime(2019, 5, 1, tzinfo=ALMATY)),
    (1771045800000, datetime(2026, 2, 14, 5, 10, tzinfo=UTC)),
])
def test_created_dates_in_every_observed_form(raw: Any, expected: datetime) -> None:
    item = item_from_api(api_object(created_date=raw), slug="mfa", lang="en")
    assert item.published == expected
    assert item.published is not None and item.published.tzinfo is not None
    assert item.raw_date == str(raw)


def test_an_unreadable_date_keeps_the_item_undated() -> None:
    item = item_from_api(api_object(created_date="yesterday"), slug="mfa", lang="en")
    assert (item.published, item.raw_date) == (None, "yesterday")


def test_the_body_becomes_sanitised_html_and_paragraphs() -> None:
    body = ('<p style="color:red" onclick="steal()">First &amp; <b>bold</b></p>'
            '<script>alert(1)</script><style>p{}</style>'
            '<iframe src="https://evil.example/"></iframe>'
            '<p><a href="javascript:alert(1)">bad</a> <a href="/uploads/doc.pdf">doc</a>'
            '<img src="/uploads/photo.jpg" onerror="x()"></p>'
            'Line one<br>line two<br><br>Third')
    item = item_from_api(api_object(body=body), slug="mfa", lang="en")
    assert item.html is not None
    for banned in ("script", "alert", "<style", "iframe", "onclick", "onerror", "style=",
                   "javascript:", "evil.example"):
        assert banned not in item.html
    assert 'href="https://www.gov.kz/uploads/doc.pdf"' in item.html
    assert 'src="https://www.gov.kz/uploads/photo.jpg"' in item.html
    assert item.paragraphs == ("First & bold", "bad doc", "Line one line two", "Third")


def test_a_null_body_falls_back_to_the_short_description() -> None:
    item = item_from_api(api_object(body=None, short_description="Short &amp; sweet <3"),
                         slug="mfa", lang="en")
    assert item.paragraphs == ("Short & sweet <3",)
    assert item.html == "<p>Short &amp; sweet &lt;3</p>"


def test_no_body_and_no_description_leaves_the_title_alone() -> None:
    item = item_from_api(api_object(body=None, short_description=None), slug="mfa", lang="en")
    assert (item.title, item.paragraphs, item.html) == ("Title", (), None)


def test_control_characters_and_lone_surrogates_are_dropped() -> None:
    item = item_from_api(api_object(title="A\x01B\ud800", body="<p>x&#1;y\x00</p>"),
                         slug="mfa", lang="en")
    assert (item.title, item.paragraphs, item.html) == ("AB", ("xy",), "<p>xy</p>")


def test_a_body_that_sanitises_to_nothing_falls_back_too() -> None:
    item = item_from_api(api_object(body="<script>x()</script>", short_description="Gist"),
                         slug="mfa", lang="en")
    assert item.paragraphs == ("Gist",)


@pytest.mark.parametrize("heropic, expected", [
    ("/uploads/2026/2/14/a.jpg", "https://www.gov.kz/uploads/2026/2/14/a.jpg"),
    ("https://www.gov.kz/uploads/b.jpg", "https://www.gov.kz/uploads/b.jpg"),
    ("uploads/c d.jpg", "https://www.gov.kz/uploads/c%20d.jpg"),
    (None, None),
    ("", None),
])
def test_heropic_becomes_an_absolute_image(heropic: Any, expected: str | None) -> None:
    assert item_from_api(api_object(heropic=heropic), slug="mfa", lang="en").image == expected


def test_directions_become_categories() -> None:
    directions = [{"id": 1, "title": "Economy"}, {"id": 2, "title": " Foreign &amp; policy "},
                  {"id": 3, "title": None}, "junk", {"id": 1, "title": "Economy"}]
    item = item_from_api(api_object(directions=directions), slug="mfa", lang="en")
    assert item.categories == ("Economy", "Foreign & policy")


@pytest.mark.parametrize("projects", ["mfa", ["mfa", "mfa-brussels"], None])
def test_the_item_belongs_to_the_followed_organisation(projects: Any) -> None:
    assert item_from_api(api_object(projects=projects), slug="mfa-brussels",
                         lang="en").org == "mfa-brussels"


def test_edge_objects_arrive_through_the_server_intact(govkz_server: GovkzFake) -> None:
    govkz_server.put("mfa", "ru", [
        api_object(id="1157093", title="Str id", body=None, short_description="Desc"),
        api_object(id=1157092, body=None, heropic="/uploads/x.png",
                   directions=[{"id": 9, "title": "Экономика"}]),
        {"title": "no id at all"},
    ])
    result = make_source(govkz_server, lang="ru").read(FakeContext())
    assert news_ids(result.items) == [1157093, 1157092]
    assert result.items[0].paragraphs == ("Desc",)
    assert result.items[1].image == "https://www.gov.kz/uploads/x.png"
    assert result.items[1].categories == ("Экономика",)
    assert len(result.warnings) == 1 and "news id" in result.warnings[0]


# --- failures and manners ---------------------------------------------------------------------

def test_429_waits_as_long_as_retry_after_says(govkz_server: GovkzFake) -> None:
    govkz_server.fault("news", 429, {"message": "slow down"}, headers={"Retry-After": "7"})
    sleeps = Sleeps()
    result = make_source(govkz_server, sleeps=sleeps, backfill=5).read(FakeContext())
    assert sleeps.calls == [7.0]
    assert len(result.items) == 5


def test_503_with_an_http_date_retry_after_is_honoured(govkz_server: GovkzFake) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    govkz_server.fault("news", 503, "busy", headers={"Retry-After": when})
    sleeps = Sleeps()
    make_source(govkz_server, sleeps=sleeps, backfill=5).read(FakeContext())
    assert len(sleeps.calls) == 1 and 50 <= sleeps.calls[0] <= 60


def test_a_retry_after_beyond_the_cap_fails_instead_of_sleeping(
        govkz_server: GovkzFake) -> None:
    govkz_server.fault("news", 429, "later", headers={"Retry-After": "86400"})
    sleeps = Sleeps()
    with pytest.raises(FetchError, match="asked to wait 86400 s") as caught:
        make_source(govkz_server, sleeps=sleeps, backfill=5).read(FakeContext())
    assert caught.value.status == 429 and sleeps.calls == []


def test_parse_retry_after_reads_seconds_and_dates() -> None:
    now = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Fri, 20 Mar 2026 12:02:00 GMT", now) == 120.0
    assert parse_retry_after("Fri, 20 Mar 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None


def test_a_500_then_success_is_retried_with_backoff(govkz_server: GovkzFake) -> None:
    govkz_server.fault("news", 500, "<html>Internal error</html>")
    sleeps = Sleeps()
    result = make_source(govkz_server, sleeps=sleeps, backfill=5).read(FakeContext())
    assert len(result.items) == 5
    assert kinds(govkz_server) == ["ticket", "news", "news"]
    assert len(sleeps.calls) == 1 and 0 < sleeps.calls[0] <= 2.0  # 1 s plus up to 1 s jitter
    assert result.stats["requests"] == 3


def test_a_500_storm_fails_with_the_status_after_all_attempts(govkz_server: GovkzFake) -> None:
    govkz_server.fault("news", 500, "<html>Internal error</html>", times=None)
    sleeps = Sleeps()
    with pytest.raises(FetchError) as caught:
        make_source(govkz_server, sleeps=sleeps, retries=3).read(FakeContext())
    error = caught.value
    assert error.status == 500 and "/content-manager/news?projects=eq:mfa" in error.url
    assert "gave up after 3 attempts" in str(error) and "Internal error" in str(error)
    assert str(error).startswith("https://www.gov.kz/memleket/entities/mfa (en): "
                                 f"{govkz_server.base_url.split('//')[1]} answered HTTP 500: "
                                 "a server error (GET .../content-manager/news page 1, ")
    assert len(govkz_server.requests("news")) == 3 and len(sleeps.calls) == 2
    assert sleeps.calls[1] >= 2.0  # exponential: 1 s, then 2 s (plus jitter)


def test_a_hang_past_the_read_timeout_is_retried_then_fails(govkz_server: GovkzFake) -> None:
    govkz_server.fault("news", None, hang=3.0, times=None)
    with pytest.raises(FetchError, match="timed out") as caught:
        make_source(govkz_server, read_timeout=0.3, retries=2).read(FakeContext())
    assert caught.value.status is None
    assert len(govkz_server.requests("news")) == 2


def test_a_non_json_200_is_retried_then_named_in_the_error(govkz_server: GovkzFake) -> None:
    govkz_server.fault("news", 200, "<html><body>Proxy says hello</body></html>", times=None)
    with pytest.raises(FetchError) as caught:
        make_source(govkz_server, retries=2).read(FakeContext())
    message = str(caught.value)
    assert "expected JSON" in message and "Proxy says hello" in message
    assert caught.value.status == 200 and len(govkz_server.requests("news")) == 2


def test_a_single_non_json_answer_is_survived(govkz_server: GovkzFake) -> None:
    govkz_server.fault("news", 200, "<html>oops</html>")
    assert len(make_source(govkz_server, backfill=5).read(FakeContext()).items) == 5


def test_a_changed_response_shape_is_a_clear_fetch_error(govkz_server: GovkzFake) -> None:
    govkz_server.fault("news", 200, {"items": [{"id": 1}], "total": 1})
    with pytest.raises(FetchError, match=r'expected a JSON list of news objects or \{"content"'
                                         r'.*got .*"items"') as caught:
        make_source(govkz_server).read(FakeContext())
    assert "projects=eq:mfa" in caught.value.url


def test_a_page_of_unusable_objects_is_a_fetch_error(govkz_server: GovkzFake) -> None:
    govkz_server.put("mfa", "en", [{"headline": "x"}, {"headline": "y"}])
    with pytest.raises(FetchError, match="no usable news object"):
        make_source(govkz_server).read(FakeContext())


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversize_answer_is_refused(govkz_server: GovkzFake, chunked: bool) -> None:
    govkz_server.fault("news", 200, [api_object(body="x" * 5000)], chunked=chunked)
    with pytest.raises(FetchError, match="too large"):
        make_source(govkz_server, max_response_bytes=2000).read(FakeContext())
    assert len(govkz_server.requests("news")) == 1  # not worth retrying


def test_a_dead_host_is_a_fetch_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = GovkzConfig(base_url=f"http://127.0.0.1:{port}", delay=0, retries=2)
    sleeps = Sleeps()
    source = GovkzSource("mfa", "en", GovkzClient(settings, sleep=sleeps), 10, 10)
    with pytest.raises(FetchError, match=r"connection was refused.*gave up after 2 attempts"):
        source.read(FakeContext())
    assert len(sleeps.calls) == 1


def test_requests_to_one_host_keep_the_minimum_delay(govkz_server: GovkzFake) -> None:
    clock = {"t": 100.0}

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock["t"] += seconds

    sleeps: list[float] = []
    settings = HttpSettings(delay=1.5)
    client = PoliteClient(settings, sleep=sleep, clock=lambda: clock["t"])
    for _ in range(3):
        client.request("GET", govkz_server.base_url + "/other")
    assert sleeps == [1.5, 1.5]


# --- GraphQL ------------------------------------------------------------------------------------

def test_rest_405_falls_back_to_graphql(govkz_server: GovkzFake) -> None:
    govkz_server.rest_status = 405
    source = make_source(govkz_server, page_size=10)
    result = source.read(FakeContext())
    assert len(result.items) == 25 and result.stats["graphql"] is True
    assert kinds(govkz_server) == ["ticket", "news", "graphql", "graphql", "graphql"]
    graphql = govkz_server.requests("graphql")[0]
    assert 'news(projects: "eq:mfa", _size: 10, _page: 1, _sort: "created_date:DESC", ' \
           '_lang: "en")' in json.loads(graphql.body)["query"]
    assert graphql.headers["accept-language"] == "en"
    assert result.state is not None and "graphql_until" in result.state


def test_graphql_items_equal_rest_items(govkz_server: GovkzFake) -> None:
    rest = make_source(govkz_server).read(FakeContext())
    govkz_server.rest_status = 405
    graphql = make_source(govkz_server).read(FakeContext())
    assert [i.content_hash() for i in rest.items] == [i.content_hash() for i in graphql.items]


def test_a_second_400_after_a_fresh_ticket_falls_back_to_graphql(
        govkz_server: GovkzFake) -> None:
    govkz_server.fault("news", 400, {"message": "notAllowed"}, times=None)
    result = make_source(govkz_server, backfill=5).read(FakeContext())
    assert len(result.items) == 5 and result.stats["graphql"] is True
    assert kinds(govkz_server) == ["ticket", "news", "ticket", "news", "graphql"]


def test_after_a_fallback_the_source_stays_on_graphql_for_a_while(
        govkz_server: GovkzFake) -> None:
    govkz_server.rest_status = 405
    source = make_source(govkz_server)
    first = FakeContext()
    result = source.read(first)
    govkz_server.clear_log()
    again = source.read(first.after(result))
    assert kinds(govkz_server) == ["graphql"] and again.unchanged
    assert again.state == result.state
    later = FakeContext(result.state, now=NOW + timedelta(hours=7))
    govkz_server.rest_status = None
    govkz_server.clear_log()
    back = source.read(later)
    assert kinds(govkz_server)[:2] == ["ticket", "news"]
    assert back.state is not None and "graphql_until" not in back.state


def test_graphql_errors_are_failures_not_empty_results(govkz_server: GovkzFake) -> None:
    govkz_server.rest_status = 405
    govkz_server.fault("graphql", 200, {"errors": [{"message": "Internal server error"}],
                                        "data": None})
    with pytest.raises(FetchError, match="GraphQL errors: Internal server error"):
        make_source(govkz_server).read(FakeContext())


def test_a_graphql_answer_without_data_is_a_failure(govkz_server: GovkzFake) -> None:
    govkz_server.rest_status = 405
    govkz_server.fault("graphql", 200, {"data": None})
    with pytest.raises(FetchError, match="without data"):
        make_source(govkz_server).read(FakeContext())


def test_the_registry_comes_from_projectdetails(govkz_server: GovkzFake) -> None:
    client = GovkzClient(config(govkz_server))
    records = fetch_organisations(client, "ru")
    assert [(r.slug, r.name, r.lang, r.kind, r.parent) for r in records] == [
        ("mfa", "MFA (ru) & co", "ru", "Ministry", None),
        ("mfa-brussels", "MFA-BRUSSELS (ru) & co", "ru", "Embassy", "mfa"),
    ]
    request = govkz_server.requests("graphql")[0]
    assert "projectdetails(_size:" in request.body.decode()
    assert request.headers["accept-language"] == "ru"


def test_a_registry_error_is_a_fetch_error(govkz_server: GovkzFake) -> None:
    govkz_server.fault("graphql", 200, {"errors": [{"message": "nope"}]})
    with pytest.raises(FetchError, match="nope"):
        fetch_organisations(GovkzClient(config(govkz_server)), "en")


def test_read_stats_count_every_request(govkz_server: GovkzFake) -> None:
    stats = ReadStats()
    client = GovkzClient(config(govkz_server))
    client.take_ticket(stats)
    client.rest_page("mfa", "kk", 1, 5, stats)
    assert stats.requests == 2


# --- links --------------------------------------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("https://www.gov.kz/memleket/entities/mfa-brussels", GovkzLink("mfa-brussels")),
    ("http://gov.kz/memleket/entities/mfa-brussels/", GovkzLink("mfa-brussels")),
    ("https://www.gov.kz/memleket/entities/mfa-brussels/press/news?lang=en",
     GovkzLink("mfa-brussels", "en")),
    ("https://www.gov.kz/memleket/entities/mfa-brussels/press/news/?lang=RU&utm_source=x",
     GovkzLink("mfa-brussels", "ru")),
    ("https://www.gov.kz/memleket/entities/mfa-brussels/press/news/details/1157092?lang=kk",
     GovkzLink("mfa-brussels", "kk", 1157092)),
    ("HTTPS://WWW.GOV.KZ/memleket/entities/KGD-Mangistau/press/news/details/42#top",
     GovkzLink("kgd-mangistau", None, 42)),
    ("www.gov.kz/memleket/entities/almobl", GovkzLink("almobl")),
    ("https://www.gov.kz/memleket/entities/mfa/press/article/details/5?lang=ru",
     GovkzLink("mfa", "ru")),
])
def test_accepted_links(url: str, expected: GovkzLink) -> None:
    assert parse_govkz_link(url) == expected


@pytest.mark.parametrize("url, reason", [
    ("https://example.com/memleket/entities/mfa", "not a gov.kz link"),
    ("https://egov.kz/memleket/entities/mfa", "not a gov.kz link"),
    ("https://www.gov.kz/", "not an organisation's"),
    ("https://www.gov.kz/services/123", "not an organisation's"),
    ("https://www.gov.kz/memleket/entities/mfa/about", "did you mean https://www.gov.kz/"
                                                       "memleket/entities/mfa/press/news"),
    ("https://www.gov.kz/memleket/entities/mfa/press/news/details/abc", "did you mean"),
    ("ftp://www.gov.kz/memleket/entities/mfa", "not a web link"),
    ("https://www.gov.kz/memleket/entities/mfa?lang=de", "unknown language 'de'"),
    ("seeds/news.txt", "not a web link"),
])
def test_refused_links_say_what_a_valid_one_looks_like(url: str, reason: str) -> None:
    with pytest.raises(InvalidSourceURL) as caught:
        parse_govkz_link(url)
    message = str(caught.value)
    assert reason in message and url in message
    if "did you mean" not in reason and "language" not in reason:
        assert "https://www.gov.kz/memleket/entities/<organisation>" in message


def test_a_link_gives_one_source_per_language(govkz_server: GovkzFake) -> None:
    settings = config(govkz_server)
    client = GovkzClient(settings)
    item_link = "https://www.gov.kz/memleket/entities/mfa-brussels/press/news/details/1?lang=ru"
    assert [s.name for s in sources_for_link(item_link, (), client, settings)] == \
        ["govkz:mfa-brussels:ru"]
    assert [s.name for s in sources_for_link("https://gov.kz/memleket/entities/mfa", (),
                                             client, settings)] == ["govkz:mfa:kk"]
    assert [s.name for s in sources_for_link(item_link, ("en", "kk", "en"), client,
                                             settings)] == ["govkz:mfa-brussels:en",
                                                            "govkz:mfa-brussels:kk"]


def test_entry_links_point_at_www_gov_kz_whatever_the_api_base(
        govkz_server: GovkzFake) -> None:
    result = make_source(govkz_server, backfill=3).read(FakeContext())
    assert all(item.url is not None and item.url.startswith(
        "https://www.gov.kz/memleket/entities/mfa/press/news/details/") for item in result.items)
    assert all(str(item.origin).startswith(govkz_server.base_url) for item in result.items)


# --- the circuit breaker -------------------------------------------------------------------------

def test_the_breaker_opens_after_the_threshold_and_closes_after_the_rest() -> None:
    settings = GovkzConfig(failure_threshold=3, rest_seconds=600)
    state: dict[str, Any] | None = {"backfilled": True, "newest_id": 7}
    for _ in range(2):
        state = breaker_after_failure(state, NOW, settings)
        assert breaker_allows(state, NOW)
    state = breaker_after_failure(state, NOW, settings)
    assert state["failures"] == 3 and state["newest_id"] == 7
    assert not breaker_allows(state, NOW + timedelta(seconds=599))
    assert breaker_allows(state, NOW + timedelta(seconds=600))
    again = breaker_after_failure(state, NOW + timedelta(seconds=600), settings)
    assert not breaker_allows(again, NOW + timedelta(seconds=601))  # one trial, then rest again


def test_the_breaker_allows_sources_without_state_or_with_garbage() -> None:
    assert breaker_allows(None, NOW)
    assert breaker_allows({"resting_until": "not a time"}, NOW)
    assert breaker_after_failure({"failures": "x"}, NOW, GovkzConfig())["failures"] == 1


def test_the_breaker_state_is_json_and_time_zone_safe() -> None:
    state = breaker_after_failure(None, NOW, GovkzConfig(failure_threshold=1, rest_seconds=60))
    restored = json.loads(json.dumps(state))
    assert not breaker_allows(restored, NOW.astimezone(UTC) + timedelta(seconds=30))
    assert breaker_allows(restored, NOW.astimezone(UTC) + timedelta(seconds=61))


def test_a_successful_read_closes_the_breaker(govkz_server: GovkzFake) -> None:
    settings = config(govkz_server, failure_threshold=1)
    state = breaker_after_failure({"backfilled": True}, NOW, settings)
    result = make_source(govkz_server).read(FakeContext(state=state))
    assert result.state is not None and breaker_allows(result.state, NOW)
    assert "failures" not in result.state and "resting_until" not in result.state


# --- imports --------------------------------------------------------------------------------------

def test_the_source_protocol_and_model_do_not_import_requests() -> None:
    code = ("import sys, feedsvc.sources, feedsvc.model; "
            "print(sorted(m for m in ('requests', 'nh3', 'lxml', 'tenacity') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
