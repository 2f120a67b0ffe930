"""The whole of gov.kz as a world for the fake's portal mode (``GovkzFake(portal=...)``).

Every organisation of the registry publishes news over time, on a clock the world is given
(a virtual one in the simulation, the wall clock in real-time tests):

- activity is heavy-tailed: organisations fall in classes (by default 3 % "hot" write half of
  the news, 17 % "active" a third, 40 % "occasional" most of the rest, 40 % "dormant" write
  nothing for months), with a log-normal spread inside each class;
- a story is published in several languages at once under one id (kk 90 %, ru 95 %, en 50 %),
  and ids are one sequence growing with time, as on gov.kz;
- every organisation has a past (up to ``history`` items, at most a year back) for a first read
  to backfill, and news keep appearing at random (Poisson) times after ``start``;
- the listing without ``projects`` (newest first across organisations) can be switched on and
  off (``global_listing``), and organisations can join the registry later (:meth:`add_org`).

Everything is drawn from a seeded generator, so a run is repeatable.
"""

from __future__ import annotations

import bisect
import math
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

ALMATY = timezone(timedelta(hours=5))
FIRST_ID = 1_150_000
DAY = 86_400.0
WORDS = {"kk": "жаңалық", "ru": "новость", "en": "news"}
LANG_ODDS = {"kk": 0.9, "ru": 0.95, "en": 0.5}



