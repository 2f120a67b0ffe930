"""Topics: which subjects a news item is about, by transparent weighted rules (issue 5).

The taxonomy is data (``feedsvc/data/topics.toml``, or a file the user names): per topic a slug,
names in en/ru/kk, a scope line, weighted keywords per language, and hints from the organisation
(its kind and its slug or an ancestor's) and from the section label a source gave the item. Every
score can be explained: :func:`classify` returns, per topic, the words and hints that produced it.

How words meet keywords
-----------------------
Text is casefolded, "ё" read as "е" and apostrophes dropped ("People's" -> "peoples"); a token is
a run of letters and digits. A keyword is one of:

- a word (``tax``, ``налог``): in English and Russian both the keyword and every token are reduced
  by the Snowball stemmer (``snowballstemmer``), so "taxes"/"tax" and "налоги"/"налога" meet; in
  Kazakh the token must equal the word. Words of up to three letters are never stemmed (they are
  mostly abbreviations: "ИИ" must not become "и");
- a declared stem ending in ``*`` (``салық*``, ``digitali*``): any token beginning with it, in any
  language;
- a phrase (``rule of law``, ``халық кеңес*``): consecutive tokens, each word matched as above.

Why declared stems for Kazakh: Snowball has no Kazakh, and Kazakh is agglutinative -- suffixes
stack on an unchanged root under vowel harmony (салық, салықтың, салықтарды, салық төлеушілердің).
A home-made suffix stripper would have to get harmony and consonant alternation right and would
still misfire silently; a root picked by a person plus prefix matching catches the inflected forms,
is easy to read in an explanation and is fixed by editing the data file. Stems must be at least
three letters so a stem cannot swallow unrelated words.

Scoring
-------
A keyword found in the title adds ``weight * title_factor`` (once); found in the body it adds
``weight * min(occurrences, body_cap)``; only the body's first ``body_chars`` characters are read
(a news lead names its subjects; later paragraphs drift into background). A matching section
label adds its weight, the organisation's kind adds its weight, and the best-matching
organisation slug in the item's chain
(the slug itself, or a hint that is a ``-``-separated prefix of it: ``mfa`` covers
``mfa-bucharest``) adds its weight. A topic is *assigned* when its score reaches ``threshold`` and
is at least ``relative`` times the item's best score, so a passing mention in a long story about
something else does not make it a topic of that story -- unless the organisation hints alone
reach the threshold (the file then says all of that organisation's news is on the topic, as with
an embassy and foreign policy).

Speed: all keywords are compiled once at load into dictionaries per language. An item is split on
whitespace; each distinct chunk ("Kazakhstan.The") is casefolded, tokenised, stemmed and matched
once and cached, so afterwards the whole text is looked up in one C-speed ``map`` and only the few
chunks that hit a keyword are visited in Python. :func:`assign_topics`, run once per item in every
build, adds up points without building evidence when the taxonomy's points are multiples of 1/8
(then every sum is exact, whatever its order); :func:`classify` always builds the evidence. The
first sight of a word pays for Snowball (C with PyStemmer installed, else pure Python).
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import compress
from pathlib import Path
from typing import Any

import snowballstemmer

from .errors import DataFileError
from .model import Item

LANGUAGES = ("en", "ru", "kk")
ORG_KINDS = ("ministry", "committee", "agency", "department", "embassy", "akimat", "other")
DEFAULT_FILE = "topics.toml"
MAX_WEIGHT = 10.0
MIN_STEM = 3
MAX_EXACT = 3

_SLUG = re.compile(r"^[a-z0-9-]+$")
_TOKEN = re.compile(r"\w+(?:['’ʼ`]\w+)*")
_APOSTROPHES = str.maketrans("", "", "'’ʼ`")
_STEMMERS = {"en": "english", "ru": "russian"}
#: Chunks (and words) cached per language; when full, the cache starts again from empty. A chunk
#: costs about 2.5 us to learn and 100-250 bytes to keep: 50,000 per language is under 40 MB
#: for all three, and learning again after a reset costs at most what the chunks learned since
#: the previous one did. (300,000 let a daemon following the whole portal grow by 350 MiB.)
_CACHE_LIMIT = 50_000
_ORG_CACHE_LIMIT = 10_000  # (organisation, kind, chain) combinations


# --- public types ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Topic:
    slug: str
    names: dict[str, str]
    scope: str


@dataclass(frozen=True, slots=True)
class Settings:
    """How scores become assignments; see the module docstring."""

    threshold: float = 3.0
    relative: float = 0.3
    title_factor: float = 2.0
    body_cap: int = 3
    body_chars: int = 1500  # 0: the whole body


@dataclass(frozen=True, slots=True)
class TopicScore:
    slug: str
    score: float
    assigned: bool
    evidence: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Taxonomy:
    """A loaded topics file. ``fingerprint`` (sha256 of the file's bytes) changes with any edit."""

    topics: tuple[Topic, ...]
    fingerprint: str
    settings: Settings = field(default_factory=Settings)
    source: str = ""
    _matcher: _Matcher | None = field(default=None, repr=False, compare=False)

    def get(self, slug: str) -> Topic | None:
        return next((topic for topic in self.topics if topic.slug == slug), None)


# --- loading -----------------------------------------------------------------------------------

def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """The taxonomy in ``path``, or the shipped default; :class:`DataFileError` if malformed."""
    if path is None:
        shipped = Path(__file__).parent / "data" / DEFAULT_FILE
        return parse_taxonomy(shipped.read_bytes(), f"feedsvc/data/{DEFAULT_FILE}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataFileError(str(path), "no such topics file") from None
    except OSError as exc:
        raise DataFileError(str(path), f"cannot read: {exc}") from exc
    return parse_taxonomy(data, str(path))


def parse_taxonomy(data: bytes, source: str) -> Taxonomy:
    """A taxonomy from the bytes of a topics file; ``source`` names it in errors."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFileError(source, f"not UTF-8 text: {exc.reason}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _line_from_message(str(exc))
        raise DataFileError(source, f"not valid TOML: {exc}", line) from exc
    reader = _Reader(source, _Locator(text))
    settings, topic_specs = reader.read(raw)
    topics = tuple(spec.topic for spec in topic_specs)
    matcher = _Matcher(topic_specs, settings)
    return Taxonomy(topics, hashlib.sha256(data).hexdigest(), settings, source, matcher)


def _line_from_message(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None


class _Locator:
    """Line numbers of keys and table headers, so errors can point at the offending line.

    TOML has no positions once parsed; like ``config.py`` we search the text, here tracking which
    ``[[topics]]`` entry and which table each line belongs to.
    """

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")
    _KEY = re.compile(r"""^\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*[=.]""")

    def __init__(self, text: str) -> None:
        self.keys: dict[tuple[int, str, str], int] = {}
        self.headers: dict[tuple[int, str], int] = {}
        topic, table = -1, ""
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                table = re.sub(r"\s+", "", header.group(2))
                if header.group(1) == "[[" and table == "topics":
                    topic += 1
                self.headers.setdefault((topic, table), number)
                continue
            key = self._KEY.match(line)
            if key:
                name = next(group for group in key.groups() if group is not None)
                if key.group(1) is not None and "\\" in name:  # only escapes need TOML
                    name = _unescape(name)
                self.keys.setdefault((topic, table, name), number)

    def find(self, topic: int, table: str, key: str) -> int | None:
        """The line setting ``key`` in that table of that topic (-1: outside every topic)."""
        return self.keys.get((topic, table, key))

    def line(self, topic: int, table: str, *keys: str) -> int | None:
        """The first of ``keys`` found in that table, else the table's header, else the topic's."""
        for key in keys:
            if (topic, table, key) in self.keys:
                return self.keys[(topic, table, key)]
        scope = topic if table.startswith("topics") else -1
        return self.headers.get((scope, table)) or self.headers.get((topic, "topics"))


def _unescape(quoted: str) -> str:
    try:
        return str(tomllib.loads(f'k = "{quoted}"')["k"])
    except tomllib.TOMLDecodeError:
        return quoted


@dataclass(frozen=True, slots=True)
class _Keyword:
    label: str  # as written in the file
    words: tuple[str, ...]  # normalised: a stem/word, or a prefix ending in "*"
    weight: float


@dataclass(slots=True)
class _TopicSpec:
    topic: Topic
    keywords: dict[str, list[_Keyword]]
    sections: dict[str, float]
    org_kinds: dict[str, float]
    orgs: dict[str, float]


_SETTINGS_KEYS = {"threshold", "relative", "title_factor", "body_cap", "body_chars"}
_TOPIC_KEYS = {"slug", "names", "scope", "sections", "org_kinds", "orgs", *LANGUAGES}


class _Reader:
    """Validates the parsed TOML; every refusal names the line of the offending key."""

    def __init__(self, source: str, locator: _Locator) -> None:
        self.source = source
        self.where = locator

    def fail(self, reason: str, line: int | None) -> DataFileError:
        return DataFileError(self.source, reason, line)

    def read(self, raw: dict[str, Any]) -> tuple[Settings, list[_TopicSpec]]:
        for key in raw:
            if key not in ("settings", "topics"):
                raise self.fail(f"unknown key {key!r} at the top level (known: settings, topics)",
                                self.where.line(-1, "", key))
        settings = self.read_settings(raw.get("settings", {}))
        entries = raw.get("topics")
        if not isinstance(entries, list) or not entries:
            raise self.fail("no topics: add at least one [[topics]] table",
                            self.where.line(-1, "", "topics"))
        specs: list[_TopicSpec] = []
        lines: dict[str, int | None] = {}
        for index, entry in enumerate(entries):
            spec = self.read_topic(index, entry)
            if spec.topic.slug in lines:
                first = lines[spec.topic.slug]
                raise self.fail(f"duplicate topic slug {spec.topic.slug!r} (first at line {first})",
                                self.where.line(index, "topics", "slug"))
            lines[spec.topic.slug] = self.where.line(index, "topics", "slug")
            specs.append(spec)
        return settings, specs

    def read_settings(self, table: Any) -> Settings:
        if not isinstance(table, dict):
            raise self.fail("'settings' must be a table", self.where.line(-1, "", "settings"))
        for key in table:
            if key not in _SETTINGS_KEYS:
                raise self.fail(f"unknown key {key!r} in [settings] (known: "
                                f"{', '.join(sorted(_SETTINGS_KEYS))})",
                                self.where.line(-1, "settings", key))
        defaults = Settings()
        threshold = self.number(table, "threshold", defaults.threshold, 0.0, None)
        relative = self.number(table, "relative", defaults.relative, 0.0, 1.0)
        factor = self.number(table, "title_factor", defaults.title_factor, 0.0, None)
        cap = self.whole(table, "body_cap", defaults.body_cap, 1)
        chars = self.whole(table, "body_chars", defaults.body_chars, 0)
        return Settings(threshold, relative, factor, cap, chars)

    def whole(self, table: dict[str, Any], key: str, default: int, low: int) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(f"{key!r} must be a whole number of at least {low}, not {value!r}",
                            self.where.line(-1, "settings", key))
        return value

    def number(self, table: dict[str, Any], key: str, default: float, low: float,
               high: float | None) -> float:
        value = table.get(key, default)
        bad = isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value <= low or (high is not None and value > high)
        if bad:
            limit = f"above {low:g}" + (f" and at most {high:g}" if high is not None else "")
            raise self.fail(f"{key!r} must be a number {limit}, not {value!r}",
                            self.where.line(-1, "settings", key))
        return float(value)

    def read_topic(self, index: int, entry: Any) -> _TopicSpec:
        if not isinstance(entry, dict):
            raise self.fail(f"topic #{index + 1} must be a table", None)
        for key in entry:
            if key not in _TOPIC_KEYS:
                raise self.fail(f"unknown key {key!r} in topic #{index + 1} (known: "
                                f"{', '.join(sorted(_TOPIC_KEYS))})",
                                self.where.line(index, "topics", key))
        slug = entry.get("slug")
        if not isinstance(slug, str) or not _SLUG.match(slug):
            reason = "has no 'slug'" if slug is None else \
                f"slug {slug!r} must be lowercase letters, digits and '-' only"
            raise self.fail(f"topic #{index + 1} {reason}",
                            self.where.line(index, "topics", "slug"))
        topic = Topic(slug, self.read_names(index, slug, entry.get("names")),
                      self.read_scope(index, slug, entry.get("scope")))
        keywords = {lang: self.read_keywords(index, slug, lang, entry.get(lang, {}))
                    for lang in LANGUAGES}
        sections = self.read_weights(index, slug, "sections", entry.get("sections", {}))
        kinds = self.read_weights(index, slug, "org_kinds", entry.get("org_kinds", {}))
        for kind in kinds:
            if kind not in ORG_KINDS:
                raise self.fail(f"topic {slug!r}: unknown organisation kind {kind!r} (use one of "
                                f"{', '.join(ORG_KINDS)})", self.where.line(index, "topics",
                                                                           "org_kinds"))
        orgs = self.read_weights(index, slug, "orgs", entry.get("orgs", {}))
        for org in orgs:
            if not _SLUG.match(org):
                raise self.fail(f"topic {slug!r}: {org!r} in 'orgs' is not a gov.kz slug",
                                self.where.line(index, "topics", "orgs"))
        return _TopicSpec(topic, keywords, {k.casefold(): w for k, w in sections.items()},
                          kinds, orgs)

    def read_names(self, index: int, slug: str, names: Any) -> dict[str, str]:
        line = self.where.line(index, "topics", "names", "slug")
        if not isinstance(names, dict):
            raise self.fail(f"topic {slug!r} needs 'names' = {{ en = ..., ru = ..., kk = ... }}",
                            line)
        for lang in names:
            if lang not in LANGUAGES:
                raise self.fail(f"topic {slug!r}: unknown language {lang!r} in 'names' "
                                f"(use {', '.join(LANGUAGES)})", line)
        for lang in LANGUAGES:
            value = names.get(lang)
            if not isinstance(value, str) or not value.strip():
                raise self.fail(f"topic {slug!r} has no name in {lang!r}", line)
        return {lang: names[lang].strip() for lang in LANGUAGES}

    def read_scope(self, index: int, slug: str, scope: Any) -> str:
        if not isinstance(scope, str) or not scope.strip():
            raise self.fail(f"topic {slug!r} needs a one-line 'scope'",
                            self.where.line(index, "topics", "scope", "slug"))
        return scope.strip()

    def read_weights(self, index: int, slug: str, name: str, table: Any) -> dict[str, float]:
        if not isinstance(table, dict):
            raise self.fail(f"topic {slug!r}: {name!r} must be a table of name = weight",
                            self.where.line(index, "topics", name))
        return {key: self.weight(value, f"topic {slug!r}: {name} {key!r}",
                                 self.where.find(index, f"topics.{name}", key) or
                                 self.where.line(index, "topics", name))
                for key, value in table.items()}

    def weight(self, value: Any, what: str, line: int | None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value) or not 0 < value <= MAX_WEIGHT:
            raise self.fail(f"{what}: weight must be a number above 0 and at most "
                            f"{MAX_WEIGHT:g}, not {value!r}", line)
        return float(value)

    def read_keywords(self, index: int, slug: str, lang: str, table: Any) -> list[_Keyword]:
        if not isinstance(table, dict):
            raise self.fail(f"topic {slug!r}: '{lang}' must be a table of keyword = weight",
                            self.where.line(index, "topics", lang))
        seen: dict[tuple[str, ...], str] = {}
        keywords = []
        for label, value in table.items():
            line = self.where.find(index, f"topics.{lang}", label) or \
                self.where.line(index, "topics", lang)
            weight = self.weight(value, f"topic {slug!r}: {lang} keyword {label!r}", line)
            words = self.keyword_words(label, lang, f"topic {slug!r}: {lang} keyword", line)
            if words in seen:
                raise self.fail(f"topic {slug!r}: {lang} keywords {seen[words]!r} and {label!r} "
                                f"match the same words ({' '.join(words)}); keep one", line)
            seen[words] = label
            keywords.append(_Keyword(label, words, weight))
        return keywords

    def keyword_words(self, label: str, lang: str, what: str, line: int | None
                      ) -> tuple[str, ...]:
        parts = label.casefold().replace("ё", "е").translate(_APOSTROPHES).split()
        words = []
        for part in parts:
            star = part.endswith("*")
            stem = part.rstrip("*")
            if not stem or not re.fullmatch(r"\w+", stem) or part.count("*") > 1:
                raise self.fail(f"{what} {label!r}: each word must be letters/digits, "
                                "optionally ending in a single '*'", line)
            if star and len(stem) < MIN_STEM:
                raise self.fail(f"{what} {label!r}: a stem ending in '*' needs at least "
                                f"{MIN_STEM} letters", line)
            words.append(stem + "*" if star else _normalise_word(stem, lang))
        if not words:
            raise self.fail(f"{what}: empty keyword", line)
        return tuple(words)


# --- matching ----------------------------------------------------------------------------------

def _stemmer(lang: str) -> Callable[[str], str] | None:
    algorithm = _STEMMERS.get(lang)
    return snowballstemmer.stemmer(algorithm).stemWord if algorithm else None


_STEM_FUNCTIONS = {lang: _stemmer(lang) for lang in LANGUAGES}


def _normalise_word(word: str, lang: str) -> str:
    """The form a word is compared in: stemmed in en/ru, except short words.

    Words of up to ``MAX_EXACT`` letters are kept whole: they are mostly abbreviations ("ИИ",
    "МИД", "UN", "VAT"), and stemming "ии" to "и" would match the conjunction "и".
    """
    word = word.replace("ё", "е").translate(_APOSTROPHES)
    stem = _STEM_FUNCTIONS.get(lang)
    return stem(word) if stem and len(word) > MAX_EXACT else word


#: The same normalisation for other modules (query feeds' search words, so "декларации" in a
#: search meets "декларация" in a text as the topic rules do).
normalise_word = _normalise_word


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: cheap dictionary keys
class _Rule:
    topic: int
    label: str
    weight: float
    rest: tuple[str, ...] = ()  # a phrase's words after the first


@dataclass(frozen=True, slots=True)
class _Token:
    """What one word (casefolded) means in one language: its forms and the keywords it hits."""

    forms: frozenset[str]
    hits: tuple[_Rule, ...]  # single-word keywords it matches
    starts: tuple[_Rule, ...]  # phrases whose first word it matches


@dataclass(frozen=True, slots=True, eq=False)  # always truthy, cheap to test: see _Language.count
class _Chunk:
    """A whitespace-separated piece of text ("Kazakhstan.The", "(UNCCT)") and its words."""

    words: tuple[_Token, ...]
    hits: tuple[_Rule, ...]
    #: Per word that starts phrases: the index of the word after it, whether that word is in
    #: this chunk, the number of words the longest phrase needs after the first, and the phrases
    #: (in the order the word's token lists them) with their second words and whether they are
    #: longer than two words.
    starts: tuple[tuple[int, bool, int, tuple[tuple[_Rule, str, bool], ...]], ...]


#: A word that hits no keyword, starts no phrase and is none of the words a phrase needs after
#: its first: nothing about it can change a score. Every such word shares this token (most words
#: of a text are such words, and a daemon meets hundreds of thousands of them: numbers, names).
_INERT = _Token(frozenset(), (), ())
#: What a chunk whose words are all inert stands for, kept in no cache: a phrase running into
#: it fails at its first word, so one word does as well as all of them. (A chunk without words,
#: "—", is not inert: phrases run across it, so it is cached with its empty words.)
_INERT_CHUNK = _Chunk((_INERT,), (), ())


class _Language:
    """Compiled keywords of one language, with caches of words and chunks already seen.

    Items are split on whitespace (fast) and each distinct chunk is casefolded, tokenised, stemmed
    and matched once; afterwards a chunk costs one dictionary look-up, done for a whole text at C
    speed (``map``), and only the positions of chunks that hit a keyword are visited in Python.
    Chunks are cached as written, before casefolding: splitting and then casefolding each chunk
    gives the same words as casefolding and then splitting (no character gains or loses
    whitespace by casefolding), and the text need not be casefolded as a whole.
    """

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.single: dict[str, list[_Rule]] = {}
        self.phrase: dict[str, list[_Rule]] = {}
        self.prefixes: set[str] = set()
        #: Every word a phrase needs after its first (as normalised: a stem, or "prefix*").
        self.rest: set[str] = set()
        self.words: dict[str, _Token] = {}
        #: Chunks seen that matter to phrases (see _INERT); the others are only in ``marks``.
        self.chunks: dict[str, _Chunk] = {}
        self.marks: dict[str, _Chunk | None] = {}  # every chunk seen: None unless it hits

    def add(self, topic: int, keyword: _Keyword) -> None:
        first, *rest = keyword.words
        target = self.phrase if rest else self.single
        target.setdefault(first, []).append(_Rule(topic, keyword.label, keyword.weight,
                                                  tuple(rest)))
        self.prefixes.update(word[:-1] for word in keyword.words if word.endswith("*"))
        self.rest.update(rest)

    def word(self, raw: str) -> _Token:
        known = self.words.get(raw)
        if known is not None:
            return known
        forms = {_normalise_word(raw, self.lang)}
        plain = raw.translate(_APOSTROPHES).replace("ё", "е")
        forms.update(plain[:end] + "*" for end in range(MIN_STEM, len(plain) + 1)
                     if plain[:end] in self.prefixes)
        hits = tuple(rule for form in forms for rule in self.single.get(form, ()))
        starts = tuple(rule for form in forms for rule in self.phrase.get(form, ()))
        if hits or starts or not self.rest.isdisjoint(forms):
            info = _Token(frozenset(forms), hits, starts)
        else:
            info = _INERT
        self.words[raw] = info
        return info

    def clear(self) -> None:
        """Forget every word and chunk seen (they are learned again as they come)."""
        self.words.clear()
        self.chunks.clear()
        self.marks.clear()

    def learn(self, chunks: list[str]) -> None:
        """Cache every chunk of ``chunks`` not seen yet (all of them after a cache reset)."""
        unknown = set(chunks).difference(self.marks)
        if len(self.marks) + len(unknown) > _CACHE_LIMIT or len(self.words) > _CACHE_LIMIT:
            self.clear()
            unknown = set(chunks)
        for chunk in unknown:
            words = tuple(self.word(raw) for raw in _TOKEN.findall(chunk.casefold()))
            if words and all(word is _INERT for word in words):
                self.marks[chunk] = None  # its words: as good as _INERT_CHUNK's one
                continue
            hits = tuple(rule for word in words for rule in word.hits)
            starts = tuple(
                (index + 1, index + 1 < len(words), max(len(rule.rest) for rule in word.starts),
                 tuple((rule, rule.rest[0], len(rule.rest) > 1) for rule in word.starts))
                for index, word in enumerate(words) if word.starts)
            info = _Chunk(words, hits, starts)
            self.chunks[chunk] = info
            self.marks[chunk] = info if hits or starts else None

    def count(self, chunks: list[str]) -> dict[_Rule, int]:
        """How many times each keyword occurs in the text split into ``chunks``, keywords in the
        order of their first occurrence (hits of a chunk before the phrases starting in it).

        The look-up of every chunk is one C-speed ``map``; ``compress`` then yields the few
        chunks that hit a keyword, with their positions, and only those are visited in Python.
        The words after a phrase's first word are collected once for all the phrases it starts.
        """
        marks = self.marks
        try:
            seen = list(map(marks.__getitem__, chunks))
        except KeyError:
            self.learn(chunks)
            seen = list(map(marks.__getitem__, chunks))
        found: dict[_Rule, int] = {}
        get = found.get
        known = self.chunks
        last = len(chunks) - 1
        for position, info in compress(enumerate(seen), seen):
            assert info is not None  # compress passes only the chunks that hit a keyword
            for rule in info.hits:
                found[rule] = get(rule, 0) + 1
            for index, inside, longest, phrases in info.starts:
                # A phrase's second word is word ``index`` of this chunk or, commonly ("state"
                # "visit"), the first word of the next chunk.
                if inside:
                    second = info.words[index].forms
                elif position < last and (
                        following := known.get(chunks[position + 1], _INERT_CHUNK).words):
                    second = following[0].forms
                else:
                    after = self.following(chunks, position, index, 1)
                    if not after:
                        continue
                    second = after[0]
                for rule, word, longer in phrases:
                    if word in second and (not longer or _continues(
                            rule.rest, self.following(chunks, position, index, longest))):
                        found[rule] = get(rule, 0) + 1
        return found

    def following(self, chunks: list[str], position: int, index: int, wanted: int
                  ) -> list[frozenset[str]]:
        """The forms of up to ``wanted`` words from word ``index`` of chunk ``position`` on,
        across chunk boundaries (a phrase may span "law," and "order").

        Every chunk of ``chunks`` is known here: :meth:`count` learned them all first.
        """
        known = self.chunks
        words = known.get(chunks[position], _INERT_CHUNK).words
        after: list[frozenset[str]] = []
        while len(after) < wanted:
            if index < len(words):
                after.append(words[index].forms)
                index += 1
                continue
            position += 1
            if position >= len(chunks):
                break
            words, index = known.get(chunks[position], _INERT_CHUNK).words, 0
        return after


def _continues(rest: tuple[str, ...], after: list[frozenset[str]]) -> bool:
    """Whether the words ``after`` a phrase's first word (their forms) match the rest of it."""
    return len(after) >= len(rest) and all(
        word in forms for word, forms in zip(rest, after, strict=False))


#: One piece of evidence: points, whether it is an organisation hint, where it matched ("title",
#: "body", "section", "org kind", "org"), what matched, and how often. Text is made only on demand.
_Evidence = tuple[float, bool, str, str, int]

#: An organisation hint: topic index, points, where ("org kind" or "org") and what matched.
_OrgHint = tuple[int, float, str, str]


def _exact(points: float) -> bool:
    """Whether ``points`` is a multiple of 1/8 below 2**20: sums of up to 2**30 such numbers
    are exact in floating point, whatever the order of the additions, and have at most three
    decimals, so rounding them to three decimals changes nothing."""
    return abs(points) < 2**20 and (points * 8).is_integer()


def _org_points(hints: tuple[_OrgHint, ...], topic: int) -> float:
    """The points the organisation hints alone give ``topic``."""
    return sum(weight for hinted, weight, _, _ in hints if hinted == topic)


def _describe(entry: _Evidence) -> str:
    points, _, where, what, times = entry
    if where in ("title", "body"):
        repeat = f" x{times}" if times > 1 else ""
        return f'{where}:"{what}"{repeat} +{points:g}'
    if where == "org kind":
        return f"org kind {what} +{points:g}"
    return f'{where} "{what}" +{points:g}'


class _Matcher:
    """Scores items against the compiled taxonomy.

    :meth:`score` collects the full evidence (for :func:`classify` and :func:`explain`);
    :meth:`assigned` is the hot path of every build and, when it can, only adds up points.
    """

    def __init__(self, specs: list[_TopicSpec], settings: Settings) -> None:
        self.settings = settings
        self.slugs = tuple(spec.topic.slug for spec in specs)
        self.languages = {lang: _Language(lang) for lang in LANGUAGES}
        self.sections: dict[str, list[tuple[int, float]]] = {}
        self.kinds: dict[str, list[tuple[int, float]]] = {}
        self.orgs: dict[str, list[tuple[int, float]]] = {}
        self.org_cache: dict[tuple[str | None, str | None, tuple[str, ...]],
                             tuple[_OrgHint, ...]] = {}
        for index, spec in enumerate(specs):
            for lang, keywords in spec.keywords.items():
                for keyword in keywords:
                    self.languages[lang].add(index, keyword)
            for table, hints in ((self.sections, spec.sections), (self.kinds, spec.org_kinds),
                                 (self.orgs, spec.orgs)):
                for key, weight in hints.items():
                    table.setdefault(key, []).append((index, weight))
        self.exact = all(map(_exact, self.points()))

    def points(self) -> Iterator[float]:
        """Every number of points one piece of evidence can add."""
        factor, cap = self.settings.title_factor, self.settings.body_cap
        for language in self.languages.values():
            for rules in (*language.single.values(), *language.phrase.values()):
                for rule in rules:
                    yield rule.weight * factor
                    yield from (rule.weight * times for times in range(1, cap + 1))
        for table in (self.sections, self.kinds, self.orgs):
            for hints in table.values():
                yield from (weight for _, weight in hints)

    def languages_for(self, lang: str) -> Iterable[_Language]:
        known = self.languages.get(lang)
        return (known,) if known else self.languages.values()

    def chunks(self, item: Item) -> tuple[list[str], list[str]]:
        """The title and the (read part of the) body, split on whitespace."""
        return item.title.split(), self.body(item).split() if item.paragraphs else []

    def score(self, item: Item, org_kind: str | None, org_chain: tuple[str, ...]
              ) -> dict[int, list[_Evidence]]:
        """Evidence per topic index."""
        evidence: dict[int, list[_Evidence]] = {}
        factor, cap = self.settings.title_factor, self.settings.body_cap
        title, body = self.chunks(item)
        for language in self.languages_for(item.lang):
            for rule in language.count(title):  # a title match counts once
                evidence.setdefault(rule.topic, []).append(
                    (rule.weight * factor, False, "title", rule.label, 1))
            for rule, times in language.count(body).items():
                evidence.setdefault(rule.topic, []).append(
                    (rule.weight * min(times, cap), False, "body", rule.label, times))
        for section in item.sections:
            for topic, weight in self.sections.get(section.casefold(), ()):
                evidence.setdefault(topic, []).append((weight, False, "section", section, 1))
        for topic, weight, where, what in self.org_evidence(item.org, org_kind, org_chain):
            evidence.setdefault(topic, []).append((weight, True, where, what, 1))
        return evidence

    def assigned(self, item: Item, org_kind: str | None, org_chain: tuple[str, ...]
                 ) -> list[int]:
        """The indexes of the topics assigned to ``item``, ascending: :func:`_decide` on
        :meth:`score`.

        When every number of points is a multiple of 1/8 (``exact``: true of any taxonomy with
        weights like 1, 0.5, 1.5 or 0.25 and such a title factor), every sum of them is exact in
        floating point and already rounded to three decimals, so totals can be kept as running
        sums, in any order, without evidence lists. Otherwise the order of the additions could
        change the last bit, so the evidence is built as for :func:`classify`.
        """
        settings = self.settings
        if not self.exact:
            evidence = self.score(item, org_kind, org_chain)
            return sorted(topic for topic, _, yes in _decide(settings, evidence) if yes)
        totals: dict[int, float] = {}
        get = totals.get
        factor, cap = settings.title_factor, settings.body_cap
        title, body = self.chunks(item)
        for language in self.languages_for(item.lang):
            for rule in language.count(title):
                topic = rule.topic
                totals[topic] = get(topic, 0) + rule.weight * factor
            for rule, times in language.count(body).items():
                topic = rule.topic
                totals[topic] = get(topic, 0) + rule.weight * (times if times < cap else cap)
        for section in item.sections:
            for topic, weight in self.sections.get(section.casefold(), ()):
                totals[topic] = get(topic, 0) + weight
        hints = self.org_evidence(item.org, org_kind, org_chain)
        for topic, weight, _, _ in hints:
            totals[topic] = get(topic, 0) + weight
        if not totals:
            return []
        threshold = settings.threshold
        floor = settings.relative * max(totals.values())
        assigned = [topic for topic, total in totals.items() if total >= threshold and (
            total >= floor or (hints and _org_points(hints, topic) >= threshold))]
        assigned.sort()
        return assigned

    def body(self, item: Item) -> str:
        """The body, or its first ``body_chars`` characters (cut at a space): the lead of a news
        story names its subjects, later paragraphs drift into background and boilerplate."""
        text = "\n".join(item.paragraphs)
        limit = self.settings.body_chars
        if not limit or len(text) <= limit:
            return text
        cut = text.rfind(" ", 0, limit + 1)
        return text[:cut if cut > 0 else limit]

    def org_evidence(self, org: str | None, kind: str | None, chain: tuple[str, ...]
                     ) -> tuple[_OrgHint, ...]:
        """The hints of the organisation's kind, then of its slugs; cached, as a build meets
        the same few hundred organisations again and again."""
        key = (org, kind, chain)
        known = self.org_cache.get(key)
        if known is None:
            hints = [(topic, weight, "org kind", kind or "")
                     for topic, weight in self.kinds.get(kind or "", ())]
            hints.extend((topic, weight, "org", hint)
                         for topic, (hint, weight) in self.org_hints(org, chain).items())
            if len(self.org_cache) >= _ORG_CACHE_LIMIT:
                self.org_cache.clear()
            known = self.org_cache[key] = tuple(hints)
        return known

    def org_hints(self, org: str | None, chain: tuple[str, ...]) -> dict[int, tuple[str, float]]:
        """Per topic, the heaviest hint matching any slug of the chain or a prefix of one."""
        best: dict[int, tuple[str, float]] = {}
        for slug in (*chain, *((org,) if org and org not in chain else ())):
            parts = slug.split("-")
            for end in range(len(parts), 0, -1):
                hint = "-".join(parts[:end])
                for topic, weight in self.orgs.get(hint, ()):
                    if topic not in best or weight > best[topic][1]:
                        best[topic] = (hint, weight)
        return best


# --- classifying -------------------------------------------------------------------------------

def classify(taxonomy: Taxonomy, item: Item, *, org_kind: str | None = None,
             org_chain: tuple[str, ...] = ()) -> list[TopicScore]:
    """A score for every topic that scored at all, best first, with the evidence for it.

    ``org_chain`` is the item's organisation slug and then its ancestors (``("kgd-mangistau",
    "kgd", "minfin")``); without it the item's own ``org`` is used.
    """
    evidence = _evidence(taxonomy, item, org_kind, org_chain)
    scores = []
    for topic, total, assigned in _decide(taxonomy.settings, evidence):
        found = sorted(evidence[topic], key=lambda entry: -entry[0])
        scores.append(TopicScore(taxonomy.topics[topic].slug, total, assigned,
                                 tuple(_describe(entry) for entry in found)))
    return scores


def _evidence(taxonomy: Taxonomy, item: Item, org_kind: str | None,
              org_chain: tuple[str, ...]) -> dict[int, list[_Evidence]]:
    matcher = taxonomy._matcher
    return matcher.score(item, org_kind, tuple(org_chain)) if matcher else {}


def _decide(settings: Settings, evidence: dict[int, list[_Evidence]]
            ) -> list[tuple[int, float, bool]]:
    """(topic index, score, assigned) for every topic with evidence, best first.

    Assigned: the score reaches the threshold and either is at least ``relative`` of the best
    score, or the organisation hints alone reach the threshold (the file says this organisation's
    news belongs to the topic, however much else the story talks about).
    """
    totals = {topic: round(sum(entry[0] for entry in found), 3)
              for topic, found in evidence.items()}
    best = max(totals.values(), default=0.0)
    decided = []
    for topic in sorted(totals, key=lambda index: (-totals[index], index)):
        total = totals[topic]
        by_org = sum(entry[0] for entry in evidence[topic] if entry[1])
        assigned = total >= settings.threshold and (
            total >= settings.relative * best or by_org >= settings.threshold)
        decided.append((topic, total, assigned))
    return decided


def assign_topics(taxonomy: Taxonomy, item: Item, *, org_kind: str | None = None,
                  org_chain: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The slugs of the topics assigned to ``item``, in taxonomy order.

    The same decision as :func:`classify` makes, by a path that skips the evidence (see
    :meth:`_Matcher.assigned`): this runs once per item in every build.
    """
    matcher = taxonomy._matcher
    if matcher is None:
        return ()
    return tuple(map(matcher.slugs.__getitem__, matcher.assigned(item, org_kind, tuple(org_chain))))


def release_caches(taxonomy: Taxonomy) -> None:
    """Forget every word, chunk and organisation the taxonomy's matcher has cached: a daemon
    that goes idle gives their memory back, and relearns the words it meets next."""
    matcher = taxonomy._matcher
    if matcher is not None:
        for language in matcher.languages.values():
            language.clear()
        matcher.org_cache.clear()


def explain(taxonomy: Taxonomy, item: Item, *, org_kind: str | None = None,
            org_chain: tuple[str, ...] = ()) -> str:
    """Why ``item`` got (or did not get) each topic that scored, as plain text."""
    settings = taxonomy.settings
    scores = classify(taxonomy, item, org_kind=org_kind, org_chain=org_chain)
    lines = [f"{item.title!r} ({item.lang}): a topic is assigned when its score is at least "
             f"{settings.threshold:g} and at least {settings.relative:.0%} of the best score, "
             f"or when organisation hints alone reach {settings.threshold:g} (title words count "
             f"x{settings.title_factor:g}, body words up to {settings.body_cap} times)"]
    if not scores:
        lines.append("  no topic scored: no keyword, section or organisation hint matched")
    for score in scores:
        if score.assigned:
            verdict = "ASSIGNED"
        elif score.score < settings.threshold:
            verdict = f"not assigned (below {settings.threshold:g})"
        else:
            verdict = f"not assigned (below {settings.relative:.0%} of the best score)"
        lines.append(f"  {score.slug}: {score.score:g} {verdict}")
        lines.extend(f"      {line}" for line in score.evidence)
    return "\n".join(lines)
