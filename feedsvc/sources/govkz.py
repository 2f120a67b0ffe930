"""The gov.kz live source: from "a gov.kz link" to a list of Items.

What this client relies on (the README's "gov.kz links as sources" says it for users):

- A source is one organisation (``slug``) in one language. Any gov.kz link of the organisation
  names it (:func:`parse_govkz_link`, :func:`sources_for_link`).
- Listing needs a *ticket*: ``POST <ticket_path>`` in the same cookie session first, else the
  listing answers ``400 notAllowed``. One ticket per read; on a 400 a fresh ticket and one more
  try. If REST stays shut (a second 400, or 404/405), the read goes on through GraphQL, and the
  source stays on GraphQL for :data:`GRAPHQL_PIN` before trying REST again (saved in its state).
- The first read backfills ``backfill`` items; later reads stop at the first page whose items the
  store already holds unchanged (``context.is_known``), so a quiet poll is two requests.
- :func:`item_from_api` is pure: one API object in, one :class:`Item` out (sanitised HTML and
  plain paragraphs, absolute image and upload links, aware dates).

Circuit breaker: a failing read raises, so its state cannot be returned; the pipeline calls
:func:`breaker_after_failure` to get the state to save after a failure, and
:func:`breaker_allows` before reading. A successful read returns a state without breaker fields,
which closes the breaker.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import nh3
from lxml import etree
from lxml import html as lxml_html

from ..config import LANGUAGES, Config, GovkzConfig, SourceConfig
from ..errors import FetchError, InvalidSourceURL, SourceError
from ..http import (
    Budget,
    Clock,
    HttpError,
    HttpSettings,
    PoliteClient,
    Response,
    Sleep,
    describe_body,
    host_of,
)
from ..kinds import is_portal_link
from ..links import (
    MAX_NEWS_ID,
    PUBLIC_SITE,
    item_page,
    news_id_problem,
    org_news_page,
    parse_govkz_link,
    slug_problem,
)
from ..model import ALMATY, AUTHORITY_GOVKZ_API, Item, Origin
from ..text import xml_safe
from . import BaseSource, BrokenSource, SourceContext, SourceResult

log = logging.getLogger(__name__)

DEFAULT_LANG = "kk"
NEWS_PATH = "/api/v1/public/content-manager/news"
GRAPHQL_PATH = "/graphql"
#: How long a source whose REST listing is shut keeps using GraphQL before trying REST again.
GRAPHQL_PIN = timedelta(hours=6)
#: Incremental reads stop at a known page; this bounds them if they never meet one.
CATCH_UP_FACTOR = 10
REGISTRY_PAGE_SIZE = 5000


def listing_url(base: str, slug: str, page: int, size: int) -> str:
    # Built by hand: the documented form keeps ``eq:`` and ``created_date:DESC`` unescaped.
    return (f"{base.rstrip('/')}{NEWS_PATH}?projects=eq:{slug}&sort-by=created_date:DESC"
            f"&page={page}&size={size}")


# --- items ----------------------------------------------------------------------------------

_URL_ATTRIBUTES = frozenset({"href", "src", "cite"})
_DROPPED_WITH_CONTENT = frozenset({"script", "style", "iframe", "noscript", "object", "embed",
                                   "template", "svg", "math", "textarea", "select", "button",
                                   "form"})
#: Schemes nh3 hands to :func:`_checked_attribute` (which keeps only http(s) on gov.kz, mailto and
#: tel) so that a dropped URL is counted; nh3 removes any other scheme by itself, uncounted.
_SCHEMES_SEEN = frozenset({"http", "https", "mailto", "tel", "javascript", "vbscript", "data",
                           "file", "ftp", "blob", "about", "ws", "wss", "sms", "intent"})
#: Characters a browser reads differently from urllib (``\\`` as ``/``, controls skipped): a URL
#: holding one could name one host to our check and another to a reader.
_URL_NOISE = re.compile(r"[\x00-\x1f\x7f\\]")
_CONTACT = re.compile(r"^(?:mailto|tel):", re.IGNORECASE)
#: Ports a gov.kz URL may name (none, or the default of http or https).
_PORTS = (None, 80, 443)
_dropping = threading.local()  # the list :func:`sanitise_html` counts dropped URLs into
_BLOCKS = frozenset("address article aside blockquote caption center dd details div dl dt "
                    "figcaption figure footer h1 h2 h3 h4 h5 h6 header hgroup hr li main nav "
                    "ol p pre section summary table tbody td tfoot th thead tr ul".split())
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_WHITESPACE = re.compile(r"\s+")
_HAS_TAG = re.compile(r"<[a-zA-Z/!]")


def item_from_api(obj: dict[str, Any], *, slug: str, lang: str, origin: str | None = None,
                  dropped: list[str] | None = None) -> Item:
    """One gov.kz news object (REST or GraphQL) as an Item of organisation ``slug``.

    Raises ValueError when the object has no usable id or neither a title nor any text.
    ``origin`` is where it was read (default: the public listing on www.gov.kz). URLs that are
    not fit to publish (see :func:`safe_url`) are left out and added to ``dropped``.
    """
    news_id = _news_id(obj.get("id"))
    dropped = dropped if dropped is not None else []
    markup, paragraphs = _content(obj, dropped)
    title = clean_text(obj.get("title"))
    if not title:
        if not paragraphs:
            raise ValueError(f"news {news_id} has neither a title nor any text")
        title = _shorten(paragraphs[0], 120)
    published, raw_date = parse_created(obj.get("created_date"))
    return Item(
        title=title,
        published=published,
        origin=Origin(origin or f"{PUBLIC_SITE}{NEWS_PATH}?projects=eq:{slug}"),
        paragraphs=paragraphs,
        html=markup,
        lang=lang,
        url=item_page(slug, news_id),
        url_lang=lang,
        org=slug,  # ``projects`` may name co-owners; the item belongs to the followed feed
        news_id=news_id,
        categories=_directions(obj.get("directions")),
        image=_picture(obj.get("heropic"), dropped),
        raw_date=raw_date,
        authority=AUTHORITY_GOVKZ_API,
    )


def _news_id(value: Any) -> int:
    """The object's id as a plausible gov.kz news id; ValueError (naming the value) otherwise.

    gov.kz sends a number (REST) or a string of digits (GraphQL); anything else, zero, a
    negative or an id of :data:`MAX_NEWS_ID` or more is refused before it reaches the store.
    """
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdecimal():
        problem = news_id_problem(value.strip())
        if problem is not None:
            raise ValueError(problem)
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"news id is missing or not a number: {_short_repr(value)}")
    if value <= 0:
        raise ValueError(f"news id is not positive: {value}")
    if value > MAX_NEWS_ID:  # (no repr: a huge int may have more digits than str() allows)
        raise ValueError(f"news id is too large (gov.kz's are below {MAX_NEWS_ID + 1:,})")
    return value


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _content(obj: dict[str, Any],
             dropped: list[str]) -> tuple[str | None, tuple[str, ...]]:
    """Sanitised HTML and its paragraphs: the body, else the short description, else nothing."""
    for key in ("body", "short_description"):
        value = obj.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        if key == "body" or _HAS_TAG.search(value):
            markup = sanitise_html(value, dropped)
        else:
            markup = f"<p>{html.escape(clean_text(value), quote=False)}</p>"
        paragraphs = html_paragraphs(markup)
        if paragraphs:
            return markup, paragraphs
    return None, ()


def clean_text(value: Any) -> str:
    """Plain text with HTML entities decoded and whitespace normalised ("" for null)."""
    if value is None:
        return ""
    return " ".join(xml_safe(html.unescape(str(value))).split())


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


def sanitise_html(fragment: str, dropped: list[str] | None = None) -> str:
    """Editor HTML made safe: no scripts, iframes, styles or handlers; links and pictures only
    where :func:`safe_url` allows, relative ones made absolute on www.gov.kz. The URLs taken out
    are added to ``dropped``."""
    _dropping.urls = dropped if dropped is not None else []
    try:
        # Before: nh3 cannot take a lone surrogate. After: it decodes &#1; into a raw \x01.
        return xml_safe(_cleaner().clean(xml_safe(fragment)))
    finally:
        _dropping.urls = None


@lru_cache(maxsize=1)
def _cleaner() -> nh3.Cleaner:
    # Built once: ``nh3.clean`` with options rebuilds the sanitiser on every call.
    return nh3.Cleaner(clean_content_tags=set(_DROPPED_WITH_CONTENT),
                       url_schemes=set(_SCHEMES_SEEN), attribute_filter=_checked_attribute)


def _checked_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute not in _URL_ATTRIBUTES:
        return value
    url = safe_url(value, link=attribute == "href")
    if url is None and value.strip():
        urls = getattr(_dropping, "urls", None)
        if urls is not None:
            urls.append(value)
    return url


def _picture(value: Any, dropped: list[str]) -> str | None:
    url = safe_url(value)
    if url is None and isinstance(value, str) and value.strip():
        dropped.append(value)
    return url


def on_govkz(host: str) -> bool:
    """Whether ``host`` (lowercase, no port) is gov.kz or one of its subdomains."""
    return host == "gov.kz" or host.endswith(".gov.kz")


def safe_url(value: Any, *, link: bool = False) -> str | None:
    """A URL from a gov.kz answer if it is fit to publish, else None.

    Fit: http(s) on gov.kz or a subdomain (no user name, no port but 80/443), or a relative
    path, made absolute on https://www.gov.kz. A link (``href``) may also be ``mailto:``,
    ``tel:`` or ``#fragment``: nothing a reader fetches by itself. Anything else (``javascript:``,
    ``data:``, another host, a loopback address) is refused.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or _URL_NOISE.search(text):
        return None
    if link and (text.startswith("#") or _CONTACT.match(text)):
        return text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:  # a port out of range, a bad IPv6 literal
        return None
    if parts.scheme and parts.scheme.lower() not in ("http", "https"):
        return None
    if parts.scheme or parts.netloc:
        host = (parts.hostname or "").lower()
        if not on_govkz(host) or parts.username is not None or port not in _PORTS:
            return None
    return quote(urljoin(PUBLIC_SITE + "/", text), safe=":/?#[]@!$&'()*+,;=%~")


