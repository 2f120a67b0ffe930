"""The whole portal as one source: ``--source https://www.gov.kz``; and the gov.kz kind's entry
point (``KINDS["govkz"]``), which hands any other gov.kz link to sources/govkz.py.

It stands for one stream (an organisation in one language, the same source as a single
organisation's link gives: ``govkz:<slug>:<lang>``) per organisation followed and language:

- the organisations: the shipped registry (2,061), plus any a registry refresh adds
  (:class:`PortalOrgs`, kept on the shared gov.kz client), narrowed by ``[portal] allow`` and
  ``deny`` (slugs, or prefixes written ``mfa-*``);
- the languages: the source's own ``langs``, else ``[portal] langs`` (kk, ru, en).

A build reads every stream once. The daemon reads them through feedsvc/follow.py, which asks
:class:`feedsvc.poller.Planner` which streams are due. Compared with a single organisation's
source, a stream of the portal keeps its ticket until gov.kz refuses it (one request for a
quiet poll instead of two), asks for a small page after its first read, and reports the
publication dates it read (``stats["published"]``) for the planner to learn from.

:func:`fetch_global` reads the cross-organisation listing (newest first, no ``projects``): when
gov.kz offers it, one request finds the new items of every organisation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..config import Config, PortalConfig, SourceConfig
from ..errors import FetchError
from ..http import HttpError, describe_body, host_of
from ..kinds import is_portal_link
from ..links import MAX_NEWS_ID, slug_problem
from ..registry import shipped_organisations
from . import BaseSource, SourceContext, SourceResult, govkz
from .govkz import NEWS_PATH, GovkzClient, GovkzSource, ReadStats, news_list

log = logging.getLogger(__name__)

#: The largest page gov.kz is known to serve: a first read of 100 items is one request.
FIRST_PAGE_MAX = 100


def followed(slug: str, portal: PortalConfig) -> bool:
    """Whether the allow and deny lists let ``slug`` through (deny wins)."""
    def matches(patterns: tuple[str, ...]) -> bool:
        return any(slug == p or (p.endswith("-*") and slug.startswith(p[:-1]))
                   for p in patterns)
    return (not portal.allow or matches(portal.allow)) and not matches(portal.deny)


@dataclass(slots=True)
class PortalOrgs:
    """The organisations the portal source stands for; grows when the registry does."""

    slugs: list[str] = field(default_factory=list)

    @classmethod
    def shipped(cls) -> PortalOrgs:
        return cls(sorted(org.slug for org in shipped_organisations()))

    def add(self, slugs: Iterable[str]) -> list[str]:
        """Add organisations; returns those that were not known."""
        known = set(self.slugs)
        new = sorted({s for s in slugs if s not in known and slug_problem(s) is None})
        self.slugs.extend(new)
        return new


def portal_orgs(client: GovkzClient) -> PortalOrgs:
    """The organisations of the portal, kept on the shared client (made on first use)."""
    if client.portal is None:
        client.portal = PortalOrgs.shipped()
    orgs: PortalOrgs = client.portal
    return orgs


class PortalStream(GovkzSource):
    """One organisation in one language, as the whole-portal source reads it."""

    ticket_per_read = False

    def __init__(self, slug: str, lang: str, client: GovkzClient, config: Config) -> None:
        backfill = config.govkz.backfill
        super().__init__(slug, lang, client, backfill,
                         max(config.govkz.page_size, min(FIRST_PAGE_MAX, backfill)))
        self.poll_size = config.portal.poll_page_size

    def read(self, context: SourceContext) -> SourceResult:
        first = not (context.previous_state() or {}).get("backfilled")
        result = super().read(context)
        result.stats["published"] = sorted(
            (item.published.timestamp() for item in result.items if item.published),
            reverse=True)
        result.stats["first"] = first
        result.stats["complete"] = first and len(result.items) < self.backfill
        return result


def langs_of(spec: SourceConfig, config: Config) -> tuple[str, ...]:
    return tuple(dict.fromkeys(spec.langs or config.portal.langs))


def stream_names(spec: SourceConfig, config: Config, client: GovkzClient) -> list[str]:
    """Every stream the portal source stands for now, in the registry's order."""
    langs = langs_of(spec, config)
    return [f"govkz:{slug}:{lang}" for slug in portal_orgs(client).slugs
            if followed(slug, config.portal) for lang in langs]


def stream(name: str, config: Config, client: GovkzClient) -> PortalStream:
    """The source of one stream name (``govkz:<slug>:<lang>``)."""
    _, slug, lang = name.split(":")
    return PortalStream(slug, lang, client, config)


def expand_portal(spec: SourceConfig, config: Config,
                  client: GovkzClient) -> Iterator[PortalStream]:
    for name in stream_names(spec, config, client):
        yield stream(name, config, client)


# --- the gov.kz kind's entry points (KINDS): a link of one organisation, or the portal ----

make_client = govkz.make_client
check = govkz.check


def expand(spec: SourceConfig, config: Config, client: GovkzClient) -> list[BaseSource]:
    """The sources of a gov.kz link: one per language of the organisation it names, or, for
    the portal itself, one per stream followed."""
    if is_portal_link(spec.location):
        return list(expand_portal(spec, config, client))
    return govkz.expand(spec, config, client)


# --- the cross-organisation listing ------------------------------------------------------------

def global_listing_url(base: str, page: int, size: int) -> str:
    return (f"{base.rstrip('/')}{NEWS_PATH}?sort-by=created_date:DESC&page={page}"
            f"&size={size}")


def fetch_global(client: GovkzClient, lang: str, page: int, size: int,
                 stats: ReadStats) -> list[tuple[int, tuple[str, ...]]]:
    """(news id, owning slugs) of one page of the listing without ``projects``, newest first.

    Raises FetchError when gov.kz refuses it or answers something that is not such a listing
    (objects without a usable id or owner: the filter-less listing is not what it seems).
    """
    url = global_listing_url(client.base, page, size)
    headers = {"Accept": "application/json", "Accept-Language": lang}
    client.ensure_ticket(stats)
    response = client.http.request("GET", url, headers=headers, expect_json=True)
    stats.requests += response.attempts
    if response.status == 400:  # the ticket expired: one fresh one, one more try
        client.take_ticket(stats)
        response = client.http.request("GET", url, headers=headers, expect_json=True)
        stats.requests += response.attempts
    if not response.ok:
        raise HttpError("GET", url, f"{host_of(url)} answered HTTP {response.status}",
                        f"cross-organisation listing: {describe_body(response.body)}",
                        response.status)
    objects = news_list(response.json(), url, limit=max(2 * size, 100))
    return [_owned(obj, url) for obj in objects]


def _owned(obj: dict[str, Any], url: str) -> tuple[int, tuple[str, ...]]:
    news_id = obj.get("id")
    if isinstance(news_id, str) and news_id.isdecimal():
        news_id = int(news_id)
    owners = obj.get("projects")
    slugs = tuple(owners) if isinstance(owners, list) else (owners,)
    slugs = tuple(s.strip().lower() for s in slugs if isinstance(s, str) and s.strip())
    if isinstance(news_id, bool) or not isinstance(news_id, int) \
            or not 0 < news_id <= MAX_NEWS_ID or not slugs \
            or any(slug_problem(s) for s in slugs):
        raise FetchError(url, "the cross-organisation listing gave an object without a usable "
                              f"id or owner: {str(obj)[:120]!r}")
    return news_id, slugs
