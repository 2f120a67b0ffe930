"""Turning gov.kz's own registry answers into our organisations (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .registry import Organisation

# gov.kz's ``class { name }`` is free text in the answer's language; these stems map it to
# the kinds the registry knows.
_KIND_WORDS = (
    ("ministry", ("ministry", "министерств", "министрліг")),
    ("committee", ("committee", "комитет", "комитеті")),
    ("agency", ("agency", "агентств", "агенттіг")),
    ("embassy", ("embassy", "consulate", "посольств", "консульств", "елшілі")),
    ("akimat", ("akimat", "акимат", "әкімдіг", "әкімді")),
    ("department", ("department", "департамент", "управлени", "басқарма")),
)


def kind_from_class(name: str | None) -> str:
    text = (name or "").casefold()
    for kind, stems in _KIND_WORDS:
        if any(stem in text for stem in stems):
            return kind
    return "other"


def merge_org_records(records: Iterable[Any]) -> list[Organisation]:
    """One Organisation per slug from per-language records (names merged by language)."""
    merged: dict[str, dict[str, Any]] = {}
    for record in records:
        entry = merged.setdefault(record.slug, {"names": {}, "kind": "other", "parent": None})
        entry["names"][record.lang] = record.name
        kind = kind_from_class(record.kind)
        if kind != "other":
            entry["kind"] = kind
        entry["parent"] = entry["parent"] or record.parent
    return [Organisation(slug, e["kind"], e["parent"], e["names"])
            for slug, e in sorted(merged.items())]