def html_paragraphs(markup: str) -> tuple[str, ...]:
    """Plain text of an HTML fragment, one string per block (paragraph, heading, list item)."""
    markup = xml_safe(markup)  # lxml stops at a lone surrogate
    if not markup.strip():
        return ()
    try:
        root = lxml_html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return tuple(p for p in (clean_text(re.sub(r"<[^>]*>", " ", markup)),) if p)
    chunks: list[str] = []
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            if tag in _BLOCKS:
                chunks.append("\n\n")
            elif tag == "br":
                chunks.append("\n")
            if tag and element.text:
                chunks.append(_WHITESPACE.sub(" ", element.text))
        else:
            if tag in _BLOCKS:
                chunks.append("\n\n")
            if element is not root and element.tail:
                chunks.append(_WHITESPACE.sub(" ", element.tail))
    text = xml_safe("".join(chunks))
    blocks = (" ".join(block.split()) for block in _PARAGRAPH_BREAK.split(text))
    return tuple(block for block in blocks if block)


def parse_created(value: Any) -> tuple[datetime | None, str | None]:
    """``created_date`` as an aware datetime, and as written.

    Observed: ``2026-02-14T10:30:00``, ``...Z``, ``...00.123Z``, ``...+05:00``; naive times are
    Asia/Almaty, ``Z`` is UTC. Numbers are taken as epoch milliseconds (or seconds if small).
    Unparseable dates give ``(None, raw)``: the item is kept, undated.
    """
    if value is None or isinstance(value, bool):
        return None, None
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC), str(value)
        except (OverflowError, OSError, ValueError):
            return None, str(value)
    raw = str(value).strip()
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None, raw or None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=ALMATY)), raw


