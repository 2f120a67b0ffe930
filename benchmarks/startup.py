"""Start-up cost of the command line: import ``feedsvc.cli`` and load the example
configuration, in a fresh interpreter, median of ``--runs``; plus the bare import of the schema
libraries considered (msgspec, which the configuration uses, and pydantic, which it does not),
each where installed.

::

    .venv/bin/python benchmarks/startup.py
    .venv/bin/python benchmarks/startup.py --tree ../old-checkout    # the code before a change
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOAD = ("import feedsvc.cli; from pathlib import Path; from feedsvc.config import load_config; "
        "load_config(Path('feedsvc.example.toml'))")


def timed(code: str, tree: Path, runs: int) -> tuple[float, float] | None:
    """Median wall time and median CPU time (user + system) of the child, in seconds. CPU
    time moves less than wall time on a busy shared machine."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env,
                              capture_output=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            return None
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=REPO)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    tree = args.tree.resolve()
    rows = [("python -c pass", "pass"), ("import feedsvc.cli + load the example", LOAD),
            ("import msgspec", "import msgspec"),
            ("import pydantic (BaseModel)", "from pydantic import BaseModel")]
    for name, code in rows:
        measured = timed(code, tree, args.runs)
        shown = "not installed / failed" if measured is None else \
            f"{1000 * measured[0]:.0f} ms wall, {1000 * measured[1]:.0f} ms CPU"
        print(f"{name:40} {shown}   ({tree.name}, median of {args.runs})")


if __name__ == "__main__":
    main()
