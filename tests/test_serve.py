"""The built-in HTTP server, over real loopback sockets.

Requests that clients would normalise (``/../``, ``%2e%2e``, backslashes, NUL) are written as raw
request lines on a socket, so the server sees exactly what an attacker would send.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest
import requests

from feedsvc.errors import ServeError
from feedsvc.serve import FeedServer, make_app

from support import ROOT

SECRET = "SECRET-7f3a9c-do-not-serve"

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{lang}">
  <id>tag:feedsvc.test,2026:{slug}</id>
  <title>{title}</title>
  <updated>2026-08-01T09:00:00Z</updated>
  <link rel="self" href="http://127.0.0.1/{slug}.atom"/>
{entries}
</feed>
"""

ENTRY = """  <entry>
    <id>tag:feedsvc.test,2026:{slug}/{n}</id>
    <title>Жаңалық {n}: Министрлік отырыс өткізді</title>
    <updated>2026-08-0{n}T09:00:00Z</updated>
    <link href="https://www.gov.kz/memleket/entities/test/press/news/details/{n}"/>
    <summary type="html">&lt;p&gt;Министерство провело заседание по вопросам цифровизации,
      новость номер {n}. Обсуждались сроки, бюджет и ответственные.&lt;/p&gt;</summary>
  </entry>"""

OPML = """<?xml version="1.0" encoding="utf-8"?>
<opml version="2.0">
  <head><title>feedsvc feeds</title></head>
  <body>
    <outline type="rss" text="All news" xmlUrl="http://127.0.0.1/all.atom"/>
    <outline type="rss" text="Akorda" xmlUrl="http://127.0.0.1/org/akorda.atom"/>
  </body>
</opml>
"""

INDEX = """<!doctype html>
<html lang="en"><meta charset="utf-8"><title>feedsvc</title>
<h1>gov.kz feeds</h1><ul><li><a href="all.atom">All news</a></li></ul></html>
"""


def atom(slug: str, title: str, entries: int = 3, lang: str = "ru") -> str:
    body = "\n".join(ENTRY.format(slug=slug, n=n) for n in range(1, entries + 1))
    return ATOM.format(slug=slug, title=title, entries=body, lang=lang)


