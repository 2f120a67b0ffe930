"""A polite HTTP client: what every feedsvc fetch goes through, whatever the site.

Manners, all in one place so no source can forget one:

- an honest ``User-Agent`` naming the project and its home page;
- one ``requests.Session`` (cookie jar, keep-alive) per host, and one request at a time per host,
  at least ``delay`` seconds after the previous one ended;
- a (connect, read) timeout on every request, and an overall deadline for reading a body so a
  server that trickles bytes cannot hold a fetch for ever;
- retries with exponential backoff and jitter (tenacity) on timeouts, broken connections, 5xx and
  non-JSON answers where JSON was expected; ``429``/``503`` honour ``Retry-After`` (seconds or an
  HTTP date) up to a cap, and a longer demand fails the fetch instead of sleeping for ever;
- bodies are streamed and counted: an answer larger than ``max_response_bytes`` is refused, whatever
  ``Content-Length`` claimed.

Every failure is a :class:`feedsvc.errors.FetchError` naming the URL, the status if there was one,
and what was wrong. Other statuses (``4xx``) come back as a :class:`Response`: what they mean is
the caller's business. ``sleep`` and ``clock`` are injected so tests never really wait.
"""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity import wait_exponential_jitter as _backoff

from . import __version__
from .errors import FetchError

log = logging.getLogger(__name__)

PROJECT_URL = "https://github.com/feedsvc/feedsvc"
SNIPPET_CHARS = 200
_CHUNK = 64 * 1024

Sleep = Callable[[float], None]
Clock = Callable[[], float]


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
    #: Longest time for one whole answer; default: connect timeout + 2 × read timeout.
    total_timeout: float | None = None
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
    _json: Any = field(default=_UNSET, repr=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def snippet(self, limit: int = SNIPPET_CHARS) -> str:
        """The start of the body as text, on one line, for error messages."""
        return body_snippet(self.body, limit)

    def json(self) -> Any:
        """The body as JSON; :class:`FetchError` naming the URL and what came back otherwise."""
        if self._json is _UNSET:
            try:
                self._json = json.loads(self.body)
            except (ValueError, RecursionError) as exc:
                raise FetchError(self.url, f"expected JSON, got {describe_body(self.body)}",
                                 self.status) from exc
        return self._json


def body_snippet(body: bytes, limit: int = SNIPPET_CHARS) -> str:
    text = body[: limit * 4].decode("utf-8", "replace")
    return " ".join(text.split())[:limit]


def describe_body(body: bytes) -> str:
    return f"{body_snippet(body)!r}" if body.strip() else "an empty body"


class _Transient(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(self, reason: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


@dataclass(slots=True)
class _Host:
    session: requests.Session
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_done: float | None = None


class PoliteClient:
    """Sessions, pacing and retries for every host feedsvc talks to; safe to share by threads."""

    def __init__(self, settings: HttpSettings | None = None, *, sleep: Sleep = time.sleep,
                 clock: Clock = time.monotonic) -> None:
        self.settings = settings or HttpSettings()
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
            raise FetchError(url, f"{exc.reason} (gave up after {attempts} attempt"
                                  f"{'s' if attempts != 1 else ''})", exc.status) from exc
        response.attempts = attempts
        return response

    # --- one attempt ----------------------------------------------------------------------

    def _attempt(self, method: str, url: str, headers: Mapping[str, str] | None,
                 data: bytes | None, expect_json: bool) -> Response:
        host = self._host(url)
        with host.lock:
            self._pace(host)
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
        timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        started = self._clock()
        try:
            raw = session.request(method, url, headers=dict(headers or {}), data=data,
                                  timeout=timeout, stream=True)
        except requests.Timeout as exc:
            raise _Transient(f"timed out ({_timeout_kind(exc)}, limits {timeout[0]:g} s "
                             f"connect / {timeout[1]:g} s read)") from exc
        except requests.exceptions.SSLError as exc:
            raise FetchError(url, f"TLS error: {exc}") from exc
        except requests.ConnectionError as exc:
            raise _Transient(f"connection failed: {_root_cause(exc)}") from exc
        except requests.RequestException as exc:
            raise FetchError(url, f"request failed: {exc}") from exc
        with raw:
            body = self._read_body(raw, url, started)
        return Response(method, raw.url or url, raw.status_code, raw.headers, body)

    def _read_body(self, raw: requests.Response, url: str, started: float) -> bytes:
        cap = self.settings.max_response_bytes
        declared = raw.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise FetchError(url, f"response too large: {declared} bytes announced, the limit "
                                  f"is {cap}", raw.status_code)
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in raw.iter_content(_CHUNK):
                total += len(chunk)
                if total > cap:
                    raise FetchError(url, f"response too large: more than {cap} bytes (the "
                                          "limit) and still coming", raw.status_code)
                chunks.append(chunk)
                if self._clock() - started > self.settings.deadline:
                    raise _Transient(f"too slow: the answer was not complete after "
                                     f"{self.settings.deadline:g} s", raw.status_code)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Transient(f"connection broke while reading the answer: {_root_cause(exc)}",
                             raw.status_code) from exc
        except requests.RequestException as exc:  # e.g. a broken gzip stream
            raise _Transient(f"unreadable answer: {exc}", raw.status_code) from exc
        return b"".join(chunks)

    def _judge(self, response: Response, expect_json: bool) -> Response:
        status = response.status
        if status in (429, 503):
            delay = self._retry_after(response)
            raise _Transient(f"server asked to slow down: {describe_body(response.body)}",
                             status, delay)
        if status >= 500:
            raise _Transient(f"server error: {describe_body(response.body)}", status)
        if expect_json and response.ok:
            try:
                response.json()
            except FetchError as exc:
                raise _Transient(exc.reason, status) from exc
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
            raise FetchError(response.url, f"server asked to wait {seconds:g} s (Retry-After: "
                                           f"{header}), more than the {cap:g} s we wait; try "
                                           "again later", response.status)
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


def _timeout_kind(exc: requests.Timeout) -> str:
    return "connecting" if isinstance(exc, requests.ConnectTimeout) else "waiting for the answer"


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
