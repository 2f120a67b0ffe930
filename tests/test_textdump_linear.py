"""Reading a text dump is linear in its size and never ends in a traceback, whatever it holds.

Property-based: Hypothesis builds dumps out of adversarial pieces (glued ``a.B`` without spaces,
long lines without spaces, dots, title-like and label-like lines, blank runs, trailers, quotes,
control characters, random Kazakh/Cyrillic/Latin text) and feeds them to the real reader,
:func:`read_dump`, from a file on disk.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import feedsvc
from feedsvc import links, text
from feedsvc.errors import SourceFileError
from feedsvc.sources import textdump
from feedsvc.sources.textdump import read_dump
from feedsvc.text import has_controls

PACKAGE_DIR = str(Path(feedsvc.__file__).resolve().parent)

# Pieces a dump is built of: each aims at one thing a parser may do badly many times over.
PIECES = (
    "a.B", "a.B", "x", "xxxxxxxx", ".", "...", "!", "?", " ", "  ", "\u00a0", "\n", "\n\n\n",
    "\r\n", "\r", "No.", "Mr.", "U.K.", "1.5", "www.", "://", "http://a.B/c.D", "@", "-",
    "“", "”", "«", "»", '"', "A TITLE 01.02.2026\n", "\nTITLE 31.02.2026\n", " 01.02.2026",
    "News More\n", "World\n", "Жаңалықтар\n", "Source : ", "Дереккөз: ", "Источник:",
    "https://www.gov.kz/memleket/entities/mfa/press/news/details/1157305?lang=kk",
    "Қазақстан.Астана", "совещание.Обсуждены", "әкім", "Минфин", "ҚҰҒӨ", "\x00", "\x0b",
    "\x7f", "\x85", "\ufeff", "\ufffd", "😀",
)
UNICODE = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "Z", "S", "Cc")),
                  max_size=12)
UNIT = st.lists(st.one_of(st.sampled_from(PIECES), UNICODE), min_size=1, max_size=8).map(
    "".join).filter(bool)


def dump(unit: str, size: int, prefix: str = "A TITLE 01.02.2026\n") -> str:
    """A title line, then ``unit`` repeated to about ``size`` characters."""
    return prefix + unit * max(1, size // len(unit))


class WorkCounter:
    """Counts the parser's work deterministically: no clock, the same number every run.

    Work = Python lines executed in feedsvc's own code (``sys.settrace`` 'line' events) + the
    characters handed to every compiled regular expression of the modules that read a dump
    (each pattern is swapped for a proxy that adds ``len(string) - pos`` per call). Lines see
    loops written in Python (a run of label lines walked again for every line of it); the
    regex characters see scans done in C (a token re-split from its start at every full stop of
    ``a.B`` repeated). Plain ``str`` methods in C are not counted: the reader calls them on a
    line or a window once, or on ranges that only move forward. Wall-clock time is not used at
    all: on a shared machine it varies two-fold from one run to the next.
    """

    MODULES: tuple[ModuleType, ...] = (textdump, text, links)

    def __init__(self) -> None:
        self.lines = 0
        self.chars = 0

    @property
    def work(self) -> int:
        return self.lines + self.chars

    @contextmanager
    def counting(self) -> Iterator[WorkCounter]:
        saved: list[tuple[ModuleType, str, re.Pattern[Any]]] = []
        for module in self.MODULES:
            for name, value in vars(module).items():
                if isinstance(value, re.Pattern):
                    saved.append((module, name, value))
        for module, name, pattern in saved:
            setattr(module, name, _CountingPattern(pattern, self))
        previous = sys.gettrace()
        sys.settrace(self._call)
        try:
            yield self
        finally:
            sys.settrace(previous)
            for module, name, pattern in saved:
                setattr(module, name, pattern)

    def _call(self, frame: FrameType, event: str, arg: object) -> Any:
        if frame.f_code.co_filename.startswith(PACKAGE_DIR):
            return self._line
        return None

    def _line(self, frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            self.lines += 1
        return self._line


class _CountingPattern:
    """A compiled pattern that adds the length of what it is asked to scan to a counter."""

    def __init__(self, pattern: re.Pattern[Any], counter: WorkCounter) -> None:
        self._pattern = pattern
        self._counter = counter

    def _count(self, string: Any, pos: int = 0) -> None:
        self._counter.chars += max(0, len(string) - pos)

    def search(self, string: Any, pos: int = 0, *args: Any) -> Any:
        self._count(string, pos)
        return self._pattern.search(string, pos, *args)

    def match(self, string: Any, pos: int = 0, *args: Any) -> Any:
        self._count(string, pos)
        return self._pattern.match(string, pos, *args)

    def finditer(self, string: Any, *args: Any) -> Any:
        self._count(string)
        return self._pattern.finditer(string, *args)

    def findall(self, string: Any, *args: Any) -> Any:
        self._count(string)
        return self._pattern.findall(string, *args)

    def split(self, string: Any, *args: Any) -> Any:
        self._count(string)
        return self._pattern.split(string, *args)

    def subn(self, repl: Any, string: Any, *args: Any) -> Any:
        self._count(string)
        return self._pattern.subn(repl, string, *args)

    def sub(self, repl: Any, string: Any, *args: Any) -> Any:
        self._count(string)
        return self._pattern.sub(repl, string, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pattern, name)


def work_to_read(path: Path, content: str) -> int:
    path.write_text(content, encoding="utf-8", errors="surrogatepass")
    counter = WorkCounter()
    # Refusing a file is an answer too; its cost counts the same.
    with counter.counting(), suppress(SourceFileError):
        read_dump(path, None)
    return counter.work


# Reading 4n characters may cost at most this many times the work of n: 4 for a linear
# reader, plus room for what does not grow with the input (set-up, the item count rounding).
# A quadratic step costs 16 times as much; the two fixed in this file cost 14-16 times.
GROWTH_LIMIT = 5.0
BASE_SIZE = 4_000


@settings(max_examples=40, deadline=None, derandomize=True,
          phases=(Phase.explicit, Phase.generate, Phase.shrink),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(unit=UNIT, newlines=st.booleans())
def test_four_times_the_input_costs_about_four_times_the_work(
        tmp_path: Path, unit: str, newlines: bool) -> None:
    """Near-linear growth, measured as :class:`WorkCounter` work for n and 4n characters.

    The same unit repeated makes the two inputs alike in everything but their length, so any
    step that grows faster than the input shows in the ratio.
    """
    if not newlines:
        unit = unit.replace("\n", " ").replace("\r", " ")  # one long line
    small = work_to_read(tmp_path / "small.txt", dump(unit, BASE_SIZE))
    large = work_to_read(tmp_path / "large.txt", dump(unit, 4 * BASE_SIZE))
    assert large <= GROWTH_LIMIT * small, (unit, small, large)


@pytest.mark.parametrize("unit", ["a.B", "News More\n", "World\n" + "\n" * 50, "x.Y z",
                                  "Mr.Smith www.a.B ", "TITLE 01.02.2026\n"])
def test_the_known_quadratic_inputs_now_grow_linearly(tmp_path: Path, unit: str) -> None:
    """The inputs of issue 15 and their relatives, by name, at 5 and 20 KB."""
    small = work_to_read(tmp_path / "small.txt", dump(unit, 5_000))
    large = work_to_read(tmp_path / "large.txt", dump(unit, 20_000))
    assert large <= GROWTH_LIMIT * small, (small, large)


ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1251", "latin-1")


@st.composite
def dump_files(draw: st.DrawFn) -> bytes:
    """Bytes of a dump of up to about 1 MB: mostly text in some encoding, sometimes noise."""
    unit = draw(UNIT)
    size = draw(st.sampled_from([10, 1_000, 30_000, 300_000, 1_000_000]))
    content = draw(UNICODE) + dump(unit, size, prefix=draw(st.sampled_from(
        ["", "A TITLE 01.02.2026\n", "Enbekshi QazaQ\nNews More\n"]))) + draw(UNICODE)
    encoding = draw(st.sampled_from(ENCODINGS))
    data = content.encode(encoding, errors="replace")
    if draw(st.booleans()):  # damage: cut it anywhere, or put bytes in
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(max_size=64)) + data[cut:]
    return data


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=dump_files())
def test_any_dump_gives_items_or_a_clear_refusal_never_a_traceback(
        tmp_path: Path, data: bytes) -> None:
    """A small version of ``benchmarks/fuzz_dumps.py`` (which runs 10,000 files)."""
    path = tmp_path / "dump.txt"
    path.write_bytes(data)
    try:
        result = read_dump(path, None)
    except SourceFileError as exc:
        assert str(exc).startswith(f"{path}: ")
        return
    for item in result.items:
        assert item.title and not has_controls(item.title)
        assert not any(has_controls(paragraph) for paragraph in item.paragraphs)
