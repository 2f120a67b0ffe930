"""The daemon answers query feeds from the store it keeps writing (a real subprocess)."""

from __future__ import annotations

from pathlib import Path

from test_daemon import DaemonProcess, daemon, entries, root

__all__ = ["daemon", "root"]  # fixtures used below


def test_query_feeds_follow_the_daemons_publications(daemon: DaemonProcess,
                                                     root: Path) -> None:
    daemon.wait_for("all.atom", lambda r: len(entries(r)) == 25)
    # (all.atom is the first file of the publication: wait for the ministry's feed too)
    static = daemon.wait_for("ministry/mfa.atom", lambda r: len(entries(r)) == 7)
    mfa = daemon.wait_for("query.atom?org=mfa", lambda r: len(entries(r)) == 7)
    assert [e.id for e in entries(mfa)] == [e.id for e in entries(static)]
    # its own configured base URL, not the address asked
    assert 'href="http://feeds.test/query.atom?org=mfa" rel="self"' in mfa.text
    assert daemon.get("query.json?org=mfa").headers["content-type"] == "application/feed+json"
    daemon.wait_for("query.atom?q=quasar", lambda r: entries(r) == [])  # 200, and empty
    (root / "src" / "new.txt").write_text(
        "World\nA QUASAR WAS SEEN OVER ASTANA 20.11.2026\nAstronomers saw quasars.\n",
        encoding="utf-8")
    found = daemon.wait_for("query.atom?q=quasar", lambda r: len(entries(r)) == 1)
    assert entries(found)[0].title == "A QUASAR WAS SEEN OVER ASTANA"
    assert daemon.get("query.rss?org=nobody").text == "org: unknown organisation 'nobody'\n"
