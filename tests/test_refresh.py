"""The one refresh path: the same result whatever the mode (build or daemon), the order of the
sources, or the threads that read them; one writer; health that never waits for it."""

from __future__ import annotations

import ast
import hashlib
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feedparser
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.config import SourceConfig
from feedsvc.pipeline import EPOCH_ENV, make_pipeline
from feedsvc.sources.textdump import TextDumpFile

from govkz_fake import GovkzFake
from support import DUMPS, ROOT, SEEDS, Site

EPOCH = 1_774_000_000  # 2026-03-20T09:46:40Z: every wall-clock time of these runs
DEADLINE = 30.0


def story(title: str, body: str, link: str | None = None, day: str = "01.03.2026") -> str:
    trailer = f"Source : {link}\n" if link else ""
    return f"{title} {day}\n{body}\n{trailer}"


def news_link(slug: str, news_id: int, lang: str = "en") -> str:
    return (f"https://www.gov.kz/memleket/entities/{slug}/press/news/details/{news_id}"
            f"?lang={lang}")


def files(directory: Path) -> dict[str, str]:
    """Every published file's digest (what a byte-for-byte comparison needs)."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


# --- updated and published ---------------------------------------------------------------------

def test_an_entry_is_never_updated_before_it_was_published(tmp_path: Path) -> None:
    site = Site(tmp_path)
    site.add("a.txt", story("One story", "Short.", news_link("mfa", 1157001), "09.02.2026"))
    site.add("b.txt", story("One story", "A longer body of the same story.",
                            news_link("mfa", 1157001), "05.12.2026"))
    assert site.build().ok
    entries = site.feed("all.atom").entries
    assert len(entries) == 1
    assert entries[0].updated_parsed >= entries[0].published_parsed


def test_a_later_change_dates_the_entry_now_but_never_before_its_publication(
        tmp_path: Path) -> None:
    site = Site(tmp_path)
    path = site.add("a.txt", story("Dated ahead", "Body.", news_link("mfa", 1157002),
                                   "05.12.2026"))
    assert site.build().ok
    path.write_text(story("Dated ahead", "Body, edited.", news_link("mfa", 1157002),
                          "05.12.2026"), encoding="utf-8")
    site.clock.advance(days=1)  # still months before the item's own date
    assert site.build().ok
    entry = site.feed("all.atom").entries[0]
    assert entry.updated_parsed >= entry.published_parsed


# --- the order of sources never matters ----------------------------------------------------------

def _order_sources(root: Path) -> list[Path]:
    """Files whose stories meet: copies with and without a news id, in other sections and
    with other dates, and two gov.kz items that share a title."""
    src = root / "src"
    src.mkdir(parents=True)
    for seed in SEEDS.glob("*.txt"):
        shutil.copy(seed, src / seed.name)
    texts = {
        "x1.txt": story("SHARED STORY FROM TWO FILES", "Short.", news_link("mfa-amman", 77)),
        "x2.txt": story("Shared story from two files", "A longer body. It wins.",
                        news_link("mfa-amman", 77), "02.03.2026"),
        "x3.txt": "World\n" + story("Shared story from two files", "A loose copy."),
        "x4.txt": story("Twin title", "First item.", news_link("kgd", 501)),
        "x5.txt": story("Twin title", "Second item.", news_link("kgd", 502)),
        "x6.txt": story("Twin title", "A copy that names neither."),
    }
    for name, text in texts.items():
        (src / name).write_text(text, encoding="utf-8")
    shutil.copy(DUMPS / "cp1251.txt", src / "cp1251.txt")
    return sorted(src.iterdir())


@pytest.fixture(scope="module")
def order_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    site = Site(tmp_path_factory.mktemp("reference"))
    paths = _order_sources(site.root)
    pipeline = make_pipeline(site.config(*paths), clock=site.clock)
    try:
        assert pipeline.refresh([TextDumpFile(p) for p in paths]).ok
    finally:
        pipeline.close()
    return files(site.out)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(9)))  # the nine files of _order_sources
def test_sources_read_in_any_order_give_one_result(
        order: list[int], order_reference: dict[str, str],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    site = Site(tmp_path_factory.mktemp("order"))
    paths = _order_sources(site.root)
    assert len(paths) == len(order)
    shuffled = [TextDumpFile(paths[i]) for i in order]
    pipeline = make_pipeline(site.config(*paths), clock=site.clock)
    try:
        assert pipeline.refresh(shuffled).ok
    finally:
        pipeline.close()
    assert files(site.out) == order_reference


# --- build and daemon: the same bytes ------------------------------------------------------------

class Daemon:
    """A real ``feedsvc daemon`` process with the clock fixed, as operators run it."""

    def __init__(self, root: Path, config: Path) -> None:
        self.log = root / "daemon.log"
        self.handle = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "feedsvc.cli", "daemon", "--config", str(config)],
            cwd=root, stdout=self.handle, stderr=subprocess.STDOUT,
            env=_env())

    def wait_until(self, predicate: Callable[[], bool], what: Callable[[], str]) -> None:
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited: {self.log.read_text()}")
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"{what()}; log:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=DEADLINE)
        self.handle.close()


def _env() -> dict[str, str]:
    import os

    return {**os.environ, EPOCH_ENV: str(EPOCH)}


def _config(root: Path, name: str, sources: str) -> Path:
    path = root / f"{name}.toml"
    path.write_text(
        f'out_dir = "{name}-out"\ndb = "{name}.sqlite3"\nbase_url = "http://feeds.test/"\n'
        '[server]\nport = 0\n[schedule]\nfile_interval = 1\ngovkz_interval = 1\n'
        f'jitter = 0\n{sources}', encoding="utf-8")
    return path


@dataclass
class Scenario:
    """The same steps, applied to the source directory (and the gov.kz fake) one by one."""

    root: Path
    fake: GovkzFake

    @property
    def src(self) -> Path:
        return self.root / "src"

    def steps(self) -> Iterator[str]:
        self.src.mkdir()
        for seed in SEEDS.glob("*.txt"):
            shutil.copy(seed, self.src / seed.name)
        yield "the seeds"
        self.write("x1.txt", story("SHARED STORY FROM TWO FILES", "Short.",
                                   news_link("mfa-amman", 77)))
        self.write("x2.txt", story("Shared story from two files", "A longer body. It wins.",
                                   news_link("mfa-amman", 77)))
        yield "one story in two files"
        self.write("x2.txt", story("Shared story from two files", "Edited the next day.",
                                   news_link("mfa-amman", 77), "02.03.2026"))
        yield "an edit the next day"
        (self.src / "x1.txt").unlink()
        yield "a file removed"
        shutil.copy(DUMPS / "cp1251.txt", self.src / "cp1251.txt")
        yield "a cp1251 file"
        first = self.fake.news("mfa-brussels", "en")[0]
        self.fake.edit("mfa-brussels", "en", first["id"], title="An edited headline")
        self.fake.publish("mfa-brussels", "en", title="A new item from the API")
        yield "gov.kz: an edit and an addition"

    def write(self, name: str, text: str) -> None:
        # A new mtime even within the file system's timestamp granularity.
        path = self.src / name
        path.write_text(text, encoding="utf-8")
        stat = path.stat()
        import os

        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def _build(root: Path, config: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "feedsvc.cli", "build", "--config",
                           str(config)], cwd=root, env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_daemon_publishes_the_bytes_build_publishes_after_every_step(
        tmp_path: Path) -> None:
    with GovkzFake(["mfa-brussels"], items=6, langs=("en",)) as fake:
        scenario = Scenario(tmp_path, fake)
        sources = (f'[govkz]\nbase_url = "{fake.base_url}"\ndelay = 0\nretries = 1\n'
                   'backfill = 6\npage_size = 5\n[[sources]]\npath = "src"\n[[sources]]\n'
                   'url = "https://www.gov.kz/memleket/entities/mfa-brussels/press/news'
                   '?lang=en"\n')
        build_config = _config(tmp_path, "build", sources)
        daemon_config = _config(tmp_path, "daemon", sources)
        daemon = None
        try:
            for step in scenario.steps():
                _build(tmp_path, build_config)
                expected = files(tmp_path / "build-out")
                if daemon is None:
                    daemon = Daemon(tmp_path, daemon_config)
                out = tmp_path / "daemon-out"
                daemon.wait_until(
                    lambda out=out, expected=expected: files(out) == expected,
                    lambda out=out, expected=expected, step=step: (
                        f"after {step!r}, the daemon's files never matched the build's: "
                        f"{_difference(files(out), expected)}"))
        finally:
            if daemon is not None:
                daemon.stop()


def _difference(got: dict[str, str], expected: dict[str, str]) -> list[str]:
    return sorted(name for name in got.keys() | expected.keys()
                  if got.get(name) != expected.get(name))


def test_the_daemons_first_pass_is_one_refresh_like_a_build(tmp_path: Path) -> None:
    """The case the two paths used to disagree on: a story told by two files."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text(story("Story in two files", "Short.", news_link("mfa", 9)),
                               encoding="utf-8")
    (src / "b.txt").write_text(story("STORY IN TWO FILES", "Longer body here.",
                                     news_link("mfa", 9)), encoding="utf-8")
    sources = '[[sources]]\npath = "src"\n'
    _build(tmp_path, _config(tmp_path, "build", sources))
    daemon = Daemon(tmp_path, _config(tmp_path, "daemon", sources))
    try:
        daemon.wait_until(lambda: files(tmp_path / "daemon-out") == files(tmp_path / "build-out"),
                          lambda: "the daemon's files never matched the build's")
    finally:
        daemon.stop()
    feed = feedparser.parse((tmp_path / "daemon-out" / "all.atom").read_bytes())
    assert feed.feed.updated.startswith("2026-03-01")  # the story's date, not the clock


