"""A server on 127.0.0.1 that answers too slowly on purpose, for what werkzeug cannot do.

Every request gets the same treatment (``mode``):

- ``"drip-length"``: headers at once with ``Content-Length: 1000000``, then one byte every
  ``interval`` seconds;
- ``"drip-chunked"``: the same body in one-byte chunks (``Transfer-Encoding: chunked``);
- ``"drip-headers"``: the status line and headers themselves, one byte at a time.

A drip stops when the client goes away, when the server stops, or after ``give_up`` seconds
(then the connection is closed), so a test of a client that does not stop still ends.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from typing import Any

HEADERS = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
           b"X-Padding: " + b"x" * 200 + b"\r\n")


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.request.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            data += chunk
        with self.server.lock:
            self.server.requests.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
        with contextlib.suppress(OSError):  # the client went away: what we wanted
            self._drip()

    def _drip(self) -> None:
        server = self.server
        mode = server.mode
        if mode == "drip-headers":
            self._slowly(HEADERS + b"Content-Length: 2\r\n\r\n[]", lambda byte: byte)
        elif mode == "drip-chunked":
            self.request.sendall(HEADERS + b"Transfer-Encoding: chunked\r\n\r\n")
            self._slowly(b"[" + b" " * 999_999, lambda byte: b"1\r\n" + byte + b"\r\n")
        else:
            self.request.sendall(HEADERS + b"Content-Length: 1000000\r\n\r\n")
            self._slowly(b"[" + b" " * 999_999, lambda byte: byte)

    def _slowly(self, payload: bytes, frame: Any) -> None:
        server = self.server
        started = time.monotonic()
        for index in range(len(payload)):
            if server.stopping.is_set() or time.monotonic() - started > server.give_up:
                return
            self.request.sendall(frame(payload[index:index + 1]))
            server.stopping.wait(server.interval)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str, interval: float, give_up: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.interval = interval
        self.give_up = give_up
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.requests: list[str] = []


class HostileServer:
    """Use as a context manager; ``base_url`` points at it, ``requests`` lists request lines."""

    def __init__(self, mode: str = "drip-length", *, interval: float = 0.1,
                 give_up: float = 15.0) -> None:
        self._server = _Server(mode, interval, give_up)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name="hostile-server")

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[str]:
        with self._server.lock:
            return list(self._server.requests)


def free_port() -> int:
    """A port nothing listens on (bound, then released): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