def _directions(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    titles = (clean_text(entry.get("title")) for entry in value if isinstance(entry, dict))
    return tuple(dict.fromkeys(title for title in titles if title))


# --- the client -------------------------------------------------------------------------------

@dataclass(slots=True)
class ReadStats:
    """What one read cost: requests sent (retries included), pages read, GraphQL used."""

    requests: int = 0
    pages: int = 0
    graphql: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "pages": self.pages, "graphql": self.graphql}


class RestUnavailable(Exception):
    """REST listing is shut for this read (400 after a fresh ticket, 404 or 405)."""

    def __init__(self, url: str, response: Response) -> None:
        super().__init__(f"{url}: HTTP {response.status}: {describe_body(response.body)}")
        self.url = url
        self.status = response.status


@dataclass(frozen=True, slots=True)
class OrgRecord:
    """One organisation as gov.kz's registry names it in one language."""

    slug: str
    name: str
    lang: str
    kind: str | None = None
    parent: str | None = None


class GovkzClient:
    """The gov.kz API over a :class:`PoliteClient`: ticket, listing pages, GraphQL.

    Shared by every gov.kz source of a process, so one host sees one request at a time.
    """

    def __init__(self, config: GovkzConfig, *, http: PoliteClient | None = None,
                 sleep: Sleep | None = None, clock: Clock | None = None,
                 budget: Budget | None = None) -> None:
        self.config = config
        self.base = config.base_url.rstrip("/")
        self._ticketed = False
        #: Organisations the whole-portal source follows (sources/portal.py keeps it).
        self.portal: Any = None
        if http is None:
            settings = HttpSettings(delay=config.delay, connect_timeout=config.connect_timeout,
                                    read_timeout=config.read_timeout, attempts=config.retries,
                                    max_response_bytes=config.max_response_bytes)
            extra: dict[str, Any] = {}
            if sleep is not None:
                extra["sleep"] = sleep
            if clock is not None:
                extra["clock"] = clock
            http = PoliteClient(settings, budget=budget, **extra)
        self.http = http

    def close(self) -> None:
        self.http.close()

    def take_ticket(self, stats: ReadStats) -> None:
        """Ask for the cookie the listing wants. A refusal is logged, not fatal: the listing
        then answers 400 and the read falls back to GraphQL."""
        url = self.base + self.config.ticket_path
        response = self.http.request("POST", url, headers={
            "Content-Type": "application/json", "Origin": PUBLIC_SITE, "Accept": "*/*"})
        stats.requests += response.attempts
        self._ticketed = response.ok
        if not response.ok:
            log.warning("govkz.ticket_refused url=%s status=%d body=%r", url, response.status,
                        response.snippet())

    def ensure_ticket(self, stats: ReadStats) -> None:
        """A ticket unless the session holds one (a refused listing asks for a fresh one)."""
        if not self._ticketed:
            self.take_ticket(stats)

    def rest_page(self, slug: str, lang: str, page: int, size: int,
                  stats: ReadStats) -> tuple[list[dict[str, Any]], str]:
        """One listing page and its URL; RestUnavailable when REST is shut, FetchError else."""
        url = listing_url(self.base, slug, page, size)
        headers = {"Accept": "application/json", "Accept-Language": lang,
                   "Referer": org_news_page(slug, lang)}
        for fresh_ticket in (False, True):
            response = self.http.request("GET", url, headers=headers, expect_json=True)
            stats.requests += response.attempts
            if response.status == 400 and not fresh_ticket:
                log.info("govkz.ticket_renew url=%s body=%r", url, response.snippet())
                self.take_ticket(stats)
                continue
            if response.status in (400, 404, 405):
                raise RestUnavailable(url, response)
            if not response.ok:
                raise HttpError("GET", url, f"{host_of(url)} answered HTTP {response.status}",
                                f"expected a JSON list of news, got "
                                f"{describe_body(response.body)}", response.status)
            return news_list(response.json(), url, limit=page_cap(size)), url
        raise AssertionError("unreachable")  # pragma: no cover

    def graphql(self, query: str, lang: str, stats: ReadStats) -> dict[str, Any]:
        """The ``data`` of a GraphQL answer; FetchError for errors, even inside a 200."""
        url = self.base + GRAPHQL_PATH
        body = json.dumps({"query": query, "variables": {}}).encode()
        response = self.http.request("POST", url, data=body, expect_json=True, headers={
            "Content-Type": "application/json", "Accept": "application/json",
            "Accept-Language": lang, "Origin": PUBLIC_SITE})
        stats.requests += response.attempts
        host = host_of(url)
        if not response.ok:
            raise HttpError("POST", url, f"{host} answered HTTP {response.status}",
                            f"GraphQL failed: {describe_body(response.body)}", response.status)
        answer = response.json()
        if not isinstance(answer, dict):
            raise HttpError("POST", url, f"{host} answered in an unexpected format",
                            f"expected a GraphQL answer object, got "
                            f"{describe_body(response.body)}", response.status)
        if answer.get("errors"):
            raise HttpError("POST", url, f"{host} refused the GraphQL query",
                            f"GraphQL errors: {_graphql_messages(answer['errors'])}",
                            response.status)
        data = answer.get("data")
        if not isinstance(data, dict):
            raise HttpError("POST", url, f"{host} answered in an unexpected format",
                            f"GraphQL answer without data: {describe_body(response.body)}",
                            response.status)
        return data

    def graphql_page(self, slug: str, lang: str, page: int, size: int,
                     stats: ReadStats) -> tuple[list[dict[str, Any]], str]:
        query = (f'{{ news(projects: {json.dumps("eq:" + slug)}, _size: {size}, _page: {page}, '
                 f'_sort: "created_date:DESC", _lang: {json.dumps(lang)}) {{ id title slug '
                 "created_date heropic alt_image body short_description projects "
                 "directions { id title } } }")
        url = self.base + GRAPHQL_PATH
        return news_list(self.graphql(query, lang, stats).get("news"), url,
                         limit=page_cap(size), method="POST"), url


