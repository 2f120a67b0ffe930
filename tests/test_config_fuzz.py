"""A small fuzz of the configuration loader: whatever the file holds, loading it gives a
Config or one ConfigError line, never another exception. ``scripts/fuzz_config.py`` runs the
same strategies for thousands of cases and counts."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings

from feedsvc.config import Config, load_config
from feedsvc.errors import ConfigError

from toml_strategies import documents, dump, mangled_text

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def load(text: str) -> Config | ConfigError:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "feedsvc.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            return load_config(path)
        except ConfigError as exc:
            assert "\n" not in str(exc)  # one line
            return exc


@FUZZ
@given(documents)
@example({"a\nb": 1})  # an unknown key with a line break in it once made a two-line message
@example({"govkz": {"delay": float("nan")}, "sources": [{"path": "a\x00b"}]})
def test_any_document_of_our_shape_loads_or_is_refused_in_one_line(document: dict) -> None:
    load(dump(document))


@FUZZ
@given(mangled_text)
@example("x = " + "[" * 5000 + "]" * 5000)  # RecursionError inside tomllib
def test_any_text_loads_or_is_refused_in_one_line(text: str) -> None:
    load(text)
