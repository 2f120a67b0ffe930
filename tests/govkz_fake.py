"""A gov.kz look-alike on 127.0.0.1, for tests and benchmarks.

It speaks the parts of the API feedsvc uses (see feedsvc/sources/govkz.py): the ticket
(``POST /api/v1/public/_/c/k6`` sets a cookie; the listing answers ``400 notAllowed`` without
it), the REST news listing (bare list or ``{"content": [...]}``), GraphQL ``news`` and
``projectdetails``. News are generated deterministically and lazily (N organisations × M items ×
languages, one global id sequence shared by the languages), so a 20 × 1,000 × 3 benchmark costs
nothing until asked. Tests replace lists (:meth:`GovkzFake.put`), publish and edit items, script
faults (:class:`Fault`) and read the request log.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from govkz_portal import PortalWorld

TICKET_PATH = "/api/v1/public/_/c/k6"
NEWS_PATH = "/api/v1/public/content-manager/news"
GRAPHQL_PATH = "/graphql"
TICKET_COOKIE = "gov_ticket"
FIRST_ID = 1_150_000
NEWEST_DATE = datetime(2026, 3, 20, 9, 0, 0)
WORDS = {"kk": "жаңалық", "ru": "новость", "en": "news"}

Body = bytes | str | dict[str, Any] | list[Any] | None


@dataclass
class Fault:
    """One scripted misbehaviour for requests of ``target`` (ticket, news, graphql or *; or
    ``news:<slug>``, a REST listing of that organisation only).

    ``hang`` waits that many seconds before answering; ``status=None`` then answers normally.
    ``times=None`` repeats for ever. ``chunked`` sends the body without a Content-Length.
    """

    target: str
    status: int | None = 500
    body: Body = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0
    times: int | None = 1
    chunked: bool = False


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    #: The portal's clock when it came (portal mode only).
    at: float | None = None

    @property
    def kind(self) -> str:
        return _kind(self.path)


def _kind(path: str) -> str:
    if path == TICKET_PATH:
        return "ticket"
    if path.startswith(NEWS_PATH):
        return "news"
    if path == GRAPHQL_PATH:
        return "graphql"
    return "other"


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class _KeepAliveHandler(_QuietHandler):
    """Portal mode: connections stay open between requests (a simulated day is 86,400 of
    them; a new connection each would double the real time it takes)."""

    protocol_version = "HTTP/1.1"


class GovkzFake:
    """The server. Use as a context manager, or ``start()``/``stop()``."""

    def __init__(self, orgs: int | Iterable[str] = 2, items: int = 30,
                 langs: Iterable[str] = ("kk", "ru", "en"), *, shape: str = "list",
                 portal: PortalWorld | None = None) -> None:
        #: Portal mode: the listing, the registry and GraphQL answer from this world (every
        #: organisation, items appearing over time, the cross-organisation listing).
        self.portal = portal
        if portal is not None:
            orgs, langs = portal.slugs, portal.langs
        self.slugs = [f"org{n:02d}" for n in range(orgs)] if isinstance(orgs, int) \
            else list(orgs)
        self.items_per_org = items
        self.langs = tuple(langs)
        self.shape = shape  # "list" or "page"
        self.require_ticket = True
        #: When set, every REST listing answers this status (e.g. 405: REST switched off).
        self.rest_status: int | None = None
        self.log: list[LoggedRequest] = []
        self.faults: list[Fault] = []
        self._news: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._tickets: set[str] = set()
        self._next_id = FIRST_ID + len(self.slugs) * items
        self._lock = threading.RLock()
        self._release = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # --- life -----------------------------------------------------------------------------

    def start(self) -> GovkzFake:
        self._server = make_server("127.0.0.1", 0, self, threaded=True,
                                   request_handler=_KeepAliveHandler if self.portal
                                   else _QuietHandler)
        # A short poll interval: shutdown() waits for it, and tests start many servers.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True, name="govkz-fake")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # wake handlers that are "hanging"
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> GovkzFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_port}"

    # --- data -----------------------------------------------------------------------------

    def news(self, slug: str, lang: str) -> list[dict[str, Any]]:
        """The live list (newest first) for one organisation and language; mutable."""
        with self._lock:
            key = (slug, lang)
            if key not in self._news:
                self._news[key] = list(self._generate(slug, lang))
            return self._news[key]

    def put(self, slug: str, lang: str, objects: list[dict[str, Any]]) -> None:
        """Serve exactly these objects (newest first) for ``slug`` in ``lang``."""
        with self._lock:
            self._news[(slug, lang)] = list(objects)

    def publish(self, slug: str, lang: str, **fields: Any) -> dict[str, Any]:
        """A new item at the top of the list, with the next global id."""
        if self.portal is not None:
            return self.portal.publish(slug, (lang,))
        with self._lock:
            news_id = self._next_id
            self._next_id += 1
            obj = self._make(slug, lang, news_id, NEWEST_DATE + timedelta(minutes=news_id % 997))
            obj.update(fields)
            self.news(slug, lang).insert(0, obj)
            return obj

    def edit(self, slug: str, lang: str, news_id: int, **fields: Any) -> dict[str, Any]:
        with self._lock:
            for obj in self.news(slug, lang):
                if int(obj["id"]) == news_id:
                    obj.update(fields)
                    return obj
        raise KeyError(f"no news {news_id} for {slug}/{lang}")

    def fault(self, target: str, status: int | None = 500, body: Body = None, *,
              headers: dict[str, str] | None = None, hang: float = 0.0,
              times: int | None = 1, chunked: bool = False) -> Fault:
        fault = Fault(target, status, body, headers or {}, hang, times, chunked)
        with self._lock:
            self.faults.append(fault)
        return fault

    def expire_tickets(self) -> None:
        with self._lock:
            self._tickets.clear()

    def requests(self, kind: str | None = None) -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.log if kind is None or r.kind == kind]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def _generate(self, slug: str, lang: str) -> Iterator[dict[str, Any]]:
        if slug not in self.slugs or lang not in self.langs:
            return
        org = self.slugs.index(slug)
        count = len(self.slugs)
        for age in range(self.items_per_org):
            news_id = FIRST_ID + (self.items_per_org - 1 - age) * count + org
            yield self._make(slug, lang, news_id, NEWEST_DATE - timedelta(hours=age))

    @staticmethod
    def _make(slug: str, lang: str, news_id: int, when: datetime) -> dict[str, Any]:
        word = WORDS.get(lang, "news")
        return {
            "id": news_id,
            "title": f"{slug} {word} {news_id}",
            "slug": f"{word}-{news_id}",
            "created_date": when.strftime("%Y-%m-%dT%H:%M:%S"),
            "heropic": f"/uploads/{news_id}.jpg" if news_id % 2 else None,
            "alt_image": None,
            "body": f"<p>{word.capitalize()} {news_id}, first paragraph.</p>"
                    f"<p>Second paragraph &amp; more.</p>",
            "short_description": None,
            "projects": slug,
            "directions": [{"id": 7, "title": "Economy"}] if news_id % 3 == 0 else [],
        }

    # --- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        body = request.get_data()
        entry = LoggedRequest(request.method, request.path, dict(request.args.items()),
                              {k.lower(): v for k, v in request.headers.items()}, body,
                              self.portal.clock() if self.portal else None)
        with self._lock:
            self.log.append(entry)
            fault = self._take_fault(entry)
        response = self._answer(request, entry, fault)
        return response(environ, start_response)

    def _take_fault(self, entry: LoggedRequest) -> Fault | None:
        kind = entry.kind
        targets = {kind, "*", f"{kind}:{entry.query.get('projects', '').removeprefix('eq:')}"}
        for fault in self.faults:
            if fault.target in targets and (fault.times is None or fault.times > 0):
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    def _answer(self, request: Request, entry: LoggedRequest, fault: Fault | None) -> Response:
        if fault is not None:
            if fault.hang:
                self._release.wait(fault.hang)
            if fault.status is not None:
                return _response(fault.status, fault.body, fault.headers, fault.chunked)
        if entry.kind == "ticket":
            return self._ticket(request)
        if entry.kind == "news":
            return self._listing(request)
        if entry.kind == "graphql":
            return self._graphql(request, entry.body)
        return _response(404, "<html><body>Not found</body></html>")

    def _ticket(self, request: Request) -> Response:
        if request.method != "POST":
            return _response(405, {"message": "Method not allowed"})
        token = secrets.token_hex(8)
        with self._lock:
            self._tickets.add(token)
        response = _response(200, {"status": "ok"})
        response.set_cookie(TICKET_COOKIE, token, path="/")
        return response

    def _listing(self, request: Request) -> Response:
        if self.rest_status is not None:
            return _response(self.rest_status, {"message": "Method not allowed"})
        with self._lock:
            allowed = request.cookies.get(TICKET_COOKIE) in self._tickets
        if self.require_ticket and not allowed:
            return _response(400, {"message": "notAllowed"})
        slug = request.args.get("projects", "").removeprefix("eq:")
        page = int(request.args.get("page", "1"))
        size = int(request.args.get("size", "10"))
        lang = request.headers.get("Accept-Language", "ru")[:2]
        if self.portal is not None:
            if not slug and not self.portal.global_listing:
                return _response(400, {"message": "projects: must not be empty"})
            chunk = self.portal.page(slug or None, lang, page, size)
            return _response(200, {"content": chunk} if self.shape == "page" else chunk)
        chunk = self._page(slug, lang, page, size)
        if self.shape == "page":
            return _response(200, {"content": chunk, "number": page, "size": size,
                                   "totalElements": len(self.news(slug, lang))})
        return _response(200, chunk)

    def _page(self, slug: str, lang: str, page: int, size: int) -> list[dict[str, Any]]:
        start = (max(page, 1) - 1) * size
        with self._lock:
            return [dict(obj) for obj in self.news(slug, lang)[start:start + size]]

    def _graphql(self, request: Request, body: bytes) -> Response:
        try:
            query = json.loads(body)["query"]
        except (ValueError, KeyError, TypeError):
            return _response(400, {"errors": [{"message": "Must provide query string."}]})
        news = re.search(r"\bnews\s*\(([^)]*)\)", query)
        if news:
            args = _graphql_args(news.group(1))
            slug = str(args.get("projects", "")).removeprefix("eq:")
            lang = str(args.get("_lang", request.headers.get("Accept-Language", "ru")[:2]))
            page, size = int(args.get("_page", 1)), int(args.get("_size", 10))
            chunk = self.portal.page(slug, lang, page, size) if self.portal else \
                self._page(slug, lang, page, size)
            for obj in chunk:
                obj["id"] = str(obj["id"])  # GraphQL ids are strings
            return _response(200, {"data": {"news": chunk}})
        registry = re.search(r"\bprojectdetails\s*\(([^)]*)\)", query)
        if registry:
            lang = request.headers.get("Accept-Language", "ru")[:2]
            return _response(200, {"data": {"projectdetails": self._registry(lang)}})
        return _response(200, {"errors": [{"message": "Cannot query this field"}], "data": None})

    def _registry(self, lang: str) -> list[dict[str, Any]]:
        rows = []
        slugs = self.portal.registry() if self.portal else self.slugs
        for index, slug in enumerate(slugs):
            rows.append({
                "id": 500 + index,
                "project_name": f"{slug.upper()} ({lang}) &amp; co",
                "slug": slug,
                "parent_govorg": {"id": 500} if index else None,
                "class": {"name": "Embassy" if index else "Ministry"},
            })
        return rows


def _graphql_args(text: str) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for name, quoted, number in re.findall(r'(\w+)\s*:\s*(?:"((?:[^"\\]|\\.)*)"|(\d+))', text):
        args[name] = quoted if number == "" else int(number)
    return args


def _response(status: int, body: Body, headers: dict[str, str] | None = None,
              chunked: bool = False) -> Response:
    if isinstance(body, dict | list):
        data = json.dumps(body, ensure_ascii=False).encode()
        mimetype = "application/json"
    else:
        data = body.encode() if isinstance(body, str) else (body or b"")
        mimetype = "application/json" if data[:1] in (b"{", b"[") else "text/html"
    if chunked:
        pieces = [data[i:i + 8192] for i in range(0, len(data), 8192)]
        response = Response(iter(pieces), status=status, mimetype=mimetype)
    else:
        response = Response(data, status=status, mimetype=mimetype)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
