"""Screenshots of the pages for people, to look at after changing a template or the CSS.

    .venv/bin/python scripts/screenshots.py [OUT_DIR]

Builds seeds/ into a temporary directory, serves it with the built-in server and saves
full-page PNGs of the directory and a feed page at 390 px (a phone) and 1280 px (a laptop)
into OUT_DIR (default: screenshots/), plus the first screen of each. Also the Kazakh directory, a
ministry's page, an item page and a feed opened in the browser. Needs Chromium
(scripts/install-test-deps.sh).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from feedsvc.config import Config, SourceConfig
from feedsvc.pipeline import make_pipeline
from feedsvc.serve import FeedServer, make_app

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PAGES = {"index": "index.html", "index-kk": "kk/index.html", "feed": "org/mfa-brussels.html",
         "ministry": "ministry/mfa.html", "atom": "ministry/mfa.atom"}
WIDTHS = (390, 1280)


def main(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temp:
        out = Path(temp) / "out"
        out.mkdir()
        server = FeedServer(make_app(out), "127.0.0.1", 0)
        server.start()
        try:
            config = Config(sources=(SourceConfig(str(ROOT / "seeds"), "file"),), out_dir=out,
                            db=Path(temp) / "store.sqlite3", base_url=server.url)
            pipeline = make_pipeline(config)
            try:
                pipeline.refresh()
            finally:
                pipeline.close()
            items = sorted((out / "item").glob("*.html"))
            pages = {**PAGES, "item": str(items[0].relative_to(out))} if items else PAGES
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                     args=CHROMIUM_ARGS)
                for width in WIDTHS:
                    page = browser.new_page(viewport={"width": width, "height": 800})
                    for name, path in pages.items():
                        page.goto(server.url + path)
                        shot = target / f"{name}-{width}.png"
                        page.screenshot(path=str(shot), full_page=True)
                        first = target / f"{name}-{width}-first-screen.png"
                        page.screenshot(path=str(first))
                        print(shot, first)
                    page.close()
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "screenshots")
