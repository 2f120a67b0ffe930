"""Kill builds at random moments and check that nothing is lost or corrupted, like SQLite's
crash tests.

    .venv/bin/python scripts/crash_suite.py              # 100 rounds, 100,000 items
    .venv/bin/python scripts/crash_suite.py --items 2000 --files 10 --rounds 2   # CI's size

A corpus (``benchmarks/gen_corpus.py``) is built once to completion for reference. Then each
round starts from an empty store and output directory: ``feedsvc build`` is started and killed
with SIGKILL after a random delay, ``--kills`` times in a row (each restart goes on from what
the last one left, so a kill can land in the recovery too), and then one build runs to the end.
The clock is fixed (``SOURCE_DATE_EPOCH``), so that build must publish exactly the reference's
bytes. Reported: kills, how many landed while a build was running, lost or extra items
(distinct Atom ids in the store against the reference), corruptions (``PRAGMA integrity_check``
and the store's own consistency checks), published files that differ, and temporary files left
in the output. Exit status 0 only when all of those are 0.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EPOCH = "1774000000"


def build_argv(corpus: Path, work: Path) -> list[str]:
    return [sys.executable, "-m", "feedsvc.cli", "build", "--source", str(corpus), "--out",
            str(work / "out"), "--db", str(work / "store.sqlite3"), "--base-url",
            "http://crash.invalid/"]


def run_to_end(corpus: Path, work: Path) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    done = subprocess.run(build_argv(corpus, work), env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"a complete build failed:\n{done.stderr[-3000:]}")


def files(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def atom_ids(db: Path) -> set[str]:
    connection = sqlite3.connect(db)
    try:
        return {row[0] for row in connection.execute("SELECT atom_id FROM items")}
    finally:
        connection.close()


def corruptions(db: Path) -> list[str]:
    connection = sqlite3.connect(db)
    try:
        problems = [row[0] for row in connection.execute("PRAGMA integrity_check")
                    if row[0] != "ok"]
    finally:
        connection.close()
    sys.path.insert(0, str(REPO))
    from feedsvc.store import Store

    store = Store(db)
    try:
        return problems + store.integrity_problems()
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--orgs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--kills", type=int, default=3, help="kills per round (3)")
    parser.add_argument("--max-delay", type=float, default=None,
                        help="longest wait before a kill (default: the reference build's time)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    chance = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="feedsvc-crash-"))
    try:
        corpus = root / "corpus"
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "gen_corpus.py"), str(corpus),
                        "--items", str(args.items), "--files", str(args.files),
                        "--orgs", str(args.orgs)], check=True, capture_output=True)
        reference = root / "reference"
        started = time.monotonic()
        run_to_end(corpus, reference)
        longest = args.max_delay or (time.monotonic() - started)
        expected_files, expected_ids = files(reference / "out"), atom_ids(
            reference / "store.sqlite3")
        env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
        landed = lost = extra = differing = left = 0
        broken: list[str] = []
        for number in range(args.rounds):
            work = root / f"round-{number}"
            for _ in range(args.kills):
                process = subprocess.Popen(build_argv(corpus, work), env=env,
                                           stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
                time.sleep(chance.uniform(0.0, longest))
                if process.poll() is None:
                    landed += 1
                process.send_signal(signal.SIGKILL)
                process.wait()
            run_to_end(corpus, work)
            db = work / "store.sqlite3"
            ids = atom_ids(db)
            lost += len(expected_ids - ids)
            extra += len(ids - expected_ids)
            broken += corruptions(db)
            published = files(work / "out")
            differ = sorted(name for name in published.keys() | expected_files.keys()
                            if published.get(name) != expected_files.get(name))
            differing += len(differ)
            left += len(list((work / "out").rglob(".tmp-*")))
            for line in differ[:5]:
                print(f"  round {number}: differs: {line}")
            shutil.rmtree(work)
        print(f"rounds: {args.rounds}; kills: {args.rounds * args.kills} ({landed} while a "
              f"build was running, up to {longest:.1f} s in); items: {len(expected_ids)}; "
              f"lost items: {lost}; extra items: {extra}; corruptions: {len(broken)}; "
              f"published files that differ: {differing}; temporary files left: {left}")
        for line in broken:
            print(f"  {line}")
        return 0 if not (lost or extra or broken or differing or left) else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
