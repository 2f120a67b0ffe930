"""The whole portal as one source: configuration, a build, and the daemon's follower against
the loopback fake in portal mode (real HTTP, real store, real feeds; the follower's, the
pipeline's and the budget's clock is a virtual one, so hours pass without waiting)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from feedsvc.config import Config, GovkzConfig, PortalConfig, SourceConfig, load_config
from feedsvc.errors import ConfigError
from feedsvc.follow import GLOBAL, STREAMS, Follower
from feedsvc.pipeline import Pipeline, make_pipeline
from feedsvc.poller import max_in_window
from feedsvc.registry import shipped_organisations
from feedsvc.sources import govkz, portal

from govkz_fake import GovkzFake
from govkz_portal import ActivityClass, PortalWorld, VirtualClock

START = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
SLUGS = ["akorda", "mfa", "mfa-brussels", "mfa-kuwait", "minfin", "kgd", "kgd-mangistau"]
PORTAL = "https://www.gov.kz"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def world(clock: VirtualClock) -> PortalWorld:
    # Busy enough that every stream has news within hours.
    classes = (ActivityClass("hot", 0.3, 0.7), ActivityClass("active", 0.7, 0.3))
    return PortalWorld(SLUGS, start=START, days=3, clock=clock, news_per_day=80,
                       history=30, classes=classes)


@pytest.fixture
def fake(world: PortalWorld) -> Iterator[GovkzFake]:
    with GovkzFake(portal=world) as server:
        yield server


def portal_config(tmp_path: Path, fake: GovkzFake, **portal_values: object) -> Config:
    values: dict[str, object] = {"requests_per_second": 0.1, "min_interval": 300.0,
                                 "global_listing": "off"}
    values.update(portal_values)
    return Config(sources=(SourceConfig(PORTAL, "govkz", ("ru", "en")),),
                  out_dir=tmp_path / "feeds", db=tmp_path / "store.sqlite3",
                  govkz=replace(GovkzConfig(), base_url=fake.base_url, backfill=30),
                  portal=replace(PortalConfig(), **values))


def start(config: Config, clock: VirtualClock) -> tuple[Pipeline, Follower]:
    """A pipeline and follower as the daemon wires them, on the virtual clock."""
    pipeline = make_pipeline(config, clock=clock.utc, sleep=clock.sleep)
    pipeline.clients["govkz"].close()
    client = govkz.make_client(config, clock.sleep, clock=clock)
    client.portal = portal.PortalOrgs(list(SLUGS))
    pipeline.clients["govkz"] = client
    follower = Follower(pipeline, config.sources[0], clock=clock)
    follower.load()
    return pipeline, follower


def run_for(follower: Follower, clock: VirtualClock, seconds: float) -> None:
    end = clock.now + seconds
    while clock.now < end:
        wait = follower.step()
        clock.now += min(wait, max(0.0, end - clock.now)) if wait else 0.0
        if wait == 0 and follower.planner.next_due(clock.now) is None:
            break


def stored_news(tmp_path: Path) -> set[tuple[int, str]]:
    """(news id, language) of every entry of the published all-feeds."""
    found = set()
    for lang in ("kk", "ru", "en"):
        path = tmp_path / "feeds" / ("all.atom" if lang == "en" else f"{lang}/all.atom")
        if path.exists():
            for entry in feedparser.parse(path.read_bytes()).entries:
                found.add((int(entry.link.rstrip("/").split("/")[-1].split("?")[0]), lang))
    return found


# --- configuration -----------------------------------------------------------------------------

def test_the_portal_link_and_the_portal_table_are_read_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "feedsvc.toml"
    path.write_text('[portal]\nallow = ["mfa-*", "akorda"]\ndeny = ["mfa-kuwait"]\n'
                    'requests_per_second = 0.5\nglobal_listing = "off"\n'
                    'health_failing_share = 0.8\n\n'
                    '[[sources]]\nurl = "https://www.gov.kz/"\nlangs = ["ru"]\n')
    config = load_config(path)
    assert config.sources[0].kind == "govkz"
    assert config.portal.allow == ("mfa-*", "akorda")
    assert config.portal.budget_limit == 30
    assert (config.portal.health_window, config.portal.health_failing_share,
            config.portal.health_stale_after) == (3600.0, 0.8, 21600.0)
    client = govkz.make_client(config)
    client.portal = portal.PortalOrgs(list(SLUGS))
    names = [source.name for source in portal.expand(config.sources[0], config, client)]
    assert names == ["govkz:akorda:ru", "govkz:mfa-brussels:ru"]


@pytest.mark.parametrize(("line", "message"), [
    ('allow = ["mfa*"]', "not a slug or a slug prefix"),
    ('global_listing = "maybe"', "'global_listing' must be one of auto, off, not 'maybe'"),
    ("requests_per_second = 0", "'requests_per_second' must be a number greater than 0"),
    ('langs = ["de"]', "'langs' must be an array of values from kk, ru, en, not 'de'"),
    ("health_failing_share = 1.5", "'health_failing_share' must be a number greater than 0"),
    ("health_window = 10", "'health_window' must be a number from 60"),
])
def test_a_bad_portal_table_is_refused_naming_the_key(tmp_path: Path, line: str,
                                                       message: str) -> None:
    path = tmp_path / "feedsvc.toml"
    path.write_text(f"[portal]\n{line}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_a_build_reads_every_allowed_stream_once_with_one_ticket(tmp_path: Path,
                                                                  fake: GovkzFake) -> None:
    config = portal_config(tmp_path, fake, allow=("mfa-*",), requests_per_second=1000.0)
    config = replace(config, govkz=replace(config.govkz, delay=0.0))
    pipeline = make_pipeline(config)
    try:
        pipeline.clients["govkz"].portal = portal.PortalOrgs(list(SLUGS))
        report = pipeline.refresh()
    finally:
        pipeline.close()
    assert sorted(o.name for o in report.sources) == [
        "govkz:mfa-brussels:en", "govkz:mfa-brussels:ru", "govkz:mfa-kuwait:en",
        "govkz:mfa-kuwait:ru"]
    assert report.ok and all(o.new for o in report.sources)
    assert len(fake.requests("ticket")) == 1  # kept for every stream
    assert len(fake.requests("news")) == 4  # a first read is one page of up to 100
    assert feedparser.parse((tmp_path / "feeds/ru/org/mfa-kuwait.atom").read_bytes()).entries


# --- the follower --------------------------------------------------------------------------------

def test_the_budget_holds_under_faults_and_a_restart(tmp_path: Path, fake: GovkzFake,
                                                     clock: VirtualClock) -> None:
    config = portal_config(tmp_path, fake, requests_per_second=0.1)  # 6 a minute
    fake.fault("news", 429, {"message": "slow down"}, headers={"Retry-After": "2"}, times=5)
    fake.fault("news", 503, "<html>busy</html>", times=8)
    fake.fault("ticket", 500, times=3)
    pipeline, follower = start(config, clock)
    run_for(follower, clock, 3600)
    pipeline.close()
    fake.fault("*", 502, times=6)
    pipeline, follower = start(config, clock)  # a new process: a new, empty budget...
    follower.client.http.budget.assume_full()  # ...that the daemon starts full
    run_for(follower, clock, 3600)
    pipeline.close()
    starts = [entry.at for entry in fake.requests() if entry.at is not None]
    assert len(starts) > 300  # it did work, at the limit
    assert max_in_window(starts, 60.0) <= 6


def test_a_restart_resumes_from_what_the_store_knows(tmp_path: Path, fake: GovkzFake,
                                                     clock: VirtualClock) -> None:
    config = portal_config(tmp_path, fake, requests_per_second=1.0)
    pipeline, follower = start(config, clock)
    run_for(follower, clock, 2 * 3600)
    learned = {name: (s.last_poll, s.next_poll, s.events) for name, s in
               follower.planner.streams.items()}
    pipeline.close()
    assert all(last is not None for last, _, _ in learned.values())
    pipeline, follower = start(config, clock)
    resumed = {name: (s.last_poll, s.next_poll, s.events) for name, s in
               follower.planner.streams.items()}
    fake.clear_log()
    run_for(follower, clock, 60)
    pipeline.close()
    assert resumed == learned
    # No stream is read as a first time again (that would ask for a backfill page of 100).
    assert all(entry.query.get("size") != "100" for entry in fake.requests("news"))


def test_a_new_organisation_is_followed_after_a_registry_refresh(
        tmp_path: Path, fake: GovkzFake, world: PortalWorld, clock: VirtualClock) -> None:
    config = portal_config(tmp_path, fake, requests_per_second=1.0)
    pipeline, follower = start(config, clock)
    run_for(follower, clock, 600)
    world.add_org("newbody", rate_per_day=48.0, days=1)
    follower.next_registry = clock.now  # as if a day had passed
    run_for(follower, clock, 3 * 3600)
    pipeline.close()
    assert {"govkz:newbody:ru", "govkz:newbody:en"} <= set(follower.planner.streams)
    feed = tmp_path / "feeds" / "ru" / "ministry" / "newbody.atom"  # (a top-level body)
    assert feedparser.parse(feed.read_bytes()).entries


def test_the_listing_switching_off_falls_back_without_losing_items(
        tmp_path: Path, fake: GovkzFake, world: PortalWorld, clock: VirtualClock) -> None:
    config = portal_config(tmp_path, fake, requests_per_second=1.0, global_listing="auto")
    pipeline, follower = start(config, clock)
    run_for(follower, clock, 3 * 3600)
    assert follower.mode == GLOBAL
    listing_at_switch = follower.global_requests
    world.global_listing = False
    run_for(follower, clock, 6 * 3600)
    pipeline.close()
    assert follower.mode == STREAMS
    assert follower.global_requests > listing_at_switch  # it was asked, and refused
    published = {(news_id, lang) for news_id, _, lang, _ in
                 world.items_between(START - 400 * 86400, clock.now - 3600)
                 if lang in ("ru", "en")}
    recent = {key for key in published if world.published[key[0]] >= START}
    assert recent and recent <= stored_news(tmp_path)


def test_the_mode_shows_in_what_health_reports(tmp_path: Path, fake: GovkzFake,
                                               clock: VirtualClock) -> None:
    config = portal_config(tmp_path, fake, global_listing="auto")
    pipeline, follower = start(config, clock)
    follower.step()
    pipeline.close()
    described = follower.describe()
    assert described["mode"] == GLOBAL and described["streams"] == 14
    json.dumps(described)


# --- the daemon ----------------------------------------------------------------------------------

def test_the_daemon_follows_the_portal_and_shows_the_mode(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A real daemon process on the wall clock: it reads the streams allowed, publishes their
    feeds, says which mode it is in, and a story published later reaches its feed."""
    import time

    from test_daemon import DaemonProcess

    now = time.time()
    world = PortalWorld(SLUGS, start=now, days=0, clock=time.time, news_per_day=80,
                        history=5)
    with GovkzFake(portal=world) as fake:
        monkeypatch.setenv("FEEDSVC_GOVKZ_BASE_URL", fake.base_url)
        (tmp_path / "feedsvc.toml").write_text(
            'out_dir = "out"\ndb = "store.sqlite3"\n[server]\nport = 0\n'
            '[govkz]\ndelay = 0.01\n'
            '[portal]\nallow = ["mfa-*"]\nlangs = ["ru"]\nrequests_per_second = 20\n'
            'budget_window = 1\nglobal_interval = 1\n'
            '[[sources]]\nurl = "https://www.gov.kz"\n', encoding="utf-8")
        daemon = DaemonProcess(tmp_path, "--config", "feedsvc.toml")
        try:
            daemon.wait_listening()
            health = daemon.wait_for("healthz", lambda r: r.json().get("portal", {}).get(
                "mode") == "global" and r.json()["portal"]["unread"] == 0).json()
            shipped = {org.slug for org in shipped_organisations()
                       if org.slug.startswith("mfa-")}
            # The shipped registry's, and what the registry refresh added; in ru only.
            assert health["portal"]["streams"] == len(shipped | {"mfa-brussels", "mfa-kuwait"})
            # Summarised, not listed: every stream read and healthy, none under "sources".
            assert health["status"] == "ok" and health["sources"] == {}
            assert health["portal"]["healthy"] == health["portal"]["streams"]
            assert health["portal"]["failing"] == 0 and health["portal"]["status"] == "ok"
            story = world.publish("mfa-kuwait", ("ru",))
            feed = daemon.wait_for("ru/org/mfa-kuwait.atom",
                                   lambda r: str(story["id"]) in r.text)
            assert feedparser.parse(feed.content).entries
        finally:
            assert daemon.stop() == 0
    assert "portal.mode mode=global" in daemon.log.read_text()


