"""Requests/s and median latency of the built-in server against nginx, for one 50-entry feed.

Both serve the same temporary directory on loopback, side by side in one run: the built-in
server (``FeedServer``, one uvicorn worker) and nginx (one worker process) with the shipped
``deploy/nginx/feedsvc.conf``, its ``root``, ``listen`` and ``/healthz`` upstream pointed at
the temporary directory and free loopback ports. ``wrk`` measures full 200 responses (no
``Accept-Encoding``, so the plain file) and 304s (``If-None-Match`` with the server's ETag),
repeated and reported as medians.

Needs ``wrk`` and ``nginx`` on PATH; this script installs nothing::

    apt-get install -y wrk nginx
    .venv/bin/python benchmarks/serve_bench.py              # a generated 50-entry feed
    .venv/bin/python benchmarks/serve_bench.py --feed path/to/some.atom

Everything is bounded in time (each wrk run by ``--duration`` plus a margin) and torn down on
exit, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from feedsvc.serve import FeedServer, make_app  # noqa: E402

NGINX_CONF = REPO / "deploy" / "nginx" / "feedsvc.conf"
FEED_NAME = "all.atom"
WORDS = ("министрлік отырыс цифрландыру бюджет жоба ведомство заседание реформа "
         "программа развитие регион әкімдік инвестиция мемлекеттік услуга граждан "
         "қаржы образование денсаулық сақтау транспорт энергетика").split()


# --- the feed ----------------------------------------------------------------------------------


def generate_feed(entries: int, seed: int = 7) -> bytes:
    """An Atom feed like ours: ``entries`` entries of ~2-3 KB of Cyrillic HTML content each."""
    from feedgen.feed import FeedGenerator

    rng = random.Random(seed)
    start = datetime(2026, 8, 1, 9, 0, tzinfo=UTC)
    feed = FeedGenerator()
    feed.id("tag:feedsvc.bench,2026:all")
    feed.title("gov.kz: все новости")
    feed.link(href="http://127.0.0.1/all.atom", rel="self")
    feed.language("ru")
    feed.updated(start)
    for n in range(entries):
        entry = feed.add_entry(order="append")
        entry.id(f"tag:feedsvc.bench,2026:news/{n}")
        entry.title(" ".join(rng.choices(WORDS, k=8)).capitalize())
        entry.link(href=f"https://www.gov.kz/memleket/entities/bench/press/news/details/{n}")
        entry.updated(start - timedelta(hours=n))
        entry.content(_paragraphs(rng, target_bytes=rng.randint(2000, 3000)), type="html")
    return feed.atom_str(pretty=True)


def _paragraphs(rng: random.Random, target_bytes: int) -> str:
    html = ""
    while len(html.encode()) < target_bytes:
        html += "<p>" + " ".join(rng.choices(WORDS, k=30)).capitalize() + ".</p>"
    return html


# --- the servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextlib.contextmanager
def builtin_server(root: Path) -> Iterator[int]:
    server = FeedServer(make_app(root), "127.0.0.1", 0)
    server.start()
    try:
        yield server.port
    finally:
        server.stop()


def nginx_wrapper(prefix: Path, root: Path, port: int, upstream_port: int) -> Path:
    """A minimal nginx.conf that includes the shipped server block, pointed at ``root``."""
    block = NGINX_CONF.read_text(encoding="utf-8")
    replacements = [
        (r"^\s*listen \[::\]:80;\n", ""),
        (r"listen 80;", f"listen 127.0.0.1:{port};"),
        (r"root /var/lib/feedsvc/feeds;", f"root {root};"),
        (r"http://127\.0\.0\.1:8080", f"http://127.0.0.1:{upstream_port}"),
    ]
    for pattern, replacement in replacements:
        block, count = re.subn(pattern, replacement, block, flags=re.MULTILINE)
        if count != 1:
            raise RuntimeError(f"{NGINX_CONF}: expected one {pattern!r}, found {count}")
    (prefix / "feedsvc.conf").write_text(block, encoding="utf-8")
    temp_paths = " ".join(f"{kind}_temp_path {prefix / kind};"
                          for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = prefix / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    {temp_paths}
    include {prefix / "feedsvc.conf"};
}}
""", encoding="utf-8")
    return conf


