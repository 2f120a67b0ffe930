"""Text dumps of news (the format of ``seeds/``): bytes in, Items out.

The format, as found in the wild::

    Enbekshi QazaQ                      <- publication name (header)
    News More                           <- section label (header), "More" is a link word
    TITLE OF THE STORY 14.02.2026       <- a title line ends with the publication date
    Body line. Sentences.Often glued.Source : https://www.gov.kz/memleket/entities/mfa/...
    Another title 14.02.2026
    Source : https://www.gov.kz/...     <- an item with only a trailer

:func:`decode_dump` turns bytes into text (BOM, UTF-16, legacy Cyrillic code pages, control
characters); :func:`parse_dump` turns text into Items; :class:`TextDumpFile` is the Source that
reads a file only when it changed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import SourceFileError
from ..links import parse_govkz_url
from ..model import ALMATY, Item, Origin
from ..text import (
    CONTROL_BYTES_PER_TEXT,
    binary_reason,
    guess_language,
    has_controls,
    strip_controls,
    undecodable_reason,
)
from . import BaseSource, SourceContext, SourceResult

if TYPE_CHECKING:
    from ..config import Config, SourceConfig

TEXT_SUFFIXES = (".txt", ".text")
#: A missing "file" that reads like a web address without its scheme (``example.org/news``).
_LOOKS_LIKE_ADDRESS = re.compile(
    r"(?i)^(?!.*\.(txt|text)$)(www\.)?[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}(/|$)")

# A title line ends in whitespace and DD.MM.YYYY. Only the last 10 characters can hold the date,
# so only they are searched (a ".*?" prefix here once made parsing quadratic); the whitespace
# before the date is checked in Python. ``\s`` and ``str.isspace`` agree on every code point.
_DATE_AT_END = re.compile(r"(?P<date>(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4}))$")
_DATE_CHARS = 10
_MAX_TITLE = 400
_ALNUM = re.compile(r"[^\W_]")  # what str.isalnum() accepts, found by one search
# The link runs to the last non-space character, so a greedy \S+ finds the same link as a lazy
# one would, without trying the end of the pattern after every character of the URL.
_TRAILER = re.compile(
    r"(?:(?<=[\s.!?»”\")])|^)(?:Source|Sources|Источник|Дереккөз|Дерек\s+көзі)"
    r"[\s\u00a0]*:[\s\u00a0]*(?P<url>https?://\S+)[\s\u00a0]*$",
    re.IGNORECASE,
)
_ATTRIBUTION = re.compile(r"[\s\u00a0]*[“\"«](?P<name>[^“”\"«».!?]{2,60})[”\"»][\s\u00a0]*$")
_HEADER = re.compile(r"^[^\W\d_][\w&'’ \-]{0,40}$")
# _HEADER matches nothing longer (41 characters, and "$" allows a final newline): most lines
# are rejected by their length alone.
_MAX_HEADER = 42
_MORE_WORDS = ("More", "Ещё", "Еще", "Подробнее", "Толығырақ", "Барлығы")
_UPPER = "A-ZА-ЯЁӘІҢҒҮҰҚӨҺ"
_LOWER = "a-zа-яёәіңғүұқөһ"
# A sentence end glued to the next sentence: "Kazakhstan.The", "citizens”.During", "taxpayers!The".
# The character before the stop is checked in Python: a look-behind here made the scan slow.
_GLUED = re.compile(rf"[.!?](?=[“\"«]?[{_UPPER}])")
_BEFORE_GLUED = frozenset("abcdefghijklmnopqrstuvwxyzабвгдеёжзийклмнопрстуфхцчшщъыьэюя"
                          "әіңғүұқөһ0123456789%)”\"»")
# A trailer or a closing credit sits in the last characters of a body; only those are searched.
# A trailer spans at most four whitespace-separated tokens ("Дерек көзі : URL"), so it starts
# after the end of the fifth-last token: the search begins there, not 600 characters back.
_TRAILER_WINDOW = 600
_TRAILER_TOKENS = 4
_CLOSING_QUOTES = ("”", '"', "»")
_NON_WORD = re.compile(r"[^\w-]")
_ATTRIBUTION_WINDOW = 120
# Words that end in a full stop without ending a sentence: never split after them.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr no nos vs etc inc ltd co gen col lt sgt hon rev dept approx "
    "г гг ул им обл тел акад проф т д р-н пр".split()
)
_YEARS = range(1990, 2101)


@dataclass(slots=True)
class ParsedDump:
    items: list[Item] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def decode_dump(data: bytes, source: str) -> tuple[str, list[str]]:
    """Text of a dump file, and warnings about what had to be repaired.

    Raises :class:`SourceFileError` for empty, binary and undecodable files.
    """
    if not data.strip():
        raise SourceFileError(source, "empty file (no text at all)")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), ["file is UTF-16; decoded it"]
        except UnicodeDecodeError as exc:
            raise SourceFileError(source, f"broken UTF-16: {exc.reason}") from exc
    utf16 = _decode_utf16_without_bom(data)
    if utf16 is not None:
        return utf16
    reason = binary_reason(data)
    if reason is not None:
        raise SourceFileError(source, f"binary file, not text ({reason})")
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        reason = undecodable_reason(data)
        if reason is not None:
            raise SourceFileError(source, f"binary file, not text ({reason})") from exc
        legacy = _decode_legacy_cyrillic(data)
        if legacy is not None:
            text, encoding = legacy
            return text, [f"file is not UTF-8; decoded it as {encoding} (legacy Cyrillic)"]
        line = data.count(b"\n", 0, exc.start) + 1
        raise SourceFileError(
            source, f"not UTF-8 (invalid byte 0x{data[exc.start]:02x} at offset {exc.start}, "
            f"line {line}) and not a recognisable legacy Cyrillic encoding; save it as UTF-8"
        ) from exc


def _decode_utf16_without_bom(data: bytes) -> tuple[str, list[str]] | None:
    """UTF-16 without a byte-order mark: a NUL in every other byte, on one side only.

    Latin text in UTF-16 is half NULs and Cyrillic has one at every space, digit and stop; a
    binary file has its NULs on both sides. Tried before the binary test, which they would fail.
    """
    nuls = data.count(b"\x00")
    if len(data) % 2 or nuls * 20 < len(data):  # under 5 % NULs: not UTF-16
        return None
    odd = data[1::2].count(b"\x00")
    for encoding, on_side in (("utf-16-le", odd), ("utf-16-be", nuls - odd)):
        if on_side * 100 >= nuls * 95:
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                return None
            if _control_share_high(text):
                return None  # decodes, but to control characters: a binary file
            return text, [f"file is {encoding.upper()} without a byte-order mark; decoded it"]
    return None


def _control_share_high(text: str) -> bool:
    controls = sum(1 for char in text if (char < " " and char not in "\t\n\r\f") or char == "\x7f")
    return controls * CONTROL_BYTES_PER_TEXT > len(text)


def _decode_legacy_cyrillic(data: bytes) -> tuple[str, str] | None:
    """Decode cp1251/KOI8-R/cp866 when the result is unmistakably Cyrillic prose.

    charset-normalizer proposes the encoding; we accept it only if most letters come out Cyrillic
    and common Russian/Kazakh vowels dominate, so Latin-1 noise is never passed off as text.
    """
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=["cp1251", "koi8_r", "cp866", "mac_cyrillic"]).best()
    if best is None:
        return None
    text = str(best)
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 20:
        return None
    cyrillic = sum(1 for c in letters if "\u0400" <= c <= "\u04ff")
    vowels = sum(1 for c in letters if c in "оеаиОЕАИ")
    if cyrillic / len(letters) < 0.6 or vowels / max(cyrillic, 1) < 0.2:
        return None
    return text, best.encoding


def parse_dump(text: str, source: str) -> ParsedDump:
    """Items of a dump, in file order, with their section labels; warnings name the line."""
    lines = re.split(r"\r\n|\r|\n", text) if "\r" in text else text.split("\n")
    result = ParsedDump()
    # str.strip() removes U+00A0 too (it is whitespace), so one strip cleans a line.
    if not has_controls(text):  # the common case: one scan of the text instead of one per line
        cleaned = [line.strip() for line in lines]
    else:
        cleaned = []
        for number, raw in enumerate(lines, start=1):
            line, removed = strip_controls(raw)
            if removed:
                # Every occurrence of a character is removed or none is: the set difference
                # names exactly the characters that went.
                names = ", ".join(f"U+{ord(char):04X}" for char in sorted(set(raw) - set(line)))
                result.warnings.append(
                    f"{source}:{number}: removed {removed} control character(s) ({names})")
            cleaned.append(line.strip())
    _Walker(cleaned, source, result).walk()
    return result


class _Walker:
    """One pass over the lines: headers set the section, title lines open items."""

    def __init__(self, lines: list[str], source: str, result: ParsedDump) -> None:
        self.lines = lines
        # Each line is classified once; the walk asks about most lines two or three times.
        self.titles = [_title_match(line) if line else None for line in lines]
        self.labels = [_looks_like_label(line) if line else False for line in lines]
        self.following, self.headers = _header_chains(lines, self.titles, self.labels)
        self.source = source
        self.result = result
        self.section: str | None = None
        self.publication: str | None = None
        self.seen_item = False

    def walk(self) -> None:
        index = 0
        orphan: list[int] = []
        lines = self.lines
        titles = self.titles
        labels = self.labels
        count = len(lines)
        while index < count:
            if not lines[index]:
                index += 1
            elif labels[index] and self.is_header(index):
                self.take_header(index)
                index += 1
            elif titles[index] is not None:
                self.report_orphans(orphan)
                orphan = []
                index = self.take_item(index)
            else:
                orphan.append(index + 1)
                index += 1
        self.report_orphans(orphan)
        if not self.result.items and not self.result.warnings:
            self.result.warnings.append(
                f"{self.source}: no news items found (an item starts with a title line ending "
                "in DD.MM.YYYY)")

    def report_orphans(self, numbers: list[int]) -> None:
        if numbers:
            where = f"{numbers[0]}" if len(numbers) == 1 else f"{numbers[0]}-{numbers[-1]}"
            self.result.warnings.append(
                f"{self.source}:{where}: {len(numbers)} line(s) of text before any title line; "
                "not part of an item, skipped")

    def next_nonblank(self, index: int) -> int | None:
        following = self.following[index]
        return None if following < 0 else following

    def is_header(self, index: int) -> bool:
        """Short label lines ("News More", "World") directly before a title or another label.

        A run of labels that reaches the end of the file is a header only at the top of a file
        (before any item): ``_header_chains`` decided everything else once for every line.
        """
        chain = self.headers[index]
        return chain == _HEADER_YES or (chain == _HEADER_AT_TOP and not self.seen_item)

    def take_header(self, index: int) -> None:
        label = self.lines[index]
        following = self.next_nonblank(index)
        at_top = not self.seen_item and self.section is None and self.publication is None
        if at_top and following is not None and self.labels[following] \
                and not label.endswith(_MORE_WORDS):
            self.publication = label
            return
        for word in _MORE_WORDS:
            if label.endswith(" " + word):
                label = label[: -len(word) - 1].rstrip()
                break
        self.section = label

    def take_item(self, index: int) -> int:
        match = self.titles[index]
        assert match is not None
        lines = self.lines
        titles = self.titles
        labels = self.labels
        count = len(lines)
        end = index + 1
        while end < count and not (
            lines[end] and (titles[end] is not None or (labels[end] and self.is_header(end)))
        ):
            end += 1
        body = lines[index + 1 : end]
        self.seen_item = True
        item = _build_item(match, body, Origin(self.source, index + 1), self.section,
                           self.publication, self.result.warnings)
        self.result.items.append(item)
        return end


_HEADER_NO, _HEADER_YES, _HEADER_AT_TOP = 0, 1, 2


def _header_chains(lines: list[str], titles: list[Any], labels: list[bool]
                   ) -> tuple[list[int], list[int]]:
    """For every line, the next non-blank line (-1: none) and whether it is a header.

    A label is a header when the next non-blank line is a title, or a label that is a header;
    when a run of labels reaches the end of the file, it depends on whether an item was seen
    (``_HEADER_AT_TOP``). One backward pass decides every line: asking line by line, with each
    answer walking the rest of a run of labels or blank lines, was quadratic in the run's length
    (and a few thousand label lines in a row exceeded Python's recursion limit).
    """
    count = len(lines)
    following = [-1] * count
    headers = [_HEADER_NO] * count
    after = -1
    for index in range(count - 1, -1, -1):
        following[index] = after
        if labels[index]:
            if after < 0:
                headers[index] = _HEADER_AT_TOP
            elif titles[after] is not None:
                headers[index] = _HEADER_YES
            elif labels[after]:
                headers[index] = headers[after]
        if lines[index]:
            after = index
    return following, headers


class _TitleLine(NamedTuple):
    """A recognised title line (a tuple: built for every title, cheaper than a dataclass)."""

    title: str
    date: str
    day: int
    month: int
    year: int


def _title_match(line: str) -> _TitleLine | None:
    """A title line: some words, then a space and ``DD.MM.YYYY`` at the very end."""
    length = len(line)
    if length > _MAX_TITLE + 11 or not line[-1:].isdigit():
        return None
    found = _DATE_AT_END.search(line, max(0, length - _DATE_CHARS))
    if found is None:
        return None
    start = found.start()
    # The date must follow whitespace; the title ends where that whitespace run begins.
    if start == 0 or not line[start - 1].isspace():
        return None
    title = line[:start].rstrip()
    if _ALNUM.search(title) is None or ("://" in title and _TRAILER.search(title)):
        return None
    date, day, month, year = found.groups()
    return _TitleLine(title, date, int(day), int(month), int(year))


def _looks_like_label(line: str) -> bool:
    return len(line) <= _MAX_HEADER and bool(_HEADER.match(line)) \
        and len(line.split()) <= 4 and line[0].isupper()


def _build_item(match: _TitleLine, body_lines: list[str], origin: Origin, section: str | None,
                publication: str | None, warnings: list[str]) -> Item:
    """One Item from its recognised title line and its body lines (pure apart from appending
    warnings)."""
    title = " ".join(match.title.split())
    published = _parse_date(match)
    if published is None:
        warnings.append(f"{origin}: impossible date {match.date}; item kept without a "
                        "publication date")
    paragraphs = [line for line in body_lines if line]
    paragraphs, url = _take_trailer(paragraphs)
    paragraphs, attribution = _take_attribution(paragraphs)
    paragraphs = _drop_repeated_title(paragraphs, title)
    paragraphs = [part for para in paragraphs for part in split_glued(para)]
    link = parse_govkz_url(url, lambda problem: warnings.append(f"{origin}: {problem}")) \
        if url else None
    canonical = link.canonical if link else None
    text_for_lang = title + " " + " ".join(paragraphs[:3])
    return Item(
        title=title,
        published=published,
        origin=origin,
        paragraphs=tuple(paragraphs),
        lang=guess_language(text_for_lang),
        url=canonical or url,
        url_lang=link.lang if link else None,
        org=link.slug if link else None,
        news_id=link.news_id if link else None,
        sections=(section,) if section else (),
        attribution=attribution,
        publication=publication,
        raw_date=match.date,
    )


def _parse_date(match: _TitleLine) -> datetime | None:
    if match.year not in _YEARS:
        return None
    try:
        return datetime(match.year, match.month, match.day, tzinfo=ALMATY)
    except ValueError:
        return None


def _take_trailer(paragraphs: list[str]) -> tuple[list[str], str | None]:
    """Remove a ``Source : URL`` trailer from the end of the body, wherever it is glued."""
    if not paragraphs:
        return paragraphs, None
    last = paragraphs[-1]
    if "://" not in last:  # every trailer has one: most bodies without a trailer stop here
        return paragraphs, None
    start = max(0, len(last) - _TRAILER_WINDOW)
    tokens = last.rsplit(None, _TRAILER_TOKENS)
    if len(tokens) > _TRAILER_TOKENS:
        start = max(start, len(tokens[0]))
    found = _TRAILER.search(last, start)
    if not found:
        return paragraphs, None
    rest = last[: found.start()].rstrip(" \u00a0")
    kept = paragraphs[:-1] + ([rest] if rest else [])
    return kept, found.group("url").rstrip(".,;)")


def _take_attribution(paragraphs: list[str]) -> tuple[list[str], str | None]:
    """A closing credit in quotes (“Shymkent View”) after the last sentence."""
    if not paragraphs:
        return paragraphs, None
    last = paragraphs[-1]
    if not last.rstrip().endswith(_CLOSING_QUOTES):  # a credit ends in a closing quote
        return paragraphs, None
    found = _ATTRIBUTION.search(last, max(0, len(last) - _ATTRIBUTION_WINDOW))
    if not found or len(found.group("name").split()) > 6:
        return paragraphs, None
    before = last[: found.start()].rstrip()
    if before and before[-1] not in ".!?»”\"":
        return paragraphs, None
    name = found.group("name").strip()
    if not name[:1].isupper():
        return paragraphs, None
    kept = paragraphs[:-1] + ([before] if before else [])
    return kept, name


def _drop_repeated_title(paragraphs: list[str], title: str) -> list[str]:
    """Some dumps start the body with the title again, glued: "...Healthcare SectorOn 2 Feb"."""
    if not paragraphs:
        return paragraphs
    first = paragraphs[0]
    folded_title = title.casefold()
    # casefold works character by character and never shortens one, so folding just the first
    # len(folded_title) characters decides "starts with" without folding a long paragraph.
    starts = first[: len(folded_title)].casefold().startswith(folded_title)
    if starts and len(first) > len(title):
        rest = first[len(title):].lstrip()
        if rest[:1].isupper() or rest[:1].isdigit():
            return [rest, *paragraphs[1:]]
    elif starts and first.casefold() == folded_title:
        return paragraphs[1:]
    return paragraphs


def split_glued(paragraph: str) -> list[str]:
    """Split "sentence.Sentence" joins into paragraphs, leaving abbreviations and URLs alone.

    "U.K. Tomanov", "A. Mynbayev", "No. 183", "1.5" and "www.enpf.kz" are never split: the rule
    needs a lower-case letter, digit or closing quote before the stop and an upper-case letter
    right after it, and the word before the stop must not be a known abbreviation or part of a URL.
    """
    if "!" not in paragraph and "?" not in paragraph \
            and paragraph.count(".") == paragraph.count(". ") + paragraph.endswith("."):
        return [paragraph]  # every full stop is followed by a space or ends the paragraph
    cuts: list[int] = []
    tokens = _Tokens(paragraph)
    for found in _GLUED.finditer(paragraph):
        stop = found.start()
        if stop == 0 or paragraph[stop - 1] not in _BEFORE_GLUED:
            continue
        if tokens.is_link_before(stop):
            continue
        word = _word_before(paragraph, tokens.start, stop)
        if word in _ABBREVIATIONS or len(word) == 1:
            continue
        cuts.append(stop + 1)
    if not cuts:
        return [paragraph]
    parts = []
    start = 0
    for cut in cuts:
        parts.append(paragraph[start:cut].strip())
        start = cut
    parts.append(paragraph[start:].strip())
    return [part for part in parts if part]


# The longest abbreviation: a word before a stop that is longer cannot be one.
_MAX_ABBREVIATION = max(map(len, _ABBREVIATIONS))


class _Tokens:
    """The space-separated token around each candidate stop of one paragraph, found in one pass.

    The candidates come in increasing order, so the start of the current token is found by
    looking back only as far as the previous candidate, and a token is searched for "://" and "@"
    once, not once per stop inside it: a paragraph of "a.B" repeated without a space costs time
    in proportion to its length (looking back to the token's start at every stop was quadratic).
    """

    __slots__ = ("at", "end", "link", "nbsp", "paragraph", "scanned", "start", "www")

    def __init__(self, paragraph: str) -> None:
        self.paragraph = paragraph
        self.nbsp = "\u00a0" in paragraph  # a no-break space separates tokens too
        self.scanned = 0
        self.start = -1  # start of the current token; -1 until the first candidate
        self.end = 0
        self.link = -1
        self.at = -1
        self.www = False

    def _advance(self, stop: int) -> None:
        paragraph = self.paragraph
        space = paragraph.rfind(" ", self.scanned, stop)
        if self.nbsp:
            space = max(space, paragraph.rfind("\u00a0", self.scanned, stop))
        self.scanned = stop
        if space < 0 and self.start >= 0:
            return  # same token as the previous candidate
        start = space + 1 if space >= 0 else 0
        end = paragraph.find(" ", stop)
        end = len(paragraph) if end < 0 else end
        if self.nbsp:
            no_break = paragraph.find("\u00a0", stop, end)
            end = end if no_break < 0 else no_break
        self.start, self.end = start, end
        self.link = paragraph.find("://", start, end)
        self.at = paragraph.find("@", start, end)
        self.www = paragraph[start : start + 3].lower() == "www"

    def is_link_before(self, stop: int) -> bool:
        """Whether the token up to ``stop`` is (part of) a URL or an e-mail address."""
        self._advance(stop)
        return ((self.link >= 0 and self.link + 3 <= stop) or 0 <= self.at < stop
                or (self.www and stop - self.start >= 3))


def _word_before(paragraph: str, token_start: int, stop: int) -> str:
    """The lower-cased word that ends at ``stop``, or "" if it cannot be short enough to matter.

    Only a word of one letter or a known abbreviation changes the decision, so a window of
    ``_MAX_ABBREVIATION + 1`` characters is enough: a word filling it is longer than any of them.
    """
    window_start = max(token_start, stop - _MAX_ABBREVIATION - 1)
    word = _NON_WORD.split(paragraph[window_start:stop])[-1]
    if window_start > token_start and len(word) == stop - window_start:
        return ""  # the word goes on before the window: longer than any abbreviation
    return word.lower()


class TextDumpFile(BaseSource):
    """A text-dump file as a Source: re-read only when its size, mtime or content changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    def read(self, context: SourceContext) -> SourceResult:
        return read_dump(self.path, context.previous_state())

    def worker_bytes(self, state: dict[str, Any] | None) -> int | None:
        if unchanged_since(self.path, state):
            return None
        try:
            return self.path.stat().st_size
        except OSError:
            return None  # read here, where the failure is reported


def make_client(config: Config, sleep: Any = None) -> None:
    """Files share nothing."""
    return None


def check(location: str) -> None:
    """Nothing to check before reading: a missing file is a failure of that source."""


def expand(spec: SourceConfig, config: Config, client: None) -> list[TextDumpFile]:
    """A file, or each text file of a directory, listed anew on every call."""
    return [TextDumpFile(path) for path in files_in(Path(spec.location))]


def read_dump(path: Path, previous: dict[str, Any] | None) -> SourceResult:
    """Read a dump file unless it is as it was (``previous`` is what this returned last time).

    A plain function of a path and a dict, so parallel builds can run it in another process.
    """
    name = str(path)
    previous = previous or {}
    try:
        stat = path.stat()
    except FileNotFoundError:
        hint = ("; if it is a web address, write it with https://"
                if _LOOKS_LIKE_ADDRESS.match(name) else "")
        raise SourceFileError(name, "no such file" + hint) from None
    except OSError as exc:
        raise SourceFileError(name, f"cannot read: {exc.strerror}") from exc
    if not path.is_file():
        raise SourceFileError(name, "not a regular file")
    fingerprint: dict[str, Any] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if all(previous.get(key) == value for key, value in fingerprint.items()):
        return SourceResult(state=previous, unchanged=True)
    data = _read_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    state = {**fingerprint, "sha256": digest}
    if previous.get("sha256") == digest:
        return SourceResult(state=state, unchanged=True)  # touched, not changed
    text, warnings = decode_dump(data, name)
    parsed = parse_dump(text, name)
    return SourceResult(items=parsed.items, warnings=[
        *(f"{name}: {w}" for w in warnings), *parsed.warnings], state=state,
        stats={"bytes": len(data), "items": len(parsed.items)})


def unchanged_since(path: Path, previous: dict[str, Any] | None) -> bool:
    """True when size and mtime are as recorded: the cheap test that needs no read."""
    if not previous:
        return False
    try:
        stat = path.stat()
    except OSError:
        return False
    return (previous.get("size"), previous.get("mtime_ns")) == (stat.st_size, stat.st_mtime_ns)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        raise SourceFileError(str(path), "permission denied") from None
    except IsADirectoryError:
        raise SourceFileError(str(path), "is a directory") from None
    except OSError as exc:
        raise SourceFileError(str(path), f"cannot read: {exc.strerror or exc}") from exc


def files_in(location: Path) -> list[Path]:
    """The dump files a ``--source`` names: the file itself, or a directory's text files."""
    if location.is_dir():
        return sorted(
            path for path in location.iterdir()
            if path.is_file() and not path.name.startswith(".")
            and path.suffix.lower() in TEXT_SUFFIXES
        )
    return [location]
