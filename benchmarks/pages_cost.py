"""What the pages for people cost a full build: this checkout against one without them.

    .venv/bin/python benchmarks/pages_cost.py --baseline /path/to/old/.venv/bin/feedsvc

``--baseline`` is the ``feedsvc`` of a checkout before the pages (e.g. ``git archive`` of the
commit before them into a directory, with its own venv). Rounds are interleaved (this build,
then the baseline, then the other way round) so that a machine whose speed drifts treats both
alike; each build is a fresh process on a fresh store and output directory. Reports medians,
the median of the per-round ratios, and the output: how many pages, their bytes, the largest.
"""

from __future__ import annotations

import argparse
import gzip
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE_FEEDSVC = Path(sys.executable).with_name("feedsvc")  # this checkout (see --pages)


def build(feedsvc: Path, corpus: Path) -> tuple[float, float, Path]:
    """Wall seconds, CPU seconds (the build and its workers: user + system) and the work dir.

    CPU time moves less than wall time when other processes share the machine."""
    work = Path(tempfile.mkdtemp(prefix="pages-cost-"))
    argv = [str(feedsvc), "build", "--source", str(corpus), "--out", str(work / "out"),
            "--db", str(work / "store.sqlite3"), "--base-url", "http://bench.invalid/"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, work


def output_figures(out: Path) -> dict[str, object]:
    files = [p for p in out.rglob("*") if p.is_file()]
    pages = [p for p in files if p.suffix == ".html"]
    largest = max(pages, key=lambda p: p.stat().st_size)
    largest_gz = max(pages, key=lambda p: len(gzip.compress(p.read_bytes())))
    return {
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "pages": len(pages),
        "item_pages": sum(1 for p in pages if p.parent.name == "item"),
        "page_bytes": sum(p.stat().st_size for p in pages),
        "largest_page": f"{largest.relative_to(out)} {largest.stat().st_size} B",
        "largest_page_gzipped": f"{largest_gz.relative_to(out)} "
                                f"{len(gzip.compress(largest_gz.read_bytes()))} B",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="feedsvc without pages")
    parser.add_argument("--corpus", type=Path, default=ROOT / "benchmarks/out/corpus-100000",
                        help="made by gen_corpus.py or run.py")
    parser.add_argument("--pages", type=Path, default=HERE_FEEDSVC,
                        help="feedsvc with pages (default: this checkout's)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"pages": [], "baseline": []}
    cpus: dict[str, list[float]] = {"pages": [], "baseline": []}
    ratios, cpu_ratios = [], []
    figures: dict[str, object] = {}
    for number in range(args.runs):
        order = [("pages", args.pages), ("baseline", args.baseline)]
        if number % 2:
            order.reverse()
        this_round, this_cpu = {}, {}
        for name, feedsvc in order:
            seconds, cpu, work = build(feedsvc, args.corpus)
            this_round[name], this_cpu[name] = seconds, cpu
            times[name].append(seconds)
            cpus[name].append(cpu)
            if name == "pages" and not figures:
                figures = output_figures(work / "out")
            shutil.rmtree(work)
        ratios.append(this_round["pages"] / this_round["baseline"])
        cpu_ratios.append(this_cpu["pages"] / this_cpu["baseline"])
        print(f"round {number + 1}: wall pages {this_round['pages']:.2f} s, baseline "
              f"{this_round['baseline']:.2f} s, ratio {ratios[-1]:.3f}; CPU pages "
              f"{this_cpu['pages']:.2f} s, baseline {this_cpu['baseline']:.2f} s, ratio "
              f"{cpu_ratios[-1]:.3f}", flush=True)
    for label, series in (("wall", times), ("CPU", cpus)):
        for name, values in series.items():
            print(f"{label} {name}: median {statistics.median(values):.2f} s "
                  f"({min(values):.2f}-{max(values):.2f})")
    for label, values in (("wall", ratios), ("CPU", cpu_ratios)):
        print(f"{label} ratio pages/baseline: median {statistics.median(values):.3f} "
              f"({min(values):.3f}-{max(values):.3f})")
    for key, value in figures.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
