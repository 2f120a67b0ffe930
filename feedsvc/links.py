"""What a gov.kz link says, without importing any HTTP machinery.

Two readers of the same address scheme: :func:`parse_govkz_url` recognises the item links that
text dumps carry (lenient: anything else is simply not a gov.kz item link), and
:func:`parse_govkz_link` checks a link a person gives as a source (strict: anything that does not
name an organisation is refused with a message saying what a valid link looks like).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from .errors import InvalidSourceURL

#: The languages of gov.kz (its default, kk, first).
LANGUAGES = ("kk", "ru", "en")
PUBLIC_SITE = "https://www.gov.kz"


def org_news_page(slug: str, lang: str) -> str:
    """The public news list of an organisation: a feed's human link, and the API's Referer."""
    return f"{PUBLIC_SITE}/memleket/entities/{slug}/press/news?lang={lang}"


def item_page(slug: str, news_id: int, kind: str = "news") -> str:
    """The public page of one item, whatever API base is configured; the entry link."""
    return f"{PUBLIC_SITE}/memleket/entities/{slug}/press/{kind}/details/{news_id}"


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
        return item_page(self.slug, self.news_id, self.kind)


#: Longest slug accepted. The longest of the 2,061 known gov.kz slugs has 42 characters
#: (``kostanai-kasipkerlik-industiya-innovatsiya``); 64 leaves room for a longer new one and keeps
#: every file named after a slug (``kk/org/<slug>.atom`` and its temporary twin) far below the
#: 255-byte limit of a file name.
MAX_SLUG_CHARS = 64
#: Known slugs are lowercase ASCII words joined by single hyphens; a few old ones carry digits.
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
#: Largest news id accepted. gov.kz's ids are one global sequence (about 1.26 million in mid-2026);
#: below 10^12 leaves six orders of magnitude of growth, is exact as a JSON number (2^53) and fits
#: SQLite's 64-bit INTEGER, which a larger Python int does not (it raises OverflowError).
MAX_NEWS_ID = 10**12 - 1
_MAX_ID_DIGITS = len(str(MAX_NEWS_ID))

Report = Callable[[str], None]


def slug_problem(slug: str) -> str | None:
    """Why ``slug`` cannot be a gov.kz organisation slug, or None if it can be one."""
    if len(slug) > MAX_SLUG_CHARS:
        return f"organisation slug of {len(slug)} characters (gov.kz's have at most " \
               f"{MAX_SLUG_CHARS})"
    if not _SLUG.fullmatch(slug):
        return f"organisation slug {slug!r} is not lowercase letters and digits joined by " \
               "single hyphens"
    return None


def news_id_problem(digits: str) -> str | None:
    """Why the decimal ``digits`` cannot be a gov.kz news id, or None if they can be one."""
    if len(digits.lstrip("0")) > _MAX_ID_DIGITS:  # before int(): no huge numbers built
        return f"news id {_shown(digits)} is too large (gov.kz's are below {MAX_NEWS_ID + 1:,})"
    if int(digits) == 0:
        return "news id 0 is not a gov.kz news id"
    return None


def _shown(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


# The path's parts are matched loosely and checked afterwards, so that a link of the right shape
# with a wrong slug or id is reported rather than silently taken for some other text.
_GOVKZ_URL = re.compile(
    r"^https?://(?:www\.)?gov\.kz(?::\d+)?/memleket/entities/(?P<slug>[^/?#\s]+)"
    r"(?:/press/(?P<kind>news|article)(?:/details/(?P<id>\d+))?)?/*"
    r"(?:\?(?P<query>[^#]*))?(?:#.*)?$",
    re.IGNORECASE,
)
_LANG_PARAM = re.compile(r"(?:^|&)lang=(kk|ru|en)(?:&|$)", re.IGNORECASE)


def parse_govkz_url(url: str, report: Report | None = None) -> GovkzNewsLink | None:
    """The organisation (and item) a gov.kz link names, or None if it is not such a link.

    A link with an impossible slug is not taken as an organisation's (None); one with an
    impossible news id keeps its organisation but no news id. Either is said to ``report``
    (one line, without the place: the caller knows the file and line, or the URL).

    One regular expression rather than urllib: text dumps carry one link per item, and this is
    on the hot path of a 100,000-item build.
    """
    match = _GOVKZ_URL.match(url.strip())
    if not match:
        return None
    slug, kind, news_id, query = match.group("slug", "kind", "id", "query")
    slug = slug.lower()
    problem = slug_problem(slug)
    if problem is not None:
        if report is not None:
            report(f"{problem}; link not taken as a gov.kz organisation's: {_shown(url, 120)}")
        return None
    if news_id is not None and (problem := news_id_problem(news_id)) is not None:
        if report is not None:
            report(f"{problem}; link kept without a news id: {_shown(url, 120)}")
        news_id = None
    lang_match = _LANG_PARAM.search(query) if query else None
    return GovkzNewsLink(slug, int(news_id) if news_id else None,
                         lang_match.group(1).lower() if lang_match else None,
                         (kind or "news").lower())


_LINK_HINT = ("a valid link looks like https://www.gov.kz/memleket/entities/<organisation>, "
              "optionally followed by /press/news?lang=ru or /press/news/details/<id>")


# --- links a person gives as a source ---------------------------------------------------

@dataclass(frozen=True, slots=True)
class GovkzLink:
    """What a gov.kz link names: an organisation, maybe a language and a news item."""

    slug: str
    lang: str | None = None
    news_id: int | None = None


_ENTITY = re.compile(r"^/memleket/entities/(?P<slug>[^/]+)(?P<rest>/.*)?$", re.IGNORECASE)
_REST = re.compile(r"^(?:/press/(?:news|article)(?:/details/(?P<id>\d+))?)?$", re.IGNORECASE)


def parse_govkz_link(url: str) -> GovkzLink:
    """The organisation a gov.kz link names; :class:`InvalidSourceURL` for anything else.

    Accepted: the organisation's page, its news list, one news item (→ its organisation) or an
    article; ``http://``, a missing ``www.`` or scheme, trailing slashes and extra query
    parameters are all fine. ``?lang=`` must be one of kk, ru, en when given.
    """
    text = url.strip()
    if "://" not in text and text.lower().startswith(("www.gov.kz", "gov.kz")):
        text = "https://" + text
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
    except ValueError as exc:
        raise InvalidSourceURL(url, f"not a URL ({exc}); {_LINK_HINT}") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidSourceURL(url, f"not a web link; {_LINK_HINT}")
    if host not in ("gov.kz", "www.gov.kz"):
        raise InvalidSourceURL(url, f"not a gov.kz link (host {host or 'missing'!r}); "
                                    f"{_LINK_HINT}")
    path = re.sub(r"/{2,}", "/", parts.path).rstrip("/")
    entity = _ENTITY.match(path)
    if not entity:
        raise InvalidSourceURL(url, f"this gov.kz page is not an organisation's; {_LINK_HINT}")
    slug = entity.group("slug").lower()
    problem = slug_problem(slug)
    if problem is not None:
        raise InvalidSourceURL(_shown(url, 120), f"not a gov.kz organisation: {problem}")
    rest = _REST.match(entity.group("rest") or "")
    if not rest:
        raise InvalidSourceURL(url, "only an organisation's page, its news list or a news item "
                                    "is accepted; did you mean "
                                    f"{PUBLIC_SITE}/memleket/entities/{slug}/press/news ?")
    digits = rest.group("id") if "/news/" in path.lower() else None
    if digits and (problem := news_id_problem(digits)) is not None:
        raise InvalidSourceURL(_shown(url, 120), f"not a gov.kz news item: {problem}")
    return GovkzLink(slug, _link_lang(url, parts.query), int(digits) if digits else None)


def _link_lang(url: str, query: str) -> str | None:
    values = parse_qs(query).get("lang")
    if not values:
        return None
    lang = values[0].strip().lower()
    if lang not in LANGUAGES:
        raise InvalidSourceURL(url, f"unknown language {values[0]!r} in ?lang= (use one of "
                                    f"{', '.join(LANGUAGES)})")
    return lang


