"""A whole one-shot build on real files, a real SQLite store and feeds read back by feedparser."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from markupsafe import escape

import feedsvc.parallel as parallel_module
import feedsvc.pipeline as pipeline_module
import feedsvc.publisher as publisher_module
from feedsvc.pipeline import BuildReport, make_pipeline
from feedsvc.store import Store

from support import BASE, DUMPS, ROOT, SEEDS, Site, entry_ids

MFA_EMBASSIES = {"mfa-almaty", "mfa-brussels", "mfa-kuveyt", "mfa-amman", "mfa-bucharest"}


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


@pytest.fixture
def seeded(site: Site) -> Site:
    site.copy_seeds()
    report = site.build()
    assert report.ok
    return site


def story(title: str, body: str = "Body.", link: str | None = None, day: str = "01.03.2026"
          ) -> str:
    trailer = f"Source : {link}\n" if link else ""
    return f"{title} {day}\n{body}\n{trailer}"


def link(slug: str, news_id: int, lang: str = "kk") -> str:
    return f"https://www.gov.kz/memleket/entities/{slug}/press/news/details/{news_id}?lang={lang}"


def test_seeds_give_25_distinct_items_in_all_atom(seeded: Site) -> None:
    feed = seeded.feed("all.atom")
    assert len(feed.entries) == 25
    assert len(set(entry_ids(feed))) == 25


def test_duplicate_story_is_one_entry_with_every_section(seeded: Site) -> None:
    feed = seeded.feed("all.atom")
    shymkent = [e for e in feed.entries if e.title.startswith("CONSTITUTIONAL REFORM DRAFT")]
    assert len(shymkent) == 1
    terms = {tag.term for tag in shymkent[0].tags}
    assert {"News", "Society"} <= terms
    # The copy that kept its quotes wins over the one that lost them.
    assert '"E-petition"' in shymkent[0].content[0].value


def test_embassies_roll_up_into_the_foreign_ministry_feed(seeded: Site) -> None:
    feed = seeded.feed("ministry/mfa.atom")
    orgs = {tag.term for entry in feed.entries for tag in entry.tags
            if tag.scheme == BASE + "org/"}
    assert MFA_EMBASSIES | {"mfa"} == orgs
    assert len(feed.entries) == 7


def test_tax_department_is_in_its_committee_and_ministry_feeds(seeded: Site) -> None:
    committee = seeded.feed("org/kgd.atom")
    ministry = seeded.feed("ministry/minfin.atom")
    own = seeded.feed("org/kgd-mangistau.atom")
    titles = {e.title for e in own.entries}
    assert titles and titles <= {e.title for e in committee.entries}
    assert titles <= {e.title for e in ministry.entries}
    assert len(committee.entries) == 2  # kgd-mangistau and kgd-zhetysu


def test_every_organisation_with_items_has_its_feed(seeded: Site) -> None:
    org_feeds = {p.stem for p in (seeded.out / "org").glob("*.atom")}
    ministry_feeds = {p.stem for p in (seeded.out / "ministry").glob("*.atom")}
    assert org_feeds >= MFA_EMBASSIES
    assert {"kgd", "kgd-mangistau", "kgd-zhetysu", "kyzylorda-karmakshy",
            "kostanai-mendykarin-audany-akimat"} <= org_feeds
    assert {"mfa", "minfin", "mod", "mps", "almobl", "kazaid", "kyzylorda",
            "kostanay"} == ministry_feeds


def test_items_without_organisation_are_in_no_organisation_feed(seeded: Site) -> None:
    all_titles = {e.title for e in seeded.feed("all.atom").entries}
    in_other = set()
    for path in [*seeded.out.glob("org/*.atom"), *seeded.out.glob("ministry/*.atom")]:
        if path.name != "all.atom":
            in_other |= {e.title for e in seeded.feed(str(path.relative_to(seeded.out))).entries}
    assert len(all_titles - in_other) == 10


def test_unknown_slug_gets_a_sensible_feed_under_its_prefix_parent(site: Site) -> None:
    site.add("a.txt", story("New mission opens", link=link("mfa-newcity", 3000001)))
    site.build()
    feed = site.feed("org/mfa-newcity.atom")
    assert feed.feed.title.startswith("Ministry of Foreign Affairs of the Republic of "
                                      "Kazakhstan: Newcity")
    assert [e.title for e in site.feed("ministry/mfa.atom").entries] == ["New mission opens"]


def test_feed_has_the_required_atom_metadata(seeded: Site) -> None:
    feed = seeded.feed("org/mfa-brussels.atom")
    meta = feed.feed
    assert meta.id.startswith("urn:uuid:")
    assert meta.title and meta.updated and meta.author
    rels = {(link.rel, link.type): link.href for link in meta.links}
    assert rels["self", "application/atom+xml"] == BASE + "org/mfa-brussels.atom"
    # the same feed in the other formats
    assert rels["alternate", "application/rss+xml"] == BASE + "org/mfa-brussels.rss"
    assert rels["alternate", "application/feed+json"] == BASE + "org/mfa-brussels.json"
    assert meta.link == rels["alternate", "text/html"]  # what readers open as the feed's page
    assert rels["alternate", "text/html"] == BASE + "org/mfa-brussels.html"  # the feed's page
    assert meta.author_detail.href.startswith("https://www.gov.kz/memleket/entities/mfa-brussels")
    assert meta.generator == "feedsvc"
    entry = feed.entries[0]
    assert entry.link == link("mfa-brussels", 1157092)
    assert entry.published == "2026-02-09T00:00:00+05:00"
    assert entry.updated and entry.summary and entry.content[0].type == "text/html"
    assert entry.author == "Embassy of the Republic of Kazakhstan in the Kingdom of Belgium"


def test_atom_ids_are_rfc4122_version_5_uuids() -> None:
    import uuid

    from feedsvc.model import atom_id_for

    namespace = uuid.UUID("6f1c2a8e-3f53-5b3e-9d2a-8a1f0c9e4b71")
    for key in ("news:1157092:en", "title:kk:0123456789abcdef0123", "feed:ru/org/mfa"):
        assert atom_id_for(key) == f"urn:uuid:{uuid.uuid5(namespace, key)}"


def test_feed_declares_its_language(seeded: Site) -> None:
    root = etree.parse(str(seeded.out / "all.atom")).getroot()
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"


def test_entries_are_newest_first(seeded: Site) -> None:
    published = [e.published for e in seeded.feed("all.atom").entries]
    assert published == sorted(published, reverse=True)


def test_entry_cap_limits_each_feed(site: Site) -> None:
    site.copy_seeds()
    site.build(entry_cap=3)
    assert len(site.feed("all.atom").entries) == 3
    assert len(site.feed("ministry/mfa.atom").entries) == 3


def test_ids_are_stable_across_runs_stores_and_file_order(site: Site, tmp_path: Path) -> None:
    site.copy_seeds()
    site.build()
    first = sorted(entry_ids(site.feed("all.atom")))
    # A fresh store, the files renamed so they are read in the opposite order.
    other = Site(tmp_path / "second")
    other.src.mkdir(parents=True)
    for index, seed in enumerate(sorted(SEEDS.glob("*.txt"), reverse=True)):
        (other.src / f"{index}-{seed.name}").write_bytes(seed.read_bytes())
    other.build()
    assert sorted(entry_ids(other.feed("all.atom"))) == first
    assert (other.out / "all.atom").read_bytes() == (site.out / "all.atom").read_bytes()


def test_rerun_on_unchanged_input_changes_no_byte_and_no_mtime(seeded: Site) -> None:
    before = seeded.snapshot()
    seeded.clock.advance(hours=1)
    report = seeded.build()
    assert seeded.snapshot() == before
    assert report.publish.written == []


def test_touched_but_identical_file_rewrites_nothing(seeded: Site) -> None:
    before = seeded.snapshot()
    for path in seeded.src.iterdir():
        os.utime(path, ns=(1, 1))
    seeded.build()
    assert seeded.snapshot() == before


def with_formats(atom_paths: set[str]) -> set[str]:
    """Each feed's three files: ``x.atom`` and its ``x.rss`` and ``x.json``."""
    return {path.removesuffix(".atom") + suffix for path in atom_paths
            for suffix in (".atom", ".rss", ".json")}


