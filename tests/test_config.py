"""The TOML configuration: defaults, the shipped example, and refusals that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedsvc.config import GOVKZ_BASE_ENV, Config, PortalConfig, load_config
from feedsvc.errors import ConfigError

from support import ROOT


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feedsvc.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_gives_the_embedded_default() -> None:
    config = load_config(None)
    assert [s.location for s in config.sources] == ["seeds"]
    assert config.out_dir == Path("feeds") and config.entry_cap == 50
    assert (config.host, config.port) == ("127.0.0.1", 8080)


def test_the_shipped_example_loads(tmp_path: Path) -> None:
    config = load_config(ROOT / "feedsvc.example.toml")
    assert config.sources[0].location == str(ROOT / "seeds")
    assert config.out_dir == ROOT / "feeds"
    assert config.govkz.delay == 1.0 and config.file_interval == 60.0
    assert config.portal == PortalConfig()  # it documents the defaults


def test_sources_paths_and_urls_with_languages(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
[[sources]]
kind = "file"
path = "dumps"
interval = 30
[[sources]]
url = "https://www.gov.kz/memleket/entities/mfa-brussels"
langs = ["en", "ru"]
enabled = false
"""))
    dumps, govkz = config.sources
    assert (dumps.kind, dumps.location, dumps.interval) == ("file", str(tmp_path / "dumps"), 30)
    assert (govkz.kind, govkz.langs, govkz.enabled) == ("govkz", ("en", "ru"), False)


@pytest.mark.parametrize(("text", "line", "words"), [
    ('out_dir = "x"\nentry_cap = 10\ncolour = "red"\n', 3, "unknown key 'colour'"),
    ('[server]\nhost = "h"\nport = "80"\n', 3, "'port' must be an integer"),
    ('[govkz]\ndelay = true\n', 2, "'delay' must be"),
    ('[schedule]\nfile_intervall = 5\n', 2, "unknown key 'file_intervall' in [schedule]"),
    ('entry_cap = 0\n', 1, "'entry_cap' must be an integer from 1 to 10000, not 0"),
    ('language = "de"\n', 1, "'language' must be one of"),
    ('base_url = "feeds.example.org"\n', 1, "absolute http(s) URL"),
    ('[[sources]]\npath = "a"\nurl = "https://www.gov.kz/memleket/entities/mfa"\n', 1,
     "exactly one of 'path' or 'url'"),
    ('[[sources]]\nurl = "https://www.gov.kz/memleket/entities/mfa"\nlangs = ["de"]\n', 3,
     "'langs' must be an array of values from kk, ru, en, not 'de'"),
    ('entry_cap = 5\nlog_level = \n', 2, "not valid TOML"),
    ('[[sources]]\npath = "a"\n[[sources]]\nurl = "https://example.org/memleket/entities/mfa"\n',
     3, "source #2: https://example.org/memleket/entities/mfa: not a gov.kz link"),
    ('[[sources]]\nkind = "govkz"\npath = "dumps"\n', 2, "kind 'govkz' needs 'url'"),
    ('[[sources]]\nkind = "rss"\npath = "dumps"\n', 2, "'kind' must be one of file, govkz"),
    ('[[sources]]\nurl = "https://www.gov.kz/memleket/entities/mfa/about"\n', 1,
     "did you mean https://www.gov.kz/memleket/entities/mfa/press/news"),
])
def test_bad_files_are_refused_with_line_and_reason(tmp_path: Path, text: str, line: int,
                                                    words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line == line
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}:")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.toml")


def test_environment_sets_the_govkz_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GOVKZ_BASE_ENV, "http://127.0.0.1:9999")
    assert load_config(None).govkz.base_url == "http://127.0.0.1:9999"


def test_flags_override_the_file_and_none_means_not_given() -> None:
    config = Config().with_overrides(entry_cap=7, out_dir=None)
    assert config.entry_cap == 7 and config.out_dir == Path("feeds")
