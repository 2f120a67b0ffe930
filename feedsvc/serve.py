"""Serve the output directory over HTTP: Starlette's ``StaticFiles`` behind uvicorn.

Only this module talks HTTP to subscribers; it reads the output directory and nothing else.

- :func:`make_app` builds the ASGI app: the files of ``out_dir`` (``/`` is ``index.html``) and
  ``/healthz``. Conditional requests (``ETag``/``If-None-Match``, ``Last-Modified``/
  ``If-Modified-Since`` → 304), ``HEAD`` and ranges come from ``StaticFiles``/``FileResponse``;
  gzip from ``GZipMiddleware``. What is ours: the content types, ``Cache-Control``, a stricter
  path lookup (no dotfiles, nothing that resolves outside the root, never a 500 for a strange
  path), small files sent from one read, and a weak ``ETag`` whenever gzip is in play.
- :class:`FeedServer` runs one uvicorn server on a socket it binds itself, either in a
  background thread (the daemon: :meth:`FeedServer.start` / :meth:`FeedServer.stop`) or in the
  foreground (``feedsvc serve``: :meth:`FeedServer.run`). uvicorn never installs signal handlers;
  whoever owns the main thread does.
- :class:`GuardedH11Protocol` and :class:`ConnectionGuard` keep slow and idle clients from
  starving the rest (issue 15 item 9, "slowloris"): see there.
- :class:`RepeatFilter` logs a repeated server error once, then a count, not once per event.

The production set-up (nginx in front of the same directory) lives in ``deploy/``; keep the
headers here and in ``deploy/nginx/feedsvc.conf`` in step.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import resource
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from .errors import ServeError
from .health import HEALTHY_STATUSES

logger = logging.getLogger(__name__)

HealthCheck = Callable[[], dict[str, Any]]

ALLOWED_METHODS = "GET, HEAD"

# Feeds and OPML change at most once per scheduler run (every minute for text dumps, every
# 30 minutes for gov.kz) and readers poll every 15-60 minutes. Five minutes lets a shared cache
# or proxy absorb a burst of subscribers while bounding how stale a feed can look; the ETag makes
# every revalidation after that a cheap 304. The index is read by people who just changed
# something and reload, so it goes stale sooner.
FEED_CACHE_CONTROL = "public, max-age=300"
INDEX_CACHE_CONTROL = "public, max-age=60"
HEALTH_CACHE_CONTROL = "no-store"  # a health answer is only true now

_CONTENT_TYPES = {
    ".atom": ("application/atom+xml; charset=utf-8", FEED_CACHE_CONTROL),
    ".rss": ("application/rss+xml; charset=utf-8", FEED_CACHE_CONTROL),
    ".json": ("application/feed+json", FEED_CACHE_CONTROL),  # the only JSON we publish
    ".opml": ("text/x-opml; charset=utf-8", FEED_CACHE_CONTROL),
    ".html": ("text/html; charset=utf-8", INDEX_CACHE_CONTROL),
    # the pages' assets (feedsvc/static): browsers refuse a stylesheet or script served
    # under another type, and apply the feeds' XSLT only when it is served as XML
    ".css": ("text/css; charset=utf-8", INDEX_CACHE_CONTROL),
    ".js": ("text/javascript; charset=utf-8", INDEX_CACHE_CONTROL),
    ".xsl": ("application/xslt+xml; charset=utf-8", INDEX_CACHE_CONTROL),
}
_OTHER = ("application/octet-stream", INDEX_CACHE_CONTROL)
#: A feed's type for a browser opening it (see opens_as_page).
FEED_AS_PAGE_TYPE = "application/xml; charset=utf-8"

IN_MEMORY_MAX_BYTES = 1 << 20  # larger files are streamed from a worker thread
GZIP_MIN_BYTES = 500  # below this the gzip header costs more than it saves
GZIP_LEVEL = 6  # zlib's default: most of level 9's ratio at about half the CPU
GRACEFUL_SECONDS = 5  # in-flight responses get this long after stop() before being cut
START_TIMEOUT = 10.0
# A feed reader sends its whole request head at once; ten seconds covers a slow mobile link.
# A connection that has not sent a complete head by then (a slowloris trickling a byte a
# second, or a client that connected and said nothing) is closed.
HEADER_TIMEOUT = 10.0
KEEP_ALIVE_SECONDS = 5  # uvicorn's default, stated: an idle kept-alive connection is closed
FD_RESERVE = 64  # descriptors kept for everything but connections: store, logs, files served
REPEAT_WINDOW = 60.0  # a repeated log line is shown once per window, then with a count


# --- the app ---------------------------------------------------------------------------------


def make_app(out_dir: Path, health: HealthCheck | None = None,
             queries: ASGIApp | None = None) -> Starlette:
    """The ASGI app serving ``out_dir`` and ``/healthz``.

    ``queries`` (a :class:`feedsvc.queryfeeds.QueryFeeds`, which reads the store) answers
    ``/query.atom``, ``/query.rss`` and ``/query.json``; without it those are files like any.

    ``health`` answers ``/healthz`` (200 when its ``status`` is ``"ok"`` or ``"degraded"``, 503
    otherwise: feedsvc/health.py says which is which); without it, ``/healthz`` says
    ``{"status": "ok", "mode": "static"}``. ``out_dir`` must exist: :class:`ServeError`
    otherwise, rather than an empty site answering 404 to everything.
    """
    if not out_dir.is_dir():
        raise ServeError(str(out_dir), "no such directory to serve; build the feeds first")
    files = OutDirFiles(directory=out_dir, html=True)
    query_routes = [Route(f"/query{suffix}", queries) for suffix in (".atom", ".rss", ".json")
                    ] if queries is not None else []
    return Starlette(
        routes=[Route("/healthz", HealthEndpoint(health)), *query_routes,
                Mount("/", app=files)],
        middleware=[
            Middleware(EncodingHeaders),
            Middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES, compresslevel=GZIP_LEVEL),
        ],
    )


class OutDirFiles(StaticFiles):
    """``StaticFiles`` that serves only regular, non-hidden files resolving inside the root.

    Starlette already refuses paths that resolve outside the directory; this lookup also refuses
    any path with a component starting with ``.`` (``..``, the publisher's ``.lock`` and
    ``.tmp-*`` files), backslashes and NUL bytes before touching the disk, and turns every
    ``OSError``/``ValueError`` of a strange path (too long, a symlink loop, no permission) into
    "not found" rather than a 401 or a 500.
    """

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if not _is_plain_relative(path):
            return "", None
        try:
            return self._resolve_inside(path)
        except (OSError, ValueError):  # a path that cannot name a file of ours is just absent
            return "", None

    def _resolve_inside(self, path: str) -> tuple[str, os.stat_result | None]:
        root = os.path.realpath(str(self.directory))
        full_path = os.path.realpath(os.path.join(root, path))
        relative = os.path.relpath(full_path, root)
        if not _is_plain_relative(relative):
            return "", None  # a symlink leading out of the root, or onto a hidden file
        return full_path, os.stat(full_path)

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result,
                      scope: Scope, status_code: int = 200) -> Response:
        """A 304, the file from memory (small files, plain GETs), or a streamed ``FileResponse``.

        Our content type and Cache-Control are set before the 304 check so a 304 carries them.
        """
        request_headers = Headers(scope=scope)
        accept = request_headers.get("accept", "")
        response = _file_response(full_path, stat_result, status_code, accept)
        if self.is_not_modified(response.headers, request_headers):
            return NotModifiedResponse(response.headers)
        if (scope["method"] == "GET" and "range" not in request_headers
                and stat_result.st_size <= IN_MEMORY_MAX_BYTES):
            return _in_memory_response(full_path, status_code, accept) or response
        return response


def _file_response(full_path: str | os.PathLike[str], stat_result: os.stat_result,
                   status_code: int, accept: str = "") -> FileResponse:
    suffix = Path(full_path).suffix.lower()
    media_type, cache_control = _CONTENT_TYPES.get(suffix, _OTHER)
    headers = {"Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    if suffix == ".atom":
        headers["Vary"] = "Accept-Encoding, Accept"
        if opens_as_page(accept):
            media_type = FEED_AS_PAGE_TYPE
    return FileResponse(full_path, status_code=status_code, stat_result=stat_result,
                        media_type=media_type, headers=headers)


def opens_as_page(accept: str) -> bool:
    """Whether a request for a feed comes from a browser opening it as a page: it asks for
    HTML and not for Atom. Browsers show ``application/atom+xml`` as plain text and apply the
    feed's XSLT only to XML; feed readers ask for Atom, or for anything, and get Atom."""
    accept = accept.lower()
    return "text/html" in accept and "atom" not in accept