def test_changed_body_moves_updated_keeps_id_and_rewrites_only_its_feeds(seeded: Site) -> None:
    before = seeded.snapshot()
    old = {e.title: e for e in seeded.feed("org/mfa-brussels.atom").entries}
    path = seeded.src / "000_b0f3105e8a9764a0.txt"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("Brussels, 8 February 2026 - a poetic event",
                                 "Brussels, 8 February 2026 - a fine poetic event"),
                    encoding="utf-8")
    seeded.clock.advance(hours=2)
    report = seeded.build()
    after = seeded.snapshot()
    changed = {name for name in after if after[name] != before.get(name)}
    topics = {f"topic/{tag.term}.atom" for tag in old["Poetic Event Dedicated to Mukagali "
                                                        "Makataev Held in Brussels"].tags
              if tag.scheme == BASE + "topic/"}
    assert topics, "the story should have at least one topic"
    feeds = {"all.atom", "org/mfa-brussels.atom", "ministry/mfa.atom"} | topics
    pages = {name.replace(".atom", ".html") for name in feeds}
    listings = {"feeds.opml", "feeds-distinct.opml", "opml/mfa.opml", "index.html",
                "kk/index.html", "ru/index.html"}
    assert changed == with_formats(feeds) | pages | listings
    assert sum(o.changed for o in report.sources) == 1
    entry = seeded.feed("org/mfa-brussels.atom").entries[0]
    previous = old[entry.title]
    assert entry.id == previous.id
    assert entry.updated == "2026-03-20T16:00:00+05:00" != previous.updated
    assert "a fine poetic event" in entry.content[0].value