class VirtualClock:
    """Seconds since 1970 that move only when something waits: the fake, the pipeline's
    clock, the HTTP client's pacing and the budget all read one, so a simulated day passes
    in minutes (the tests and benchmarks/portal_*.py)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

@dataclass(frozen=True)
class ActivityClass:
    name: str
    share_of_orgs: float
    share_of_news: float


DEFAULT_CLASSES = (
    ActivityClass("hot", 0.03, 0.50),
    ActivityClass("active", 0.17, 0.35),
    ActivityClass("occasional", 0.40, 0.145),
    ActivityClass("dormant", 0.40, 0.005),
)


class PortalWorld:
    """News of every organisation over time; thread-safe, answers from its clock's now."""

    def __init__(self, slugs: Sequence[str], *, start: float, days: float,
                 clock: Callable[[], float], news_per_day: float = 600.0,
                 langs: Iterable[str] = ("kk", "ru", "en"), history: int = 110,
                 classes: Sequence[ActivityClass] = DEFAULT_CLASSES, seed: int = 11,
                 lang_odds: dict[str, float] | None = None) -> None:
        self.slugs = list(slugs)
        self.langs = tuple(langs)
        self.clock = clock
        self.start = start
        self.global_listing = True
        self.lang_odds = lang_odds or LANG_ODDS
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.klass: dict[str, str] = {}
        self.rate: dict[str, float] = {}  # news per second
        self._joined: dict[str, float] = {}
        self._assign(classes, news_per_day)
        #: (time, id) ascending, per (slug, lang) and per lang; and each id's owner.
        self._streams: dict[tuple[str, str], list[tuple[float, int]]] = {}
        self._by_lang: dict[str, list[tuple[float, int]]] = {lang: [] for lang in self.langs}
        self.owner: dict[int, str] = {}
        self.published: dict[int, float] = {}
        events = []
        for slug in self.slugs:
            events += self._past(slug, history)
            events += self._future(slug, start, start + days * DAY)
        self._next_id = FIRST_ID
        for moment, slug, langs_of in sorted(events):
            self._add(moment, slug, langs_of)

    # --- making the world ---------------------------------------------------------------

    def _assign(self, classes: Sequence[ActivityClass], news_per_day: float) -> None:
        order = self.slugs[:]
        self._rng.shuffle(order)
        taken = 0
        for index, klass in enumerate(classes):
            count = len(order) - taken if index == len(classes) - 1 else \
                round(klass.share_of_orgs * len(order))
            members = order[taken:taken + count]
            taken += count
            weights = [self._rng.lognormvariate(0, 0.8) for _ in members]
            total = sum(weights) or 1.0
            for slug, weight in zip(members, weights, strict=True):
                self.klass[slug] = klass.name
                self.rate[slug] = news_per_day * klass.share_of_news * weight / total / DAY

    def _langs(self) -> tuple[str, ...]:
        chosen = tuple(lang for lang in self.langs
                       if self._rng.random() < self.lang_odds.get(lang, 1))
        return chosen or (self._rng.choice(self.langs),)

    def _past(self, slug: str, history: int) -> list[tuple[float, str, tuple[str, ...]]]:
        events = []
        moment = self.start
        for _ in range(history):
            moment -= self._rng.expovariate(self.rate[slug])
            if moment < self.start - 365 * DAY:
                break
            events.append((moment, slug, self._langs()))
        return events

    def _future(self, slug: str, begin: float,
                end: float) -> list[tuple[float, str, tuple[str, ...]]]:
        events = []
        moment = begin
        while True:
            moment += self._rng.expovariate(self.rate[slug])
            if moment >= end:
                return events
            events.append((moment, slug, self._langs()))

    def _add(self, moment: float, slug: str, langs: Iterable[str]) -> int:
        news_id = self._next_id
        self._next_id += 1
        self.owner[news_id] = slug
        self.published[news_id] = moment
        for lang in langs:
            entry = (moment, news_id)
            bisect.insort(self._streams.setdefault((slug, lang), []), entry)
            bisect.insort(self._by_lang[lang], entry)
        return news_id

    # --- changing it while it runs --------------------------------------------------------

    def publish(self, slug: str, langs: Iterable[str]) -> dict[str, Any]:
        """A story of ``slug`` published now (the clock's now) in ``langs``."""
        with self._lock:
            moment = self.clock()
            news_id = self._add(moment, slug, langs)
        return self._make(slug, next(iter(langs)), news_id, moment)

    def add_org(self, slug: str, *, rate_per_day: float = 0.0, days: float = 0.0) -> None:
        """An organisation joins the registry now (and publishes from now on, if asked)."""
        with self._lock:
            now = self.clock()
            self.slugs.append(slug)
            self._joined[slug] = now
            self.klass[slug] = "new"
            self.rate[slug] = rate_per_day / DAY
            if rate_per_day:
                for moment, owner, langs in self._future(slug, now, now + days * DAY):
                    self._add(moment, owner, langs)

    def registry(self) -> list[str]:
        now = self.clock()
        with self._lock:
            return [slug for slug in self.slugs if self._joined.get(slug, -math.inf) <= now]

    # --- answering ----------------------------------------------------------------------

    def page(self, slug: str | None, lang: str, page: int, size: int) -> list[dict[str, Any]]:
        """One page, newest first, of what is published by now: of ``slug``, or (None) of
        every organisation."""
        now = self.clock()
        with self._lock:
            entries = self._by_lang.get(lang, []) if slug is None \
                else self._streams.get((slug, lang), [])
            visible = bisect.bisect_right(entries, (now, math.inf))
            first = visible - (max(page, 1) - 1) * size
            chosen = entries[max(0, first - size):max(0, first)][::-1]
            return [self._make(self.owner[news_id], lang, news_id, moment)
                    for moment, news_id in chosen]

    def items_between(self, begin: float, end: float) -> list[tuple[int, str, str, float]]:
        """(id, slug, lang, published) of every stream item published in [begin, end)."""
        with self._lock:
            return [(news_id, self.owner[news_id], lang, moment)
                    for lang, entries in self._by_lang.items()
                    for moment, news_id in entries[bisect.bisect_left(entries, (begin, -1)):
                                                   bisect.bisect_left(entries, (end, -1))]]

    @staticmethod
    def _make(slug: str, lang: str, news_id: int, moment: float) -> dict[str, Any]:
        word = WORDS.get(lang, "news")
        when = datetime.fromtimestamp(moment, ALMATY)
        return {
            "id": news_id,
            "title": f"{slug} {word} {news_id}",
            "slug": f"{word}-{news_id}",
            "created_date": when.strftime("%Y-%m-%dT%H:%M:%S"),
            "heropic": None,
            "alt_image": None,
            "body": f"<p>{word.capitalize()} {news_id} of {slug}.</p>",
            "short_description": None,
            "projects": slug,
            "directions": [],
        }