def _in_memory_response(full_path: str | os.PathLike[str], status_code: int,
                        accept: str = "") -> Response | None:
    """The whole file in one read, with headers from the same open file; None: stream it.

    Why: ``FileResponse`` streams through a worker thread per 64 KiB chunk (plus open and close);
    for a feed of 150 KB that is most of the cost, and reading it on the loop (a hot page-cache
    read of well under a millisecond) doubles the built-in server's throughput. Stat and body come
    from one file descriptor, so a feed republished (renamed over) meanwhile is sent whole, old
    or new, never with the old length and the new bytes.
    """
    try:
        with open(full_path, "rb") as handle:
            snapshot = os.fstat(handle.fileno())
            data = handle.read(IN_MEMORY_MAX_BYTES + 1)
    except OSError:  # removed or made unreadable since the lookup: as absent as it can be
        raise HTTPException(status_code=404) from None
    if len(data) != snapshot.st_size:
        return None  # written to in place while we read: not our publisher; stream it
    headers = _file_response(full_path, snapshot, status_code, accept).headers
    return Response(data, status_code=status_code, headers=dict(headers))


def _is_plain_relative(path: str) -> bool:
    """True for ``.``, ``a.atom``, ``org/x.atom``; False for anything hidden, absolute or odd."""
    if "\\" in path or "\x00" in path or path.startswith("/"):
        return False
    return not any(part.startswith(".") for part in PurePosixPath(path).parts)