# --- one client, one request at a time, one writer ---------------------------------------------

class CountingFake(GovkzFake):
    """The gov.kz fake, counting the requests it is answering at the same moment."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = 0
        self.most_in_flight = 0
        self._count_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self._count_lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(0.005)  # long enough for a second request to overlap, if one is sent
            return list(super().__call__(environ, start_response))
        finally:
            with self._count_lock:
                self.in_flight -= 1


def test_many_source_jobs_at_once_share_one_client_and_one_request_at_a_time(
        tmp_path: Path) -> None:
    slugs = [f"mfa-{city}" for city in ("brussels", "amman", "berlin", "paris", "rome", "oslo")]
    with CountingFake(slugs, items=8, langs=("en", "ru")) as fake:
        site = Site(tmp_path)
        from feedsvc.config import GovkzConfig

        specs = tuple(SourceConfig(f"https://www.gov.kz/memleket/entities/{slug}", "govkz",
                                   ("en", "ru")) for slug in slugs)
        config = site.config().with_overrides(
            sources=specs, govkz=GovkzConfig(base_url=fake.base_url, delay=0.0, retries=1,
                                             backfill=8, page_size=4))
        pipeline = make_pipeline(config, clock=site.clock)
        try:
            jobs = [pipeline.sources([spec]) for spec in specs]
            clients = {id(source.client) for job in jobs for source in job}  # type: ignore[attr-defined]
            assert clients == {id(pipeline.clients["govkz"])}
            start = threading.Barrier(len(jobs))
            reports = []

            def run(job: list[Any]) -> None:
                start.wait()
                reports.append(pipeline.refresh(job))

            threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert len(reports) == len(jobs) and all(report.ok for report in reports)
        finally:
            pipeline.close()
        assert len(fake.requests("news")) >= len(slugs) * 2
        assert fake.most_in_flight == 1
    assert len(site.feed("all.atom").entries) == len(slugs) * 8


def test_the_store_refuses_use_from_any_thread_but_the_writer(tmp_path: Path) -> None:
    import sqlite3

    site = Site(tmp_path)
    site.add("a.txt", story("A story", "Body."))
    pipeline = make_pipeline(site.config(), clock=site.clock)
    try:
        with pytest.raises(sqlite3.ProgrammingError, match="thread"):
            pipeline.store.count_items()
        assert pipeline.writer.call(pipeline.store.count_items) == 0
    finally:
        pipeline.close()


def test_health_answers_while_the_writer_is_busy(tmp_path: Path) -> None:
    """/healthz is served from memory: it answers while a 20,000-item publication holds
    the writer thread."""
    from feedsvc.serve import FeedServer, make_app

    site = Site(tmp_path)
    lines = [story(f"Item number {n} about the budget", f"Body {n}.", day="01.03.2026")
             for n in range(20_000)]
    site.add("big.txt", "".join(lines))
    pipeline = make_pipeline(site.config(), clock=site.clock)
    site.out.mkdir()
    server = FeedServer(make_app(site.out, health=pipeline.health.snapshot), "127.0.0.1", 0)
    server.start()
    try:
        assert pipeline.refresh(publish=False).ok
        release = threading.Event()
        pipeline.writer.submit(release.wait, 60)  # the writer is busy until released
        publishing = pipeline.writer.submit(pipeline.publisher.regenerate)
        answer = requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
        assert not publishing.done()
        release.set()
        assert publishing.result(timeout=120).written
    finally:
        server.stop()
        pipeline.close()
    assert answer.status_code == 200
    assert answer.json()["sources"][str(site.src / "big.txt")]["items"] == 20_000


# --- the shape of the house ----------------------------------------------------------------------

def _imports(path: Path, package: str) -> set[str]:
    """The feedsvc modules a module imports, at its top or inside functions."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if module.endswith(".__init__"):
        module = module.removesuffix(".__init__")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" for alias in node.names]
            found.update(name for name in [target, *names] if name.startswith(package))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(package))
    return found


