"""Small pure helpers for text: cleaning, language guessing, gov.kz links, summaries."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

# C0 controls except tab/newline/CR, DEL, C1 controls, and the two XML non-characters: none of
# them may reach an XML file, and none carries meaning in a news text.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ufeff]")
_SURROGATE = re.compile("[\ud800-\udfff]")

_KAZAKH_ONLY = set("әіңғүұқөһӘІҢҒҮҰҚӨҺ")


def strip_controls(text: str) -> tuple[str, int]:
    """Remove characters illegal in XML or invisible noise; return the text and how many."""
    cleaned, count = _CONTROL.subn("", text)
    cleaned, more = _SURROGATE.subn("", cleaned)
    return cleaned, count + more


def xml_safe(text: str) -> str:
    return strip_controls(text)[0]


def guess_language(text: str) -> str:
    """"kk", "ru" or "en", from the letters used.

    Kazakh Cyrillic has nine letters Russian lacks; a text mostly in Cyrillic with a few of them is
    Kazakh. Good enough to keep feeds from mixing languages; not a general language detector.
    """
    latin = cyrillic = kazakh = 0
    for char in text[:4000]:
        if "a" <= char <= "z" or "A" <= char <= "Z":
            latin += 1
        elif "\u0400" <= char <= "\u04ff":
            cyrillic += 1
            if char in _KAZAKH_ONLY:
                kazakh += 1
    if cyrillic <= latin:
        return "en"
    return "kk" if kazakh >= max(2, cyrillic // 200) else "ru"


@dataclass(frozen=True, slots=True)
class GovkzNewsLink:
    """What a gov.kz link says: the organisation, and the news item and language if any."""

    slug: str
    news_id: int | None
    lang: str | None
    kind: str  # "news" or "article"

    @property
    def canonical(self) -> str | None:
        if self.news_id is None:
            return None
        return (f"https://www.gov.kz/memleket/entities/{self.slug}/press/{self.kind}/details/"
                f"{self.news_id}")


_GOVKZ_PATH = re.compile(
    r"^/memleket/entities/(?P<slug>[a-z0-9][a-z0-9_-]*)"
    r"(?:/press/(?P<kind>news|article)(?:/details/(?P<id>\d+))?)?/*$",
    re.IGNORECASE,
)


def parse_govkz_url(url: str) -> GovkzNewsLink | None:
    """The organisation (and item) a gov.kz link names, or None if it is not such a link."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() not in ("http", "https") or host not in ("gov.kz", "www.gov.kz"):
        return None
    match = _GOVKZ_PATH.match(parts.path)
    if not match:
        return None
    lang = parse_qs(parts.query).get("lang", [None])[0]
    lang = lang.lower() if lang and lang.lower() in ("kk", "ru", "en") else None
    news_id = int(match.group("id")) if match.group("id") else None
    return GovkzNewsLink(match.group("slug").lower(), news_id, lang,
                         (match.group("kind") or "news").lower())


def summarise(text: str, limit: int = 280) -> str:
    """The first sentences of a text, cut at a word boundary, for an entry's summary."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0].rstrip(",;:-–—")
    return cut + "…"
