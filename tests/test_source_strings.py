"""What a --source value is taken for: a gov.kz link written without https://, or a file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from feedsvc.config import source_from_string


@pytest.mark.parametrize("text", ["www.gov.kz/memleket/entities/mfa-brussels",
                                  "gov.kz/memleket/entities/mfa-brussels/press/news?lang=en",
                                  "WWW.GOV.KZ/memleket/entities/kgd"])
def test_a_gov_kz_link_without_its_scheme_is_taken_as_the_link(text: str,
                                                               tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    monkeypatch.chdir(tmp_path)
    source = source_from_string(text)
    assert (source.kind, source.location) == ("govkz", "https://" + text)


def test_a_file_of_that_name_stays_a_file(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gov.kz").mkdir()
    (tmp_path / "gov.kz" / "dump.txt").write_text("x", encoding="utf-8")
    assert source_from_string("gov.kz/dump.txt").kind == "file"


def _build(source: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "feedsvc.cli", "build", "--source", source,
                           "--out", str(tmp_path / "out"), "--db", str(tmp_path / "db")],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)


def test_another_address_without_its_scheme_gets_a_hint(tmp_path: Path) -> None:
    done = _build("example.org/news", tmp_path)
    assert "example.org/news: no such file; if it is a web address, write it with https://" \
        in done.stderr


def test_a_missing_text_file_gets_no_such_hint(tmp_path: Path) -> None:
    done = _build("today.txt", tmp_path)
    assert "today.txt: no such file" in done.stderr
    assert "web address" not in done.stderr