def test_item_omitted_by_a_later_dump_is_kept(seeded: Site) -> None:
    path = seeded.src / "000_b0f3105e8a9764a0.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:30]) + "\n", encoding="utf-8")  # drop the last 7 items
    seeded.build()
    assert len(seeded.feed("all.atom").entries) == 25


def test_same_story_in_two_files_is_one_entry(site: Site) -> None:
    site.add("a.txt", "World\n" + story("People's Council – a new body", "A long body text."))
    site.add("b.txt", "Society More\n" + story("Peoples Council - a new body", "Short."))
    site.build()
    entries = site.feed("all.atom").entries
    assert len(entries) == 1
    assert {t.term for t in entries[0].tags if t.scheme == BASE + "section/"} == {"World",
                                                                                 "Society"}
    assert "A long body text." in entries[0].content[0].value


def test_story_gaining_a_link_later_keeps_its_id(site: Site) -> None:
    site.add("a.txt", story("Minister met ambassador", "Talks held."))
    site.build()
    first = entry_ids(site.feed("all.atom"))
    site.add("b.txt", story("Minister met ambassador", "Talks held.", link("mod", 4000001)))
    site.build()
    feed = site.feed("all.atom")
    assert entry_ids(feed) == first
    assert feed.entries[0].link == link("mod", 4000001)


def test_two_gov_kz_items_with_the_same_title_and_date_stay_apart(site: Site) -> None:
    site.add("a.txt", story("Weekly briefing", "One.", link("mfa-amman", 5000001))
             + story("Weekly briefing", "Two.", link("mfa-doha", 5000002)))
    site.build()
    assert len(site.feed("all.atom").entries) == 2


def test_bad_files_are_reported_and_the_good_ones_still_published(site: Site) -> None:
    site.copy_seeds()
    site.add("empty.txt", b"")
    site.add("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00")
    site.add("latin1.txt", b"caf\xe9 01.01.2026\n")
    report = site.build()
    assert not report.ok
    failed = {Path(o.name).name: o.error for o in report.failed}
    assert set(failed) == {"empty.txt", "binary.txt", "latin1.txt"}
    assert "empty file" in failed["empty.txt"] and "binary" in failed["binary.txt"]
    assert len(site.feed("all.atom").entries) == 25


