"""Query feeds' parameters: parsed, checked and put in one canonical order. Pure.

``/query.atom?org=kgd&org=minfin&topic=taxes-and-finance&lang=ru&q=декларация``: repeated
parameters of one kind are alternatives (OR), kinds narrow each other (AND). ``org`` includes
the bodies under it (the organisation and ministry feeds' own roll-up), ``q`` searches titles
and bodies, ``limit`` caps the entries. Anything else is refused with a one-line reason.

The search words never reach FTS5 as syntax: every word is written as an FTS5 string (in double
quotes, with only letters and digits inside), so quotes, ``*``, ``NEAR(``, ``AND``/``OR``/``NOT``,
column filters and SQL are all plain words or nothing. A phrase in double quotes stays a
phrase. Word forms: in English and Russian a word is reduced to its Snowball stem (the topic
rules' stemmers) and matched as a prefix ("декларации" -> ``"декларац" *``); Kazakh, which has
no stemmer, and words of up to three letters match whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from .render import FORMAT_TYPES, Site, labels
from .topics import LANGUAGES, MAX_EXACT, normalise_word

#: The formats a query feed is served in, by the suffix of its path.
FORMATS = tuple(FORMAT_TYPES)
DEFAULT_LIMIT = 50
LIMIT_CAP = 200
Q_MAX_CHARS = 200
Q_MAX_WORDS = 12
MAX_FIELDS = 40
KINDS = ("org", "topic", "lang", "q", "limit")

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
_WORD = re.compile(r"[^\W_]+")
_PHRASE_OR_WORDS = re.compile(r'"([^"]*)"?|([^"]+)')
_KAZAKH = re.compile("[әіңғүұқөһӘІҢҒҮҰҚӨҺ]")
_CYRILLIC = re.compile("[а-яёА-ЯЁ]")
_LATIN = re.compile("[a-zA-Z]")


class BadQuery(ValueError):
    """A query the server answers with 400; ``str()`` is the one-line reason."""


@dataclass(frozen=True, slots=True)
class Query:
    """One query feed, its values deduplicated and sorted (so two spellings are one feed)."""

    orgs: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    langs: tuple[str, ...] = ()
    q: tuple[str, ...] = ()
    limit: int = DEFAULT_LIMIT

    def query_string(self) -> str:
        """The parameters in canonical order: names alphabetically, each one's values sorted;
        ``limit`` only when it is not the default."""
        pairs = [("lang", v) for v in self.langs]
        if self.limit != DEFAULT_LIMIT:
            pairs.append(("limit", str(self.limit)))
        pairs += [("org", v) for v in self.orgs] + [("q", v) for v in self.q]
        pairs += [("topic", v) for v in self.topics]
        return urlencode(pairs)

    def path(self, suffix: str = ".atom") -> str:
        """Relative URL of the feed in one format: ``query.atom?lang=ru&org=kgd``."""
        query = self.query_string()
        return f"query{suffix}?{query}" if query else f"query{suffix}"

    @property
    def languages(self) -> tuple[str, ...]:
        return self.langs or LANGUAGES

    def feed_groups(self) -> list[list[str]]:
        """Feed keys per kind: an item must be an entry of at least one feed of each group."""
        groups = []
        if self.orgs:
            groups.append([f"{lang}/{kind}/{org}" for org in self.orgs
                           for lang in self.languages for kind in ("ministry", "org")])
        if self.topics:
            groups.append([f"{lang}/topic/{topic}" for topic in self.topics
                           for lang in self.languages])
        return groups

    def match(self) -> str | None:
        """The FTS5 expression of ``q``, or None without a search."""
        if not self.q:
            return None
        lang = self.langs[0] if len(self.langs) == 1 else None
        ors = [_fts_all(text, lang) for text in self.q]
        return ors[0] if len(ors) == 1 else " OR ".join(f"({e})" for e in ors)

    def title(self, site: Site) -> str:
        """"gov.kz: State Revenue Committee · Taxes and finance · ru · "декларация""."""
        lang = self.display_lang(site)
        parts = []
        if self.orgs:
            parts.append(", ".join(site.registry.name(org, lang) for org in self.orgs))
        if self.topics:
            parts.append(", ".join(site.topic_name(t, lang) for t in self.topics))
        if self.langs:
            parts.append(", ".join(self.langs))
        if self.q:
            parts.append(" or ".join(text if text.startswith('"') and text.endswith('"')
                                     and len(text) > 1 else f'"{text}"' for text in self.q))
        return "gov.kz: " + " · ".join(parts) if parts else labels(lang)["all"]

    def display_lang(self, site: Site) -> str:
        return self.langs[0] if len(self.langs) == 1 else site.default_lang


def parse_query(raw: str, site: Site) -> Query:
    """The query of a raw URL query string, or :class:`BadQuery` with the reason."""
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, max_num_fields=MAX_FIELDS,
                          errors="strict")
    except ValueError as exc:
        reason = "too many parameters" if "fields" in str(exc) else "not valid UTF-8"
        raise BadQuery(reason) from None
    values: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for name, value in pairs:
        if name not in values:
            raise BadQuery(f"unknown parameter {_shown(name)}; use {', '.join(KINDS)}")
        value = " ".join(value.split())
        if not value:
            raise BadQuery(f"{name}: empty value")
        values[name].append(value)
    return Query(orgs=_checked(values["org"], "org", lambda v: bool(_SLUG.fullmatch(v))
                               and v in site.registry, "unknown organisation"),
                 topics=_checked(values["topic"], "topic", lambda v: v in site.topic_names,
                                 "unknown topic"),
                 langs=_checked(values["lang"], "lang", lambda v: v in LANGUAGES,
                                f"unknown language (use {', '.join(LANGUAGES)})"),
                 q=_searches(values["q"]),
                 limit=_limit(values["limit"]))


def _checked(values: list[str], name: str, valid: object, reason: str) -> tuple[str, ...]:
    for value in values:
        if not valid(value):  # type: ignore[operator]
            raise BadQuery(f"{name}: {reason} {_shown(value)}")
    return tuple(sorted(set(values)))


def _searches(values: list[str]) -> tuple[str, ...]:
    for value in values:
        if len(value) > Q_MAX_CHARS:
            raise BadQuery(f"q: longer than {Q_MAX_CHARS} characters")
        words = _WORD.findall(value)
        if not words:
            raise BadQuery(f"q: no word to search for in {_shown(value)}")
        if len(words) > Q_MAX_WORDS:
            raise BadQuery(f"q: more than {Q_MAX_WORDS} words")
    return tuple(sorted(set(values)))


def _limit(values: list[str]) -> int:
    if not values:
        return DEFAULT_LIMIT
    if len(values) > 1:
        raise BadQuery("limit: given more than once")
    value = values[0]
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= LIMIT_CAP:
        raise BadQuery(f"limit: a whole number from 1 to {LIMIT_CAP}, not {_shown(value)}")
    return int(value)


def _shown(value: str) -> str:
    """A value quoted for a one-line message, cut short and without control characters."""
    text = "".join(ch if ch.isprintable() else "?" for ch in value[:40])
    return repr(text + ("…" if len(value) > 40 else ""))


def _fts_all(text: str, lang: str | None) -> str:
    """Every word and phrase of one ``q`` value, all required."""
    parts = []
    for phrase, loose in _PHRASE_OR_WORDS.findall(text):
        if phrase:
            terms = [_fts_term(w, lang) for w in _WORD.findall(phrase)]
            if terms:
                parts.append(" + ".join(terms))
        else:
            parts.extend(_fts_term(w, lang) for w in _WORD.findall(loose))
    return " AND ".join(parts)


def _fts_term(word: str, lang: str | None) -> str:
    """One word as an FTS5 string: its stem as a prefix where a stemmer exists."""
    folded = word.casefold()
    lang = lang or _script_language(folded)
    if lang in ("en", "ru") and len(folded) > MAX_EXACT:
        return f'"{normalise_word(folded, lang)}" *'
    return f'"{folded}"'


def _script_language(word: str) -> str | None:
    """The language a word's letters point to: Kazakh letters, other Cyrillic, or Latin."""
    if _KAZAKH.search(word):
        return "kk"
    if _CYRILLIC.search(word):
        return "ru"
    if _LATIN.search(word):
        return "en"
    return None