def test_a_listing_that_does_not_name_owners_is_not_trusted(tmp_path: Path, fake: GovkzFake,
                                                             clock: VirtualClock) -> None:
    """A listing without ``projects`` that answers objects without an owner (the filter was
    ignored, or the format changed) is not used: per-stream polling, tried again later."""
    config = portal_config(tmp_path, fake, global_listing="auto")
    fake.fault("news", 200, [{"id": 1_200_000, "title": "whose?"}])
    pipeline, follower = start(config, clock)
    began = clock.now
    follower.step()
    pipeline.close()
    assert follower.mode == STREAMS
    assert follower.next_global >= began + 3600  # asked again in an hour


# --- /healthz with the whole portal --------------------------------------------------------------

def _healthz_until(daemon: object, wanted: int, predicate: object) -> dict[str, object]:
    """Poll the daemon's /healthz until it answers ``wanted`` with a body ``predicate`` likes."""
    import time

    end = time.monotonic() + 60
    last = None
    while time.monotonic() < end:
        last = daemon.get("healthz")  # type: ignore[attr-defined]
        if last.status_code == wanted and predicate(last.json()):  # type: ignore[operator]
            return last.json()  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"/healthz never answered {wanted} as wanted; last: "
                         f"{last and last.status_code} {last and last.text[:2000]}")