def test_missing_source_path_is_an_error_not_a_crash(site: Site) -> None:
    site.copy_seeds()
    report = site.build(site.src, site.root / "nowhere.txt")
    assert [Path(o.name).name for o in report.failed] == ["nowhere.txt"]
    assert "no such file" in report.failed[0].error
    assert len(site.feed("all.atom").entries) == 25


def test_item_with_impossible_date_is_published_without_published(site: Site) -> None:
    site.add("a.txt", story("Odd date story", "Body.", day="31.02.2026"))
    report = site.build()
    entry = site.feed("all.atom").entries[0]
    assert entry.title == "Odd date story"
    assert "published" not in entry
    assert entry.updated == "2026-03-20T14:00:00+05:00"
    assert any("impossible date" in w for o in report.sources for w in o.warnings)


def test_no_xml_illegal_character_reaches_a_feed(site: Site) -> None:
    site.add("a.txt", b"Bad \x01chars\x7f 01.03.2026\nBody\x0b with\x1f noise.\n")
    site.build()
    data = (site.out / "all.atom").read_bytes()
    assert not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", data)
    assert site.feed("all.atom").entries[0].title == "Bad chars 01.03.2026".rsplit(" ", 1)[0]


def test_languages_get_separate_feeds_that_never_mix(site: Site) -> None:
    site.copy_seeds()
    site.add("kk.txt", (Path(__file__).parent / "data" / "dumps" / "cyrillic.txt")
             .read_text(encoding="utf-8"))
    site.build()
    assert len(site.feed("all.atom").entries) == 25
    kk = site.feed("kk/all.atom")
    ru = site.feed("ru/all.atom")
    assert [e.title for e in kk.entries] == ["Астанада жаңа мектеп ашылды"]
    assert [e.title for e in ru.entries] == ["В Минфине обсудили бюджет на 2027 год"]
    assert site.feed("ru/ministry/minfin.atom").feed.title.startswith("Министерство финансов")


def test_opml_lists_every_feed_with_urls_and_category(seeded: Site) -> None:
    root = etree.parse(str(seeded.out / "feeds.opml")).getroot()
    assert root.get("version") == "2.0"
    outlines = root.findall(".//outline[@xmlUrl]")
    atom_files = {str(p.relative_to(seeded.out)) for p in seeded.out.rglob("*.atom")}
    assert {o.get("xmlUrl") for o in outlines} == {BASE + path for path in atom_files}
    assert {o.get("category") for o in outlines} == {"/all", "/ministry", "/organisation",
                                                     "/topic"}
    for outline in outlines:
        assert outline.get("title") and outline.get("htmlUrl").startswith("http")


def test_index_page_lists_feeds_with_counts_and_autodiscovery(seeded: Site) -> None:
    page = (seeded.out / "index.html").read_text(encoding="utf-8")
    assert f'<link rel="alternate" type="application/atom+xml" title="gov.kz: all news" ' \
           f'href="{BASE}all.atom">' in page
    assert f'href="{BASE}org/mfa-kuveyt.atom"' in page
    assert 'href="org/mfa-kuveyt.html"' in page
    assert 'Items: 25' in page
    assert 'href="feeds.opml"' in page and 'href="opml/mfa.opml"' in page


def test_every_url_in_feeds_and_opml_is_absolute(seeded: Site) -> None:
    for path in [*seeded.out.rglob("*.atom"), *seeded.out.rglob("*.opml")]:
        text = path.read_text(encoding="utf-8")
        # the stylesheet instruction is relative on purpose (see render.with_stylesheet)
        text = re.sub(r"<\?xml-stylesheet [^>]*\?>", "", text)
        for url in re.findall(r'(?:href|xmlUrl|htmlUrl|scheme|src)="([^"]*)"', text):
            assert url.startswith(("http://", "https://")), (path, url)


