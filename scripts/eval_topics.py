"""Measure the topic classifier against the labelled evaluation set (issue 5).

    .venv/bin/python scripts/eval_topics.py                 # all, tune and holdout tables
    .venv/bin/python scripts/eval_topics.py --split tune --errors   # while tuning: tune part only

Exit status 1 when the whole set's (or the ``--split`` part's) micro-F1 is below 0.85 or a topic
with support has precision below 0.6, so this doubles as a check. The ``holdout`` part is never
used to adjust rules: look at it, do not tune on it.

:func:`evaluate` is pure (taxonomy and cases in, numbers out); only :func:`main` prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from feedsvc.model import Item, Origin
from feedsvc.topics import Taxonomy, assign_topics, load_taxonomy

DEFAULT_SET = Path(__file__).resolve().parent.parent / "tests" / "data" / "topics_eval.jsonl"
SPLITS = ("tune", "holdout")
MIN_MICRO_F1 = 0.85
MIN_PRECISION = 0.6


@dataclass(frozen=True, slots=True)
class EvalCase:
    """One labelled item of the evaluation set."""

    id: str
    item: Item
    org_kind: str | None
    org_chain: tuple[str, ...]
    topics: frozenset[str]
    split: str


@dataclass(slots=True)
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def support(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / self.support if self.support else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision or 0.0, self.recall or 0.0
        return 2 * p * r / (p + r) if p + r else (None if self.support == 0 else 0.0)


@dataclass(slots=True)
class Evaluation:
    """Per-topic and micro-averaged counts for one part of the set."""

    name: str
    cases: int = 0
    topics: dict[str, Counts] = field(default_factory=dict)
    micro: Counts = field(default_factory=Counts)
    mistakes: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)

    def failures(self) -> list[str]:
        """Why this part misses the quality targets (empty when it meets them)."""
        problems = []
        if (self.micro.f1 or 0.0) < MIN_MICRO_F1:
            problems.append(f"micro-F1 {self.micro.f1 or 0.0:.3f} < {MIN_MICRO_F1}")
        for slug, counts in self.topics.items():
            if counts.support and counts.precision is not None and \
                    counts.precision < MIN_PRECISION:
                problems.append(f"{slug}: precision {counts.precision:.3f} < {MIN_PRECISION}")
        return problems


def load_cases(path: Path = DEFAULT_SET) -> list[EvalCase]:
    """The evaluation set: one JSON object per line (see tests/data/topics_eval.jsonl)."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        body = row.get("body") or ""
        item = Item(title=row["title"], published=None, origin=Origin(str(path), number),
                    paragraphs=tuple(p for p in body.split("\n\n") if p.strip()),
                    lang=row["lang"], org=row.get("org"), sections=tuple(row.get("sections", ())))
        chain = tuple(row.get("org_chain") or ((row["org"],) if row.get("org") else ()))
        cases.append(EvalCase(row["id"], item, row.get("org_kind"), chain,
                              frozenset(row["topics"]), row["split"]))
    return cases


def evaluate(taxonomy: Taxonomy, cases: Iterable[EvalCase], name: str = "all") -> Evaluation:
    """Precision, recall and F1 per topic and micro-averaged, for ``cases``."""
    result = Evaluation(name, topics={topic.slug: Counts() for topic in taxonomy.topics})
    for case in cases:
        result.cases += 1
        got = set(assign_topics(taxonomy, case.item, org_kind=case.org_kind,
                                org_chain=case.org_chain))
        for slug in got | case.topics:
            counts = result.topics.setdefault(slug, Counts())
            if slug in got and slug in case.topics:
                counts.tp += 1
                result.micro.tp += 1
            elif slug in got:
                counts.fp += 1
                result.micro.fp += 1
            else:
                counts.fn += 1
                result.micro.fn += 1
        if got != case.topics:
            result.mistakes.append((case.id, tuple(sorted(case.topics)), tuple(sorted(got))))
    return result


def evaluate_splits(taxonomy: Taxonomy, cases: list[EvalCase]) -> list[Evaluation]:
    """The whole set, then each split."""
    parts = [evaluate(taxonomy, cases, "all")]
    parts.extend(evaluate(taxonomy, [c for c in cases if c.split == split], split)
                 for split in SPLITS)
    return parts


# --- printing ----------------------------------------------------------------------------------

def _fmt(value: float | None) -> str:
    return "    -" if value is None else f"{value:5.3f}"


def format_table(result: Evaluation, per_topic: bool = True) -> str:
    lines = [f"== {result.name}: {result.cases} items"]
    if per_topic:
        lines.append(f"{'topic':30} {'supp':>4} {'tp':>3} {'fp':>3} {'fn':>3}  "
                     f"{'prec':>5}  {'rec':>5}  {'f1':>5}")
        for slug, c in result.topics.items():
            lines.append(f"{slug:30} {c.support:4d} {c.tp:3d} {c.fp:3d} {c.fn:3d}  "
                         f"{_fmt(c.precision)}  {_fmt(c.recall)}  {_fmt(c.f1)}")
    m = result.micro
    lines.append(f"{'micro':30} {m.support:4d} {m.tp:3d} {m.fp:3d} {m.fn:3d}  "
                 f"{_fmt(m.precision)}  {_fmt(m.recall)}  {_fmt(m.f1)}")
    return "\n".join(lines)


def format_mistakes(result: Evaluation) -> str:
    return "\n".join(f"  {case_id}: expected {list(want)} got {list(got)}"
                     for case_id, want, got in result.mistakes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help="evaluation JSONL file")
    parser.add_argument("--topics", type=Path, default=None, help="topics TOML (default: shipped)")
    parser.add_argument("--split", choices=("all", *SPLITS), default=None,
                        help="print and judge only this part (default: all three, judged on all)")
    parser.add_argument("--errors", action="store_true", help="list the items classified wrongly")
    args = parser.parse_args(argv)
    taxonomy = load_taxonomy(args.topics)
    parts = evaluate_splits(taxonomy, load_cases(args.set))
    for part in parts:
        if args.split in (None, part.name):
            print(format_table(part, per_topic=args.split is not None or part.name == "all"))
            if args.errors and part.mistakes:
                print(format_mistakes(part))
            print()
    judged = next(part for part in parts if part.name == (args.split or "all"))
    problems = judged.failures()
    print("FAIL: " + "; ".join(problems) if problems else
          f"OK: micro-F1 >= {MIN_MICRO_F1} and every topic's precision >= {MIN_PRECISION}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
