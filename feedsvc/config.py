"""The TOML configuration, its defaults, and its validation.

Every key is declared once in ``_SCHEMA`` (with its type and default). Unknown keys and wrong types
are refused with the file, the line and the key, before anything starts. Command-line flags are
applied on top with :func:`Config.with_overrides`.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError, InvalidSourceURL
from .links import LANGUAGES, parse_govkz_link
from .sources import KINDS, is_portal_link, kind_of

DEFAULT_SOURCE = "seeds"
DEFAULT_OUT = "feeds"
DEFAULT_DB = "var/feedsvc.sqlite3"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
GOVKZ_BASE_ENV = "FEEDSVC_GOVKZ_BASE_URL"


@dataclass(frozen=True, slots=True)
class GovkzConfig:
    base_url: str = "https://www.gov.kz"
    ticket_path: str = "/api/v1/public/_/c/k6"
    delay: float = 1.0
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    retries: int = 4
    backfill: int = 100
    page_size: int = 50
    max_response_bytes: int = 10_000_000
    failure_threshold: int = 5
    rest_seconds: float = 3600.0


# --- following the whole portal (``--source https://www.gov.kz``): the [portal] table -------

PORTAL_LISTING_MODES = ("auto", "off")


@dataclass(frozen=True, slots=True)
class PortalConfig:
    """How the whole portal is followed, and what gov.kz may receive from this process."""

    langs: tuple[str, ...] = ("kk", "ru", "en")
    #: Slugs or slug prefixes (``mfa-*``) to follow; empty: every organisation.
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    #: The budget, for every gov.kz request (tickets and retries included): this many per
    #: second on average, never more than ``requests_per_second * budget_window`` in any
    #: window of ``budget_window`` seconds.
    requests_per_second: float = 1.0
    budget_window: float = 60.0
    min_interval: float = 300.0
    max_interval: float = 86400.0
    #: Items asked for by a poll after the first read (a quiet poll is one small page).
    poll_page_size: int = 10
    #: The cross-organisation newest-first listing: "auto" probes it and falls back.
    global_listing: str = "auto"
    global_interval: float = 60.0
    #: While the listing works, every stream is still polled this often (a safety net).
    safety_interval: float = 604800.0
    registry_interval: float = 86400.0
    #: Streams read per refresh: about this many seconds of the budget.
    batch_seconds: float = 30.0

    @property
    def budget_limit(self) -> int:
        return max(1, int(self.requests_per_second * self.budget_window))


_PORTAL: dict[str, type | tuple[type, ...]] = {
    "langs": list, "allow": list, "deny": list, "requests_per_second": (int, float),
    "budget_window": (int, float), "min_interval": (int, float), "max_interval": (int, float),
    "poll_page_size": int, "global_listing": str, "global_interval": (int, float),
    "safety_interval": (int, float), "registry_interval": (int, float),
    "batch_seconds": (int, float),
}


def portal_config(path: str, values: dict[str, Any]) -> PortalConfig:
    """The [portal] table's values, checked; ConfigError naming the key otherwise."""
    defaults = PortalConfig()
    given: dict[str, Any] = {}
    for key, value in values.items():
        default = getattr(defaults, key)
        if isinstance(default, tuple):
            if not all(isinstance(entry, str) for entry in value):
                raise ConfigError(path, f"[portal] {key!r} must be an array of strings")
            value = tuple(entry.strip().lower() for entry in value)
        elif isinstance(default, float):
            value = float(value)
            if not (value > 0 and value < float("inf")):
                raise ConfigError(path, f"[portal] {key!r} must be a positive number")
        given[key] = value
    config = replace(defaults, **given)
    for lang in config.langs:
        if lang not in LANGUAGES:
            raise ConfigError(path, f"[portal] unknown language {lang!r} (use one of "
                                    f"{', '.join(LANGUAGES)})")
    if config.global_listing not in PORTAL_LISTING_MODES:
        raise ConfigError(path, "[portal] 'global_listing' must be one of "
                                f"{', '.join(PORTAL_LISTING_MODES)}")
    if not 1 <= config.poll_page_size <= 100:
        raise ConfigError(path, "[portal] 'poll_page_size' must be from 1 to 100")
    if config.min_interval > config.max_interval:
        raise ConfigError(path, "[portal] 'min_interval' must not exceed 'max_interval'")
    for pattern in config.allow + config.deny:
        if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*(?:-\*)?", pattern):
            raise ConfigError(path, f"[portal] {pattern!r} is not a slug or a slug prefix "
                                    "such as 'mfa-*'")
    return config

# --- end of the [portal] table --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """A text file or directory (``path``) or a gov.kz organisation link (``url``)."""

    location: str
    kind: str  # a name in feedsvc.sources.KINDS
    langs: tuple[str, ...] = ()
    interval: float | None = None
    enabled: bool = True

    @property
    def name(self) -> str:
        return self.location


