"""Fuzz the configuration loader and count what escapes it.

Generates TOML documents shaped like feedsvc's configuration (its keys and tables with any
values, plus unknown keys) and mangled text, loads each with ``load_config`` and counts three
outcomes: loaded, refused with a one-line ``ConfigError``, and anything else (a traceback a
user would see; the target is 0). Each distinct escape is printed once with its input.

::

    .venv/bin/python scripts/fuzz_config.py               # 5,000 cases of each kind
    .venv/bin/python scripts/fuzz_config.py --cases 500
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from feedsvc.config import load_config
from feedsvc.errors import ConfigError

from toml_strategies import documents, dump, mangled_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=5000, help="cases of each kind")
    args = parser.parse_args()
    outcomes: Counter[str] = Counter()  # a "many lines" refusal counts as a failure too
    escapes: dict[str, str] = {}
    directory = Path(tempfile.mkdtemp(prefix="fuzz-config-"))
    path = directory / "feedsvc.toml"

    def check(text: str) -> None:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_config(path)
            outcomes["loaded"] += 1
        except ConfigError as exc:
            if "\n" in str(exc):
                outcomes["refused, many lines"] += 1
                escapes.setdefault(f"many lines: {exc.reason[:40]}",
                                   f"{exc!r}\n    input: {text[:300]!r}")
            else:
                outcomes["refused in one line"] += 1
        except Exception as exc:  # what we are counting
            outcomes["traceback"] += 1
            where = traceback.extract_tb(exc.__traceback__)[-1]
            kind = f"{type(exc).__name__} at {Path(where.filename).name}:{where.lineno}"
            escapes.setdefault(kind, f"{exc!r}\n    input: {text[:300]!r}")

    many = settings(max_examples=args.cases, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
    given(documents)(many(lambda document: check(dump(document))))()
    given(mangled_text)(many(check))()
    total = sum(outcomes.values())
    print(f"{total} cases: " + ", ".join(f"{name} {count}" for name, count in outcomes.items()))
    print(f"tracebacks: {outcomes['traceback']}; refusals over several lines: "
          f"{outcomes['refused, many lines']}")
    for kind, example in escapes.items():
        print(f"- {kind}: {example}")


if __name__ == "__main__":
    main()
