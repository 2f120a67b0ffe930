"""Baseline: a plain script that parses the corpus and writes the same feeds with feedgen.

No store, no incremental logic: every run reads every ``*.txt`` file line by line and writes
every feed. The parsing is deliberately straightforward:

- a title line ends in `` DD.MM.YYYY``; a header line is a short label ("News More", "World")
  followed by a title or another label; it sets the section;
- body lines run to the next title or header; a trailing ``Source : <url>`` (glued or not)
  gives the link, the organisation slug and the news id; each body line is one paragraph
  (no sentence splitting);
- a story seen twice is one entry: dedupe by normalised title + date, the first wins.

Feeds (newest 50 entries each): ``all.atom``, ``org/<slug>.atom`` per organisation slug and
``ministry/<m>.atom`` per ministry, where ministry = the slug's first dash-separated part
(a crude stand-in for the registry). Each entry has id, title, updated, published, link,
content, summary and categories.

Usage::

    python benchmarks/baseline_feedgen.py CORPUS_DIR OUT_DIR
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import html
import re
import sys
import time
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from feedgen.feed import FeedGenerator

ENTRIES = 50
ALMATY = timezone(timedelta(hours=5))
BASE_URL = "http://bench.invalid/baseline/"
TITLE = re.compile(r"^(?P<title>.*\S)\s+(?P<d>\d{2})\.(?P<m>\d{2})\.(?P<y>\d{4})$")
LABEL = re.compile(r"^[^\W\d_][\w&'’ \-]{0,40}$")
TRAILER = re.compile(r"\s*Source\s*:\s*(?P<url>https?://\S+)\s*$")
GOVKZ = re.compile(r"/entities/(?P<slug>[^/?#]+)/press/news/details/(?P<id>\d+)")
NOT_WORD = re.compile(r"[^\w]+")


@dataclass(slots=True)
class Item:
    title: str
    published: datetime
    section: str | None
    paragraphs: list[str] = field(default_factory=list)
    url: str | None = None
    org: str | None = None
    news_id: int | None = None

    @property
    def key(self) -> str:
        return f"{normalise(self.title)}|{self.published.date().isoformat()}"

    @property
    def order(self) -> tuple[datetime, int, str]:
        return (self.published, self.news_id or 0, self.title)


def normalise(title: str) -> str:
    text = unicodedata.normalize("NFKC", title).casefold()
    for mark in ("'", "’", "ʼ", "`"):
        text = text.replace(mark, "")
    return " ".join(NOT_WORD.sub(" ", text).split())


# --- parsing -----------------------------------------------------------------------------------


def parse_file(path: Path) -> list[Item]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    lines = [line for line in lines if line]
    items: list[Item] = []
    section: str | None = None
    current: Item | None = None
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else None
        if is_header(line, following, lines, index):
            section = line.removesuffix(" More")
            current = None
        elif (match := TITLE.match(line)) and (published := parse_date(match)):
            current = Item(match["title"], published, section)
            items.append(current)
        elif current is not None:
            current.paragraphs.append(line)
    for item in items:
        take_trailer(item)
    return items


def is_header(line: str, following: str | None, lines: list[str], index: int) -> bool:
    if not LABEL.match(line):
        return False
    if following is None or TITLE.match(following):
        return True
    return is_header(following, lines[index + 2] if index + 2 < len(lines) else None,
                     lines, index + 1)


def parse_date(match: re.Match[str]) -> datetime | None:
    try:
        return datetime(int(match["y"]), int(match["m"]), int(match["d"]), tzinfo=ALMATY)
    except ValueError:
        return None


def take_trailer(item: Item) -> None:
    if not item.paragraphs or not (match := TRAILER.search(item.paragraphs[-1])):
        return
    rest = item.paragraphs[-1][: match.start()].rstrip()
    item.paragraphs[-1:] = [rest] if rest else []
    item.url = match["url"]
    if found := GOVKZ.search(item.url):
        item.org, item.news_id = found["slug"], int(found["id"])


def parse_corpus(corpus: Path) -> tuple[list[Item], int]:
    """Distinct items (first occurrence wins) and the number of occurrences read."""
    seen: dict[str, Item] = {}
    occurrences = 0
    for path in sorted(corpus.glob("*.txt")):
        for item in parse_file(path):
            occurrences += 1
            seen.setdefault(item.key, item)
    return list(seen.values()), occurrences


# --- feeds ------------------------------------------------------------------------------------


def group(items: list[Item]) -> dict[str, list[Item]]:
    feeds: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        feeds["all"].append(item)
        if item.org:
            feeds[f"org/{item.org}"].append(item)
            feeds[f"ministry/{item.org.split('-')[0]}"].append(item)
    return feeds


def write_feed(out: Path, name: str, items: list[Item]) -> None:
    newest = heapq.nlargest(ENTRIES, items, key=lambda i: i.order)
    feed = FeedGenerator()
    feed.id(f"{BASE_URL}{name}.atom")
    feed.title(f"gov.kz news: {name}")
    feed.link(href=f"{BASE_URL}{name}.atom", rel="self")
    feed.updated(newest[0].published)
    for item in reversed(newest):  # feedgen prepends: add oldest first, newest ends on top
        add_entry(feed, item)
    path = out / f"{name}.atom"
    path.parent.mkdir(parents=True, exist_ok=True)
    feed.atom_file(str(path), pretty=True)


def add_entry(feed: FeedGenerator, item: Item) -> None:
    entry = feed.add_entry()
    entry.id(item.url or "urn:sha1:" + hashlib.sha1(item.key.encode()).hexdigest())
    entry.title(item.title)
    entry.updated(item.published)
    entry.published(item.published)
    if item.url:
        entry.link(href=item.url)
    body = "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in item.paragraphs)
    entry.content(body, type="html")
    entry.summary(" ".join(item.paragraphs)[:300])
    for term in filter(None, (item.section, item.org and item.org.split("-")[0])):
        entry.category(term=term)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="directory of *.txt text dumps")
    parser.add_argument("out", type=Path, help="output directory for the feeds")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    items, occurrences = parse_corpus(args.corpus)
    parsed = time.perf_counter()
    feeds = group(items)
    for name, members in sorted(feeds.items()):
        write_feed(args.out, name, members)
    done = time.perf_counter()
    print(f"items parsed: {occurrences} occurrences, {len(items)} distinct "
          f"({parsed - started:.2f} s); feeds written: {len(feeds)} "
          f"({done - parsed:.2f} s); total {done - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
