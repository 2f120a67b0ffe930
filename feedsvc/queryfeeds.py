"""``/query.atom``, ``/query.rss``, ``/query.json``: feeds of any combination of organisations,
topics, languages and a full-text search, answered from the store.

What keeps a query cheap and safe:

- the parameters are parsed and checked before the store is touched (:mod:`feedsvc.query`);
  anything malformed or unknown is a 400 with a one-line reason;
- every query runs on a read-only connection of its own thread (SQLite connections are never
  shared across threads), is cut off after ``seconds`` (503) and returns at most ``limit``
  entries (capped);
- answers are cached by their canonical URL until the writer next publishes a change (the
  store's ``publication`` number), so a popular query costs one primary-key read per request;
- the ``ETag`` is a hash of the answer's bytes: it changes only when the result does, and a
  matching ``If-None-Match`` gets a 304.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .errors import QueryTooSlow, StoreError
from .formats import render_json_feed, render_rss
from .model import FeedRef, StoredItem, atom_id_for
from .query import BadQuery, Query, parse_query
from .render import FeedSpec, Site, labels, render_atom
from .store import ReadOnlyStore

log = logging.getLogger(__name__)

QUERY_SECONDS = 2.0  # a query running longer is stopped: 503
CACHE_ENTRIES = 512
CACHE_CONTROL = "public, max-age=300"  # as the static feeds
MEDIA_TYPES = {".atom": "application/atom+xml; charset=utf-8",
               ".rss": "application/rss+xml; charset=utf-8",
               ".json": "application/feed+json"}
#: The site a feed is rendered for, given the base URL the request came to.
SiteFor = Callable[[str], Site]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    media_type: str
    etag: str | None = None


class QueryFeeds:
    """The ASGI app behind the three query routes."""

    def __init__(self, db: Path, site_for: SiteFor, seconds: float = QUERY_SECONDS,
                 open_store: Callable[[Path], ReadOnlyStore] = ReadOnlyStore) -> None:
        self.db = db
        self.open_store = open_store
        self.site_for = site_for
        self.seconds = seconds
        self._local = threading.local()
        self._cache: OrderedDict[str, tuple[str, Answer]] = OrderedDict()
        self._cache_lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            response = Response("Method Not Allowed\n", status_code=405, media_type="text/plain",
                                headers={"Allow": "GET, HEAD"})
            await response(scope, receive, send)
            return
        request = Request(scope)
        suffix = "." + request.url.path.rsplit(".", 1)[-1]
        answer = await run_in_threadpool(self.answer, suffix, request.url.query,
                                         str(request.base_url))
        await _respond(answer, Headers(scope=scope))(scope, receive, send)

    def answer(self, suffix: str, raw_query: str, base_url: str) -> Answer:
        """The answer to one request (in a worker thread)."""
        try:
            site = self.site_for(base_url)
            query = parse_query(raw_query, site)
            reader = self._reader()
            publication = reader.publication()
            key = f"{site.base_url}{query.path(suffix)}"
            cached = self._cached(key, publication)
            if cached is not None:
                return cached
            entries = reader.query_items(query.languages, query.feed_groups(), query.match(),
                                         query.limit, self.seconds)
            body = render_query_feed(query, suffix, entries, site)
        except BadQuery as exc:
            return _plain(400, str(exc))
        except QueryTooSlow:
            log.warning("query.too_slow query=%s seconds=%s", raw_query[:200], self.seconds)
            return _plain(503, "the query took too long; narrow it down")
        except StoreError as exc:
            log.error("query.store_failed error=%s", exc)
            self._drop_reader()
            return _plain(503, "the store cannot be read now")
        answer = Answer(200, body, MEDIA_TYPES[suffix],
                        '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
        self._remember(key, publication, answer)
        return answer

    def _reader(self) -> ReadOnlyStore:
        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = self._local.reader = self.open_store(self.db)
        return reader

    def _drop_reader(self) -> None:
        reader = getattr(self._local, "reader", None)
        if reader is not None:
            reader.close()
            self._local.reader = None

    def _cached(self, key: str, publication: str) -> Answer | None:
        with self._cache_lock:
            found = self._cache.get(key)
            if found is None or found[0] != publication:
                return None
            self._cache.move_to_end(key)
            return found[1]

    def _remember(self, key: str, publication: str, answer: Answer) -> None:
        with self._cache_lock:
            self._cache[key] = (publication, answer)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)


def pipeline_site(pipeline: Callable[[], Any]) -> SiteFor:
    """The daemon's site: its pipeline's (configured base URL, live organisation names)."""

    def site_for(_base_url: str) -> Site:
        running = pipeline()
        if running is None:
            raise StoreError("store", "the daemon is starting")
        return running.site  # type: ignore[no-any-return]

    return site_for


def static_site(db: Path) -> SiteFor:
    """The site of ``feedsvc serve --db``: the default settings, the store's organisation
    names, and the base URL the request came to (there is no configured one)."""
    from .config import Config
    from .filing import Filing

    reader = ReadOnlyStore(db)  # refuses a missing or other-schema store now, not per request
    config = Config(db=db)
    try:
        filing = Filing.load(config, reader.live_organisations())
    finally:
        reader.close()
    sites: dict[str, Site] = {}
    lock = threading.Lock()

    def site_for(base_url: str) -> Site:
        with lock:
            if base_url not in sites:
                sites.clear()  # one address in practice; never grow without bound
                sites[base_url] = Site(base_url, config.language, filing.registry,
                                       filing.topic_names, config.entry_cap)
            return sites[base_url]

    return site_for


def render_query_feed(query: Query, suffix: str, entries: list[StoredItem], site: Site) -> bytes:
    """One query feed in one format; its ``self`` link is the canonical URL."""
    lang = query.display_lang(site)
    spec = FeedSpec(FeedRef("all", None, lang), query.title(site),
                    labels(lang)["all_sub"], query.path(".atom"),
                    site.url(query.path(".atom")), site.url("index.html"),
                    "gov.kz via feedsvc", site.base_url,
                    feed_id=atom_id_for("query:" + query.query_string()))
    if suffix == ".rss":
        return render_rss(spec, entries, site)
    if suffix == ".json":
        return render_json_feed(spec, entries, site)
    return render_atom(spec, entries, site)


def _plain(status: int, reason: str) -> Answer:
    return Answer(status, reason.encode() + b"\n", "text/plain; charset=utf-8")


def _respond(answer: Answer, request_headers: Headers) -> Response:
    if answer.etag is None:
        return Response(answer.body, status_code=answer.status, media_type=answer.media_type,
                        headers={"Cache-Control": "no-store"})
    headers = {"ETag": answer.etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if _matches(request_headers.get("if-none-match", ""), answer.etag):
        return Response(status_code=304, headers=headers)
    return Response(answer.body, media_type=answer.media_type, headers=headers)


def _matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): a gzipped answer's ``W/`` tag still matches."""
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in tags or "*" in tags
