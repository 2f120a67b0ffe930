"""Query feeds (``/query.atom|rss|json``) on a real loopback server over a real store.

What a query should return is worked out from the static feeds the same build published
(an organisation's feed, a topic's feed, a language's ``all`` feed) or from the items' own
text, never hard-coded: the query feeds must agree with what subscribers already see.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import feedparser
import pytest
import requests

from feedsvc.query import LIMIT_CAP, Q_MAX_CHARS
from feedsvc.queryfeeds import QueryFeeds, static_site
from feedsvc.serve import FeedServer, make_app
from feedsvc.store import ReadOnlyStore

from support import Site

SOURCE = "https://www.gov.kz/memleket/entities/{org}/press/news/details/{news}?lang={lang}"
LABEL = {"ru": "Источник", "kk": "Дереккөз", "en": "Source"}

#: (org, news id, lang, date, title, body)
ITEMS = [
    ("kgd-mangistau", 3001, "ru", "10.03.2026", "Налоговая декларация: сроки сдачи",
     "Департамент государственных доходов напоминает: налоговая декларация о доходах "
     "сдаётся до 15 апреля. Налогоплательщики могут подать декларацию онлайн."),
    ("kgd-mangistau", 3001, "kk", "10.03.2026", "Салық декларациясы: тапсыру мерзімі",
     "Мемлекеттік кірістер департаменті еске салады: салық декларациясы 15 сәуірге дейін "
     "тапсырылады. Әлемдік тәжірибе бойынша онлайн тапсыруға болады."),
    ("kgd-mangistau", 3001, "en", "10.03.2026", "Tax declarations are due in April",
     "The State Revenue Department reminds taxpayers that income tax declarations are due "
     "by 15 April. Declarations can be filed online."),
    ("minfin", 3002, "ru", "11.03.2026", "В Минфине обсудили бюджет на 2027 год",
     "Министр финансов провёл совещание по бюджету. Обсуждены налоговые поступления и "
     "расходы республиканского бюджета."),
    ("mfa", 3003, "ru", "12.03.2026", "Министр иностранных дел встретился с послом",
     "Стороны подписали декларацию о сотрудничестве и обсудили визовый режим. Декларация "
     "открывает новые возможности для инвестиций."),
    ("mfa", 3004, "kk", "13.03.2026", "Сыртқы істер министрі елшімен кездесті",
     "Тараптар ынтымақтастық туралы меморандумға қол қойды. ӘЛЕМДІК саясат мәселелері "
     "талқыланды."),
    ("astana", 3005, "en", "14.03.2026", "New school opened in Astana",
     "The city akim attended the opening of a school for 1,200 pupils. The declaration of "
     "the school's mission was read aloud, and the budget of the school was presented."),
    ("kgd", 3006, "ru", "15.03.2026", "Декларация и налог: разъяснения комитета",
     "Комитет государственных доходов разъяснил порядок заполнения формы. Налоговая "
     "служба работает без выходных; декларация принимается онлайн."),
]


def dump(items: list[tuple[str, int, str, str, str, str]]) -> str:
    lines = ["Тестовые новости"]
    for org, news, lang, day, title, body in items:
        lines += [f"{title} {day}", body,
                  f"{LABEL[lang]}: {SOURCE.format(org=org, news=news, lang=lang)}"]
    return "\n".join(lines) + "\n"


@dataclass
class Running:
    site: Site
    server: FeedServer

    @property
    def url(self) -> str:
        return self.server.url

    def get(self, path: str, **headers: str) -> requests.Response:
        return requests.get(self.url + path, headers=headers, timeout=10)

    def feed(self, path: str) -> feedparser.FeedParserDict:
        response = self.get(path)
        assert response.status_code == 200, (path, response.text)
        parsed = feedparser.parse(response.content)
        assert not parsed.bozo, f"{path}: {parsed.get('bozo_exception')}"
        return parsed

    def ids(self, path: str) -> list[str]:
        return [entry.id for entry in self.feed(path).entries]

    def static_ids(self, path: str) -> list[str]:
        return [entry.id for entry in self.site.feed(path).entries]


def serve(site: Site) -> FeedServer:
    server = FeedServer(make_app(site.out, queries=QueryFeeds(site.db, static_site(site.db))),
                        "127.0.0.1", 0)
    server.start()
    return server


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    site = Site(tmp_path_factory.mktemp("query"))
    site.add("news.txt", dump(ITEMS))
    report = site.build()
    assert report.ok and sum(o.new for o in report.sources) == len(ITEMS)
    server = serve(site)
    try:
        yield Running(site, server)
    finally:
        server.stop()


def newest_first(*feeds: list[str]) -> list[str]:
    """Entries of the static ``all`` feeds, kept in their order, restricted to ``feeds``."""
    allowed = set(feeds[0]).intersection(*feeds[1:]) if feeds else None
    return [i for i in ORDER if allowed is None or i in allowed]


ORDER: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def order(running: Running) -> None:
    """Every item, newest first, across the languages (the feeds' order)."""
    entries = [e for path in ("all.atom", "ru/all.atom", "kk/all.atom")
               for e in running.site.feed(path).entries]
    entries.sort(key=lambda e: (e.published_parsed or e.updated_parsed, e.id), reverse=True)
    ORDER[:] = [e.id for e in entries]


def with_text(running: Running, pattern: str, langs: tuple[str, ...] = ("en", "ru", "kk")
              ) -> list[str]:
    """Ids of the items whose title or text match ``pattern`` (case-insensitive)."""
    ids = []
    for path in ("all.atom", "ru/all.atom", "kk/all.atom"):
        for entry in running.site.feed(path).entries:
            text = entry.title + " " + re.sub("<[^>]+>", " ", entry.content[0].value)
            if entry.get("language", entry.title_detail.get("language")) in langs \
                    and re.search(pattern, text, re.IGNORECASE):
                ids.append(entry.id)
    return newest_first(ids)


# --- every parameter alone, and together -----------------------------------------------------


def test_no_parameter_is_every_item_newest_first(running: Running) -> None:
    assert running.ids("query.atom") == ORDER


def test_org_alone_is_the_organisation_feed_in_every_language(running: Running) -> None:
    expected = newest_first(running.static_ids("org/kgd.atom") + running.static_ids(
        "ru/org/kgd.atom") + running.static_ids("kk/org/kgd.atom"))
    assert expected and running.ids("query.atom?org=kgd") == expected


def test_org_rolls_up_the_bodies_under_it(running: Running) -> None:
    """minfin is a ministry: its query includes kgd and kgd's regional departments."""
    ids = running.ids("query.atom?org=minfin&lang=ru")
    assert ids == running.static_ids("ru/ministry/minfin.atom")
    assert set(running.static_ids("ru/org/kgd-mangistau.atom")) < set(ids)


def test_topic_alone_is_the_topic_feed_in_every_language(running: Running) -> None:
    expected = newest_first(running.static_ids("ru/topic/taxes-and-finance.atom")
                            + running.static_ids("topic/taxes-and-finance.atom")
                            + running.static_ids("kk/topic/taxes-and-finance.atom"))
    assert expected and running.ids("query.atom?topic=taxes-and-finance") == expected


@pytest.mark.parametrize("lang, static", [("ru", "ru/all.atom"), ("kk", "kk/all.atom"),
                                          ("en", "all.atom")])
def test_lang_alone_is_that_languages_all_feed(running: Running, lang: str, static: str
                                               ) -> None:
    assert running.ids(f"query.atom?lang={lang}") == running.static_ids(static)


def test_repeated_parameters_of_one_kind_are_alternatives(running: Running) -> None:
    both = running.ids("query.atom?org=mfa&org=kgd&lang=ru")
    assert both == newest_first(running.static_ids("ru/org/kgd.atom")
                                + running.static_ids("ru/ministry/mfa.atom"))
    assert running.ids("query.atom?lang=ru&lang=kk") == newest_first(
        running.static_ids("ru/all.atom") + running.static_ids("kk/all.atom"))


def test_kinds_narrow_each_other(running: Running) -> None:
    ids = running.ids("query.atom?org=minfin&topic=taxes-and-finance&lang=ru")
    assert ids == newest_first(running.static_ids("ru/ministry/minfin.atom"),
                               running.static_ids("ru/topic/taxes-and-finance.atom"))
    searched = running.ids("query.atom?org=minfin&lang=ru&q=декларация")
    assert searched == newest_first(running.static_ids("ru/ministry/minfin.atom"),
                                    with_text(running, r"\bдекларац", ("ru",)))
    assert len(searched) == 2  # the mfa item says "декларацию" too, and is left out


def test_the_organisations_feed_and_the_query_can_be_empty_together(running: Running) -> None:
    parsed = running.feed("query.atom?org=astana&lang=ru")
    assert parsed.entries == []
    assert parsed.feed.title.startswith("gov.kz: ")


def test_limit_keeps_the_newest(running: Running) -> None:
    assert running.ids("query.atom?limit=2") == ORDER[:2]
    assert running.ids(f"query.atom?limit={LIMIT_CAP}") == ORDER


# --- full-text search ------------------------------------------------------------------------


@pytest.mark.parametrize("q, pattern, langs", [
    # Russian: another case of the same noun, and its stem
    ("декларации", r"\bдекларац", ("ru",)),
    ("ДЕКЛАРАЦИЯ", r"\bдекларац", ("ru",)),
    ("налоги", r"\bналог", ("ru",)),
    # English: plural and singular meet
    ("declaration", r"\bdeclaration", ("en",)),
    ("Taxes", r"\btax", ("en",)),
    # Kazakh: no stemmer, so the word as written, Kazakh letters kept and case-folded
    ("декларациясы", r"\bдекларациясы\b", ("kk",)),
    ("әлемдік", r"\bәлемдік\b", ("kk",)),
    ("ӘЛЕМДІК", r"\bәлемдік\b", ("kk",)),
])
def test_a_search_finds_word_forms_in_each_language(running: Running, q: str, pattern: str,
                                                    langs: tuple[str, ...]) -> None:
    expected = with_text(running, pattern, langs)
    assert expected
    assert running.ids(f"query.atom?lang={langs[0]}&q={quote(q)}") == expected


def test_a_search_without_a_language_guesses_the_stemmer_from_the_letters(
        running: Running) -> None:
    assert running.ids(f"query.atom?q={quote('декларации')}") == with_text(
        running, r"\bдекларац")


def test_words_are_all_required_and_a_quoted_phrase_stays_a_phrase(running: Running) -> None:
    words = running.ids("query.atom?q=" + quote("school budget"))
    assert words == with_text(running, r"(?=.*\bschool)(?=.*\bbudget)")
    phrase = running.ids("query.atom?q=" + quote('"налоговая декларация"'))
    assert phrase == with_text(running, r"налоговая декларация")
    apart = running.ids("query.atom?q=" + quote("декларация налоговая"))
    assert set(phrase) < set(apart)  # the kgd item has both words, not side by side


def test_a_search_that_matches_nothing_is_an_empty_feed(running: Running) -> None:
    response = running.get("query.atom?q=" + quote("квантовый телепорт"))
    assert response.status_code == 200
    assert feedparser.parse(response.content).entries == []


@pytest.mark.parametrize("q", [
    "'; DROP TABLE items; --", '"', '""', "*", "NEAR(", "NEAR(school budget, 1)", "school OR "
    "budget", "school NOT budget", "title:school", "school*", "^school", "-school",
    '"unclosed phrase', "school) OR (budget", "\\", "{title body}: school", "%",
])
def test_syntax_in_q_never_breaks_or_widens_a_query(running: Running, q: str) -> None:
    response = running.get("query.atom?q=" + quote(q))
    words = re.findall(r"[^\W_]+", q)
    if not words:
        assert response.status_code == 400
        assert response.text.count("\n") == 1 and response.text.startswith("q: ")
        return
    assert response.status_code == 200, response.text
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo
    ids = [entry.id for entry in parsed.entries]
    # every word is required and taken literally: nothing is found that lacks one of them
    for entry_id in ids:
        for word in words:
            assert entry_id in with_text(running, rf"\b{re.escape(word[:4])}"), (q, word)
    assert running.ids("query.atom") == ORDER  # and the store is still whole


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("query, reason", [
    ("foo=1", "unknown parameter 'foo'"),
    ("org=kgd&format=rss", "unknown parameter 'format'"),
    ("org=", "org: empty value"),
    ("q=%20%20", "q: empty value"),
    ("lang=", "lang: empty value"),
    ("org=nosuchbody", "org: unknown organisation 'nosuchbody'"),
    ("org=KGD", "org: unknown organisation 'KGD'"),
    ("org=kgd;drop", "org: unknown organisation 'kgd;drop'"),
    ("topic=weather", "topic: unknown topic 'weather'"),
    ("lang=de", "lang: unknown language"),
    ("limit=0", "limit: a whole number from 1 to"),
    ("limit=-1", "limit: a whole number from 1 to"),
    ("limit=ten", "limit: a whole number from 1 to"),
    ("limit=1e2", "limit: a whole number from 1 to"),
    (f"limit={LIMIT_CAP + 1}", "limit: a whole number from 1 to"),
    ("limit=٣", "limit: a whole number from 1 to"),  # an Arabic-Indic digit
    ("limit=5&limit=6", "limit: given more than once"),
    ("q=" + "a" * 10_240, f"q: longer than {Q_MAX_CHARS} characters"),
    ("q=" + quote("декларация " * 1000), f"q: longer than {Q_MAX_CHARS} characters"),
    ("q=" + "+".join(["w"] * 13), "q: more than 12 words"),
    ("q=%ff%fe", "not valid UTF-8"),
    ("&".join(f"org=kgd{i}" for i in range(60)), "too many parameters"),
])
def test_bad_parameters_get_400_and_a_one_line_reason(running: Running, query: str,
                                                      reason: str) -> None:
    for suffix in (".atom", ".rss", ".json"):
        response = running.get(f"query{suffix}?{query}")
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text.startswith(reason)
        assert response.text.endswith("\n") and response.text.count("\n") == 1
        assert len(response.text) < 200


def test_repeated_identical_values_are_one_value(running: Running) -> None:
    assert running.ids("query.atom?org=kgd&org=kgd&lang=ru") == \
        running.ids("query.atom?lang=ru&org=kgd")


def test_other_methods_get_405(running: Running) -> None:
    response = requests.post(running.url + "query.atom?org=kgd", timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_head_gets_the_headers_of_get(running: Running) -> None:
    get = running.get("query.atom?org=kgd")
    head = requests.head(running.url + "query.atom?org=kgd", timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == get.headers["etag"]


# --- one canonical feed per query, conditional GET ---------------------------------------------


def test_two_spellings_of_one_query_are_one_feed(running: Running) -> None:
    one = running.get("query.atom?topic=taxes-and-finance&org=minfin&org=kgd&lang=ru"
                      "&q=%D0%B4%D0%B5%D0%BA%D0%BB%D0%B0%D1%80%D0%B0%D1%86%D0%B8%D1%8F")
    two = running.get("query.atom?q=декларация&lang=ru&org=kgd&topic=taxes-and-finance"
                      "&org=minfin&limit=50")
    assert one.content == two.content and one.headers["etag"] == two.headers["etag"]
    parsed = feedparser.parse(one.content)
    self_link = next(link.href for link in parsed.feed.links if link.rel == "self")
    assert self_link == (running.url + "query.atom?lang=ru&org=kgd&org=minfin&q="
                         + quote("декларация", safe="") + "&topic=taxes-and-finance")
    alternates = {link.type: link.href for link in parsed.feed.links if link.rel == "alternate"}
    assert alternates["application/rss+xml"] == self_link.replace("query.atom", "query.rss")
    assert alternates["application/feed+json"] == self_link.replace("query.atom", "query.json")
    assert parsed.feed.title == ("gov.kz: Комитет государственных доходов Министерства "
                                 "финансов Республики Казахстан, Министерство финансов "
                                 "Республики Казахстан · Налоги и финансы · ru · "
                                 '"декларация"') or parsed.feed.title.startswith("gov.kz: ")
    assert " · Налоги и финансы · ru · \"декларация\"" in parsed.feed.title


def test_a_repeated_request_gets_304(running: Running) -> None:
    first = running.get("query.rss?org=kgd")
    assert first.status_code == 200 and first.headers["etag"]
    again = running.get("query.rss?org=kgd", **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    other = running.get("query.rss?org=kgd", **{"If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_the_etag_follows_the_result_across_publications(tmp_path: Path) -> None:
    site = Site(tmp_path)
    site.add("news.txt", dump(ITEMS))
    site.build()
    server = serve(site)
    try:
        path = server.url + "query.atom?lang=ru&q=" + quote("декларация")
        first = requests.get(path, timeout=10)
        other = requests.get(server.url + "query.atom?org=astana", timeout=10)
        site.clock.advance(hours=1)
        site.add("more.txt", dump([("kgd", 3100, "ru", "20.03.2026", "Про погоду",
                                   "Синоптики обещают дождь и ветер в выходные.")]))
        site.build()
        unmatched = requests.get(path, timeout=10)
        assert unmatched.headers["etag"] == first.headers["etag"]
        assert requests.get(path, headers={"If-None-Match": first.headers["etag"]},
                            timeout=10).status_code == 304
        site.clock.advance(hours=1)
        site.add("more2.txt", dump([("kgd", 3101, "ru", "21.03.2026",
                                    "Декларация принимается до пятницы",
                                    "Напоминаем о сроках подачи формы.")]))
        site.build()
        matched = requests.get(path, timeout=10)
        assert matched.headers["etag"] != first.headers["etag"]
        assert feedparser.parse(matched.content).entries[0].title == \
            "Декларация принимается до пятницы"
        assert requests.get(server.url + "query.atom?org=astana", timeout=10
                            ).headers["etag"] == other.headers["etag"]
    finally:
        server.stop()


def test_an_answer_is_cached_until_the_next_publication(tmp_path: Path) -> None:
    """Items stored but not yet published do not show; the publication brings them."""
    site = Site(tmp_path)
    site.add("news.txt", dump(ITEMS))
    site.build()
    queries = QueryFeeds(site.db, static_site(site.db))
    base = "http://feeds.test/"
    first = queries.answer(".atom", "org=kgd", base)
    db = sqlite3.connect(site.db)
    db.execute("DELETE FROM meta WHERE key = 'publication'")  # as if never published
    db.commit()
    reset = queries.answer(".atom", "org=kgd", base)
    assert reset == first  # recomputed (another publication number), same bytes, same tag
    site.clock.advance(hours=1)
    site.add("more.txt", dump([("kgd", 3102, "ru", "22.03.2026", "Новость комитета",
                               "Комитет сообщает о новом порядке.")]))
    site.build()
    assert queries.answer(".atom", "org=kgd", base).etag != first.etag


def test_a_query_past_its_time_limit_is_stopped_with_503(running: Running) -> None:
    queries = QueryFeeds(running.site.db, static_site(running.site.db), seconds=0.0,
                         open_store=lambda db: ReadOnlyStore(db, progress_steps=1))
    answer = queries.answer(".atom", "q=" + quote("декларация"), "http://feeds.test/")
    assert answer.status == 503
    assert answer.body == b"the query took too long; narrow it down\n"


def test_a_missing_store_is_refused_at_start(tmp_path: Path) -> None:
    from feedsvc.errors import StoreError

    with pytest.raises(StoreError, match="no such store"):
        ReadOnlyStore(tmp_path / "nothing.sqlite3")


def test_the_daemon_answers_from_its_pipeline_once_it_runs(running: Running) -> None:
    from feedsvc.pipeline import Pipeline, make_pipeline
    from feedsvc.queryfeeds import pipeline_site

    holder: dict[str, Pipeline] = {}
    queries = QueryFeeds(running.site.db, pipeline_site(lambda: holder.get("pipeline")))
    starting = queries.answer(".atom", "org=kgd", "http://ignored.test/")
    assert starting.status == 503 and starting.body.count(b"\n") == 1
    pipeline = make_pipeline(running.site.config(), clock=running.site.clock)
    holder["pipeline"] = pipeline
    try:
        answer = queries.answer(".atom", "org=kgd&lang=ru", "http://ignored.test/")
    finally:
        pipeline.close()
    parsed = feedparser.parse(answer.body)
    assert [e.id for e in parsed.entries] == running.static_ids("ru/org/kgd.atom")
    # the daemon's own base URL, not the address the request came to
    assert parsed.feed.links[0].href == "http://feeds.test/query.atom?lang=ru&org=kgd"


def test_the_search_follows_an_item_whose_text_changed(tmp_path: Path) -> None:
    site = Site(tmp_path)
    story = ("kgd", 4001, "ru", "16.03.2026", "Комитет о новой форме",
             "Комитет сообщает: квазар отчётности запущен.")
    site.add("a.txt", dump([story]))
    site.build()  # (every build also checks the index against the items: integrity_problems)
    queries = QueryFeeds(site.db, static_site(site.db))

    def found(word: str) -> int:
        answer = queries.answer(".atom", "q=" + quote(word), "http://feeds.test/")
        return len(feedparser.parse(answer.body).entries)

    assert (found("квазар"), found("пульсар")) == (1, 0)
    site.clock.advance(hours=1)
    site.add("a.txt", dump([(*story[:5], "Комитет сообщает: пульсар отчётности запущен.")]))
    report = site.build()
    assert sum(o.changed for o in report.sources) == 1
    assert (found("квазар"), found("пульсар")) == (0, 1)


def test_an_item_new_and_changed_in_one_build_is_indexed_once_with_its_last_text(
        tmp_path: Path) -> None:
    """New items enter the index when the build publishes; one changed before that has no
    entry to take out yet (a wrong 'delete' would corrupt the index: every test build checks
    the index against the items)."""
    site = Site(tmp_path)
    story = ("kgd", 4002, "ru", "16.03.2026", "Комитет о сроках", "Коротко: квазар.")
    site.add("a.txt", dump([story]))
    site.add("b.txt", dump([(*story[:5], "Подробно: пульсар отчётности запущен, сроки "
                             "продлены до конца месяца, формы доступны онлайн.")]))
    report = site.build()
    assert sum(o.new for o in report.sources) == 1
    queries = QueryFeeds(site.db, static_site(site.db))
    answer = queries.answer(".atom", "q=" + quote("пульсар"), "http://feeds.test/")
    assert [e.title for e in feedparser.parse(answer.body).entries] == ["Комитет о сроках"]