def test_every_entry_has_a_link_and_items_without_a_source_get_a_page(seeded: Site) -> None:
    entries = seeded.feed("all.atom").entries
    assert all(entry.link for entry in entries)
    own = [entry for entry in entries if entry.link.startswith(BASE + "item/")]
    assert len(own) == 10  # the seeds' items without a "Source :" line
    for entry in own:
        page = (seeded.out / entry.link.removeprefix(BASE)).read_text(encoding="utf-8")
        assert str(escape(entry.title)) in page


def test_the_feeds_point_at_their_stylesheet_and_their_page(seeded: Site) -> None:
    for path in ["all.atom", "org/mfa-brussels.atom"]:
        data = (seeded.out / path).read_bytes()
        href = "static/feed.xsl" if "/" not in path else "../static/feed.xsl"
        assert data.splitlines()[1] == \
            f'<?xml-stylesheet type="text/xsl" href="{href}"?>'.encode()
        page = path.replace(".atom", ".html")
        assert {link.href for link in seeded.feed(path).feed.links
                if link.rel == "alternate" and link.type == "text/html"} == {BASE + page}
        assert (seeded.out / page).is_file()
    assert (seeded.out / "static" / "feed.xsl").is_file()


def test_changing_the_base_url_rewrites_every_feed(seeded: Site) -> None:
    seeded.build(base_url="https://feeds.example.org/gov/")
    feed = seeded.feed("all.atom")
    assert {link.href for link in feed.feed.links if link.rel == "self"} == {
        "https://feeds.example.org/gov/all.atom"}


@pytest.mark.parametrize("name", ["org/mfa-amman.atom", "org/mfa-amman.rss",
                                  "org/mfa-amman.json", "org/mfa-amman.html"])
def test_a_deleted_file_of_a_feed_is_published_again(seeded: Site, name: str) -> None:
    """Any one of a feed's files (each format, its page) lost from the output is written
    again by the next build, with the bytes it had, though nothing in the feed changed."""
    before = (seeded.out / name).read_bytes()
    (seeded.out / name).unlink()
    seeded.build()
    assert (seeded.out / name).read_bytes() == before


def test_no_temporary_file_is_left_in_the_output(seeded: Site) -> None:
    assert not [p for p in seeded.out.rglob(".tmp-*")]


def test_changes_stored_but_not_yet_published_are_published_by_the_next_run(
        seeded: Site) -> None:
    from feedsvc.sources.textdump import TextDumpFile

    path = seeded.add("late.txt", story("A story stored before a crash", "Body."))
    pipeline = make_pipeline(seeded.config(), clock=seeded.clock)
    try:  # stored, then the process "dies" before publishing
        assert pipeline.refresh([TextDumpFile(path)], publish=False).sources[0].new == 1
    finally:
        pipeline.close()
    assert "A story stored before a crash" not in {e.title for e in
                                                   seeded.feed("all.atom").entries}
    report = seeded.build()
    assert sum(o.new for o in report.sources) == 0
    assert "A story stored before a crash" in {e.title for e in seeded.feed("all.atom").entries}


def _mixed_sources(site: Site) -> None:
    """Seeds, dumps in other languages and encodings, a bad file, and a story told by two
    files: everything a build folds, files and rejects."""
    site.copy_seeds()
    for name in ("cyrillic.txt", "tricky.txt", "bom_crlf.txt", "cp1251.txt", "binary.txt"):
        site.add(name, (DUMPS / name).read_bytes())
    site.add("x1.txt", story("SHARED STORY FROM TWO FILES", "Short.", link("mfa-amman", 77)))
    site.add("x2.txt", story("Shared story from two files", "A longer body. It wins.",
                             link("mfa-amman", 77)))