@contextlib.contextmanager
def nginx_server(prefix: Path, root: Path, upstream_port: int) -> Iterator[int]:
    port = free_port()
    conf = nginx_wrapper(prefix, root, port, upstream_port)
    command = ["nginx", "-p", str(prefix), "-c", str(conf)]
    subprocess.run([*command, "-t", "-q"], check=True, timeout=30)
    child = subprocess.Popen([*command, "-g", "daemon off;"])
    try:
        wait_for_port(port, time.monotonic() + 10)
        yield port
    finally:
        child.terminate()  # SIGTERM: nginx's fast shutdown
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# --- measuring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    rps: float
    p50_ms: float
    errors: int


def etag_of(url: str) -> str:
    """The ETag of the plain (not gzipped) response, and proof that it earns a 304."""
    with urllib.request.urlopen(url, timeout=5) as response:
        etag = response.headers["ETag"]
    request = urllib.request.Request(url, headers={"If-None-Match": etag})
    try:
        urllib.request.urlopen(request, timeout=5)
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return str(etag)
    raise RuntimeError(f"{url}: no 304 for If-None-Match {etag}")


def run_wrk(url: str, args: argparse.Namespace, headers: list[str]) -> Sample:
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
               "--latency"]
    for header in headers:
        command += ["-H", header]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True,
                         timeout=args.duration + 30).stdout
    rps = float(_find(r"^Requests/sec:\s+([\d.]+)", out))
    p50 = _to_ms(_find(r"^\s+50%\s+([\d.]+\w+)", out))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Sample(rps, p50, errors)


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text, flags=re.MULTILINE)
    if not match:
        raise RuntimeError(f"wrk output without {pattern!r}:\n{text}")
    return match.group(1)


def _to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def measure(urls: dict[str, str], args: argparse.Namespace) -> dict[tuple[str, str], list[Sample]]:
    """Every (server, response) pair once per repetition, interleaved so drift hits both."""
    etags = {name: etag_of(url) for name, url in urls.items()}
    samples: dict[tuple[str, str], list[Sample]] = {}
    for repetition in range(1, args.repeats + 1):
        for name, url in urls.items():
            for kind, headers in (("200", []), ("304", [f"If-None-Match: {etags[name]}"])):
                sample = run_wrk(url, args, headers)
                samples.setdefault((name, kind), []).append(sample)
                print(f"  run {repetition}: {name:8} {kind}  {sample.rps:9.0f} req/s  "
                      f"p50 {sample.p50_ms:7.2f} ms", file=sys.stderr, flush=True)
    return samples


def report(samples: dict[tuple[str, str], list[Sample]], feed_bytes: int,
           args: argparse.Namespace) -> str:
    def median(name: str, kind: str) -> tuple[float, float]:
        runs = samples[(name, kind)]
        return (statistics.median(s.rps for s in runs),
                statistics.median(s.p50_ms for s in runs))

    lines = [
        f"feed: {feed_bytes} bytes; wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration}s, {args.repeats} runs each, medians",
        "",
        "| response | built-in req/s | nginx req/s | ratio | built-in p50 | nginx p50 | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in ("200", "304"):
        b_rps, b_p50 = median("built-in", kind)
        n_rps, n_p50 = median("nginx", kind)
        lines.append(f"| {kind} | {b_rps:,.0f} | {n_rps:,.0f} | {b_rps / n_rps:.3f} | "
                     f"{b_p50:.2f} ms | {n_p50:.2f} ms | {b_p50 / n_p50:.1f} |")
    errors = sum(s.errors for runs in samples.values() for s in runs)
    lines += ["", f"errors (non-2xx/3xx responses, socket errors): {errors}"]
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feed", type=Path, help="serve this .atom file, not a generated one")
    parser.add_argument("--entries", type=int, default=50, help="entries in the generated feed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [tool for tool in ("wrk", "nginx") if shutil.which(tool) is None]
    if missing:
        print(f"missing {', '.join(missing)}; install with: apt-get install -y wrk nginx",
              file=sys.stderr)
        return 2
    data = args.feed.read_bytes() if args.feed else generate_feed(args.entries)
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as temp:
        Path(temp).chmod(0o755)  # nginx workers run as nobody when started by root
        root, prefix = Path(temp) / "out", Path(temp) / "nginx"
        root.mkdir(mode=0o755)
        prefix.mkdir(mode=0o755)
        (root / FEED_NAME).write_bytes(data)
        (root / "index.html").write_text("<!doctype html><title>bench</title>", encoding="utf-8")
        with builtin_server(root) as own_port, nginx_server(prefix, root, own_port) as nginx_port:
            urls = {"built-in": f"http://127.0.0.1:{own_port}/{FEED_NAME}",
                    "nginx": f"http://127.0.0.1:{nginx_port}/{FEED_NAME}"}
            samples = measure(urls, args)
    print(report(samples, len(data), args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
