"""Time the text-dump reader on adversarial inputs at growing sizes.

Each generator makes a dump of about N bytes built to hit one weak spot of a parser: glued
"a.B" sentences without spaces, one long line without spaces, many dots, many title-like or
label-like lines, blank-line runs, control characters, random Kazakh/Cyrillic/Latin text. The
script writes each dump to a temporary file, reads it with ``read_dump`` (the function a build
uses) and prints seconds per size; a linear reader keeps seconds/MB flat as N grows.

Usage::

    python benchmarks/adversarial_dumps.py                      # every generator, 4 sizes
    python benchmarks/adversarial_dumps.py --only a.B --repeats 10000 20000 40000 80000
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feedsvc.sources.textdump import read_dump  # noqa: E402

TITLE = "A TITLE 01.02.2026\n"
LETTERS = "abcdefghijklmnopqrstuvwxyzабвгдеёжзийклмнопрстуфхцчшщыэюяәіңғүұқөһ"


def a_b(size: int) -> str:
    """One body line of "a.B" repeated: every stop is a glued-sentence candidate."""
    return TITLE + "a.B" * (size // 3) + "\n"


def long_line(size: int) -> str:
    """One body line of letters without a single space."""
    return TITLE + "x" * size + "\n"


def many_dots(size: int) -> str:
    """Dots everywhere, some followed by capitals, some in URLs and abbreviations."""
    unit = "No.A www.x.Y http://a.B/c.D Mr.Smith 1.5.B ...Q "
    return TITLE + unit * (size // len(unit)) + "\n"


def title_lines(size: int) -> str:
    """Nothing but title lines: every line opens an item."""
    unit = "STORY NUMBER ONE 01.02.2026\n"
    return unit * (size // len(unit))


def label_lines(size: int) -> str:
    """A title, then thousands of short capitalised lines that look like section labels."""
    unit = "News More\n"
    return TITLE + unit * (size // len(unit))


def blank_runs(size: int) -> str:
    """Labels separated by long runs of blank lines."""
    unit = "World\n" + "\n" * 200
    return TITLE + unit * (size // len(unit))


def trailer_tail(size: int) -> str:
    """A body that ends in a huge "Source : URL" trailer and many near-trailers."""
    return (TITLE + "Text. Source : http://x " * (size // 48)
            + "Source : https://www.gov.kz/memleket/entities/mfa/" + "a" * (size // 2) + "\n")


def controls(size: int) -> str:
    """Text with a control character every few characters."""
    unit = "Text\x0bwith\x00controls\x7f. "
    return TITLE + unit * (size // len(unit)) + "\n"


def random_unicode(size: int, seed: int = 1) -> str:
    """Random words, dots, capitals, quotes, titles and controls in three scripts."""
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < size:
        choice = rng.random()
        if choice < 0.05:
            part = f"\nTITLE {rng.randint(1, 40):02d}.{rng.randint(1, 14):02d}.2026\n"
        elif choice < 0.1:
            part = rng.choice([".", "!", "?", "“", "»", "\u00a0", "\x0b", "\r\n", "Source : "])
        else:
            word = "".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 12)))
            part = (word.capitalize() if rng.random() < 0.3 else word) + rng.choice(" .")
        parts.append(part)
        total += len(part.encode())
    return "".join(parts)


GENERATORS: dict[str, Callable[[int], str]] = {
    "a.B": a_b, "long-line": long_line, "many-dots": many_dots, "title-lines": title_lines,
    "label-lines": label_lines, "blank-runs": blank_runs, "trailer-tail": trailer_tail,
    "controls": controls, "random-unicode": random_unicode,
}


def time_read(text: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dump.txt"
        path.write_text(text, encoding="utf-8")
        start = time.perf_counter()
        result = read_dump(path, None)
        return time.perf_counter() - start, len(result.items)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(GENERATORS))
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[125_000, 250_000, 500_000, 1_000_000], help="bytes")
    parser.add_argument("--repeats", type=int, nargs="+",
                        help="for a.B: repeat counts instead of sizes (3 bytes each)")
    args = parser.parse_args()
    names = args.only or list(GENERATORS)
    print(f"{'input':<16}{'bytes':>10}{'items':>8}{'seconds':>10}{'s/MB':>8}")
    for name in names:
        sizes = [3 * r for r in args.repeats] if args.repeats and name == "a.B" else args.sizes
        for size in sizes:
            text = GENERATORS[name](size)
            try:
                seconds, items = time_read(text)
            except Exception as exc:  # a benchmark reports a crash and goes on
                print(f"{name:<16}{len(text.encode()):>10}  failed: {exc!r:.60}", flush=True)
                continue
            megabytes = len(text.encode()) / 1e6
            print(f"{name:<16}{len(text.encode()):>10}{items:>8}{seconds:>10.3f}"
                  f"{seconds / megabytes:>8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