def build_out_dir(root: Path) -> Path:
    """An output directory as the publisher leaves it, plus traps pointing out of it."""
    out = root / "out"
    (out / "org").mkdir(parents=True)
    (out / "kk" / "org").mkdir(parents=True)
    (out / "all.atom").write_text(atom("all", "Все новости"), encoding="utf-8")
    (out / "org" / "akorda.atom").write_text(atom("org/akorda", "Ақорда"), encoding="utf-8")
    (out / "kk" / "org" / "akorda.atom").write_text(atom("kk/org/akorda", "Ақорда", lang="kk"),
                                                    encoding="utf-8")
    (out / "feeds.opml").write_text(OPML, encoding="utf-8")
    (out / "index.html").write_text(INDEX, encoding="utf-8")
    (out / ".lock").write_text(f"pid 1 {SECRET}", encoding="utf-8")
    (out / ".tmp-abc123.part").write_text(atom("tmp", SECRET), encoding="utf-8")
    (out / "org" / ".hidden.atom").write_text(SECRET, encoding="utf-8")
    (root / "secret.txt").write_text(SECRET, encoding="utf-8")
    (root / "outside").mkdir()
    (root / "outside" / "secret.atom").write_text(SECRET, encoding="utf-8")
    (out / "leak.atom").symlink_to(root / "secret.txt")
    (out / "relative-leak.atom").symlink_to(Path("..") / "secret.txt")
    (out / "outside").symlink_to(root / "outside", target_is_directory=True)
    (out / "to-lock.atom").symlink_to(out / ".lock")
    (out / "latest.atom").symlink_to(out / "all.atom")  # inside the root: allowed
    return out


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_out_dir(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[FeedServer]:
    feed_server = FeedServer(make_app(site), "127.0.0.1", 0)
    feed_server.start()
    yield feed_server
    feed_server.stop()


@pytest.fixture
def serve(site: Path) -> Iterator[Callable[..., FeedServer]]:
    """Start a server for ``make_app(site, health)``; stopped after the test."""
    started: list[FeedServer] = []

    def start(health: Callable[[], dict[str, Any]] | None = None,
              access_log: bool = False) -> FeedServer:
        feed_server = FeedServer(make_app(site, health), "127.0.0.1", 0, access_log=access_log)
        feed_server.start()
        started.append(feed_server)
        return feed_server

    yield start
    for feed_server in started:
        feed_server.stop()


def url(server: FeedServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


class Raw:
    """A response read off a raw socket: nothing decoded, nothing normalised."""

    def __init__(self, data: bytes) -> None:
        head, _, self.body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.data = data


def raw_request(server: FeedServer, target: str, method: str = "GET",
                headers: dict[str, str] | None = None) -> Raw:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return Raw(b"".join(chunks))


def get_raw_bytes(server: FeedServer, path: str,
                  headers: dict[str, str]) -> http.client.HTTPResponse:
    """A GET through http.client, which (unlike requests) leaves gzip bodies alone."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", path, headers=headers)
    return connection.getresponse()


# --- content types and the index ---------------------------------------------------------------


def test_atom_is_served_as_atom_utf8(server: FeedServer, site: Path) -> None:
    response = requests.get(url(server, "/all.atom"), timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert response.content == (site / "all.atom").read_bytes()


def test_opml_is_served_as_opml_utf8(server: FeedServer) -> None:
    response = requests.get(url(server, "/feeds.opml"), timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/x-opml; charset=utf-8"


def test_root_serves_index_html(server: FeedServer, site: Path) -> None:
    response = requests.get(url(server, "/"), timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.content == (site / "index.html").read_bytes()


@pytest.mark.parametrize("path", ["/org/akorda.atom", "/kk/org/akorda.atom"])
def test_feeds_in_subdirectories_are_served(server: FeedServer, site: Path, path: str) -> None:
    response = requests.get(url(server, path), timeout=5)
    assert response.status_code == 200
    assert response.content == (site / path.lstrip("/")).read_bytes()


def test_symlink_that_stays_inside_the_root_is_served(server: FeedServer, site: Path) -> None:
    response = requests.get(url(server, "/latest.atom"), timeout=5)
    assert response.status_code == 200
    assert response.content == (site / "all.atom").read_bytes()


def test_missing_file_is_404(server: FeedServer) -> None:
    assert requests.get(url(server, "/org/nope.atom"), timeout=5).status_code == 404


def test_served_feed_parses_with_feedparser(server: FeedServer) -> None:
    response = requests.get(url(server, "/all.atom"), timeout=5)
    parsed = feedparser.parse(response.content,
                              response_headers={"content-type": response.headers["Content-Type"]})
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.title == "Все новости"
    assert len(parsed.entries) == 3


# --- caching -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "expected"), [
    ("/all.atom", "public, max-age=300"),
    ("/feeds.opml", "public, max-age=300"),
    ("/", "public, max-age=60"),
])
def test_cache_control_suits_the_file(server: FeedServer, path: str, expected: str) -> None:
    assert requests.get(url(server, path), timeout=5).headers["Cache-Control"] == expected


def test_if_none_match_with_the_etag_gives_304_without_body(server: FeedServer) -> None:
    etag = raw_request(server, "/all.atom").headers["etag"]
    assert not etag.startswith("W/")  # no gzip asked for: the file's own strong validator
    response = raw_request(server, "/all.atom", headers={"If-None-Match": etag})
    assert response.status == 304
    assert response.body == b""
    assert response.headers["etag"] == etag
    assert response.headers["cache-control"] == "public, max-age=300"


def test_if_none_match_with_another_etag_gives_the_feed(server: FeedServer, site: Path) -> None:
    response = requests.get(url(server, "/all.atom"), headers={"If-None-Match": '"stale"'},
                            timeout=5)
    assert response.status_code == 200
    assert response.content == (site / "all.atom").read_bytes()


def test_if_modified_since_last_modified_gives_304_without_body(server: FeedServer) -> None:
    last_modified = requests.get(url(server, "/all.atom"), timeout=5).headers["Last-Modified"]
    response = raw_request(server, "/all.atom", headers={"If-Modified-Since": last_modified})
    assert response.status == 304
    assert response.body == b""


def test_if_modified_since_before_the_change_gives_the_feed(server: FeedServer) -> None:
    response = requests.get(url(server, "/all.atom"), timeout=5,
                            headers={"If-Modified-Since": "Thu, 01 Jan 2015 00:00:00 GMT"})
    assert response.status_code == 200


def test_rewritten_feed_gets_a_new_etag(serve: Callable[..., FeedServer], site: Path) -> None:
    server = serve()
    path = site / "changing.atom"
    path.write_text(atom("changing", "Before", entries=1), encoding="utf-8")
    before = requests.get(url(server, "/changing.atom"), timeout=5).headers["ETag"]
    path.write_text(atom("changing", "After, with more entries", entries=2), encoding="utf-8")
    response = requests.get(url(server, "/changing.atom"), headers={"If-None-Match": before},
                            timeout=5)
    assert response.status_code == 200
    assert response.headers["ETag"] != before


def test_head_has_the_headers_and_no_body(server: FeedServer, site: Path) -> None:
    response = raw_request(server, "/all.atom", method="HEAD")
    assert response.status == 200
    assert response.body == b""
    assert response.headers["content-length"] == str((site / "all.atom").stat().st_size)
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert "etag" in response.headers
    assert "last-modified" in response.headers


def test_range_request_gets_the_requested_bytes(server: FeedServer, site: Path) -> None:
    response = requests.get(url(server, "/all.atom"), headers={"Range": "bytes=0-99"},
                            timeout=5)
    assert response.status_code == 206
    assert response.content == (site / "all.atom").read_bytes()[:100]


def test_large_file_is_streamed_whole(serve: Callable[..., FeedServer], site: Path) -> None:
    big = atom("big", "Большая лента", entries=9) * 300  # ~1.6 MB, past the in-memory limit
    (site / "big.atom").write_text(big, encoding="utf-8")
    response = requests.get(url(serve(), "/big.atom"), headers={"Accept-Encoding": "identity"},
                            timeout=5)
    assert response.status_code == 200
    assert response.content == big.encode("utf-8")


BROWSER_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                  "image/webp,*/*;q=0.8")


@pytest.mark.parametrize(("accept", "expected"), [
    (BROWSER_ACCEPT, "application/xml; charset=utf-8"),
    ("application/atom+xml, application/rss+xml;q=0.9, text/html;q=0.1",
     "application/atom+xml; charset=utf-8"),
    ("*/*", "application/atom+xml; charset=utf-8"),
    ("", "application/atom+xml; charset=utf-8"),
])
def test_a_browser_opening_a_feed_gets_it_as_xml_so_its_stylesheet_applies(
        server: FeedServer, accept: str, expected: str) -> None:
    response = get_raw_bytes(server, "/all.atom", {"Accept": accept} if accept else {})
    response.read()
    assert response.status == 200
    assert response.getheader("Content-Type") == expected
    assert "Accept" in response.getheader("Vary").split(", ")


@pytest.mark.parametrize(("name", "expected"), [
    ("style.css", "text/css; charset=utf-8"),
    ("site.js", "text/javascript; charset=utf-8"),
    ("feed.xsl", "application/xslt+xml; charset=utf-8"),
])
def test_page_assets_are_served_with_their_types(tmp_path: Path, name: str,
                                                 expected: str) -> None:
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / name).write_text("/* x */", encoding="utf-8")
    feed_server = FeedServer(make_app(tmp_path), "127.0.0.1", 0)
    feed_server.start()
    try:
        response = get_raw_bytes(feed_server, f"/static/{name}", {})
        response.read()
        assert response.getheader("Content-Type") == expected
    finally:
        feed_server.stop()


# --- compression -------------------------------------------------------------------------------


def test_gzip_when_the_client_accepts_it(server: FeedServer, site: Path) -> None:
    response = get_raw_bytes(server, "/all.atom", {"Accept-Encoding": "gzip"})
    body = response.read()
    assert response.status == 200
    assert response.getheader("Content-Encoding") == "gzip"
    assert response.getheader("Vary") == "Accept-Encoding, Accept"  # see opens_as_page
    assert gzip.decompress(body) == (site / "all.atom").read_bytes()


def test_plain_when_the_client_does_not_accept_gzip(server: FeedServer, site: Path) -> None:
    response = get_raw_bytes(server, "/all.atom", {"Accept-Encoding": "identity"})
    assert response.read() == (site / "all.atom").read_bytes()
    assert response.getheader("Content-Encoding") is None
    assert response.getheader("Vary") == "Accept-Encoding, Accept"


def test_gzipped_response_has_a_weak_etag_that_still_gives_304(server: FeedServer) -> None:
    response = get_raw_bytes(server, "/all.atom", {"Accept-Encoding": "gzip"})
    response.read()
    etag = response.getheader("ETag")
    assert etag is not None and etag.startswith('W/"')
    again = raw_request(server, "/all.atom",
                        headers={"If-None-Match": etag, "Accept-Encoding": "gzip"})
    assert again.status == 304
    assert again.headers["etag"] == etag  # a 304 repeats the validator the 200 carried


# --- what is never served ----------------------------------------------------------------------


TRAVERSALS = [
    "/../secret.txt",
    "/../../../../../../etc/passwd",
    "/org/../../secret.txt",
    "/./../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E%2Fsecret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/%252e%252e/secret.txt",
    "/%252e%252e%252fsecret.txt",
    "/..\\secret.txt",
    "/..%5csecret.txt",
    "/%5c..%5csecret.txt",
    "//etc/passwd",
    "/%2fetc%2fpasswd",
    "{absolute}",
    "/leak.atom",
    "/relative-leak.atom",
    "/outside/secret.atom",
    "/all.atom%00",
    "/all.atom%00.html",
    "/%00/../secret.txt",
    "/..%00/secret.txt",
    "http://127.0.0.1/../secret.txt",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_paths_leading_out_of_the_root_are_404(server: FeedServer, site: Path,
                                               target: str) -> None:
    target = target.replace("{absolute}", "/" + str(site.parent / "secret.txt"))
    response = raw_request(server, target)
    assert response.status == 404
    assert SECRET.encode() not in response.data
    assert b"root:" not in response.data


@pytest.mark.parametrize("path", ["/.lock", "/.tmp-abc123.part", "/org/.hidden.atom",
                                  "/to-lock.atom", "/%2elock", "/org/%2ehidden.atom"])
def test_dotfiles_are_404(server: FeedServer, path: str) -> None:
    response = raw_request(server, path)
    assert response.status == 404
    assert SECRET.encode() not in response.data


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", ["/all.atom", "/", "/healthz", "/missing.atom"])
def test_methods_other_than_get_and_head_are_405(server: FeedServer, method: str,
                                                 path: str) -> None:
    response = requests.request(method, url(server, path), timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"


# --- /healthz ----------------------------------------------------------------------------------


HEALTHY = {
    "status": "ok",
    "sources": {"seeds": {"last_success": "2026-08-01T09:00:00+00:00", "last_failure": None,
                          "last_error": None, "items": 42}},
    "last_regeneration": "2026-08-01T09:00:01+00:00",
}
FAILING = {
    "status": "failing",
    "sources": {"https://www.gov.kz/memleket/entities/akorda": {
        "last_success": None, "last_failure": "2026-08-01T09:00:00+00:00",
        "last_error": "HTTP 503: unavailable", "items": 0}},
    "last_regeneration": None,
}


def test_healthz_is_200_with_the_report_when_ok(serve: Callable[..., FeedServer]) -> None:
    server = serve(health=lambda: HEALTHY)
    response = requests.get(url(server, "/healthz"), timeout=5)
    assert response.status_code == 200
    assert response.json() == HEALTHY
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_is_200_when_only_degraded(serve: Callable[..., FeedServer]) -> None:
    """Some of the portal's streams failing is news about them, not an outage."""
    degraded = {**HEALTHY, "status": "degraded"}
    server = serve(health=lambda: degraded)
    response = requests.get(url(server, "/healthz"), timeout=5)
    assert response.status_code == 200
    assert response.json() == degraded


def test_healthz_is_503_with_the_report_when_failing(serve: Callable[..., FeedServer]) -> None:
    server = serve(health=lambda: FAILING)
    response = requests.get(url(server, "/healthz"), timeout=5)
    assert response.status_code == 503
    assert response.json() == FAILING
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_is_static_ok_without_a_check(server: FeedServer) -> None:
    response = requests.get(url(server, "/healthz"), timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "mode": "static"}
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_is_503_when_the_check_raises(serve: Callable[..., FeedServer],
                                              caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("store is gone")

    server = serve(health=broken)
    response = requests.get(url(server, "/healthz"), timeout=5)
    assert response.status_code == 503
    assert response.json()["status"] == "failing"
    assert "serve.health_check_failed" in caplog.text


def test_healthz_head_has_no_body(serve: Callable[..., FeedServer]) -> None:
    server = serve(health=lambda: FAILING)
    response = raw_request(server, "/healthz", method="HEAD")
    assert response.status == 503
    assert response.body == b""


# --- the server's life -------------------------------------------------------------------------


def test_port_zero_binds_a_free_port_before_start_returns(site: Path) -> None:
    feed_server = FeedServer(make_app(site), "127.0.0.1", 0)
    feed_server.start()
    try:
        assert feed_server.port != 0
        assert requests.get(url(feed_server, "/"), timeout=5).status_code == 200
    finally:
        feed_server.stop()


def test_stop_closes_the_listening_socket(site: Path) -> None:
    feed_server = FeedServer(make_app(site), "127.0.0.1", 0)
    feed_server.start()
    port = feed_server.port
    feed_server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_taken_port_raises_serve_error(server: FeedServer, site: Path) -> None:
    with pytest.raises(ServeError, match=f"127.0.0.1:{server.port}"):
        FeedServer(make_app(site), "127.0.0.1", server.port).start()


def test_missing_directory_raises_serve_error(tmp_path: Path) -> None:
    with pytest.raises(ServeError, match="no such directory"):
        make_app(tmp_path / "never-built")


def test_start_leaves_signal_handlers_alone(site: Path) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    feed_server = FeedServer(make_app(site), "127.0.0.1", 0)
    feed_server.start()
    try:
        during = {sig: signal.getsignal(sig) for sig in before}
    finally:
        feed_server.stop()
    assert during == before
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_no_access_log_by_default(serve: Callable[..., FeedServer],
                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    requests.get(url(serve(), "/all.atom"), timeout=5)
    assert not [record for record in caplog.records if record.name == "uvicorn.access"]


def test_access_log_flag_logs_one_line_per_request(serve: Callable[..., FeedServer],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = serve(access_log=True)
    requests.get(url(server, "/all.atom"), timeout=5)
    requests.get(url(server, "/nope.atom"), timeout=5)
    lines = [record.getMessage() for record in caplog.records if record.name == "uvicorn.access"]
    assert len(lines) == 2
    assert "/all.atom" in lines[0] and "200" in lines[0]


RUN_SCRIPT = """
import logging, sys
from pathlib import Path
from feedsvc.serve import FeedServer, make_app
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
FeedServer(make_app(Path(sys.argv[1])), "127.0.0.1", 0).run()
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_in_the_foreground_ends_with_status_0_on_signal(site: Path,
                                                            sig: signal.Signals) -> None:
    child = subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, str(site)],
                             stderr=subprocess.PIPE, text=True)
    try:
        listening = _wait_for_line(child, "serve.listening", deadline=time.monotonic() + 20)
        port = int(listening.rsplit(":", 1)[1].strip("/\n"))
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        child.send_signal(sig)
        assert child.wait(timeout=20) == 0
        assert "Traceback" not in (child.stderr.read() if child.stderr else "")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _wait_for_line(child: subprocess.Popen[str], marker: str, deadline: float) -> str:
    assert child.stderr is not None
    while (remaining := deadline - time.monotonic()) > 0:
        if not select.select([child.stderr], [], [], remaining)[0]:
            break
        line = child.stderr.readline()
        if marker in line:
            return line
        if not line and child.poll() is not None:
            break
    raise AssertionError(f"the server never logged {marker!r}")


def test_a_one_shot_build_never_loads_the_server(tmp_path: Path) -> None:
    """``feedsvc build`` (what cron runs) publishes without importing uvicorn or starlette.

    A real build of the seeds through the command line, in a fresh interpreter; the modules
    loaded at its end are what a build pays for. Importing only the bare package, as this test
    once did, could not fail: ``feedsvc/__init__.py`` imports nothing.
    """
    shutil.copytree(ROOT / "seeds", tmp_path / "seeds")
    code = ("import sys\n"
            "from feedsvc.cli import main\n"
            "try:\n"
            "    main(['build', '--log-level', 'warning'])\n"
            "except SystemExit as done:\n"
            "    assert not done.code, done.code\n"
            "print(sorted(m for m in ('uvicorn', 'starlette') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, check=True, timeout=120,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert (tmp_path / "feeds" / "all.atom").exists(), result.stderr
    assert result.stdout.strip() == "[]"
