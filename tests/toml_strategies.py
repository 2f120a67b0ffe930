"""Hypothesis strategies for configuration files: TOML documents that look like feedsvc's (its
keys and tables, any values) and plain mangled text. Shared by the fuzz test and
``scripts/fuzz_config.py``."""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, time
from typing import Any

from hypothesis import strategies as st

TOP_KEYS = ["out_dir", "db", "base_url", "language", "entry_cap", "log_level", "log_json",
            "topics_file"]
TABLES = {
    "server": ["host", "port"],
    "schedule": ["file_interval", "govkz_interval", "jitter"],
    "govkz": ["base_url", "ticket_path", "delay", "connect_timeout", "read_timeout", "retries",
              "backfill", "page_size", "max_response_bytes", "failure_threshold",
              "rest_seconds"],
}
SOURCE_KEYS = ["kind", "path", "url", "langs", "lang", "interval", "enabled"]
EXAMPLES = ["file", "govkz", "kk", "ru", "en", "seeds", ".", "/", "", "debug", "x" * 300,
            "https://www.gov.kz/memleket/entities/mfa", "http://127.0.0.1:8080/",
            'http://x/"><script>', "/api/v1/public/_/c/k6", "~", "..", "a\x00b"]

scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=40),
    st.sampled_from(EXAMPLES),
    st.datetimes(), st.dates(), st.times(),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)


def key_values(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Some of ``keys`` (and now and then an unknown one), each with any value."""
    return st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=12)), values,
                           max_size=len(keys) + 1)


documents = st.fixed_dictionaries({}, optional={
    **{name: key_values(keys) for name, keys in TABLES.items()},
    "sources": st.lists(key_values(SOURCE_KEYS), max_size=3),
}).flatmap(lambda tables: key_values(TOP_KEYS).map(lambda top: {**top, **tables}))


def dump(document: dict[str, Any]) -> str:
    """``document`` as TOML: tables as [headers] when they are dicts, arrays of dicts as
    [[headers]]; anything else inline. Values TOML cannot hold come out as invalid TOML, which
    is fine: the loader must refuse that in one line too."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in document.items()
             if not _is_table(v) and not _is_table_array(v)]
    for name, table in document.items():
        if _is_table(table):
            lines.append(f"[{_key(name)}]")
            lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items()]
        elif _is_table_array(table):
            for entry in table:
                lines.append(f"[[{_key(name)}]]")
                lines += [f"{_key(k)} = {_value(v)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


def _is_table(value: Any) -> bool:
    return isinstance(value, dict)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


mangled_text = st.one_of(
    st.text(max_size=200),
    st.builds(lambda doc, cut, junk: (text := dump(doc))[:cut % (len(text) + 1)] + junk
              + text[cut % (len(text) + 1):], documents, st.integers(0, 10_000),
              st.text(alphabet="[]{}=\"'.\n#,\\ ", max_size=5)),
)
