"""Following the whole portal for simulated days: freshness and cost within the budget.

    .venv/bin/python benchmarks/portal_sim.py [--orgs N] [--days D] [--design adaptive|global|fixed]

What runs is the daemon's own code: :class:`feedsvc.follow.Follower` (planner, budget, registry
refresh, cross-organisation listing), the gov.kz source (ticket, REST listing, parsing,
sanitising) and the pipeline's one refresh (store, filing, publication of the feeds into a
temporary directory), against the loopback fake of gov.kz in portal mode
(``tests/govkz_portal.py``: every organisation of the registry, heavy-tailed activity, news
appearing over time).

Time is virtual. The fake, the pipeline's clock, the HTTP client's pacing and the budget all read
one :class:`VirtualClock`; waiting (the 1 s between requests, the budget, the planner's idle
time) advances it instead of sleeping. Each request still goes through real loopback HTTP and
each read through the real refresh, but the time they take on this machine is not counted: a
simulated day of one request a second is 86,400 real requests, some minutes of real time. So
the figures are those of a gov.kz that answers at once; gov.kz's real answer time (if it is
not negligible beside the 1 s delay) makes every figure proportionally worse.

A first day would be mostly the backfill (one request per stream, 1.7 hours at one request a
second for the whole portal) and learning; the figures are for the day after (``--warmup``
days first, not measured), as a daemon runs most of its life. Scale: ``--orgs`` takes a
sample of the registry; the budget is then scaled with it (``--rps`` default: orgs/2061), so
each stream gets the same share of requests as in the whole portal.

Reported: time from an item's publication to the end of the refresh that published its feed
(p50, p95, max) per activity class and over all; items not published by the end; requests per
new item; the most requests in any 60 s window (half-open, from the fake's log); the share of
requests that found nothing new.

Publication: the daemon publishes at the end of every refresh; here the refreshes only store,
and the feeds are published every ``--publish-every`` simulated seconds (an hour; 0: as the
daemon) and at the end. Publication takes no simulated time and a latency ends with the
refresh that stored the item (when the daemon publishes it), so the figures are the same
(checked: identical output either way on 206 organisations); what it saves is real time, as
re-rendering the portal's index pages, OPML and feeds after each of ~6,000 refreshes took 99 %
of the store's thread (cProfile) and most of a run.

Designs: ``adaptive`` (the planner, no listing), ``global`` (the cross-organisation listing),
``fixed`` (today's design: every stream every 30 minutes, a fresh ticket per read, pages of
50; the budget and the 1 s delay still hold, so a round over all streams takes longer than 30
minutes and streams are read as soon as they are due, most overdue first).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from feedsvc.config import Config, GovkzConfig, PortalConfig, SourceConfig  # noqa: E402
from feedsvc.follow import Follower  # noqa: E402
from feedsvc.pipeline import make_pipeline  # noqa: E402
from feedsvc.poller import max_in_window  # noqa: E402
from feedsvc.registry import shipped_organisations  # noqa: E402
from feedsvc.sources import govkz, portal  # noqa: E402

from govkz_fake import GovkzFake  # noqa: E402
from govkz_portal import DAY, PortalWorld, VirtualClock  # noqa: E402

START = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
FULL_PORTAL = 2061


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(orgs: int, days: float, warmup: float, design: str, rps: float | None,
        work: Path, backfill: int = 100, exponent: float | None = None,
        publish_every: float = 3600.0) -> dict[str, object]:
    clock = VirtualClock(START)
    slugs = sorted(org.slug for org in shipped_organisations())[:: max(1, FULL_PORTAL // orgs)]
    slugs = slugs[:orgs]
    rps = rps if rps is not None else len(slugs) / FULL_PORTAL
    world = PortalWorld(slugs, start=START, days=warmup + days + 1, clock=clock,
                        news_per_day=600.0 * len(slugs) / FULL_PORTAL)
    world.global_listing = design == "global"
    with GovkzFake(portal=world) as fake:
        config = Config(
            sources=(SourceConfig("https://www.gov.kz", "govkz"),),
            out_dir=work / "feeds", db=work / "store.sqlite3",
            govkz=replace(GovkzConfig(), base_url=fake.base_url, backfill=backfill),
            portal=replace(PortalConfig(), requests_per_second=rps,
                           poll_page_size=50 if design == "fixed" else 10,
                           global_listing="auto" if design == "global" else "off"))
        pipeline = make_pipeline(config, clock=clock.utc, sleep=clock.sleep)
        if publish_every > 0:  # stored at once, published now and then: see the docstring
            pipeline.refresh = partial(  # type: ignore[method-assign]
                pipeline.refresh, publish=False)
        next_publish = START + publish_every
        pipeline.clients["govkz"].close()
        client = govkz.make_client(config, clock.sleep, clock=clock)
        pipeline.clients["govkz"] = client
        client.portal = portal.PortalOrgs(list(slugs))
        spec = config.sources[0]
        follower = Follower(pipeline, spec, clock=clock)
        if exponent is not None:
            follower.planner.policy = replace(follower.planner.policy, exponent=exponent)
        if design == "fixed":
            follower.planner.fixed_interval = 1800.0
            portal.PortalStream.ticket_per_read = True
        follower.load()
        measure_from = START + warmup * DAY
        measure_to = measure_from + days * DAY
        found: dict[tuple[int, str], float] = {}
        polls = empty_polls = 0
        listing: list[tuple[int, int]] = []  # (requests, empty) at the window's ends
        wall = time.perf_counter()
        next_note = START
        try:
            while clock.now < measure_to + 6 * 3600:
                if len(listing) < 2 and clock.now >= (measure_from, measure_to)[len(listing)]:
                    listing.append((follower.global_requests, follower.global_empty))
                if clock.now >= next_note:
                    print(f"simulated {(clock.now - START) / 3600:.1f} h, real "
                          f"{time.perf_counter() - wall:.0f} s", file=sys.stderr, flush=True)
                    next_note += 6 * 3600
                if publish_every > 0 and clock.now >= next_publish:
                    pipeline.publish()
                    next_publish += publish_every
                if design == "fixed":  # no listing, no registry: as today
                    follower.next_global = follower.next_registry = float("inf")
                wait = follower.step()
                report = follower.last_report
                follower.last_report = None
                if report is not None:
                    for outcome in report.sources:
                        _, slug, lang = outcome.name.split(":")
                        in_window = measure_from <= clock.now < measure_to
                        if in_window and not outcome.stats.get("first"):
                            polls += outcome.stats.get("requests", 0)
                            if not outcome.new + outcome.changed:
                                empty_polls += outcome.stats.get("requests", 0)
                        for moment in outcome.stats.get("published", []):
                            if moment >= measure_from:
                                found.setdefault((round(moment, 3), slug + ":" + lang),
                                                 clock.now)
                if wait > 0:
                    clock.now += wait
            pipeline.publish()
        finally:
            pipeline.close()
        log = [entry.at for entry in fake.requests() if entry.at is not None]
    measured = [at for at in log if measure_from <= at < measure_to]
    items = world.items_between(measure_from, measure_to)
    latencies: dict[str, list[float]] = {}
    missing = 0
    for _news_id, slug, lang, moment in items:
        seen = found.get((round(_round_to_second(moment), 3), f"{slug}:{lang}"))
        if seen is None:
            missing += 1
            continue
        latencies.setdefault(world.klass[slug], []).append(seen - moment)
        latencies.setdefault("all", []).append(seen - moment)
    new_items = len(items) - missing
    listing += [(follower.global_requests, follower.global_empty)] * (2 - len(listing))
    listing_requests = listing[1][0] - listing[0][0]
    listing_empty = listing[1][1] - listing[0][1]
    return {
        "design": design, "exponent": follower.planner.policy.exponent, "orgs": len(slugs),
        "streams": len(follower.planner.streams),
        "requests_per_second_budget": rps, "days_measured": days, "warmup_days": warmup,
        "items_published": len(items), "items_not_published_by_end": missing,
        "latency_minutes": {klass: {"n": len(values),
                                    "p50": round(percentile(values, 0.5) / 60, 1),
                                    "p95": round(percentile(values, 0.95) / 60, 1),
                                    "max": round(max(values) / 60, 1)}
                            for klass, values in sorted(latencies.items())},
        "requests": len(measured),
        "requests_per_second_average": round(len(measured) / (days * DAY), 4),
        "requests_per_new_item": round(len(measured) / max(1, new_items), 2),
        "max_requests_in_60s": max_in_window(log, 60.0),
        "budget_in_60s": config.portal.budget_limit,
        "share_of_stream_requests_finding_nothing": round(empty_polls / max(1, polls), 3),
        "listing_requests": listing_requests,
        "share_of_requests_finding_nothing": round(
            (empty_polls + listing_empty) / max(1, polls + listing_requests), 3),
        "mode_at_end": follower.mode,
        "real_seconds": round(time.perf_counter() - wall, 1),
    }


def _round_to_second(moment: float) -> float:
    """Publication times go through ``created_date`` (whole seconds, Almaty time)."""
    return float(int(moment))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgs", type=int, default=FULL_PORTAL)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rps", type=float, default=None)
    parser.add_argument("--backfill", type=int, default=100,
                        help="items of a stream's first read (fewer: a faster warm-up)")
    parser.add_argument("--exponent", type=float, default=None,
                        help="interval ~ rate ** -exponent (default: the planner's)")
    parser.add_argument("--design", choices=("adaptive", "global", "fixed"),
                        default="adaptive")
    parser.add_argument("--publish-every", type=float, default=3600.0,
                        help="simulated seconds between publications (0: after every "
                             "refresh, as the daemon; the same figures: see the module docstring)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.orgs, args.days, args.warmup, args.design, args.rps, Path(tmp),
                     args.backfill, args.exponent, args.publish_every)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
