"""Regenerate feedsvc/data/organisations.tsv from the shared fact file.

    python scripts/build_registry.py ../shared/data/govkz-entities.json

The shipped TSV is our own format (one organisation per line: slug, kind, parent, English,
Russian and Kazakh names, how it is known). Names are cleaned of the fact file's editorial notes
("(label from slug)", "(city? unverified)"); records without a name get none here and are named
from their parent at run time (see feedsvc/registry.py).

Names checked by hand do not belong here: they live in feedsvc/data/organisation-names.toml,
which the registry lays over this table, so regenerating the table never loses them.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "feedsvc" / "data" / "organisations.tsv"
COLUMNS = ("slug", "kind", "parent", "name_en", "name_ru", "name_kk", "basis")

# Names stated in the seed documents themselves, for slugs the fact file knows only by slug.
FROM_SEEDS = {
    "kazaid": "Kazakhstan Agency of International Development (KazAID)",
}

_NOTE = re.compile(r"\s*\((?:label from slug|EN translated|EN descriptive|descriptive|"
                   r"[^()]*unverified[^()]*)\)")
_MISSION = re.compile(r"^Kazakhstan foreign mission \(embassy/consulate/permanent mission\): (.+)$")


def clean_name(name: str | None) -> str | None:
    if not name:
        return None
    mission = _MISSION.match(name)
    if mission:
        place = " ".join(part.capitalize() for part in re.split(r"[-_]", mission.group(1)))
        return f"Kazakhstan's foreign mission in {place}"
    cleaned = _NOTE.sub("", name).strip()
    return cleaned or None


def main(source: str) -> None:
    records = json.loads(Path(source).read_text(encoding="utf-8"))
    rows = []
    for record in sorted(records, key=lambda r: r["slug"]):
        slug = record["slug"]
        rows.append({
            "slug": slug,
            "kind": record.get("kind") or "other",
            "parent": record.get("parent") or "",
            "name_en": FROM_SEEDS.get(slug) or clean_name(record.get("name_en")) or "",
            "name_ru": record.get("name_ru") or "",
            "name_kk": record.get("name_kk") or "",
            "basis": record.get("basis") or "",
        })
    with OUT.open("w", encoding="utf-8", newline="") as handle:
        # No quoting: a name with a tab, a newline or a quote fails here instead of producing
        # a row that registry.parse_table (a plain split) would misread.
        writer = csv.DictWriter(handle, COLUMNS, delimiter="\t", lineterminator="\n",
                                quoting=csv.QUOTE_NONE)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} organisations to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/govkz-entities.json")