class EncodingHeaders:
    """Fixes two headers after ``GZipMiddleware`` has had its say.

    - A gzipped body is a different representation from the file, so its ``ETag`` must not be
      the file's strong one (RFC 9110 §8.8.3; nginx weakens it too). We weaken it whenever the
      client accepts gzip and the response varies on it, so a 200, its HEAD and a later 304 all
      show the same ``W/"…"`` (a 304 must repeat the 200's validator). ``StaticFiles`` compares
      ``If-None-Match`` weakly, so either form still earns a 304.
    - ``Vary: Accept-Encoding`` is set on every file response (so 304s and HEADs carry it) and
      ``GZipMiddleware`` adds it again on bodies; say it once.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        accepts_gzip = "gzip" in Headers(scope=scope).get("accept-encoding", "")

        async def send_fixed(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _fixed_headers(message.get("headers", []), accepts_gzip)
            await send(message)

        await self.app(scope, receive, send_fixed)


def _fixed_headers(raw: list[tuple[bytes, bytes]], accepts_gzip: bool
                   ) -> list[tuple[bytes, bytes]]:
    headers = MutableHeaders(raw=list(raw))
    vary = [v.strip() for value in headers.getlist("vary") for v in value.split(",") if v.strip()]
    if len(vary) > 1:
        headers["vary"] = ", ".join(dict.fromkeys(vary))
    etag = headers.get("etag")
    gzippable = accepts_gzip and "accept-encoding" in (v.lower() for v in vary)
    if etag and not etag.startswith("W/") and (gzippable or headers.get("content-encoding")):
        headers["etag"] = "W/" + etag
    return headers.raw


class HealthEndpoint:
    """``/healthz``: the daemon's health as JSON, or a constant answer for a static directory.

    An ASGI class rather than a function route so that other methods get the same
    ``405`` and ``Allow: GET, HEAD`` as the files do.
    """

    def __init__(self, health: HealthCheck | None) -> None:
        self.health = health

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            response = Response("Method Not Allowed", status_code=405, media_type="text/plain",
                                headers={"Allow": ALLOWED_METHODS})
        else:
            # The check may take a lock or read the store; keep it off the event loop.
            status, body = await run_in_threadpool(self.answer)
            response = Response(json.dumps(body, ensure_ascii=False, default=str),
                                status_code=status, media_type="application/json",
                                headers={"Cache-Control": HEALTH_CACHE_CONTROL})
        await response(scope, receive, send)

    def answer(self) -> tuple[int, dict[str, Any]]:
        if self.health is None:
            return 200, {"status": "ok", "mode": "static"}
        try:
            body = self.health()
        except Exception:  # a bug in the check must not look like a healthy service
            logger.exception("serve.health_check_failed")
            return 503, {"status": "failing", "error": "the health check itself failed"}
        return (200 if body.get("status") in HEALTHY_STATUSES else 503), body


# --- connection abuse ------------------------------------------------------------------------


def connection_limits(soft_nofile: int | None = None, in_use: int | None = None
                      ) -> tuple[int, int]:
    """``(max_connections, backlog)`` for this process's descriptor limit.

    Accepting a connection takes a descriptor; with none left, ``accept()`` fails with EMFILE,
    asyncio logs a traceback and stops accepting for a second, and everybody waits. So open
    connections are capped below the soft ``RLIMIT_NOFILE``, less the descriptors already open
    (``in_use``), :data:`FD_RESERVE` more (a quarter of a tiny limit) for files, the store and
    logs, and two listen queues' worth: asyncio accepts up to ``backlog`` connections at once,
    and another batch can arrive before the connections closed to make room are gone.
    """
    if soft_nofile is None:
        soft_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft_nofile == resource.RLIM_INFINITY:
        soft_nofile = 1 << 16
    if in_use is None:
        in_use = _open_descriptors()
    # Too short a listen queue and a burst of honest clients has its SYNs dropped (each then
    # waits a second to retry).
    backlog = min(2048, max(16, soft_nofile // 4))
    reserve = in_use + min(FD_RESERVE, soft_nofile // 4)
    return max(8, soft_nofile - reserve - 2 * backlog), backlog


def _open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux: assume a fresh process
        return 16


class ConnectionGuard:
    """One server's open connections, and those still waiting for a request head, oldest first.

    uvicorn closes an idle kept-alive connection (``timeout_keep_alive``), but any byte
    received cancels that timer, and a fresh connection has none at all: nothing bounds how
    long a client may take to send its request head (h11 only bounds its size, 16 KiB by
    default, answering 400 beyond). Its ``limit_concurrency`` answers 503
    once a limit is reached, which still accepts every connection (each taking a descriptor)
    and turns away the fast clients along with the slow ones. This guard instead:

    - gives every connection :attr:`header_timeout` seconds to send a complete request head,
      from its start and again after each response;
    - at more than :attr:`max_connections` open, closes the connection that has waited longest
      for its request head; a client that sends its request at once (every feed reader) is
      the newest waiter and is served, while trickling clients make room.
    """

    def __init__(self, max_connections: int, header_timeout: float) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.open = 0
        self.waiting: dict[GuardedH11Protocol, None] = {}  # insertion order: oldest first
        self.evicted = 0
        self.timed_out = 0

    def admit(self, connection: GuardedH11Protocol) -> None:
        self.open += 1
        if self.open > self.max_connections and self.waiting:
            oldest = next(iter(self.waiting))
            self.evicted += 1
            logger.warning("serve.connections_full max=%d: closing the connection that waited "
                           "longest for its request", self.max_connections)
            oldest.close_waiting()

    def left(self, connection: GuardedH11Protocol) -> None:
        self.open -= 1
        self.waiting.pop(connection, None)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head timeout and a connection cap (see
    :class:`ConnectionGuard`); a subclass per server sets :attr:`guard`."""

    guard: ConnectionGuard
    _head_timer: Any = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._await_request_head()
        self.guard.admit(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        self.guard.left(self)
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a whole request head arrived: it is being answered
            self._stop_waiting()

    def on_response_complete(self) -> None:
        # Armed before uvicorn goes on to a pipelined request, which would disarm it again.
        self._await_request_head()
        super().on_response_complete()

    def close_waiting(self) -> None:
        self._stop_waiting()
        if not self.transport.is_closing():
            self.transport.close()

    def _await_request_head(self) -> None:
        self._stop_waiting()
        self.guard.waiting[self] = None
        self._head_timer = self.loop.call_later(self.guard.header_timeout, self._head_too_slow)

    def _stop_waiting(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self.guard.waiting.pop(self, None)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        self.guard.timed_out += 1
        self.close_waiting()


class RepeatFilter(logging.Filter):
    """Lets the first of a kind of log record through, then counts the same kind for
    :data:`REPEAT_WINDOW` seconds; the next one after that carries the count.

    "The same kind": same logger and same first line of the message template, so records
    that differ only in a socket's number or a client's address count as one. Issue 15 item 9:
    descriptors ran out and the server wrote 167,114 tracebacks (72 MB) in 20 seconds.
    """

    MAX_KINDS = 1000

    def __init__(self, window: float = REPEAT_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.clock = clock
        # kind -> [window start, records held back, the first one's text]
        self.kinds: dict[tuple[str, str], list[Any]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, str(record.msg).split("\n", 1)[0])
        now = self.clock()
        seen = self.kinds.get(kind)
        if seen is not None and now - seen[0] < self.window:
            seen[1] += 1
            return False
        if len(self.kinds) >= self.MAX_KINDS:
            self.kinds.pop(next(iter(self.kinds)))
        self.kinds[kind] = [now, 0, record.getMessage().split("\n", 1)[0]]
        if seen is not None and seen[1]:
            record.msg = f"{record.msg} [and {int(seen[1])} more like it in the " \
                         f"{self.window:.0f} s before]"
        return True

    def pending(self) -> list[str]:
        """The kinds with suppressed records not yet reported, as ``"logger: message xN"``."""
        return [f"{name}: {text} [x{count} more]"
                for (name, _template), (_start, count, text) in self.kinds.items() if count]


_GUARDED_LOGGERS = ("asyncio", "uvicorn.error", __name__)


# --- the server ------------------------------------------------------------------------------


class _Server(uvicorn.Server):
    """uvicorn's server, told when it is listening and kept away from signals."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Never touch signal handlers: the main thread owns SIGTERM/SIGINT (see run())."""
        yield


class FeedServer:
    """One uvicorn server for an app, in a background thread or in the foreground.

    The socket is bound by :meth:`start` itself, so a taken port raises :class:`ServeError` in
    the caller's thread and ``port=0`` is resolved (see :attr:`port`) before it returns.
    """

    def __init__(self, app: ASGIApp, host: str, port: int, access_log: bool = False,
                 header_timeout: float = HEADER_TIMEOUT,
                 max_connections: int | None = None) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.access_log = access_log
        derived, self.backlog = connection_limits()
        self.guard = ConnectionGuard(max_connections or derived, header_timeout)
        self.repeats = RepeatFilter()
        self._server: _Server | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port once started (the one picked for ``port=0``), else the one asked."""
        if self._socket is not None:
            return int(self._socket.getsockname()[1])
        return self.requested_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Bind, serve in a daemon thread, and return once the server accepts connections."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("FeedServer is already running")
        self._socket = _bind(self.host, self.requested_port, self.backlog)
        for name in _GUARDED_LOGGERS:
            logging.getLogger(name).addFilter(self.repeats)
        self._server = _Server(self._config())
        self._thread = threading.Thread(target=self._serve, args=(self._server, self._socket),
                                        name="feedsvc-http", daemon=True)
        self._thread.start()
        if not self._server.ready.wait(timeout) or not self._server.started:
            self.stop()
            raise ServeError(self._address(), "the HTTP server did not start; see the log")
        logger.info("serve.listening url=%s", self.url)
        logger.info("serve.limits max_connections=%d header_timeout=%g keep_alive=%d",
                    self.guard.max_connections, self.guard.header_timeout, KEEP_ALIVE_SECONDS)

    def stop(self, timeout: float = GRACEFUL_SECONDS + 5.0) -> None:
        """Stop accepting, let in-flight responses finish (up to a grace period), and join."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("serve.stop_forced url=%s", self.url)
            server.force_exit = True
            thread.join(1.0)
        if self._socket is not None:
            self._socket.close()
        self._thread = None
        for name in _GUARDED_LOGGERS:
            logging.getLogger(name).removeFilter(self.repeats)
        for line in self.repeats.pending():
            logger.warning("serve.repeated %s", line)
        logger.info("serve.stopped connections_closed_slow=%d connections_closed_full=%d",
                    self.guard.timed_out, self.guard.evicted)

    def run(self) -> None:
        """Serve in the foreground until SIGINT or SIGTERM, then stop gracefully and return.

        A second signal cuts the grace period short. Returning normally lets the CLI exit 0.
        """
        received: list[int] = []

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            received.append(signum)
            if self._server is not None:
                self._server.should_exit = True
                self._server.force_exit = len(received) > 1

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            assert self._thread is not None
            self._thread.join()  # signal handlers still run: the lock wait is interruptible
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()
        if received:
            logger.info("serve.signal signal=%s", signal.Signals(received[0]).name)

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self.app,
            host=self.host,
            port=self.requested_port,
            access_log=self.access_log,
            log_config=None,  # leave the process's logging set-up alone
            lifespan="off",
            ws="none",
            http=type("FeedH11Protocol", (GuardedH11Protocol,), {"guard": self.guard}),
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            backlog=self.backlog,
            loop="asyncio",
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
        )

    def _serve(self, server: _Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except (Exception, SystemExit):  # the thread's last word; start() reports it too
            logger.exception("serve.crashed url=%s", self.url)
        finally:
            server.ready.set()  # wake start() even when startup failed

    def _address(self) -> str:
        return f"{self.host}:{self.port}"


def _bind(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=backlog)
    except OSError as exc:
        hint = ""
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            hint = ("; choose another port with --port, or 'port' in the [server] table of the "
                    "configuration (0 picks a free one)")
        raise ServeError(f"{host}:{port}", f"cannot listen: {exc.strerror or exc}{hint}"
                         ) from exc
    # asyncio turns Nagle's algorithm off only on sockets made with proto=IPPROTO_TCP, and
    # create_server() makes them with 0: without this, the second response on a keep-alive
    # connection waits for the client's delayed ACK (about 40 ms). Accepted sockets inherit it.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
