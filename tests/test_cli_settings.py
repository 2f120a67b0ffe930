"""Every setting is checked at start, through the real command line: a bad value in the file or
in a flag is one line naming the file, line and key (or the flag) and what is allowed, with exit
status 2, and nothing is built; good values still build."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import SEEDS

FEEDSVC = [sys.executable, "-m", "feedsvc.cli"]
ONE_DUMP = "003_9838bf1a0f284c14.txt"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FEEDSVC, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "seeds").mkdir()
    shutil.copy(SEEDS / ONE_DUMP, tmp_path / "seeds" / ONE_DUMP)
    return tmp_path


# (the file's text, the line named, words of the message: key and allowed range)
BAD_FILES = [
    ("[schedule]\nfile_interval = -10\n", 2, "[schedule] 'file_interval' must be a number "
     "from 1 to 604800, not -10"),
    ("[schedule]\nfile_interval = 0\n", 2, "'file_interval' must be a number from 1 to 604800"),
    ("[schedule]\ngovkz_interval = 0.5\n", 2, "'govkz_interval' must be a number from 1"),
    ("[schedule]\njitter = -1\n", 2, "'jitter' must be a number from 0 to 0.5, not -1"),
    ("[govkz]\ndelay = -1\n", 2, "[govkz] 'delay' must be a number from 0 to 3600, not -1"),
    ("[govkz]\ndelay = nan\n", 2, "'delay' must be a number from 0 to 3600, not NaN"),
    ("[govkz]\nread_timeout = 0\n", 2, "'read_timeout' must be a number greater than 0 and "
     "at most 3600, not 0"),
    ("[govkz]\nread_timeout = inf\n", 2, "'read_timeout' must be a number greater than 0"),
    ("[govkz]\nconnect_timeout = -inf\n", 2, "'connect_timeout' must be a number greater"),
    ("[govkz]\nretries = -1\n", 2, "'retries' must be an integer from 0 to 20, not -1"),
    ("[govkz]\nmax_response_bytes = -1\n", 2, "'max_response_bytes' must be an integer from "
     "1024 to 1073741824, not -1"),
    ("[govkz]\npage_size = 0\n", 2, "'page_size' must be an integer from 1 to 500, not 0"),
    ("[govkz]\nbackfill = 1e9\n", 2, "'backfill' must be an integer from 1 to 100000"),
    ("[govkz]\nbackfill = 1000000000\n", 2, "'backfill' must be an integer from 1 to 100000"),
    ("[govkz]\nfailure_threshold = 0\n", 2, "'failure_threshold' must be an integer from 1"),
    ("[govkz]\nrest_seconds = -5\n", 2, "'rest_seconds' must be a number from 1"),
    ('[govkz]\nbase_url = "ftp://www.gov.kz"\n', 2, "'base_url' must be an absolute http(s) URL"),
    ('[govkz]\nticket_path = "no-slash"\n', 2, "'ticket_path' must be a string matching"),
    ("[[sources]]\npath = \"seeds\"\ninterval = 0\n", 3, "source #1: 'interval' must be a "
     "number from 1 to 604800, not 0"),
    ('base_url = "http://feeds.example.org/\\"><script>"\n', 1, "'base_url' must be an "
     "absolute http(s) URL without quotes, angle brackets or spaces"),
    ('base_url = "http://feeds.example.org/a b"\n', 1, "'base_url' must be an absolute"),
    ('base_url = "javascript:alert(1)"\n', 1, "'base_url' must be an absolute http(s) URL"),
    ('out_dir = ""\n', 1, "'out_dir' must be a non-empty path without NUL characters, not ''"),
    ('out_dir = "."\n', 1, "'out_dir' must not contain the configuration file"),
    ('out_dir = "/"\n', 1, "'out_dir' must not be the root directory"),
    ('db = "."\n', 1, "'db' must name a file, not a directory"),
    ('db = ""\n', 1, "'db' must be a non-empty path without NUL characters, not ''"),
    ('[[sources]]\npath = "a\\u0000b"\n', 2, "source #1: 'path' must be a non-empty path "
     "without NUL characters"),
    ('db = "seeds"\n', 1, "'db' must name a file, not a directory"),
    ("[server]\nport = 70000\n", 2, "[server] 'port' must be an integer from 0 to 65535"),
    ('[server]\nhost = "a b"\n', 2, "[server] 'host' must be a string matching"),
    ("entry_cap = 0\n", 1, "'entry_cap' must be an integer from 1 to 10000, not 0"),
    ('log_level = "loud"\n', 1, "'log_level' must be one of debug, info, warning, error"),
    ("govkz.delay = -3\n", 1, "[govkz] 'delay' must be a number from 0 to 3600, not -3"),
    ("[schedule]\nfile_interval = true\n", 2, "'file_interval' must be a number from 1"),
    ("server = 3\n", 1, "'server' must be a table, not 3"),
    ("x = " + "[" * 5000 + "]" * 5000 + "\n", None, "nested too deeply"),
]


@pytest.mark.parametrize(("text", "line", "words"), BAD_FILES,
                         ids=[text.split("\n")[-2][:40] for text, _, _ in BAD_FILES])
def test_bad_setting_in_the_file_is_refused_before_anything_starts(
        project: Path, text: str, line: int | None, words: str) -> None:
    (project / "bad.toml").write_text(text, encoding="utf-8")
    result = run("build", "--config", "bad.toml", cwd=project)
    assert result.returncode == 2, result.stderr
    where = f"bad.toml:{line}: " if line else "bad.toml: "
    assert result.stderr.startswith(f"Error: {where}")
    assert words in result.stderr
    assert result.stderr.count("\n") == 1  # one line, no traceback
    assert not (project / "feeds").exists()


GOOD_FILES = [
    "[schedule]\nfile_interval = 1\njitter = 0\n",
    "[govkz]\ndelay = 0\nread_timeout = 0.5\nretries = 0\nbackfill = 100000\n",
    '[server]\nport = 0\nhost = "::1"\n',
    'base_url = "https://feeds.example.org/gov-kz/"\nout_dir = "public"\ndb = "var/s.db"\n',
    "[[sources]]\npath = \"seeds\"\ninterval = 604800\n",
]


@pytest.mark.parametrize("text", GOOD_FILES)
def test_good_settings_build(project: Path, text: str) -> None:
    (project / "good.toml").write_text(text, encoding="utf-8")
    result = run("build", "--config", "good.toml", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "items: 5 new" in result.stderr


# (command, the flags, the flag named, words of the message)
BAD_FLAGS = [
    ("daemon", ["--interval", "-10"], "--interval", "not in the range x>=1"),  # click's check
    ("daemon", ["--interval", "nan"], "--interval", "must be a number from 1 to 604800"),
    ("daemon", ["--interval", "inf"], "--interval", "must be a number from 1 to 604800"),
    ("daemon", ["--port", "70000"], "--port", "0<=x<=65535"),
    ("daemon", ["--host", "a b"], "--host", "must be a string matching"),
    ("daemon", ["--base-url", 'http://x.org/"><script>'], "--base-url",
     "must be an absolute http(s) URL without quotes"),
    ("build", ["--base-url", "feeds.example.org"], "--base-url", "absolute http(s) URL"),
    ("build", ["--out", "/"], "--out", "must not be the root directory"),
    ("build", ["--out", ""], "--out", "must be a non-empty path"),
    ("build", ["--db", "."], "--db", "'db' must name a file, not a directory"),
    ("build", ["--db", ""], "--db", "must be a non-empty path"),
    ("daemon", ["--db", "seeds"], "--db", "'db' must name a file, not a directory"),
    ("serve", ["--out", "/"], "--out", "must not be the root directory"),
    ("serve", ["--host", "a b", "--out", "seeds"], "--host", "must be a string matching"),
]


@pytest.mark.parametrize(("command", "flags", "flag", "words"), BAD_FLAGS,
                         ids=[f"{c} {' '.join(f)}" for c, f, _, _ in BAD_FLAGS])
def test_bad_flag_is_misuse_naming_the_flag(project: Path, command: str, flags: list[str],
                                            flag: str, words: str) -> None:
    result = run(command, *flags, cwd=project)
    assert result.returncode == 2, result.stderr
    assert f"Invalid value for '{flag}'" in result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "feeds").exists()


def test_good_flags_build(project: Path) -> None:
    result = run("build", "--out", "public", "--db", "s.db",
                 "--base-url", "https://feeds.example.org/", cwd=project)
    assert result.returncode == 0, result.stderr
    assert (project / "public" / "all.atom").exists()
