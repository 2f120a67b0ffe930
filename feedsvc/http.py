"""A polite HTTP client: what every feedsvc fetch goes through, whatever the site.

Manners, all in one place so no source can forget one:

- an honest ``User-Agent`` naming the project and its home page;
- one ``requests.Session`` (cookie jar, keep-alive) per host, and one request at a time per host,
  at least ``delay`` seconds after the previous one ended;
- a (connect, read) timeout on every request, and an overall deadline for the whole exchange
  (connecting, the headers, every byte of the body): when it passes, a watchdog shuts the
  exchange's socket, so a server that drips a byte a second cannot hold a fetch for ever, with
  or without ``Content-Length``. A missed deadline is not retried;
- retries with exponential backoff and jitter (tenacity) on timeouts, broken connections, 5xx and
  non-JSON answers where JSON was expected; ``429``/``503`` honour ``Retry-After`` (seconds or an
  HTTP date) up to a cap, and a longer demand fails the fetch instead of sleeping for ever;
- redirects are not followed: a ``3xx`` fails the fetch, naming where it pointed (the APIs we
  call do not redirect, and a redirect must not send us to another host or scheme);
- bodies are streamed and counted: an answer larger than ``max_response_bytes`` is refused, whatever
  ``Content-Length`` claimed, and a JSON answer holding more than ``max_json_values`` values is
  refused before it is decoded (a 10 MB ``[{},{},...]`` would take a gigabyte of objects).

Every failure is an :class:`HttpError` (a :class:`feedsvc.errors.FetchError`) naming the URL and
saying first in plain words what went wrong (``problem``: "cannot reach www.gov.kz: the name
does not resolve"), then the details. Other statuses (``4xx``) come back as a :class:`Response`:
what they mean is the caller's business. ``sleep`` and ``clock`` are injected so tests never
really wait.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity import wait_exponential_jitter as _backoff
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool

from . import __version__
from .errors import FetchError

log = logging.getLogger(__name__)

PROJECT_URL = "https://github.com/feedsvc/feedsvc"
SNIPPET_CHARS = 200
_CHUNK = 64 * 1024
#: A news page of 100 items is about 3,000 JSON values, the registry of 5,000 organisations about
#: 50,000; 250,000 values are at most some 20 MB of Python objects.
DEFAULT_MAX_JSON_VALUES = 250_000

Sleep = Callable[[float], None]
Clock = Callable[[], float]


class Budget(Protocol):
    """A limit on requests (feedsvc.poller.RequestBudget): ``acquire`` waits for a slot."""

    def acquire(self) -> None: ...


@lru_cache(maxsize=1)
def default_user_agent() -> str:
    """``feedsvc/<version> (+<home page>)``, the home page read from the package metadata."""
    home = PROJECT_URL
    try:
        from importlib.metadata import PackageNotFoundError, metadata

        for entry in metadata("feedsvc").get_all("Project-URL") or []:
            label, _, url = entry.partition(",")
            if label.strip().lower() == "homepage" and url.strip():
                home = url.strip()
    except PackageNotFoundError:  # running from a source tree that was never installed
        pass
    return f"feedsvc/{__version__} (+{home})"


@dataclass(frozen=True, slots=True)
class HttpSettings:
    delay: float = 1.0
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    #: Attempts in all, the first one included.
    attempts: int = 4
    max_response_bytes: int = 10_000_000
    #: Longest ``Retry-After`` obeyed; a server asking for more fails the fetch.
    retry_after_cap: float = 300.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    backoff_jitter: float = 1.0
    #: Longest time for one whole exchange; default: connect timeout + 2 × read timeout.
    total_timeout: float | None = None
    #: Most values (keys included) a JSON answer may hold; see :func:`json_values_at_most`.
    max_json_values: int = DEFAULT_MAX_JSON_VALUES
    user_agent: str = field(default_factory=default_user_agent)

    @property
    def deadline(self) -> float:
        if self.total_timeout is not None:
            return self.total_timeout
        return self.connect_timeout + 2 * self.read_timeout


_UNSET: Any = object()


@dataclass(slots=True)
class Response:
    """A complete answer (the body is already read). ``attempts`` counts the requests it took."""

    method: str
    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    attempts: int = 1
    max_json_values: int = DEFAULT_MAX_JSON_VALUES
    _json: Any = field(default=_UNSET, repr=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def snippet(self, limit: int = SNIPPET_CHARS) -> str:
        """The start of the body as text, on one line, for error messages."""
        return body_snippet(self.body, limit)

    def json(self) -> Any:
        """The body as JSON; :class:`HttpError` naming the URL and what came back otherwise.

        A body that may hold more than ``max_json_values`` values is refused undecoded."""
        if self._json is _UNSET:
            values = json_values_at_most(self.body, self.max_json_values)
            if values > self.max_json_values:
                raise AnswerTooBig(self.method, self.url, f"{host_of(self.url)}'s answer is "
                                   "too big to decode",
                                f"up to {values:,} JSON values, the limit is "
                                f"{self.max_json_values:,}", self.status)
            try:
                self._json = json.loads(self.body)
            except (ValueError, RecursionError) as exc:
                raise HttpError(self.method, self.url, f"{host_of(self.url)} answered something "
                                "that is not JSON", f"expected JSON, got "
                                f"{describe_body(self.body)}", self.status) from exc
        return self._json


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def json_values_at_most(body: bytes, enough: int | None = None) -> int:
    """An upper bound on the values (keys included) ``json.loads(body)`` would build.

    Outside strings, a container of k members holds k - 1 commas, so the values are at most
    1 + 2 × (commas + containers). Counted on the bytes before any object exists: first over
    the whole body, strings included (a looser bound, returned if it is within ``enough``), then,
    only if needed, without what the strings hold, one string at a time (``re.sub`` would build
    a piece per string: 200 MB for a million of them).
    """
    bound = 1 + 2 * _structure(body)
    if enough is not None and bound <= enough:
        return bound
    return bound - 2 * sum(_structure(match.group()) for match in _JSON_STRING.finditer(body))


def _structure(data: bytes) -> int:
    return data.count(b",") + data.count(b"{") + data.count(b"[")


def body_snippet(body: bytes, limit: int = SNIPPET_CHARS) -> str:
    text = body[: limit * 4].decode("utf-8", "replace")
    return " ".join(text.split())[:limit]


def describe_body(body: bytes) -> str:
    return f"{body_snippet(body)!r}" if body.strip() else "an empty body"


class HttpError(FetchError):
    """A request that failed. ``str()``: ``URL: [HTTP status: ]problem (details)``.

    ``problem`` says in plain words what went wrong, for a person ("cannot reach www.gov.kz: the
    connection was refused"); ``detail`` has what helps to dig (the body's start, the low-level
    error, how many attempts).
    """

    def __init__(self, method: str, url: str, problem: str, detail: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(url, f"{problem} ({detail})" if detail else problem, status)
        self.method = method
        self.problem = problem
        self.detail = detail


class AnswerTooBig(HttpError):
    """An answer beyond the size cap, in bytes or in JSON values: not worth another try."""


class _Transient(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(self, problem: str, detail: str | None = None, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(problem if detail is None else f"{problem} ({detail})")
        self.problem = problem
        self.detail = detail
        self.status = status
        self.retry_after = retry_after

    @property
    def reason(self) -> str:
        return str(self)


# --- the deadline of one exchange ---------------------------------------------------------------

_current = threading.local()  # the _Deadline of the exchange this thread is in, if any


class _Deadline:
    """The wall-clock limit of one exchange.

    Timeouts bound each socket operation, not their sum: a server sending a byte a second never
    trips a 30 s read timeout. So a timer runs beside the exchange, and when the deadline passes
    it shuts down the sockets of the connections the exchange used (:class:`_WatchedPool`
    reports them); the blocked read then ends at once, whatever it was waiting for.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        _current.deadline = None
        self._timer.cancel()
        with self._lock:
            self._done = True  # from now on the connections belong to other exchanges

    def watch(self, connection: Any) -> None:
        with self._lock:
            self._connections.append(connection)
            if self.expired:
                _shut(connection)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for connection in self._connections:
                _shut(connection)


