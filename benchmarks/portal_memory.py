"""The daemon's memory when it follows the whole portal, and what a quiet poll writes.

    .venv/bin/python benchmarks/portal_memory.py [--orgs 2061] [--backfill 100]

All 6,183 streams (2,061 organisations × kk, ru, en) are configured; the loopback fake in portal
mode gives every stream at least ``backfill`` items of history (every organisation busy enough
for that), and the daemon's follower (the same object the daemon runs, on a virtual clock so the
budget's 1.7 hours of first reads pass at once) reads them all: 618,300 stream items stored and
published. Then the clock moves on with no new item, and every stream is polled once more.

Reported: peak RSS of this process (the daemon's work: follower, pipeline, writer thread; the
fake runs in a child process, and ``ru_maxrss`` of ``RUSAGE_SELF`` counts this process alone;
the higher of it and the RSS read after every step: the kernel's high-water mark was seen to
read below an RSS read earlier in the same run),
RSS after the backfill, after the quiet round and after the memory release a daemon does when it
goes idle (``Pipeline.release_memory``), the store's size, and the files the quiet round wrote
(expected: none), both as the publisher reported them and as found on disk: every file of the
output directory whose size, mtime or inode changed, or that appeared or went.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from feedsvc.config import Config, GovkzConfig, PortalConfig, SourceConfig  # noqa: E402
from feedsvc.follow import Follower  # noqa: E402
from feedsvc.pipeline import make_pipeline  # noqa: E402
from feedsvc.registry import shipped_organisations  # noqa: E402
from feedsvc.sources import govkz, portal  # noqa: E402

from govkz_fake import GovkzFake  # noqa: E402
from govkz_portal import ActivityClass, PortalWorld, VirtualClock  # noqa: E402

START = datetime(2026, 12, 1, tzinfo=UTC).timestamp()


def serve(slugs: list[str], backfill: int, ready: multiprocessing.Queue,
          stop: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    """The fake, in its own process: its memory is not the daemon's."""
    world = PortalWorld(slugs, start=START, days=0, clock=lambda: START,
                        news_per_day=len(slugs) * 4.0, history=backfill + 5,
                        classes=(ActivityClass("busy", 1.0, 1.0),),
                        lang_odds={"kk": 1.0, "ru": 1.0, "en": 1.0})
    with GovkzFake(portal=world) as fake:
        ready.put(fake.base_url)
        stop.wait()


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def files_of(root: Path) -> dict[Path, tuple[int, int, int]]:
    """(size, mtime, inode) of every file under ``root``: a file replaced by a rename gets a
    new inode even when its size and mtime look the same."""
    found = {}
    for path in root.rglob("*"):
        info = path.stat()
        if not path.is_dir():
            found[path] = (info.st_size, info.st_mtime_ns, info.st_ino)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgs", type=int, default=2061)
    parser.add_argument("--backfill", type=int, default=100)
    args = parser.parse_args()
    slugs = sorted(org.slug for org in shipped_organisations())[:args.orgs]
    ready: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    stop = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(slugs, args.backfill, ready, stop))
    server.start()
    base_url = ready.get(timeout=600)
    clock = VirtualClock(START)
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = Config(sources=(SourceConfig("https://www.gov.kz", "govkz"),),
                        out_dir=work / "feeds", db=work / "store.sqlite3",
                        govkz=replace(GovkzConfig(), base_url=base_url,
                                      backfill=args.backfill),
                        portal=replace(PortalConfig(), global_listing="off"))
        pipeline = make_pipeline(config, clock=clock.utc, sleep=clock.sleep)
        pipeline.clients["govkz"].close()
        client = govkz.make_client(config, clock.sleep, clock=clock)
        client.portal = portal.PortalOrgs(list(slugs))
        pipeline.clients["govkz"] = client
        follower = Follower(pipeline, config.sources[0], clock=clock)
        follower.next_registry = float("inf")
        follower.load()
        stored = 0
        sampled = 0.0  # see the docstring
        while follower.planner.unread():
            follower.step()
            sampled = max(sampled, rss_mib())
            report = follower.last_report
            stored += sum(o.new for o in report.sources) if report else 0
        after_backfill = rss_mib()
        backfill_seconds = time.perf_counter() - wall
        clock.now += 2 * 86400  # every stream is due again; nothing new was published
        before = files_of(config.out_dir)
        written: list[str] = []
        polls = 0
        while polls < len(follower.planner.streams):
            if follower.step() > 0:
                break
            sampled = max(sampled, rss_mib())
            report = follower.last_report
            if report:
                polls += len(report.sources)
                written += report.publish.written
        after_quiet = rss_mib()
        after = files_of(config.out_dir)
        touched = sorted(str(path.relative_to(config.out_dir)) for path in before.keys() | after
                         if before.get(path) != after.get(path))
        pipeline.release_memory()  # what the daemon does when nothing is due for a while
        after_release = rss_mib()
        store_mib = sum(path.stat().st_size for path in work.glob("store.sqlite3*")) / 2**20
        pipeline.close()
    stop.set()
    server.join()
    peak = max(sampled, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps({
        "streams": len(follower.planner.streams), "items_stored": stored,
        "rss_mib_after_backfill": round(after_backfill, 1),
        "rss_mib_after_quiet_round": round(after_quiet, 1),
        "peak_rss_mib": round(peak, 1), "store_mib": round(store_mib, 1),
        "rss_mib_after_idle_release": round(after_release, 1),
        "quiet_polls": polls, "files_written_by_quiet_polls": written,
        "files_changed_on_disk_by_quiet_polls": touched,
        "backfill_real_seconds": round(backfill_seconds, 1),
    }, indent=1))


if __name__ == "__main__":
    main()
