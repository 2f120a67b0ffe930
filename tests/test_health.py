"""/healthz's verdict with the whole portal: the daemon's own Health, fed the rows it keeps.

The daemon test (tests/test_portal.py) shows the same against the loopback fake; these pin the
rule at its edges (the window, the floor of reads, staleness, the bound on what is listed)
without hours of wall clock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from feedsvc.health import LISTED_FAILING, Health, PortalRule, PortalView
from feedsvc.store import SourceHealth

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
STREAMS = [f"govkz:org{n:04d}:{lang}" for n in range(2061) for lang in ("kk", "ru", "en")]


def ok(name: str, ago: float = 60.0) -> SourceHealth:
    return SourceHealth(name, NOW - timedelta(seconds=ago), None, None, 0, 10)


def bad(name: str, ago: float = 30.0, failures: int = 3) -> SourceHealth:
    return SourceHealth(name, NOW - timedelta(days=2), NOW - timedelta(seconds=ago),
                        f"{name}: answered HTTP 500", failures, 10)


def view(*, since: datetime = NOW - timedelta(days=1), listing_ok: datetime | None = None,
         streams: list[str] = STREAMS) -> PortalView:
    return PortalView(set(streams), {"mode": "streams", "streams": len(streams)}, since,
                      listing_ok, PortalRule())


def answer(rows: list[SourceHealth], portal: PortalView | None = None) -> dict[str, object]:
    health = Health(rows)
    health.published(NOW, [])
    return health.snapshot(portal or view(), NOW)


def test_one_failing_stream_degrades_and_is_listed_without_listing_the_others() -> None:
    rows = [ok(name) for name in STREAMS[1:]] + [bad(STREAMS[0])]
    health = answer(rows)
    summary = health["portal"]
    assert health["status"] == summary["status"] == "degraded"  # type: ignore[index]
    assert summary["healthy"] == len(STREAMS) - 1 and summary["failing"] == 1  # type: ignore[index]
    assert list(summary["failing_streams"]) == [STREAMS[0]]  # type: ignore[index]
    assert health["sources"] == {}
    assert len(json.dumps(health)) < 2000


def test_most_streams_read_in_the_window_failing_is_failing() -> None:
    half = len(STREAMS) // 2
    rows = [bad(name) for name in STREAMS[:half + 1]] + [ok(name) for name in STREAMS[half + 1:]]
    summary = answer(rows)["portal"]
    assert summary["status"] == "failing"  # type: ignore[index]
    assert summary["reason"] == f"{half + 1} of the {len(STREAMS)} streams read in the last " \
                                f"3600 s failed"  # type: ignore[index]
    rows = [bad(name) for name in STREAMS[:half - 1]] + [ok(name) for name in STREAMS[half - 1:]]
    assert answer(rows)["status"] == "degraded"


def test_only_reads_within_the_window_count() -> None:
    """Streams that failed two hours ago (and, backed off, were not read since) beside a few
    read a minute ago: the recent reads decide, so the portal is not failing."""
    rows = [bad(name, ago=7200) for name in STREAMS[:3000]] + [ok(n) for n in STREAMS[3000:3100]]
    summary = answer(rows)["portal"]
    assert summary["status"] == "degraded"  # type: ignore[index]
    assert summary["recent"] == {"seconds": 3600.0, "streams_read": 100,  # type: ignore[index]
                                 "failed": 0}
    assert summary["failing"] == 3000  # type: ignore[index]


def test_the_first_read_failing_is_not_the_verdict_on_a_fresh_portal() -> None:
    """A fresh daemon's first read of 6,183 streams fails: one read is not "most"; five are
    (out of the floor of ten)."""
    fresh = view(since=NOW - timedelta(seconds=30))
    assert answer([bad(STREAMS[0])], fresh)["status"] == "degraded"
    assert answer([bad(name) for name in STREAMS[:5]], fresh)["status"] == "degraded"
    assert answer([bad(name) for name in STREAMS[:6]], fresh)["status"] == "failing"
    # ... and a portal of three streams, all failing, is failing at once.
    few = view(since=NOW - timedelta(seconds=30), streams=STREAMS[:3])
    assert answer([bad(name) for name in STREAMS[:3]], few)["status"] == "failing"


def test_nothing_succeeding_for_longer_than_stale_after_is_failing() -> None:
    """No read has succeeded for seven hours (more than the six allowed) and none failed
    recently either: the follower is not getting anywhere. A working listing, or a follower
    that started less than six hours ago, is not stale."""
    rows = [ok(name, ago=7 * 3600) for name in STREAMS]
    summary = answer(rows)["portal"]
    assert summary["status"] == "failing"  # type: ignore[index]
    assert summary["reason"].startswith("no read succeeded since")  # type: ignore[index]
    assert answer(rows, view(listing_ok=NOW - timedelta(seconds=50)))["status"] == "ok"
    assert answer(rows, view(since=NOW - timedelta(hours=5)))["status"] == "ok"


def test_the_list_is_bounded_worst_first() -> None:
    rows = [bad(name, failures=1 + n % 7) for n, name in enumerate(STREAMS[:400])]
    rows += [ok(name) for name in STREAMS[400:]]
    listed = answer(rows)["portal"]["failing_streams"]  # type: ignore[index]
    assert len(listed) == LISTED_FAILING
    assert {entry["consecutive_failures"] for entry in listed.values()} == {7}


def test_configured_sources_are_listed_and_one_failing_still_fails_the_service() -> None:
    """The portal's summary beside them changes nothing for sources configured one by one."""
    rows = [ok(name) for name in STREAMS] + [ok("seeds/a.txt"), bad("seeds/b.txt")]
    health = answer(rows)
    assert set(health["sources"]) == {"seeds/a.txt", "seeds/b.txt"}  # type: ignore[arg-type]
    assert health["status"] == "failing"
    assert health["portal"]["status"] == "ok"  # type: ignore[index]