def _build(site: Site, parallel: bool) -> BuildReport:
    pipeline = make_pipeline(site.config(), clock=site.clock, parallel=parallel)
    try:
        return pipeline.refresh()
    finally:
        pipeline.close()


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def tiny_parallel_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline_module, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(publisher_module, "PARALLEL_MIN_FEEDS", 1)


@pytest.mark.usefixtures("tiny_parallel_thresholds")
def test_a_parallel_build_writes_what_one_process_writes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    serial, parallel = Site(tmp_path / "serial"), Site(tmp_path / "parallel")
    for site in (serial, parallel):
        _mixed_sources(site)
    expected = _build(serial, parallel=False)
    with caplog.at_level(logging.INFO, logger="feedsvc.pipeline"):
        report = _build(parallel, parallel=True)
    assert any(r.getMessage().startswith("build.parallel sources=") for r in caplog.records)
    assert not any("parallel_failed" in r.getMessage() for r in caplog.records)
    assert summary_counts(report) == summary_counts(expected)
    assert [o.error is None for o in report.sources] == [o.error is None
                                                          for o in expected.sources]
    assert _files(parallel.out) == _files(serial.out)
    for site in (serial, parallel):
        store = Store(site.db)
        try:
            assert store.integrity_problems() == []
        finally:
            store.close()
    shared = [e for e in parallel.feed("org/mfa-amman.atom").entries
              if e.title.casefold() == "shared story from two files"]
    assert len(shared) == 1 and "It wins." in shared[0].content[0].value


@pytest.mark.usefixtures("tiny_parallel_thresholds")
def test_a_dead_worker_leaves_the_build_to_the_main_process(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    _mixed_sources(site)
    reference = Site(site.root / "reference")
    _mixed_sources(reference)
    expected = _build(reference, parallel=False)

    def dead(self: parallel_module.Workers, name: str) -> parallel_module.Prepared:
        raise BrokenProcessPool("a worker died")

    monkeypatch.setattr(parallel_module.Workers, "take", dead)
    report = _build(site, parallel=True)
    assert summary_counts(report) == summary_counts(expected)
    assert _files(site.out) == _files(reference.out)


def test_workers_run_at_a_lower_priority_than_the_main_process(site: Site) -> None:
    from feedsvc.registry import load_registry
    from feedsvc.render import Site as PublishedSite

    workers = parallel_module.Workers(site.config(), [],
                                      PublishedSite(BASE, "en", load_registry()))
    try:
        in_worker = workers._pool.submit(os.nice, 0).result()  # os.nice(0): the current value
    finally:
        workers.close()
    main = os.nice(0)
    assert in_worker == min(19, main + parallel_module.WORKER_NICENESS)
    assert in_worker > main or main == 19


def summary_counts(report: BuildReport) -> tuple[int, int, int, int]:
    return (sum(o.new for o in report.sources), sum(o.changed for o in report.sources),
            sum(o.unchanged for o in report.sources), len(report.failed))


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four dump files of 8.8 MB in all (12,000 stories, 60 organisations, 82 feeds): over the
    real thresholds of a parallel build, as generated for the benchmarks."""
    corpus = tmp_path_factory.mktemp("big") / "corpus"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gen_corpus.py"), str(corpus),
                    "--items", "12000", "--orgs", "60", "--files", "4"],
                   check=True, capture_output=True, timeout=120)
    return corpus


def test_a_big_build_from_the_command_line_goes_parallel_and_writes_what_one_process_writes(
        big_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``feedsvc build`` as a user runs it, over the real thresholds (nothing patched), against
    the one-process pipeline the daemon uses, on the same files under the same names."""
    files = sorted(big_corpus.glob("*.txt"))
    assert len(files) >= 2
    assert sum(f.stat().st_size for f in files) >= pipeline_module.PARALLEL_MIN_BYTES
    monkeypatch.chdir(big_corpus.parent)  # both builds name the sources "corpus/..."
    run = subprocess.run(
        [sys.executable, "-m", "feedsvc.cli", "build", "--source", "corpus", "--out",
         str(tmp_path / "parallel"), "--db", str(tmp_path / "parallel.sqlite3"),
         "--base-url", BASE], capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "SOURCE_DATE_EPOCH": "1774000000"})  # both builds, one clock
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"build.parallel sources={len(files)} " in run.stderr
    assert "parallel_failed" not in run.stderr

    serial = Site(tmp_path / "serial")
    config = serial.config(Path("corpus"))
    pipeline = make_pipeline(config, parallel=False,
                             clock=lambda: datetime.fromtimestamp(1774000000, UTC))
    try:
        report = pipeline.refresh()
    finally:
        pipeline.close()
    assert report.ok and sum(o.new for o in report.sources) == 12_000
    expected = _files(serial.out)
    assert len(expected) > publisher_module.PARALLEL_MIN_FEEDS  # rendering goes parallel too
    assert _files(tmp_path / "parallel") == expected


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        listed = task / "children"
        if listed.exists():
            found.update(int(child) for child in listed.read_text().split())
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_workers_exit_when_a_build_is_killed(big_corpus: Path, tmp_path: Path) -> None:
    """SIGKILL gives the build no chance to stop its workers: they notice on their own."""
    import signal

    log = tmp_path / "build.log"
    with log.open("w") as handle:
        build = subprocess.Popen(
            [sys.executable, "-m", "feedsvc.cli", "build", "--source", str(big_corpus),
             "--out", str(tmp_path / "out"), "--db", str(tmp_path / "store.sqlite3")],
            stdout=handle, stderr=subprocess.STDOUT)
        end = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < end and build.poll() is None:
            # Killed while the workers are busy: idle ones would see their queue close anyway.
            if "source.read" in log.read_text():
                workers = _children(build.pid)
                if len(workers) >= 2:
                    break
            time.sleep(0.05)
        assert len(workers) >= 2, log.read_text()
        build.send_signal(signal.SIGKILL)
        build.wait(timeout=10)
    end = time.monotonic() + 15
    while time.monotonic() < end and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)]


