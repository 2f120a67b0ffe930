"""The size of ``/healthz`` with the whole portal: every stream listed, or summarised.

    .venv/bin/python benchmarks/healthz_size.py [--failing N]

Builds the daemon's :class:`feedsvc.health.Health` with one row per stream of the shipped
registry in kk, ru and en (6,183 streams, as after a day of following), ``--failing`` of them
failing (404, a few failures in a row), and prints the JSON answer's bytes (and gzipped, as
the server sends it to a client asking for gzip) and the time to build it, both ways: listed
under ``sources`` (``snapshot()`` without the portal's view: what the daemon answered before)
and summarised under ``portal`` (what it answers now).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feedsvc.health import Health, PortalRule, PortalView
from feedsvc.registry import shipped_organisations
from feedsvc.store import SourceHealth

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
ERROR = ("govkz:{slug}:ru: www.gov.kz answered HTTP 404 (GET https://www.gov.kz/api/v1/public/"
         "content-manager/news?projects=eq:{slug}&page=1&size=10): not found")
DESCRIPTION = {"mode": "streams", "streams": 0, "unread": 0, "planned_polls_per_second": 0.9,
               "budget": "60 requests per 60 s", "requests_in_last_window": 60,
               "requests_since_start": 86_400}


def rows(failing: int) -> list[SourceHealth]:
    slugs = sorted(org.slug for org in shipped_organisations())
    made = []
    for index, slug in enumerate(slugs):
        for lang in ("kk", "ru", "en"):
            bad = lang == "ru" and index < failing
            made.append(SourceHealth(
                f"govkz:{slug}:{lang}", NOW - timedelta(minutes=index % 90),
                NOW - timedelta(seconds=index) if bad else None,
                ERROR.format(slug=slug) if bad else None, 3 + index % 7 if bad else 0, 100))
    return made


def measure(health: Health, view: PortalView | None) -> tuple[dict[str, Any], int, int, float]:
    began = time.perf_counter()
    answer = health.snapshot(view, NOW)
    if view is None:  # as the daemon did: the follower's description beside every source
        answer["portal"] = DESCRIPTION
    elapsed = time.perf_counter() - began
    body = json.dumps(answer, ensure_ascii=False, default=str).encode()
    return answer, len(body), len(gzip.compress(body, 6)), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--failing", type=int, default=1)
    args = parser.parse_args()
    table = rows(args.failing)
    health = Health(table)
    health.read_sources(row.name for row in table)
    health.published(NOW, [])
    view = PortalView({row.name for row in table}, {**DESCRIPTION, "streams": len(table)},
                      NOW - timedelta(days=1), None, PortalRule())
    for label, shown in (("listed", None), ("summarised", view)):
        answer, size, zipped, elapsed = measure(health, shown)
        print(f"{label}: {len(table)} streams, {args.failing} failing: status "
              f"{answer['status']}, {size:,} bytes ({zipped:,} gzipped), "
              f"{elapsed * 1000:.1f} ms to build")


if __name__ == "__main__":
    main()
