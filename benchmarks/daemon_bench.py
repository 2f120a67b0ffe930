"""The daemon's first pass against a one-shot build, on the same corpus, in the same run.

    .venv/bin/python benchmarks/daemon_bench.py              # 100,000 items, 3 pairs
    .venv/bin/python benchmarks/daemon_bench.py --items 5000 --files 20 --runs 1   # quick

Each pair runs, in alternating order, ``feedsvc build`` and ``feedsvc daemon`` on a fresh copy of
the corpus (``run.py``'s generator and cache) with an empty store. The build's figure is its wall
time; the daemon's is the time from starting the process to ``all.atom`` appearing in its output
directory (the first pass publishes it once every file is stored). Then, with the daemon idle
(``/healthz`` no longer "starting", two seconds later), its resident memory and that of any child
it still has. Reported: medians, the daemon/build ratio per pair and its median.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as harness

BASE_URL = "http://bench.invalid/"


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its children, from /proc."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def time_build(work: Path, corpus: Path) -> float:
    argv = [str(harness.find_feedsvc()), "build", "--source", str(corpus), "--out",
            str(work / "out"), "--db", str(work / "store.sqlite3"), "--base-url", BASE_URL]
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def time_daemon(work: Path, corpus: Path, timeout: float) -> tuple[float, float]:
    out = work / "out"
    log = (work / "daemon.log").open("w")
    argv = [str(harness.find_feedsvc()), "daemon", "--source", str(corpus), "--out", str(out),
            "--db", str(work / "store.sqlite3"), "--base-url", BASE_URL, "--port", "0",
            "--interval", "3600"]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        while not (out / "all.atom").exists():
            if proc.poll() is not None or time.perf_counter() - started > timeout:
                raise RuntimeError(f"daemon failed: {(work / 'daemon.log').read_text()[-2000:]}")
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        url = _url(work / "daemon.log")
        while requests.get(url + "healthz", timeout=5).json().get("status") == "starting":
            time.sleep(0.1)
        time.sleep(2.0)
        return elapsed, rss_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()


def _url(log: Path) -> str:
    import re

    for _ in range(100):
        found = re.search(r"serve\.listening url=(\S+)", log.read_text())
        if found:
            return found.group(1)
        time.sleep(0.05)
    raise RuntimeError("no listening line in the daemon's log")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--orgs", type=int, default=300)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dup-rate", type=float, default=0.05)
    parser.add_argument("--link-rate", type=float, default=0.75)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    corpus_cache, _, _ = harness.ensure_corpus(args)
    harness.compile_bytecode()
    pairs = []
    for number in range(args.runs):
        pair: dict[str, float] = {}
        order = ("build", "daemon") if number % 2 == 0 else ("daemon", "build")
        for what in order:
            work = Path(tempfile.mkdtemp(prefix=f"feedsvc-daemon-bench-{what}-"))
            try:
                corpus = work / "corpus"
                shutil.copytree(corpus_cache, corpus,
                                ignore=shutil.ignore_patterns("corpus.json"))
                if what == "build":
                    pair["build_s"] = time_build(work, corpus)
                else:
                    pair["daemon_s"], pair["idle_rss_mib"] = time_daemon(work, corpus,
                                                                         args.timeout)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        pair["ratio"] = pair["daemon_s"] / pair["build_s"]
        pairs.append(pair)
        print(f"pair {number + 1}: build {pair['build_s']:.2f} s, daemon first pass "
              f"{pair['daemon_s']:.2f} s (x{pair['ratio']:.2f}), idle daemon "
              f"{pair['idle_rss_mib']:.0f} MiB", flush=True)
    summary = {key: statistics.median(p[key] for p in pairs)
               for key in ("build_s", "daemon_s", "ratio", "idle_rss_mib")}
    print("median: build {build_s:.2f} s, daemon first pass {daemon_s:.2f} s, ratio "
          "{ratio:.2f} (target <= 1.2), idle daemon {idle_rss_mib:.0f} MiB (target < 150)"
          .format(**summary))
    print(json.dumps({"machine": harness.machine(), "pairs": pairs, "median": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