@dataclass(frozen=True, slots=True)
class Config:
    sources: tuple[SourceConfig, ...] = (SourceConfig(DEFAULT_SOURCE, "file"),)
    out_dir: Path = Path(DEFAULT_OUT)
    db: Path = Path(DEFAULT_DB)
    base_url: str = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/"
    language: str = "en"
    entry_cap: int = 50
    log_level: str = "info"
    log_json: bool = False
    topics_file: Path | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    file_interval: float = 60.0
    govkz_interval: float = 1800.0
    jitter: float = 0.1
    govkz: GovkzConfig = field(default_factory=GovkzConfig)
    portal: PortalConfig = field(default_factory=PortalConfig)
    path: Path | None = None  # the file this came from, if any

    def with_overrides(self, **overrides: Any) -> Config:
        """Flags beat the file; ``None`` means "flag not given"."""
        given = {key: value for key, value in overrides.items() if value is not None}
        if "sources" in given:
            given["sources"] = tuple(given["sources"])
        return replace(self, **given)

    @property
    def normalised_base_url(self) -> str:
        return self.base_url if self.base_url.endswith("/") else self.base_url + "/"


def source_from_string(text: str, langs: tuple[str, ...] = (), interval: float | None = None,
                       enabled: bool = True) -> SourceConfig:
    """A ``--source`` value: an http(s) URL is a gov.kz link, anything else a path."""
    return SourceConfig(text, kind_of(text).name, langs, interval, enabled)


# --- the schema: every key a file may set, with its type; the key is the attribute's name ---

_Types = type | tuple[type, ...]
_NUMBER = (int, float)
_TOP: dict[str, _Types] = {
    "out_dir": str, "db": str, "base_url": str, "language": str, "entry_cap": int,
    "log_level": str, "log_json": bool, "topics_file": str,
}
_SERVER: dict[str, _Types] = {"host": str, "port": int}
_SCHEDULE: dict[str, _Types] = {"file_interval": _NUMBER, "govkz_interval": _NUMBER,
                                "jitter": _NUMBER}
_GOVKZ: dict[str, _Types] = {
    "base_url": str, "ticket_path": str, "delay": _NUMBER, "connect_timeout": _NUMBER,
    "read_timeout": _NUMBER, "retries": int, "backfill": int, "page_size": int,
    "max_response_bytes": int, "failure_threshold": int, "rest_seconds": _NUMBER,
}
_SOURCE: dict[str, _Types] = {
    "kind": str, "path": str, "url": str, "langs": list, "lang": str, "interval": _NUMBER,
    "enabled": bool,
}
_SOURCE_KINDS = {kind.name: kind.location_key for kind in KINDS.values()}
_TABLES = {"server": _SERVER, "schedule": _SCHEDULE, "govkz": _GOVKZ, "portal": _PORTAL}
_LOG_LEVELS = ("debug", "info", "warning", "error")


def load_config(path: Path | None) -> Config:
    """The defaults, or the defaults updated by ``path``; the environment's gov.kz base applies."""
    config = Config() if path is None else _parse_file(path)
    env_base = os.environ.get(GOVKZ_BASE_ENV)
    if env_base:
        config = replace(config, govkz=replace(config.govkz, base_url=env_base))
    return config


