"""gov.kz organisations: slug -> names, kind, parent; and the roll-up to ministries.

The shipped table (``data/organisations.tsv``, made by ``scripts/build_registry.py``) is the
fallback; names fetched live (``feedsvc registry update``) are laid over it, and the curated
names (``data/organisation-names.toml``, written by hand) over both: gov.kz's own names are
where the typo-like English names came from (issue 14). Slugs nobody knows still get an
organisation: attached to the longest known slug prefix ("mfa-newcity" -> "mfa") and named
after it.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Organisation:
    slug: str
    kind: str = "other"
    parent: str | None = None
    names: dict[str, str] = field(default_factory=dict)
    known: bool = True  # False for slugs met in news but absent from every table
    #: Names it had before others were laid over them (generated, fetched from gov.kz): not
    #: shown, but a person may still search by them ("Брюссель" for the embassy in Belgium).
    aliases: tuple[str, ...] = ()

    def name(self, lang: str) -> str | None:
        return self.names.get(lang) or self.names.get("en") or self.names.get("ru") \
            or self.names.get("kk")


class Registry:
    """Organisations by slug, with parents resolved and unknown slugs handled."""

    def __init__(self, organisations: Iterable[Organisation]) -> None:
        self._orgs = {org.slug: org for org in organisations}
        self.fingerprint = hashlib.sha256(
            repr(sorted((o.slug, o.kind, o.parent, sorted(o.names.items()), o.aliases)
                        for o in self._orgs.values())).encode()
        ).hexdigest()[:16]
        self._chains: dict[str, tuple[str, ...]] = {}
        self._names: dict[tuple[str, str], str] = {}  # every feed entry asks for two

    def __contains__(self, slug: str) -> bool:
        return slug in self._orgs

    def __len__(self) -> int:
        return len(self._orgs)

    def get(self, slug: str) -> Organisation:
        known = self._orgs.get(slug)
        if known is not None:
            return known
        return Organisation(slug, "other", self._prefix_parent(slug), {}, known=False)

    def _prefix_parent(self, slug: str) -> str | None:
        parts = slug.split("-")
        for cut in range(len(parts) - 1, 0, -1):
            candidate = "-".join(parts[:cut])
            if candidate in self._orgs:
                return candidate
        return None

    def chain(self, slug: str) -> tuple[str, ...]:
        """The organisation and its ancestors, ending with its ministry or top-level body."""
        cached = self._chains.get(slug)
        if cached is not None:
            return cached
        chain = [slug]
        parent = self.get(slug).parent
        while parent and parent not in chain:
            chain.append(parent)
            parent = self.get(parent).parent
        result = tuple(chain)
        self._chains[slug] = result
        return result

    def top(self, slug: str) -> str:
        return self.chain(slug)[-1]

    def name(self, slug: str, lang: str = "en") -> str:
        """A readable name: the real one, or one made from the parent's name and the slug."""
        known = self._names.get((slug, lang))
        if known is None:
            known = self._names[slug, lang] = self._make_name(slug, lang)
        return known

    def _make_name(self, slug: str, lang: str) -> str:
        org = self.get(slug)
        own = org.name(lang)
        if own:
            return own
        label = _label_from_slug(slug, org.parent)
        if org.parent:
            return f"{self.name(org.parent, lang)}: {label}"
        return label

    def with_names(self, updates: Iterable[Organisation]) -> Registry:
        """A registry with live records laid over this one (names merged per language)."""
        merged = dict(self._orgs)
        for update in updates:
            base = merged.get(update.slug)
            if base is None:
                merged[update.slug] = update
                continue
            names = {**base.names, **{k: v for k, v in update.names.items() if v}}
            replaced = [name for name in base.names.values() if name not in names.values()]
            merged[update.slug] = replace(
                base,
                kind=update.kind if update.kind != "other" else base.kind,
                parent=update.parent or base.parent,
                names=names,
                aliases=tuple(dict.fromkeys([*base.aliases, *replaced, *update.aliases])),
            )
        return Registry(merged.values())


def _label_from_slug(slug: str, parent: str | None) -> str:
    rest = slug[len(parent) + 1:] if parent and slug.startswith(parent + "-") else slug
    return " ".join(part.capitalize() for part in rest.replace("_", "-").split("-") if part)


def parse_table(text: str) -> list[Organisation]:
    """Rows of ``organisations.tsv``: tab-separated, header first, no quoting (the generator
    writes no tabs, newlines or quotes into names), so a plain split is enough and several
    times faster than the csv module on 2,000 rows."""
    lines = text.splitlines()
    header = lines[0].split("\t")
    at = {name: header.index(name) for name in
          ("slug", "kind", "parent", "name_en", "name_ru", "name_kk")}
    organisations = []
    for line in lines[1:]:
        if not line:
            continue
        cells = line.split("\t")
        names = {lang: cells[at[f"name_{lang}"]] for lang in ("en", "ru", "kk")
                 if cells[at[f"name_{lang}"]]}
        organisations.append(Organisation(cells[at["slug"]], cells[at["kind"]] or "other",
                                          cells[at["parent"]] or None, names))
    return organisations


DATA = Path(__file__).parent / "data"
CURATED_NAMES = DATA / "organisation-names.toml"
LANGS = ("en", "ru", "kk")


@lru_cache(maxsize=1)
def shipped_organisations() -> tuple[Organisation, ...]:
    text = (DATA / "organisations.tsv").read_text("utf-8")
    return tuple(parse_table(text))


def parse_curated(text: str) -> list[Organisation]:
    """Tables of ``organisation-names.toml``: slug -> en, ru, kk (and a note, not used here).

    They carry names only: kind and parent stay the generated table's, so a curated entry can
    only rename a body, never move it.
    """
    return [Organisation(slug, names={lang: entry[lang] for lang in LANGS if entry.get(lang)})
            for slug, entry in tomllib.loads(text).items()]


@lru_cache(maxsize=1)
def curated_organisations() -> tuple[Organisation, ...]:
    return tuple(parse_curated(CURATED_NAMES.read_text("utf-8")))


def load_registry(live: Iterable[Organisation] = (), curated: bool = True) -> Registry:
    """The shipped table, with live records (from the store) laid over it and the curated
    names over both; ``curated=False`` gives the generated names alone."""
    registry = Registry(shipped_organisations())
    live = list(live)
    if live:
        registry = registry.with_names(live)
    return registry.with_names(curated_organisations()) if curated else registry