def test_the_import_graph_of_the_package_has_no_cycle() -> None:
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (ROOT / "feedsvc").rglob("*.py")}
    graph = {name: {m for m in _imports(path, "feedsvc") if m in modules and m != name}
             for name, path in modules.items()}
    # A package's __init__ is imported with each of its modules; that is not an arrow back.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(
                    [*path[path.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert "feedsvc.pipeline" not in graph["feedsvc.parallel"]
    assert "feedsvc.render" not in graph["feedsvc.filing"]


# --- every command that writes the store owns it -------------------------------------------------

def test_registry_update_refuses_a_store_another_process_owns(tmp_path: Path) -> None:
    import os

    from feedsvc.lock import store_lock

    db = tmp_path / "store.sqlite3"
    with GovkzFake(["mfa-brussels"], items=1) as fake, store_lock(db):
        done = subprocess.run(
            [sys.executable, "-m", "feedsvc.cli", "registry", "update", "--db", str(db),
             "--lang", "en"], capture_output=True, text=True, timeout=60,
            env={**os.environ, "FEEDSVC_GOVKZ_BASE_URL": fake.base_url})
    assert done.returncode != 0
    assert "already in use" in done.stderr
    assert not db.exists()  # not even created behind the owner's back


def test_explain_topics_reads_a_store_another_process_owns(tmp_path: Path) -> None:
    from feedsvc.lock import store_lock

    site = Site(tmp_path)
    site.add("a.txt", story("Tax declarations are due", "The tax committee reminds everyone.",
                            news_link("kgd", 1157003)))
    assert site.build().ok
    with store_lock(site.db):
        done = subprocess.run(
            [sys.executable, "-m", "feedsvc.cli", "explain-topics", "--db", str(site.db),
             news_link("kgd", 1157003)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Tax declarations are due" in done.stdout


# --- one bad input never stops the others ------------------------------------------------------

class _UnstorableSource:
    """A source whose item carries a news id SQLite cannot hold (2**70): whatever slips past
    the parsers' checks must fail that source alone."""

    name = "fake:unstorable"

    def read(self, context: Any) -> Any:
        from feedsvc.model import Item, Origin
        from feedsvc.sources import SourceResult

        return SourceResult(items=[Item("Too big an id", None, Origin(self.name, 1),
                                        ("Body.",), news_id=2**70, org="mfa")])

    def resting(self, state: Any, now: Any) -> bool:
        return False

    def state_after_failure(self, state: Any, now: Any) -> None:
        return None

    def worker_bytes(self, state: Any) -> None:
        return None


def test_an_item_the_store_cannot_hold_fails_its_source_and_no_other(tmp_path: Path) -> None:
    site = Site(tmp_path)
    site.copy_seeds()
    pipeline = make_pipeline(site.config(), clock=site.clock)
    try:
        report = pipeline.refresh([*pipeline.sources(), _UnstorableSource()])
        health = pipeline.health.snapshot()
        stored = pipeline.writer.call(pipeline.store.count_items)
    finally:
        pipeline.close()
    assert [o.name for o in report.failed] == ["fake:unstorable"]
    assert "cannot store" in (report.failed[0].error or "")
    assert stored == 25
    assert len(site.feed("all.atom").entries) == 25
    assert health["status"] == "failing"
    assert not health["sources"]["fake:unstorable"]["healthy"]


def test_a_feed_that_cannot_be_written_is_reported_the_others_published_and_it_heals(
        tmp_path: Path) -> None:
    site = Site(tmp_path)
    site.copy_seeds()
    blocker = site.out / "org" / "mfa-brussels.atom"
    blocker.mkdir(parents=True)  # a directory where the feed's file belongs
    done = subprocess.run([sys.executable, "-m", "feedsvc.cli", "build", "--source",
                           str(site.src), "--out", str(site.out), "--db", str(site.db)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "mfa-brussels.atom" in done.stderr and "errors: 1" in done.stderr
    assert len(feedparser.parse((site.out / "all.atom").read_bytes()).entries) == 25
    assert (site.out / "ministry" / "mfa.atom").is_file()
    blocker.rmdir()
    again = subprocess.run([sys.executable, "-m", "feedsvc.cli", "build", "--source",
                            str(site.src), "--out", str(site.out), "--db", str(site.db)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert feedparser.parse(blocker.read_bytes()).entries


def test_a_story_stored_in_two_refreshes_before_it_is_published_is_dated_as_in_one(
        tmp_path: Path) -> None:
    """What a crash between two chunks of a build leaves, or two daemon jobs before the next
    publication: no reader has seen the story, so its second copy is no change."""
    site = Site(tmp_path)
    first = site.add("a.txt", story("One story", "Short.", news_link("mfa", 1157004)))
    second = site.add("b.txt", story("One story", "A longer body of the story.",
                                     news_link("mfa", 1157004)))
    pipeline = make_pipeline(site.config(), clock=site.clock)
    try:
        assert pipeline.refresh([TextDumpFile(first)], publish=False).ok
        site.clock.advance(hours=3)
        report = pipeline.refresh([TextDumpFile(second)])
    finally:
        pipeline.close()
    assert sum(o.changed for o in report.sources) == 0
    entry = site.feed("all.atom").entries[0]
    assert entry.updated == entry.published == "2026-03-01T00:00:00+05:00"
    site.clock.advance(hours=3)  # once published, a new copy is a change
    second.write_text(story("One story", "Edited after it was published.",
                            news_link("mfa", 1157004)), encoding="utf-8")
    assert sum(o.changed for o in site.build().sources) == 1
    assert site.feed("all.atom").entries[0].updated != "2026-03-01T00:00:00+05:00"
