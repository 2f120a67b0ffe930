"""Query feeds and the full-text index, on the 100,000-item corpus.

    .venv/bin/python benchmarks/query_bench.py [--items 100000] [--pairs 3] [--samples 40]

1. **Build with and without the index**, interleaved (with, without, without, with, ...), each
   a fresh ``feedsvc build`` subprocess on a fresh store and output directory. "Without" is
   the same code with the full-text schema step taken out (a ``sitecustomize`` module on
   ``PYTHONPATH`` cuts ``feedsvc.store``'s steps to the first two, in the build's workers
   too). Reported: wall and CPU time per build (CPU: the build and its workers, from
   ``RUSAGE_CHILDREN``), the with/without ratios of each adjacent pair, and the store's size
   (database plus write-ahead log) with and without.
2. **Query feeds through the server**: ``feedsvc serve --db`` on the last store built with the
   index, requests over one keep-alive connection, whole-request wall time on the client:

   - *cold*: every request a query not asked before (the server's answer cache misses and the
     store is queried); the server is restarted every ``--restart`` queries, so SQLite's page
     cache starts empty too (the system's file cache stays warm: it is shared);
   - *warm*: the same queries asked again (answered from the cache after a one-row check of
     the store's publication number).

   Three kinds: one filter (``org=<ministry>``), three filters (``org``, ``topic``, ``lang``)
   and a full-text term (``q=<word>``, words of the corpus's own vocabulary, common to
   rare).

Results go to stdout and ``benchmarks/out/query-results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import requests

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out"
NO_INDEX = """\
import feedsvc.store as store
store._MIGRATIONS = store._MIGRATIONS[:2]
store.SCHEMA_VERSION = 2
store.Store.index_new_items = lambda self: None
"""


def corpus_words(source: Path, count: int) -> list[str]:
    """Search words from the corpus's own vocabulary, common to rare: words of at least four
    letters ranked by frequency in three of its files, taken at spread-out ranks."""
    import re
    from collections import Counter

    counts: Counter[str] = Counter()
    for path in sorted(source.glob("*.txt"))[:3]:
        counts.update(w.casefold() for w in re.findall(r"[^\W\d_]{4,}", path.read_text()))
    ranked = [word for word, _ in counts.most_common(3000)]
    step = max(1, len(ranked) // count)
    return ranked[::step][:count]


def corpus(items: int) -> Path:
    path = OUT / f"corpus-{items}"
    if not (path / "corpus.json").is_file():
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "gen_corpus.py"), str(path),
                        "--items", str(items)], check=True)
    return path


def build(source: Path, work: Path, with_index: bool) -> dict[str, float]:
    env = dict(os.environ)
    if not with_index:
        patch = work / "patch"
        patch.mkdir()
        (patch / "sitecustomize.py").write_text(NO_INDEX)
        env["PYTHONPATH"] = str(patch)
    db = work / "store.sqlite3"
    command = [sys.executable, "-m", "feedsvc.cli", "build", "--source", str(source),
               "--out", str(work / "out"), "--db", str(db),
               "--base-url", "http://bench.invalid/"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU time of the build and the workers it waited for: less moved by other processes on
    # a shared machine than wall time is (though not immune: they share caches and cores)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        raise SystemExit(f"build failed: {result.stderr[-2000:]}")
    size = sum(p.stat().st_size for p in work.glob("store.sqlite3*"))
    version = subprocess.run(["sqlite3", str(db), "PRAGMA user_version"], capture_output=True,
                             text=True).stdout.strip() if _has_sqlite3() else "?"
    return {"seconds": seconds, "cpu_seconds": cpu, "store_bytes": size, "schema": version}


def _has_sqlite3() -> bool:
    return subprocess.run(["which", "sqlite3"], capture_output=True).returncode == 0


class Server:
    def __init__(self, work: Path) -> None:
        self.child = subprocess.Popen(
            [sys.executable, "-m", "feedsvc.cli", "serve", "--out", str(work / "out"),
             "--db", str(work / "store.sqlite3"), "--port", "0", "--log-level", "warning"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # --log-level warning hides the "listening" line: find the port from /proc instead
        self.url = self._wait_for_port()
        self.session = requests.Session()

    def _wait_for_port(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ports = _listening_ports(self.child.pid)
            if ports:
                return f"http://127.0.0.1:{ports[0]}/"
            time.sleep(0.05)
        raise SystemExit("the server did not start")

    def get(self, path: str) -> tuple[float, int, int]:
        started = time.perf_counter()
        response = self.session.get(self.url + path, timeout=30)
        return time.perf_counter() - started, response.status_code, len(response.content)

    def stop(self) -> None:
        self.child.terminate()
        self.child.wait(timeout=30)


def _listening_ports(pid: int) -> list[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:
            ports.append(int(fields[1].split(":")[1], 16))
    return ports


def queries(out: Path, words: list[str], samples: int, rng: random.Random
            ) -> dict[str, list[str]]:
    ministries = sorted(p.stem for p in (out / "ministry").glob("*.atom"))
    topics = sorted(p.stem for p in (out / "topic").glob("*.atom"))
    langs = ["en", "ru", "kk"]
    one = [{"org": m} for m in rng.sample(ministries, min(samples, len(ministries)))]
    three = [{"org": rng.choice(ministries), "topic": rng.choice(topics),
              "lang": rng.choice(langs)} for _ in range(samples)]
    text = [{"q": w} for w in words[:samples]]
    kinds = {"one filter": one, "three filters": three, "full-text term": text}
    return {kind: ["query.atom?" + urlencode(sorted(q.items())) for q in found]
            for kind, found in kinds.items()}


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(values), "p50_ms": statistics.median(values) * 1000, "p95_ms": p95 * 1000,
            "max_ms": ordered[-1] * 1000}


def measure_queries(work: Path, words: list[str], samples: int, restart: int
                    ) -> dict[str, object]:
    rng = random.Random(1)
    results: dict[str, object] = {}
    for kind, paths in queries(work / "out", words, samples, rng).items():
        cold, warm, statuses, sizes = [], [], set(), []
        for start in range(0, len(paths), restart):
            server = Server(work)
            try:
                for path in paths[start:start + restart]:
                    seconds, status, size = server.get(path)
                    cold.append(seconds)
                    statuses.add(status)
                    sizes.append(size)
                for _ in range(3):
                    for path in paths[start:start + restart]:
                        warm.append(server.get(path)[0])
            finally:
                server.stop()
        results[kind] = {"cold": percentiles(cold), "warm": percentiles(warm),
                         "statuses": sorted(statuses), "median_bytes": statistics.median(sizes),
                         "empty_answers": sum(1 for size in sizes if size < 2000),
                         "example": paths[0]}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--restart", type=int, default=10)
    parser.add_argument("--skip-builds", action="store_true",
                        help="one build with the index only, then the queries")
    args = parser.parse_args()
    source = corpus(args.items)
    OUT.mkdir(parents=True, exist_ok=True)
    builds: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="query-bench-") as tmp:
        last_with: Path | None = None
        order = [[True]] if args.skip_builds else [
            [True, False] if n % 2 == 0 else [False, True] for n in range(args.pairs)]
        for number, pair in enumerate(order):
            for with_index in pair:
                work = Path(tmp) / f"{number}-{'with' if with_index else 'without'}"
                work.mkdir()
                figures = build(source, work, with_index)
                builds.append({"pair": number, "index": with_index, **figures})
                print(f"build pair {number} {'with' if with_index else 'without'} index: "
                      f"{figures['seconds']:.2f} s ({figures['cpu_seconds']:.2f} s CPU), "
                      f"store {figures['store_bytes'] / 1e6:.1f} MB (schema {figures['schema']}), "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
                if with_index:
                    last_with = work
        summary = _build_summary(builds)
        print(json.dumps(summary, indent=2))
        assert last_with is not None
        query_results = measure_queries(last_with, corpus_words(source, args.samples),
                                        args.samples, args.restart)
    print(json.dumps(query_results, indent=2, ensure_ascii=False))
    (OUT / "query-results.json").write_text(json.dumps(
        {"builds": builds, "build_summary": summary, "queries": query_results,
         "load_average": os.getloadavg(), "items": args.items}, indent=2, ensure_ascii=False))


def _build_summary(builds: list[dict[str, object]]) -> dict[str, object]:
    pairs: dict[int, dict[bool, dict[str, object]]] = {}
    for b in builds:
        pairs.setdefault(int(b["pair"]), {})[bool(b["index"])] = b  # type: ignore[call-overload]
    ratios = [p[True]["seconds"] / p[False]["seconds"]  # type: ignore[operator]
              for p in pairs.values() if True in p and False in p]
    sizes = {flag: statistics.median(float(b["store_bytes"]) for b in builds  # type: ignore[arg-type]
                                     if b["index"] is flag)
             for flag in (True, False) if any(b["index"] is flag for b in builds)}
    cpu_ratios = [p[True]["cpu_seconds"] / p[False]["cpu_seconds"]  # type: ignore[operator]
                  for p in pairs.values() if True in p and False in p]
    summary: dict[str, object] = {"ratios_with_over_without": [round(r, 3) for r in ratios],
                                  "cpu_ratios_with_over_without": [round(r, 3)
                                                                   for r in cpu_ratios]}
    if ratios:
        summary["median_ratio"] = round(statistics.median(ratios), 3)
        summary["median_cpu_ratio"] = round(statistics.median(cpu_ratios), 3)
    for flag, size in sizes.items():
        summary[f"store_mb_{'with' if flag else 'without'}"] = round(size / 1e6, 1)
    if len(sizes) == 2:
        summary["store_growth"] = f"{(sizes[True] / sizes[False] - 1) * 100:.1f} %"
    return summary


if __name__ == "__main__":
    main()