def page_cap(size: int) -> int:
    """Most objects accepted in one answer to a request for ``size``: twice as many, and at
    least 100 (gov.kz serves pages of up to 100). More is not a page; building an Item for each
    of a million ``{"id": 1}`` took half a gigabyte."""
    return max(2 * size, 100)


def news_list(data: Any, url: str, what: str = "news objects", *, limit: int | None = None,
              method: str = "GET") -> list[dict[str, Any]]:
    """The items of a listing answer: a bare list or ``{"content": [...]}``; HttpError for
    anything else, or for more than ``limit`` items."""
    items = data.get("content") if isinstance(data, dict) else data
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        shown = json.dumps(data, ensure_ascii=False)[:200]
        raise HttpError(method, url, f"{host_of(url)} answered in an unexpected format",
                        f"expected a JSON list of {what} or "
                        f'{{"content": [...]}}, got {shown!r}')
    if limit is not None and len(items) > limit:
        raise HttpError(method, url, f"{host_of(url)} answered {len(items):,} {what} at once",
                        f"more than the {limit:,} accepted in one answer; refused")
    return items


def _graphql_messages(errors: Any) -> str:
    if isinstance(errors, list):
        texts = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
        return "; ".join(texts)[:200]
    return str(errors)[:200]


# --- the source -------------------------------------------------------------------------------

