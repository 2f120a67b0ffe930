"""Throughput of the gov.kz source against the loopback fake: a full first fetch, then a quiet poll.

The fake (``tests/govkz_fake.py``) serves 20 organisations × 1,000 news × 3 languages, generated
deterministically. A *first fetch* reads every organisation and language with backfill 1,000 and
pages of 100 (so every item, 10 pages each) with no delay between requests; a *quiet poll* then
reads them all again with a context that already knows everything (one ticket and one listing
each). Each phase runs ``--runs`` times with a fresh client; the table shows medians::

    .venv/bin/python benchmarks/govkz_bench.py
    .venv/bin/python benchmarks/govkz_bench.py --orgs 5 --items 200 --runs 5

Loopback only; nothing here contacts gov.kz.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from feedsvc.config import GovkzConfig  # noqa: E402
from feedsvc.model import Item  # noqa: E402
from feedsvc.sources.govkz import GovkzClient, GovkzSource  # noqa: E402

from govkz_fake import GovkzFake  # noqa: E402

LANGS = ("kk", "ru", "en")


class BenchContext:
    """Knows what it is told to know; remembers nothing by itself."""

    def __init__(self, state: dict[str, Any] | None, known: set[tuple[str | None, str]]) -> None:
        self.now = datetime.now(UTC)
        self.state = state
        self.known = known

    def previous_state(self) -> dict[str, Any] | None:
        return self.state

    def is_known(self, item: Item) -> bool:
        return (item.news_key, item.content_hash()) in self.known


@dataclass
class Phase:
    seconds: float
    items: int
    requests: int
    server_requests: int


def run_phase(fake: GovkzFake, config: GovkzConfig,
              contexts: dict[str, BenchContext]) -> tuple[Phase, dict[str, Any]]:
    """Read every organisation × language once; returns the phase and each source's result."""
    client = GovkzClient(config)
    sources = [GovkzSource(slug, lang, client, config.backfill, config.page_size)
               for slug in fake.slugs for lang in LANGS]
    fake.clear_log()
    results = {}
    started = time.perf_counter()
    for source in sources:
        results[source.name] = source.read(contexts.get(source.name) or BenchContext(None, set()))
    seconds = time.perf_counter() - started
    client.close()
    items = sum(len(r.items) for r in results.values())
    requests = sum(r.stats["requests"] for r in results.values())
    return Phase(seconds, items, requests, len(fake.requests())), results


def median(phases: list[Phase], attribute: str) -> float:
    return statistics.median(getattr(phase, attribute) for phase in phases)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=20)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pipeline", action="store_true",
                        help="also run it through a real build (store, feeds): a first build "
                        "and a quiet poll, counting requests and files written")
    args = parser.parse_args(argv)

    firsts: list[Phase] = []
    polls: list[Phase] = []
    with GovkzFake(orgs=args.orgs, items=args.items, langs=LANGS) as fake:
        config = GovkzConfig(base_url=fake.base_url, delay=0.0, backfill=args.items,
                             page_size=100)
        for slug in fake.slugs:  # generate the data before timing anything
            for lang in LANGS:
                fake.news(slug, lang)
        for _ in range(args.runs):
            first, results = run_phase(fake, config, {})
            contexts = {name: BenchContext(result.state, {(i.news_key, i.content_hash())
                                                          for i in result.items})
                        for name, result in results.items()}
            poll, _ = run_phase(fake, config, contexts)
            firsts.append(first)
            polls.append(poll)

    sources = args.orgs * len(LANGS)
    print(f"gov.kz source, loopback fake: {args.orgs} orgs × {args.items} items × "
          f"{len(LANGS)} languages = {sources} sources; medians of {args.runs} runs")
    print(f"{'phase':<12}{'items':>9}{'requests':>10}{'seen by server':>16}{'wall s':>9}"
          f"{'items/s':>10}{'req/s':>9}")
    for name, phases in (("first fetch", firsts), ("quiet poll", polls)):
        seconds = median(phases, "seconds")
        items = median(phases, "items")
        requests = median(phases, "requests")
        print(f"{name:<12}{items:>9.0f}{requests:>10.0f}{median(phases, 'server_requests'):>16.0f}"
              f"{seconds:>9.2f}{items / seconds:>10.0f}{requests / seconds:>9.0f}")
    if args.pipeline:
        pipeline_phases(args.orgs, args.items)
    return 0


def pipeline_phases(orgs: int, items: int) -> None:
    """A first build and a quiet poll through the whole pipeline, once each."""
    import tempfile

    from feedsvc.config import Config, PortalConfig, SourceConfig
    from feedsvc.pipeline import make_pipeline

    with GovkzFake(orgs=orgs, items=items, langs=LANGS) as fake, \
            tempfile.TemporaryDirectory() as tmp:
        sources = tuple(SourceConfig(f"https://www.gov.kz/memleket/entities/{slug}", "govkz",
                                     LANGS) for slug in fake.slugs)
        config = Config(sources=sources, out_dir=Path(tmp) / "out", db=Path(tmp) / "db",
                        govkz=GovkzConfig(base_url=fake.base_url, delay=0.0, backfill=items,
                                          page_size=100),
                        # no budget: this measures feedsvc, not its manners
                        portal=PortalConfig(requests_per_second=1_000_000.0))
        print("through the pipeline (store, render, publish), one run each:")
        print(f"{'phase':<12}{'new items':>10}{'requests':>10}{'files written':>15}{'wall s':>9}")
        for phase in ("first build", "quiet poll"):
            fake.clear_log()
            started = time.perf_counter()
            pipeline = make_pipeline(config)
            try:
                report = pipeline.refresh()
            finally:
                pipeline.close()
            seconds = time.perf_counter() - started
            new = sum(outcome.new for outcome in report.sources)
            print(f"{phase:<12}{new:>10}{len(fake.requests()):>10}"
                  f"{len(report.publish.written):>15}{seconds:>9.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