def test_a_build_waits_for_the_workers_of_a_killed_one(tmp_path: Path) -> None:
    """A worker outlives its killed parent by a moment; the next build must not write the
    output while it might (it holds the workers' lock until it exits)."""
    site = Site(tmp_path)
    site.copy_seeds()
    marker = tmp_path / "released"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time, pathlib\n"
         "from feedsvc.lock import hold_for_worker\n"
         f"hold_for_worker(pathlib.Path({str(site.db)!r}))\n"
         "print('held', flush=True)\n"
         "time.sleep(1.5)\n"
         f"pathlib.Path({str(marker)!r}).write_text('x')\n"],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    build = subprocess.run([sys.executable, "-m", "feedsvc.cli", "build", "--source",
                            str(site.src), "--out", str(site.out), "--db", str(site.db)],
                           capture_output=True, text=True, timeout=120)
    holder.wait(timeout=30)
    assert build.returncode == 0, build.stderr
    assert marker.stat().st_mtime_ns <= (site.out / "all.atom").stat().st_mtime_ns


@pytest.mark.parametrize("batch", ["smaller than a batch", "a batch"])
def test_a_refresh_of_a_batch_gives_back_its_memory_and_a_small_one_keeps_its_caches(
        site: Site, batch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refresh that stored a batch of BATCH_ITEMS (with the big page cache) leaves the store
    at its everyday cache and forgets the words the classifier learned; a small refresh (the
    daemon's usual) keeps what it learned."""
    if batch == "a batch":
        monkeypatch.setattr(pipeline_module, "BATCH_ITEMS", 10)
    site.copy_seeds()  # 25 items
    pipeline = make_pipeline(site.config(), clock=site.clock)
    try:
        assert pipeline.refresh().ok
        assert pipeline.writer.call(pipeline.store.cache_mib) == pipeline_module.CACHE_MIB
        languages = pipeline.filing.taxonomy._matcher.languages.values()
        learned = sum(len(language.marks) for language in languages)
        assert (learned == 0) == (batch == "a batch")
    finally:
        pipeline.close()
