"""Fuzz the text-dump reader: many generated files through ``read_dump``, counting tracebacks.

Every file is built from a seeded generator (so a failure can be replayed by its number): a
dump from ``adversarial_dumps.py`` or a jumble of dump-like pieces, in one of several encodings,
often damaged (bytes inserted, cut short, a NUL or control character dropped in, a binary
signature in front). Each is written to disk and read by ``read_dump``, the function a build
uses. A file may give items or be refused with a ``SourceFileError`` naming it; anything else
is a traceback: counted, printed, and the file kept under ``benchmarks/out/fuzz-failures/``.

Usage::

    python benchmarks/fuzz_dumps.py                  # 10,000 files, seed 0
    python benchmarks/fuzz_dumps.py --files 500 --seed 3
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from adversarial_dumps import GENERATORS  # noqa: E402

from feedsvc.errors import SourceFileError  # noqa: E402
from feedsvc.sources.textdump import read_dump  # noqa: E402

FAILURES = ROOT / "benchmarks" / "out" / "fuzz-failures"
PIECES = (
    "a.B", "x", ".", "!", "?", " ", "\u00a0", "\n", "\n\n", "\r\n", "No.", "Mr.", "U.K.", "1.5",
    "www.", "://", "@", "“", "”", "«", "»", '"', "TITLE 01.02.2026\n", "T 31.02.2026\n",
    "X 99.99.9999\n", "News More\n", "World\n", "Жаңалықтар\n", "Новости Ещё\n", "Source : ",
    "Дереккөз:", "Дерек көзі : ", "Источник: ",
    "https://www.gov.kz/memleket/entities/mfa-almaty/press/news/details/1157305?lang=kk",
    "https://gov.kz/memleket/entities/X", "Қазақстан.Астана", "совещание.Обсуждены",
    "\x00", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\ufeff", "\ufffe", "😀", "\u200b", "\t",
)
ENCODINGS = ("utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be",
             "cp1251", "koi8-r", "latin-1")
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"PK\x03\x04", b"\x1f\x8b\x08", b"\x7fELF", b"%PDF-1.4\n",
              b"GIF89a", b"\xff\xd8\xff", b"SQLite format 3\x00", b"BM", b"MZ", b"ID3")


def jumble(rng: random.Random, size: int) -> str:
    parts: list[str] = []
    total = 0
    while total < size:
        if rng.random() < 0.2:
            part = "".join(chr(rng.randint(0x20, 0x4FF)) for _ in range(rng.randint(1, 8)))
        else:
            part = rng.choice(PIECES)
        parts.append(part)
        total += len(part)
    return "".join(parts)


def generate(number: int, seed: int) -> bytes:
    """The bytes of file ``number``: the same for the same seed, every time."""
    rng = random.Random(f"{seed}:{number}")
    size = rng.choice((0, 1, 50, 500, 2_000, 5_000, 20_000, 60_000))
    if rng.random() < 0.3:
        name = rng.choice(sorted(GENERATORS))
        text = GENERATORS[name](size)
    else:
        text = jumble(rng, size)
    data = text.encode(rng.choice(ENCODINGS), errors="replace")
    for _ in range(rng.choice((0, 0, 1, 3))):
        at = rng.randint(0, len(data))
        data = data[:at] + rng.randbytes(rng.randint(1, 16)) + data[at:]
    if rng.random() < 0.1:
        data = data[: rng.randint(0, len(data))]
    if rng.random() < 0.05:
        data = rng.choice(SIGNATURES) + data
    if rng.random() < 0.02:
        data = rng.randbytes(rng.randint(1, 4096))
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    outcomes: Counter[str] = Counter()
    items = 0
    tracebacks = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dump.txt"
        for number in range(args.files):
            data = generate(number, args.seed)
            path.write_bytes(data)
            try:
                result = read_dump(path, None)
            except SourceFileError as exc:
                outcomes["refused: " + str(exc).split(": ", 1)[1].split(" (")[0][:40]] += 1
                continue
            except Exception:
                tracebacks += 1
                FAILURES.mkdir(parents=True, exist_ok=True)
                kept = FAILURES / f"seed{args.seed}-{number}.txt"
                kept.write_bytes(data)
                print(f"file {number} (kept as {kept}):", file=sys.stderr)
                traceback.print_exc()
                continue
            outcomes["read with items" if result.items else "read, no items"] += 1
            items += len(result.items)
    seconds = time.perf_counter() - start
    print(f"{args.files} files (seed {args.seed}) in {seconds:.1f} s; {items} items; "
          f"tracebacks: {tracebacks}")
    for outcome, count in outcomes.most_common():
        print(f"  {count:>6}  {outcome}")
    return 1 if tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