def _shut(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    # The plain socket's shutdown, also under TLS: it ends a blocked read without touching the
    # TLS object the reading thread is using. OSError: already closed.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _WatchedPool:
    """Hands every connection it gives out to the deadline of the exchange asking for it."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)  # type: ignore[misc]
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.watch(connection)
        return connection


class _WatchedHTTPPool(_WatchedPool, HTTPConnectionPool):
    pass


class _WatchedHTTPSPool(_WatchedPool, HTTPSConnectionPool):
    pass


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter with pools that report their connections to the exchange's deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools have connections of their own
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


@dataclass(slots=True)
class _Host:
    session: requests.Session
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_done: float | None = None


class PoliteClient:
    """Sessions, pacing and retries for every host feedsvc talks to; safe to share by threads."""

    def __init__(self, settings: HttpSettings | None = None, *, sleep: Sleep = time.sleep,
                 clock: Clock = time.monotonic, budget: Budget | None = None) -> None:
        self.settings = settings or HttpSettings()
        #: Granted once per attempt (retries and every host included) before it is sent.
        self.budget = budget
        self._sleep = sleep
        self._clock = clock
        self._hosts: dict[str, _Host] = {}
        self._hosts_lock = threading.Lock()

    def close(self) -> None:
        with self._hosts_lock:
            for host in self._hosts.values():
                host.session.close()
            self._hosts.clear()

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                data: bytes | None = None, expect_json: bool = False) -> Response:
        """Send one request politely, retrying what is transient.

        With ``expect_json``, a 2xx answer that is not JSON counts as transient (a proxy's error
        page) and its decoded value is cached on the response. Raises :class:`FetchError` when
        the attempts run out or for anything not worth retrying (TLS, oversize, bad URL).
        """
        attempts = 0

        def attempt() -> Response:
            nonlocal attempts
            attempts += 1
            return self._attempt(method, url, headers, data, expect_json)

        retrying = Retrying(
            stop=stop_after_attempt(max(1, self.settings.attempts)),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            sleep=self._sleep,
            before_sleep=lambda state: self._log_retry(method, url, state),
            reraise=True,
        )
        try:
            response: Response = retrying(attempt)
        except _Transient as exc:
            tries = f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}"
            detail = f"{exc.detail}; {tries}" if exc.detail else tries
            raise HttpError(method, url, exc.problem, detail, exc.status) from exc
        response.attempts = attempts
        return response

    # --- one attempt ----------------------------------------------------------------------

    def _attempt(self, method: str, url: str, headers: Mapping[str, str] | None,
                 data: bytes | None, expect_json: bool) -> Response:
        host = self._host(url)
        with host.lock:
            self._pace(host)
            if self.budget is not None:
                self.budget.acquire()
            try:
                response = self._send(host.session, method, url, headers, data)
            finally:
                host.last_done = self._clock()
        return self._judge(response, expect_json)

    def _pace(self, host: _Host) -> None:
        if host.last_done is None or self.settings.delay <= 0:
            return
        remaining = host.last_done + self.settings.delay - self._clock()
        if remaining > 0:
            self._sleep(remaining)

    def _send(self, session: requests.Session, method: str, url: str,
              headers: Mapping[str, str] | None, data: bytes | None) -> Response:
        limit = self.settings.deadline
        timeout = (min(self.settings.connect_timeout, limit),
                   min(self.settings.read_timeout, limit))
        host = host_of(url)
        started = self._clock()
        with _Deadline(limit) as deadline:
            try:
                raw = session.request(method, url, headers=dict(headers or {}), data=data,
                                      timeout=timeout, stream=True, allow_redirects=False)
                with raw:
                    body = self._read_body(raw, method, url, started)
            except (requests.RequestException, _Transient, HttpError) as exc:
                if deadline.expired:
                    raise self._too_slow(method, url, None) from exc
                if isinstance(exc, _Transient | HttpError):
                    raise
                raise _request_failure(method, url, host, exc, timeout) from exc
        if deadline.expired:  # the timer fired as the last bytes came: still too late
            raise self._too_slow(method, url, raw.status_code)
        response = Response(method, raw.url or url, raw.status_code, raw.headers, body,
                            max_json_values=self.settings.max_json_values)
        if raw.is_redirect or raw.status_code in (301, 302, 303, 307, 308):
            raise _refused_redirect(response)
        return response

    def _too_slow(self, method: str, url: str, status: int | None) -> HttpError:
        limit = self.settings.deadline
        return HttpError(method, url, f"{host_of(url)} did not finish answering within the "
                         f"{limit:g} s deadline", "the whole exchange: connecting, headers and "
                         "body; not retried", status)

    def _read_body(self, raw: requests.Response, method: str, url: str,
                   started: float) -> bytes:
        cap = self.settings.max_response_bytes
        too_large = f"{host_of(url)}'s answer is too large"
        declared = raw.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise AnswerTooBig(method, url, too_large, f"{declared} bytes announced, the "
                               f"limit is {cap}", raw.status_code)
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in raw.iter_content(_CHUNK):
                total += len(chunk)
                if total > cap:
                    raise AnswerTooBig(method, url, too_large, f"more than {cap} bytes (the "
                                       "limit) and still coming", raw.status_code)
                chunks.append(chunk)
                if self._clock() - started > self.settings.deadline:
                    raise self._too_slow(method, url, raw.status_code)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Transient(f"{host_of(url)} broke the connection while answering",
                             _root_cause(exc), raw.status_code) from exc
        except requests.RequestException as exc:  # e.g. a broken gzip stream
            raise _Transient(f"{host_of(url)} sent an unreadable answer", str(exc),
                             raw.status_code) from exc
        return b"".join(chunks)

    def _judge(self, response: Response, expect_json: bool) -> Response:
        status = response.status
        host = host_of(response.url)
        if status in (429, 503):
            delay = self._retry_after(response)
            raise _Transient(f"{host} answered HTTP {status}: it asks us to slow down",
                             describe_body(response.body), status, delay)
        if status >= 500:
            raise _Transient(f"{host} answered HTTP {status}: a server error",
                             describe_body(response.body), status)
        if expect_json and response.ok:
            try:
                response.json()
            except AnswerTooBig:
                raise  # not worth another try
            except HttpError as exc:
                raise _Transient(exc.problem, exc.detail, status) from exc
        return response

    def _retry_after(self, response: Response) -> float | None:
        """Seconds the server asked us to wait; FetchError if that is beyond the cap."""
        header = response.headers.get("Retry-After")
        if header is None:
            return None
        seconds = parse_retry_after(header, datetime.now(UTC))
        if seconds is None:
            log.warning("http.bad_retry_after url=%s value=%r", response.url, header)
            return None
        cap = self.settings.retry_after_cap
        if seconds > cap:
            raise HttpError(response.method, response.url,
                            f"{host_of(response.url)} asked to wait {seconds:g} s, more than "
                            f"the {cap:g} s we wait; try again later",
                            f"Retry-After: {header}", response.status)
        return seconds

    # --- retry policy ---------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Transient) and error.retry_after is not None:
            return error.retry_after
        backoff = _backoff(initial=self.settings.backoff_initial, max=self.settings.backoff_max,
                           jitter=self.settings.backoff_jitter)
        return float(backoff(state))

    def _log_retry(self, method: str, url: str, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("http.retry method=%s url=%s attempt=%d status=%s wait=%.2f reason=%r",
                    method, url, state.attempt_number, getattr(error, "status", None), wait,
                    getattr(error, "reason", repr(error)))

    # --- hosts ----------------------------------------------------------------------------

    def _host(self, url: str) -> _Host:
        parts = urlsplit(url)
        key = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        with self._hosts_lock:
            host = self._hosts.get(key)
            if host is None:
                session = requests.Session()
                session.headers["User-Agent"] = self.settings.user_agent
                session.mount("http://", _WatchedAdapter())
                session.mount("https://", _WatchedAdapter())
                host = self._hosts[key] = _Host(session)
            return host


def parse_retry_after(value: str, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date; None if neither."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error chain, for a one-line message."""
    inner = exc
    for _ in range(10):
        reason = getattr(inner, "reason", None)
        first = inner.args[0] if inner.args else None
        nested = next((candidate for candidate in (reason, inner.__cause__, first)
                       if isinstance(candidate, BaseException)), None)
        if nested is None:
            break
        inner = nested
    return str(inner) or type(inner).__name__


def host_of(url: str) -> str:
    """The host (and port, if any) of ``url``, as a person would name it."""
    try:
        return urlsplit(url).netloc.rpartition("@")[2] or url
    except ValueError:
        return url


def _refused_redirect(response: Response) -> HttpError:
    location = response.headers.get("Location")
    here = urlsplit(response.url)
    if location is None:
        return HttpError(response.method, response.url, f"{host_of(response.url)} answered "
                         f"HTTP {response.status} without saying where to", None,
                         response.status)
    there = urlsplit(urljoin(response.url, location))
    if there.scheme != here.scheme:
        where = f"another scheme ({there.scheme or 'none'})"
    elif there.netloc != here.netloc:
        where = f"another host ({there.netloc or 'none'})"
    else:
        where = "the same host"
    return HttpError(response.method, response.url,
                     f"{host_of(response.url)} redirected to {location[:200]}, which is not "
                     "followed", f"HTTP {response.status} to {where}; redirects are never "
                     "followed", response.status)


def _request_failure(method: str, url: str, host: str, exc: requests.RequestException,
                     timeout: tuple[float, float]) -> _Transient | HttpError:
    """A failed request in plain words: transient ones (worth another try) or not."""
    cause = _root_cause(exc)
    if isinstance(exc, requests.ConnectTimeout):
        return _Transient(f"cannot reach {host}: no answer within the {timeout[0]:g} s connect "
                          "timeout", cause)
    if isinstance(exc, requests.Timeout):
        return _Transient(f"{host} did not answer within the {timeout[1]:g} s read timeout",
                          cause)
    if isinstance(exc, requests.exceptions.SSLError):
        return HttpError(method, url, f"cannot talk securely to {host}: TLS error", cause)
    if isinstance(exc, requests.ConnectionError):
        if _caused_by(exc, socket.gaierror):
            return _Transient(f"cannot reach {host}: the name does not resolve")
        if _caused_by(exc, ConnectionRefusedError):
            return _Transient(f"cannot reach {host}: the connection was refused")
        return _Transient(f"cannot reach {host}: the connection failed", cause)
    return HttpError(method, url, "the request could not be sent", str(exc))


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        inner = pending.pop()
        if id(inner) in seen:
            continue
        seen.add(id(inner))
        if isinstance(inner, kind):
            return True
        pending.extend(e for e in (getattr(inner, "reason", None), inner.__cause__,
                                   inner.__context__, *inner.args)
                       if isinstance(e, BaseException))
    return False