def _parse_file(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise ConfigError(str(path), f"not valid TOML: {exc}", line) from exc
    return _Parser(path, text).parse(data)


def _line_from_message(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None


class _Parser:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.base = path.parent

    def fail(self, reason: str, key: str | None = None, table: str | None = None) -> ConfigError:
        return ConfigError(str(self.path), reason, self.line_of(key, table) if key else None)

    def line_of(self, key: str, table: str | None) -> int | None:
        """The line where ``key`` is set (inside ``[table]`` when given); best effort."""
        in_table = table is None
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for number, line in enumerate(self.lines, start=1):
            header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?", line)
            if header:
                in_table = table is not None and header.group(1) == table
                continue
            if in_table and pattern.match(line):
                return number
        return None

    def check(self, table: dict[str, Any], schema: dict[str, _Types], name: str | None) -> None:
        for key, value in table.items():
            if key not in schema:
                where = f"[{name}]" if name else "the top level"
                known = ", ".join(sorted(schema))
                raise self.fail(f"unknown key {key!r} in {where} (known: {known})", key, name)
            if not _is_type(value, schema[key]):
                raise self.fail(f"{key!r} must be {_type_name(schema[key])}, not "
                                f"{type(value).__name__} ({value!r})", key, name)

    def table(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        section = data.get(name, {})
        if not isinstance(section, dict):
            raise self.fail(f"[{name}] must be a table", name)
        self.check(section, _TABLES[name], name)
        return section

    def parse(self, data: dict[str, Any]) -> Config:
        top = {k: v for k, v in data.items() if k not in _TABLES and k != "sources"}
        self.check(top, _TOP, None)
        values: dict[str, Any] = {**top, **self.table(data, "server"),
                                  **self.table(data, "schedule")}
        govkz: dict[str, Any] = {
            key: float(value) if isinstance(getattr(GovkzConfig(), key), float) else value
            for key, value in self.table(data, "govkz").items()}
        sources = self.parse_sources(data.get("sources"))
        portal = portal_config(str(self.path), self.table(data, "portal"))
        config = Config(govkz=GovkzConfig(**govkz), portal=portal, path=self.path,
                        **self.resolve(values, sources))
        self.validate_values(config)
        return config

    def parse_sources(self, raw: Any) -> tuple[SourceConfig, ...] | None:
        if raw is None:
            return None
        if not isinstance(raw, list):
            raise self.fail("'sources' must be an array of tables ([[sources]])", "sources")
        sources = []
        for index, entry in enumerate(raw, start=1):
            if not isinstance(entry, dict):
                raise self.fail(f"source #{index} must be a table", "sources")
            self.check(entry, _SOURCE, "sources")
            if ("path" in entry) == ("url" in entry):
                raise ConfigError(str(self.path),
                                  f"source #{index} needs exactly one of 'path' or 'url'",
                                  self._source_line(index))
            kind = entry.get("kind")
            if kind is not None and entry.get(_SOURCE_KINDS.get(kind, "")) is None:
                raise ConfigError(str(self.path), f"source #{index}: kind {kind!r} needs "
                                  + (f"'{_SOURCE_KINDS[kind]}'" if kind in _SOURCE_KINDS else
                                     "to be 'file' (with 'path') or 'govkz' (with 'url')"),
                                  self.line_of("kind", "sources") or self._source_line(index))
            langs = tuple(entry.get("langs", [])) + ((entry["lang"],) if "lang" in entry else ())
            for lang in langs:
                if lang not in LANGUAGES:
                    raise ConfigError(str(self.path), f"source #{index}: unknown language "
                                      f"{lang!r} (use one of {', '.join(LANGUAGES)})",
                                      self.line_of("langs", "sources") or
                                      self.line_of("lang", "sources"))
            if "path" in entry:
                location = str(self._resolve_path(entry["path"]))
                kind = "file"
            else:
                location, kind = entry["url"], "govkz"
                try:
                    if not is_portal_link(location):
                        parse_govkz_link(location)
                except InvalidSourceURL as exc:
                    raise ConfigError(str(self.path), f"source #{index}: {exc}",
                                      self._source_line(index)) from exc
            interval = entry.get("interval")
            sources.append(SourceConfig(location, kind, langs,
                                        float(interval) if interval is not None else None,
                                        entry.get("enabled", True)))
        return tuple(sources)

    def _source_line(self, index: int) -> int | None:
        seen = 0
        for number, line in enumerate(self.lines, start=1):
            if re.match(r"^\s*\[\[\s*sources\s*\]\]", line):
                seen += 1
                if seen == index:
                    return number
        return None

    def _resolve_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base / path

    def resolve(self, values: dict[str, Any], sources: tuple[SourceConfig, ...] | None
                ) -> dict[str, Any]:
        for key in ("out_dir", "db"):
            if key in values:
                values[key] = self._resolve_path(values[key])
        if values.get("topics_file"):
            values["topics_file"] = self._resolve_path(values["topics_file"])
        else:
            values.pop("topics_file", None)
        for key in ("file_interval", "govkz_interval", "jitter"):
            if key in values:
                values[key] = float(values[key])
        if sources is not None:
            values["sources"] = sources
        return values

    def validate_values(self, config: Config) -> None:
        if config.language not in LANGUAGES:
            raise self.fail(f"'language' must be one of {', '.join(LANGUAGES)}", "language")
        if config.entry_cap < 1:
            raise self.fail("'entry_cap' must be at least 1", "entry_cap")
        if config.log_level.lower() not in _LOG_LEVELS:
            raise self.fail(f"'log_level' must be one of {', '.join(_LOG_LEVELS)}", "log_level")
        if not 0 <= config.port <= 65535:
            raise self.fail("'port' must be between 0 and 65535", "port", "server")
        if not re.match(r"^https?://", config.base_url):
            raise self.fail("'base_url' must be an absolute http(s) URL", "base_url")


def _is_type(value: Any, expected: _Types) -> bool:
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in types:
        return False  # TOML true is not a number
    return isinstance(value, types)


def _type_name(expected: _Types) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             list: "an array"}
    return " or ".join(names.get(t, t.__name__) for t in types)