def test_healthz_summarises_the_portal_one_failing_stream_is_not_an_outage(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real daemon following ~100 streams on the wall clock against the fake: one
    organisation answering 500 is listed and the answer stays 200 ("degraded"); the whole
    portal failing is 503 ("failing", saying why); once gov.kz answers again, 200 "ok"."""
    import time

    from test_daemon import DaemonProcess

    world = PortalWorld(SLUGS, start=time.time(), days=0, clock=time.time, news_per_day=80,
                        history=5)
    with GovkzFake(portal=world) as fake:
        monkeypatch.setenv("FEEDSVC_GOVKZ_BASE_URL", fake.base_url)
        broken = fake.fault("news:mfa-kuwait", 500, "<html>oops</html>", times=None)
        (tmp_path / "feedsvc.toml").write_text(
            'out_dir = "out"\ndb = "store.sqlite3"\n[server]\nport = 0\n'
            '[govkz]\ndelay = 0.01\nretries = 0\nfailure_threshold = 1000\n'
            '[portal]\nallow = ["mfa-*"]\nlangs = ["ru"]\nrequests_per_second = 50\n'
            'budget_window = 1\nglobal_listing = "off"\nmin_interval = 1\nmax_interval = 3\n'
            'health_window = 60\n'
            '[[sources]]\nurl = "https://www.gov.kz"\n', encoding="utf-8")
        daemon = DaemonProcess(tmp_path, "--config", "feedsvc.toml")
        try:
            daemon.wait_listening()
            health = _healthz_until(daemon, 200, lambda h: "portal" in h and h["portal"][
                "healthy"] == h["portal"]["streams"] - 1 and h["portal"]["failing"] == 1)
            summary = health["portal"]
            assert health["status"] == summary["status"] == "degraded"
            assert summary["failing"] == 1 and summary["mode"] == "streams"
            listed = summary["failing_streams"]["govkz:mfa-kuwait:ru"]
            assert listed["consecutive_failures"] >= 1 and "500" in listed["last_error"]
            assert listed["last_failure"] and summary["requests_since_start"] > 0
            assert health["sources"] == {} and summary["streams"] > 50
            assert len(daemon.get("healthz").content) < 5000  # not a line per stream

            everything = fake.fault("*", 500, "<html>down</html>", times=None)
            health = _healthz_until(daemon, 503, lambda h: h["status"] == "failing")
            assert health["portal"]["status"] == "failing"
            assert "failed" in health["portal"]["reason"]
            assert len(health["portal"]["failing_streams"]) == min(50, health["portal"][
                "failing"])

            fake.faults.remove(everything)
            fake.faults.remove(broken)
            health = _healthz_until(daemon, 200, lambda h: h["status"] == "ok")
            assert health["portal"]["failing"] == 0 and not health["portal"]["failing_streams"]
        finally:
            assert daemon.stop() == 0