PageFetcher = Callable[[int, int, ReadStats], tuple[list[dict[str, Any]], str]]


@dataclass(slots=True)
class _Read:
    """The running tally of one read."""

    first_run: bool
    limit: int
    stats: ReadStats = field(default_factory=ReadStats)
    items: list[Item] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    newest: int | None = None


class GovkzSource(BaseSource):
    """One organisation's news in one language, read through :class:`GovkzClient`."""

    #: A fresh ticket before every read; else one kept by the client until refused.
    ticket_per_read = True
    #: Items asked for by a read after the first one (None: ``page_size``).
    poll_size: int | None = None

    def __init__(self, slug: str, lang: str, client: GovkzClient, backfill: int,
                 page_size: int, link: str | None = None) -> None:
        self.slug = slug
        self.lang = lang
        #: The source as the user wrote it, to lead its error messages.
        self.link = (link or "").strip() or f"{PUBLIC_SITE}/memleket/entities/{slug}"
        self.client = client
        self.backfill = max(1, backfill)
        self.page_size = max(1, page_size)

    @property
    def name(self) -> str:
        return f"govkz:{self.slug}:{self.lang}"

    def __repr__(self) -> str:
        return f"GovkzSource({self.name!r})"

    def resting(self, state: dict[str, Any] | None, now: datetime) -> bool:
        """True while the circuit breaker keeps this source from asking gov.kz."""
        return not breaker_allows(state, now)

    def state_after_failure(self, state: dict[str, Any] | None,
                            now: datetime) -> dict[str, Any]:
        return breaker_after_failure(state, now, self.client.config)

    def read(self, context: SourceContext) -> SourceResult:
        """Items newest first: the backfill on a first read, what is new or changed later.

        Raises :class:`GovkzSourceError` when gov.kz fails: the link as the user wrote it and
        a plain reason first, then the request and the details.
        """
        try:
            return self._read(context)
        except FetchError as exc:
            raise GovkzSourceError(f"{self.link} ({self.lang})", exc) from exc

    def _read(self, context: SourceContext) -> SourceResult:
        previous = context.previous_state() or {}
        first_run = not previous.get("backfilled")
        limit = self.backfill if first_run else self.backfill * CATCH_UP_FACTOR
        run = _Read(first_run, limit)
        size = min(self.page_size, self.backfill) if first_run else \
            (self.poll_size or self.page_size)
        graphql_until = _time(previous.get("graphql_until"))
        pinned = graphql_until is not None and context.now < graphql_until
        if pinned:
            self._page_through(self._graphql_pages(run), run, size, context, start=1)
        else:
            graphql_until = self._rest_then_graphql(run, size, context)
        state: dict[str, Any] = {"backfilled": True, "newest_id": _newest(previous, run.newest)}
        if graphql_until is not None and context.now < graphql_until:
            state["graphql_until"] = graphql_until.isoformat()
        log.debug("govkz.read source=%s items=%d pages=%d requests=%d graphql=%s", self.name,
                  len(run.items), run.stats.pages, run.stats.requests, run.stats.graphql)
        return SourceResult(items=run.items, warnings=run.warnings, state=state,
                            unchanged=not run.items and not first_run,
                            stats=run.stats.as_dict())

    def _rest_then_graphql(self, run: _Read, size: int,
                           context: SourceContext) -> datetime | None:
        """Read over REST; if REST is shut, go on over GraphQL from the same page."""
        if self.ticket_per_read:
            self.client.take_ticket(run.stats)
        else:
            self.client.ensure_ticket(run.stats)
        try:
            self._page_through(self._rest_pages(), run, size, context, start=1)
            return None
        except _Fallback as fallback:
            log.warning("govkz.graphql_fallback source=%s url=%s status=%s reason=%r",
                        self.name, fallback.error.url, fallback.error.status, str(fallback.error))
            self._page_through(self._graphql_pages(run), run, size, context, start=fallback.page)
            return context.now + GRAPHQL_PIN

    def _rest_pages(self) -> PageFetcher:
        def fetch(page: int, size: int, stats: ReadStats) -> tuple[list[dict[str, Any]], str]:
            try:
                return self.client.rest_page(self.slug, self.lang, page, size, stats)
            except RestUnavailable as exc:
                raise _Fallback(exc, page) from exc
        return fetch

    def _graphql_pages(self, run: _Read) -> PageFetcher:
        run.stats.graphql = True
        return lambda page, size, stats: self.client.graphql_page(self.slug, self.lang, page,
                                                                  size, stats)

    def _page_through(self, fetch: PageFetcher, run: _Read, size: int, context: SourceContext,
                      start: int) -> None:
        page = start
        while len(run.items) < run.limit:
            objects, origin = fetch(page, size, run.stats)
            run.stats.pages += 1
            items = self._items(objects, origin, run)
            if not self._take(items, run, context):
                return  # a page of known, unchanged items: the rest is older and known
            if len(objects) < size:
                return  # the last page
            page += 1
        if not run.first_run:
            run.warnings.append(f"{self.name}: stopped after {run.limit} new or changed items "
                                "without reaching known ones; older changes may be missed")

    def _items(self, objects: list[dict[str, Any]], origin: str, run: _Read) -> list[Item]:
        items = []
        dropped: list[str] = []
        for obj in objects:
            try:
                items.append(item_from_api(obj, slug=self.slug, lang=self.lang, origin=origin,
                                           dropped=dropped))
            except ValueError as exc:
                run.warnings.append(f"{origin}: skipped a news object: {exc}")
        if dropped:
            run.warnings.append(
                f"{origin}: left out {len(dropped)} link(s) or picture(s) that were not http(s) "
                f"on gov.kz, e.g. {_short_repr(dropped[0])}")
        if objects and not items:
            raise HttpError("GET", origin, f"{host_of(origin)} answered in an unexpected "
                            "format", "no usable news object on this page (changed format?): "
                            f"{json.dumps(objects[0], ensure_ascii=False)[:200]!r}")
        return items

    def _take(self, items: list[Item], run: _Read, context: SourceContext) -> bool:
        """Add the page's new items; False when every item on it is known and unchanged."""
        all_known = bool(items)
        for item in items:
            assert item.news_id is not None
            run.newest = max(run.newest or 0, item.news_id)
            known = not run.first_run and context.is_known(item)
            all_known = all_known and known
            if known or item.news_id in run.seen or len(run.items) >= run.limit:
                continue  # (a repeat: the list shifted while we paged)
            run.seen.add(item.news_id)
            run.items.append(item)
        return not all_known


