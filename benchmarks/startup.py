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
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOAD = ("import feedsvc.cli; from pathlib import Path; from feedsvc.config import load_config; "
        "load_config(Path('feedsvc.example.toml'))")


def timed(code: str, tree: Path, runs: int) -> float | None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env,
                              capture_output=True)
        if done.returncode != 0:
            return None
        times.append(time.perf_counter() - started)
    return statistics.median(times)


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
        median = timed(code, tree, args.runs)
        shown = "not installed / failed" if median is None else f"{1000 * median:.0f} ms"
        print(f"{name:40} {shown}   ({tree.name}, median of {args.runs})")


if __name__ == "__main__":
    main()
