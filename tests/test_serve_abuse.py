"""Slow and abusive clients against a real ``feedsvc serve`` process on 127.0.0.1 (issue 15
item 9): a client that never finishes its request head is closed, descriptors never run out,
normal requests still get through, and the log stays small. Every wait is bounded."""

from __future__ import annotations

import logging
import re
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedsvc.serve import FD_RESERVE, RepeatFilter, connection_limits

DEADLINE = 20.0
FEED = b"<feed>" + b"x" * 100 + b"</feed>"


class ServeProcess:
    """``feedsvc serve`` in a subprocess, optionally with a small descriptor limit."""

    def __init__(self, root: Path, *args: str, nofile: int | None = None) -> None:
        (root / "feeds").mkdir()
        (root / "feeds" / "all.atom").write_bytes(FEED)
        self.log = root / "serve.log"

        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        with self.log.open("w") as handle:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "feedsvc.cli", "serve", "--port", "0", *args],
                cwd=root, stdout=handle, stderr=subprocess.STDOUT, preexec_fn=limit)
        end = time.monotonic() + DEADLINE
        while not (found := re.search(r"serve\.listening url=http://[^:]+:(\d+)/",
                                      self.log.read_text())):
            assert self.proc.poll() is None and time.monotonic() < end, self.log.read_text()
            time.sleep(0.05)
        self.port = int(found.group(1))

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)

    def get(self, path: str = "/all.atom") -> bytes:
        with self.connect() as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
            return _read_all(sock)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(DEADLINE)


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[type[ServeProcess]]:
    started: list[ServeProcess] = []

    class Started(ServeProcess):
        def __init__(self, *args: str, nofile: int | None = None) -> None:
            super().__init__(tmp_path, *args, nofile=nofile)
            started.append(self)

    yield Started
    for server in started:
        server.stop()


def test_a_partial_request_line_is_closed_after_the_header_timeout(server_factory) -> None:
    server = server_factory("--header-timeout", "1")
    with server.connect() as slow:
        slow.sendall(b"GET /all.at")  # and never the rest
        started = time.monotonic()
        assert slow.recv(1024) == b""  # closed by the server (the socket's timeout is 20 s)
        waited = time.monotonic() - started
    assert waited < DEADLINE
    assert b"200 OK" in server.get()


def test_a_connection_that_sends_nothing_is_closed_too(server_factory) -> None:
    server = server_factory("--header-timeout", "1")
    with server.connect() as idle:
        assert idle.recv(1024) == b""


def test_a_trickle_after_a_first_request_does_not_keep_the_connection(server_factory) -> None:
    """uvicorn's keep-alive timer is cancelled by any byte; the head timeout is not."""
    server = server_factory("--header-timeout", "1")
    with server.connect() as sock:
        sock.sendall(b"GET /all.atom HTTP/1.1\r\nHost: t\r\n\r\n")
        first = sock.recv(65536)
        assert b"200 OK" in first
        end = time.monotonic() + DEADLINE
        closed = False
        while not closed and time.monotonic() < end:
            try:
                sock.sendall(b"G")
                sock.settimeout(0.3)
                closed = sock.recv(1024) == b""
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
    assert closed


def test_more_slow_connections_than_descriptors_still_serve_a_normal_get(
        server_factory) -> None:
    nofile = 128
    server = server_factory("--header-timeout", "30", nofile=nofile)
    slow = []
    try:
        for _ in range(nofile + 12):
            sock = server.connect()
            sock.sendall(b"GET /all.atom HTTP/1.1\r\nHost: t\r\n")  # the head never ends
            slow.append(sock)
        for _ in range(3):
            assert b"200 OK" in server.get()
    finally:
        for sock in slow:
            sock.close()
    server.stop()
    log = server.log.read_text()
    assert "Too many open files" not in log and "out of system resource" not in log, log
    assert log.count("WARNING serve.connections_full") == 1  # once...
    assert re.search(r"serve\.repeated feedsvc\.serve: serve\.connections_full .* \[x\d+ more\]",
                     log)  # ...then counted
    assert len(log) < 4096, log


def test_connection_limits_stay_below_the_descriptor_limit() -> None:
    for soft in (128, 1024, 65536):
        most, backlog = connection_limits(soft, in_use=12)
        assert most + 2 * backlog + 12 + min(FD_RESERVE, soft // 4) <= soft
        assert most >= 8 and backlog >= 16


def test_repeat_filter_logs_once_then_a_count() -> None:
    now = [0.0]
    repeats = RepeatFilter(window=60, clock=lambda: now[0])

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, None, None)

    assert repeats.filter(record("socket.accept() out of system resource\nsocket: fd=7"))
    passed = [repeats.filter(record(f"socket.accept() out of system resource\nsocket: fd={n}"))
              for n in range(500)]
    assert not any(passed)
    assert repeats.pending() == ["asyncio: socket.accept() out of system resource [x500 more]"]
    assert repeats.filter(record("another error"))
    now[0] = 61.0
    later = record("socket.accept() out of system resource\nsocket: fd=9")
    assert repeats.filter(later)
    assert "[and 500 more like it in the 60 s before]" in later.getMessage()