class _Fallback(Exception):
    def __init__(self, error: RestUnavailable, page: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.page = page


class GovkzSourceError(FetchError):
    """A gov.kz source failed. ``str()``: ``<link as given> (<lang>): <plain reason> (<request>,
    <details>)``, e.g. ``https://www.gov.kz/memleket/entities/mfa-brussels (en): cannot reach
    www.gov.kz: the name does not resolve (POST .../_/c/k6, gave up after 4 attempts)``."""

    def __init__(self, source: str, error: FetchError) -> None:
        problem = getattr(error, "problem", None) or error.reason
        method = getattr(error, "method", None)
        request = f"{method} {_short_url(error.url)}" if method else _short_url(error.url)
        detail = getattr(error, "detail", None)
        details = f"{request}, {detail}" if detail else request
        SourceError.__init__(self, source, f"{problem} ({details})")
        self.url = error.url
        self.status = error.status
        self.problem = problem


def _short_url(url: str) -> str:
    """The end of an API URL, enough to tell the requests apart: ``.../content-manager/news page
    2``, ``.../_/c/k6``, ``.../graphql``."""
    parts = urlsplit(url)
    segments = [segment for segment in parts.path.split("/") if segment]
    taken = 1
    while taken < len(segments) and (taken < 2 or len("/".join(segments[-taken:])) < 6):
        taken += 1
    tail = "/".join(segments[-taken:])
    page = re.search(r"(?:^|&)page=(\d+)", parts.query)
    return f".../{tail}" + (f" page {page.group(1)}" if page else "")


def _newest(previous: dict[str, Any], seen: int | None) -> int | None:
    before = previous.get("newest_id")
    candidates = [n for n in (before, seen) if isinstance(n, int) and not isinstance(n, bool)]
    return max(candidates) if candidates else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        log.warning("govkz.bad_state_time value=%r", value)
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def make_client(config: Config, sleep: Sleep | None = None, *,
                clock: Clock | None = None) -> GovkzClient:
    """One client for every gov.kz source, so the host sees one request at a time, and every
    request counts against one budget (``[portal] requests_per_second``)."""
    from ..poller import RequestBudget

    real_sleep = sleep or time.sleep
    budget = RequestBudget(config.portal.budget_limit, config.portal.budget_window,
                           clock=clock or time.monotonic, sleep=real_sleep)
    return GovkzClient(config.govkz, sleep=sleep, clock=clock, budget=budget)


def check(location: str) -> None:
    """Raises InvalidSourceURL unless ``location`` is a link of a gov.kz organisation or the
    portal itself (``https://www.gov.kz``: every organisation)."""
    if not is_portal_link(location):
        parse_govkz_link(location)


def expand(spec: SourceConfig, config: Config, client: GovkzClient) -> list[BaseSource]:
    """One source per language of the organisation the configured link names (the portal
    itself is expanded by sources/portal.py, the kind's entry point)."""
    try:
        return list(sources_for_link(spec.location, spec.langs, client, config.govkz))
    except InvalidSourceURL as exc:
        return [BrokenSource(spec.location, str(exc))]


def sources_for_link(url: str, langs: tuple[str, ...], client: GovkzClient,
                     config: GovkzConfig) -> list[GovkzSource]:
    """One source per language for the organisation ``url`` names.

    Languages: ``langs`` if given, else the link's ``?lang=``, else kk. Raises InvalidSourceURL.
    """
    link = parse_govkz_link(url)
    chosen = tuple(langs) or (link.lang or DEFAULT_LANG,)
    for lang in chosen:
        if lang not in LANGUAGES:
            raise InvalidSourceURL(url, f"unknown language {lang!r} (use one of "
                                        f"{', '.join(LANGUAGES)})")
    return [GovkzSource(link.slug, lang, client, config.backfill, config.page_size, url)
            for lang in dict.fromkeys(chosen)]


# --- circuit breaker --------------------------------------------------------------------------

def breaker_after_failure(state: dict[str, Any] | None, now: datetime,
                          config: GovkzConfig) -> dict[str, Any]:
    """The state to save after a failed read: one more failure, and a rest once there have been
    ``failure_threshold`` in a row. Other keys are kept; a success returns a state without
    these keys, which resets the count."""
    new = dict(state or {})
    previous = new.get("failures")
    failures = (previous if isinstance(previous, int) and previous > 0 else 0) + 1
    new["failures"] = failures
    if failures >= config.failure_threshold:
        until = now + timedelta(seconds=config.rest_seconds)
        new["resting_until"] = until.isoformat()
        log.warning("govkz.breaker_open failures=%d resting_until=%s", failures,
                    new["resting_until"])
    return new


def breaker_allows(state: dict[str, Any] | None, now: datetime) -> bool:
    """False while a source rests after repeated failures; True otherwise (and for no state)."""
    until = _time((state or {}).get("resting_until"))
    return until is None or now >= until


# --- the registry of organisations -------------------------------------------------------------

def fetch_organisations(client: GovkzClient, lang: str, *,
                        size: int = REGISTRY_PAGE_SIZE) -> list[OrgRecord]:
    """Every organisation gov.kz lists, named in ``lang``; parents given as ids become slugs.

    Raises FetchError.
    """
    query = (f"{{ projectdetails(_size: {size}) {{ id project_name slug parent_govorg {{ id }} "
             "class { name } } }")
    data = client.graphql(query, lang, ReadStats()).get("projectdetails")
    url = client.base + GRAPHQL_PATH
    rows = news_list(data, url, "organisations", limit=2 * size, method="POST")
    if len(rows) >= size:
        log.warning("govkz.registry_truncated size=%d lang=%s", size, lang)
    rows = [row for row in rows if _registry_slug_ok(row, url)]
    slugs = {str(row.get("id")): str(row["slug"]).strip().lower() for row in rows
             if row.get("slug") and row.get("id") is not None}
    return list(_org_records(rows, slugs, lang))


def _registry_slug_ok(row: dict[str, Any], url: str) -> bool:
    """False (and a warning naming the URL) for a row whose slug gov.kz cannot have: it would
    become a file name and a feed path."""
    slug = str(row.get("slug") or "").strip().lower()
    problem = slug_problem(slug) if slug else None
    if problem is not None:
        log.warning("govkz.registry_bad_slug url=%s problem=%r; organisation skipped", url,
                    problem[:200])
    return problem is None


def _org_records(rows: Iterable[dict[str, Any]], slugs: dict[str, str],
                 lang: str) -> Iterable[OrgRecord]:
    seen: set[str] = set()
    for row in rows:
        slug = str(row.get("slug") or "").strip().lower()
        if not slug or slug in seen:
            continue
        seen.add(slug)
        parent_id = _first(row.get("parent_govorg"), "id")
        parent = slugs.get(str(parent_id)) if parent_id is not None else None
        kind = clean_text(_first(row.get("class"), "name")) or None
        yield OrgRecord(slug, clean_text(row.get("project_name")) or slug, lang, kind,
                        parent if parent != slug else None)


def _first(value: Any, key: str) -> Any:
    """``value[key]`` for an object, or for the first object of a list; None otherwise."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value.get(key) if isinstance(value, dict) else None
