"""Slow connections against the built-in server: do normal GETs still get through?

Issue 15 item 9's scenario: ``feedsvc serve`` with ``ulimit -n 1024``, 1,100 connections that
each send a request head one byte a second and reconnect whenever they are closed, and 200
normal clients fetching a feed over and over (a new connection per request, ``--pace``
seconds apart, 1 s by default, jittered; ``--pace 0`` for back-to-back requests, which
measures the server's capacity rather than what readers see), for 20 seconds.
Reported: the normal requests' success rate and latency (median, p95, max), how many slow
connections the server closed, and the size of the server's log.

::

    .venv/bin/python benchmarks/slowloris_bench.py
    .venv/bin/python benchmarks/slowloris_bench.py --tree ../old-checkout   # code to compare

``--tree`` runs the server from another checkout (``PYTHONPATH``), so the same load can be
put on the code before a change. Everything stops by itself after ``--seconds`` plus a margin.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FEED = "/all.atom"


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    slow_closed: int = 0
    slow_refused: int = 0


def start_server(tree: Path, out: Path, log: Path, nofile: int, header_timeout: float
                 ) -> tuple[subprocess.Popen[bytes], int]:
    env = {**os.environ, "PYTHONPATH": str(tree)}

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    args = [sys.executable, "-m", "feedsvc.cli", "serve", "--out", str(out), "--port", "0"]
    if header_timeout:
        args += ["--header-timeout", str(header_timeout)]
    with log.open("wb") as handle:
        proc = subprocess.Popen(args, cwd=tree, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                preexec_fn=limit)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        found = re.search(rb"serve\.listening url=http://[^:]+:(\d+)/", log.read_bytes())
        if found:
            return proc, int(found.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"the server did not start: {log.read_text(errors='replace')}")


async def slow_client(port: int, stop: float, tally: Tally) -> None:
    """Send a request head a byte a second; reconnect when closed."""
    head = b"GET " + FEED.encode() + b" HTTP/1.1\r\nHost: bench\r\nX-Slow: " + b"a" * 200
    while time.monotonic() < stop:
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), timeout=5)
        except (OSError, TimeoutError):
            tally.slow_refused += 1
            await asyncio.sleep(1)
            continue
        try:
            for byte in head:
                if time.monotonic() >= stop:
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(1)
            else:
                continue
        except OSError:
            tally.slow_closed += 1
        finally:
            writer.close()


async def normal_client(port: int, stop: float, pace: float, tally: Tally) -> None:
    request = (f"GET {FEED} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").encode()
    await asyncio.sleep(random.uniform(0, pace))
    while time.monotonic() < stop:
        if pace:
            await asyncio.sleep(random.uniform(0.5 * pace, 1.5 * pace))
        started = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), timeout=5)
            writer.write(request)
            body = await asyncio.wait_for(reader.read(), timeout=5)
            writer.close()
            if not body.startswith(b"HTTP/1.1 200"):
                raise ValueError(body[:40].decode(errors="replace") or "closed without answer")
        except (OSError, TimeoutError, ValueError) as exc:
            tally.failed += 1
            kind = f"{type(exc).__name__}: {exc}"[:60]
            tally.errors[kind] = tally.errors.get(kind, 0) + 1
            await asyncio.sleep(0.1)
            continue
        tally.ok += 1
        tally.latencies.append(time.monotonic() - started)


async def load(port: int, args: argparse.Namespace) -> Tally:
    tally = Tally()
    stop = time.monotonic() + args.seconds
    slow = [asyncio.create_task(slow_client(port, stop, tally)) for _ in range(args.slow)]
    await asyncio.sleep(min(5.0, args.seconds / 4))  # let the slow ones pile up first
    normal = [asyncio.create_task(normal_client(port, stop, args.pace, tally))
              for _ in range(args.normal)]
    await asyncio.wait_for(asyncio.gather(*normal, *slow), timeout=args.seconds + 30)
    return tally


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=REPO, help="checkout to run the server from")
    parser.add_argument("--nofile", type=int, default=1024)
    parser.add_argument("--slow", type=int, default=1100)
    parser.add_argument("--normal", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pace", type=float, default=1.0,
                        help="seconds between a normal client's requests (0: back to back)")
    parser.add_argument("--header-timeout", type=float, default=0,
                        help="passed to serve if set (the default is the server's own)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the clients need ~1,300

    work = Path(tempfile.mkdtemp(prefix="slowloris-"))
    try:
        out = work / "feeds"
        subprocess.run([sys.executable, "-m", "feedsvc.cli", "build", "--source",
                        str(REPO / "seeds"), "--out", str(out), "--db", str(work / "s.db")],
                       check=True, capture_output=True)
        log = work / "serve.log"
        proc, port = start_server(args.tree.resolve(), out, log, args.nofile, args.header_timeout)
        try:
            tally = asyncio.run(load(port, args))
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        text = log.read_text(errors="replace")
        total = tally.ok + tally.failed
        print(f"server: {args.tree} with ulimit -n {args.nofile}; {args.slow} slow connections, "
              f"{args.normal} normal clients (pace {args.pace:g} s), {args.seconds:.0f} s")
        print(f"normal GETs: {tally.ok}/{total} succeeded "
              f"({100 * tally.ok / max(1, total):.1f} %), failures by kind: {tally.errors}")
        if tally.latencies:
            print(f"latency: median {1000 * statistics.median(tally.latencies):.0f} ms, "
                  f"p95 {1000 * percentile(tally.latencies, 0.95):.0f} ms, "
                  f"max {1000 * max(tally.latencies):.0f} ms")
        print(f"slow connections closed by the server: {tally.slow_closed}; "
              f"connects that failed: {tally.slow_refused}")
        print(f"server log: {len(text.encode()):,} bytes, {text.count(chr(10)):,} lines, "
              f"'Too many open files': {text.count('Too many open files'):,}")
        for line in text.splitlines()[-4:]:
            print("  log:", line[:160])
    finally:
        shutil.rmtree(work, ignore_errors=True)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


if __name__ == "__main__":
    main()
