"""The TOML configuration, its defaults, and its validation.

The defaults live in the dataclasses below (what the rest of feedsvc reads); what a file or a
flag may set, with its type and allowed range, is declared once in the ``msgspec`` structs of
the schema section. Anything outside it (an unknown key, a wrong type, a value out of range, a
path that would publish somewhere harmful) is refused before anything starts, in one line naming
the file, the line, the key and what is allowed. Command-line flags go through the same schema
(:func:`check_flags`) and are applied on top with :meth:`Config.with_overrides`.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from .errors import ConfigError, InvalidSourceURL
from .kinds import KINDS, is_portal_link, kind_of
from .links import LANGUAGES, parse_govkz_link

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
    #: ``/healthz``: the portal (not one organisation) is failing, and the answer 503, when
    #: more than ``health_failing_share`` of the streams read in the last ``health_window``
    #: seconds failed their latest read, or when no read of the portal (a stream, or the
    #: cross-organisation listing) has succeeded for ``health_stale_after`` seconds.
    health_window: float = 3600.0
    health_failing_share: float = 0.5
    health_stale_after: float = 21600.0

    @property
    def budget_limit(self) -> int:
        return max(1, int(self.requests_per_second * self.budget_window))


_PORTAL: dict[str, type | tuple[type, ...]] = {
    "langs": list, "allow": list, "deny": list, "requests_per_second": (int, float),
    "budget_window": (int, float), "min_interval": (int, float), "max_interval": (int, float),
    "poll_page_size": int, "global_listing": str, "global_interval": (int, float),
    "safety_interval": (int, float), "registry_interval": (int, float),
    "batch_seconds": (int, float), "health_window": (int, float),
    "health_failing_share": (int, float), "health_stale_after": (int, float),
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
    kind: str  # a name in feedsvc.kinds.KINDS
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


#: A gov.kz link written without its scheme (``www.gov.kz/memleket/...``, ``gov.kz/...``).
_GOVKZ_WITHOUT_SCHEME = re.compile(r"(?i)^(www\.)?gov\.kz(/|$)")


def source_from_string(text: str, langs: tuple[str, ...] = (), interval: float | None = None,
                       enabled: bool = True) -> SourceConfig:
    """A ``--source`` value: an http(s) URL is a gov.kz link, anything else a path; a gov.kz
    link without ``https://`` is taken as the link when no such file exists."""
    if _GOVKZ_WITHOUT_SCHEME.match(text) and not Path(text).exists():
        text = "https://" + text
    return SourceConfig(text, kind_of(text).name, langs, interval, enabled)


# --- the schema: what a file (or a flag) may set, its type and its allowed range -------------
#
# Every field defaults to UNSET: the defaults are the dataclasses' above, so a key left out of
# the file keeps the default and a schema change never moves one by accident.

_WEEK = 7 * 24 * 3600.0
_URL = r"^https?://[^\s\"'<>\\`]+$"  # absolute http(s); nothing that could break out of markup
Url = Annotated[str, Meta(pattern=_URL, max_length=2000)]
_PATH_TEXT = r"^[^\x00]+$"  # the OS cannot take a NUL in a path
PathText = Annotated[str, Meta(pattern=_PATH_TEXT, max_length=4096)]
Host = Annotated[str, Meta(pattern=r"^[^\s/]+$", max_length=255)]
Port = Annotated[int, Meta(ge=0, le=65535)]
Interval = Annotated[float, Meta(ge=1, le=_WEEK)]
Lang = Literal[LANGUAGES]  # type: ignore[valid-type]
LogLevel = Annotated[str, Meta(pattern=r"(?i)^(debug|info|warning|error)$")]


class _Table(Struct, forbid_unknown_fields=True, frozen=True):
    """A TOML table: unknown keys are refused; every key optional."""

    def given(self) -> dict[str, Any]:
        return {name: value for name in self.__struct_fields__
                if (value := getattr(self, name)) is not UNSET}


class ServerTable(_Table, frozen=True):
    host: Host | UnsetType = UNSET
    port: Port | UnsetType = UNSET


class ScheduleTable(_Table, frozen=True):
    file_interval: Interval | UnsetType = UNSET
    govkz_interval: Interval | UnsetType = UNSET
    jitter: Annotated[float, Meta(ge=0, le=0.5)] | UnsetType = UNSET


class GovkzTable(_Table, frozen=True):
    base_url: Url | UnsetType = UNSET
    ticket_path: Annotated[str, Meta(pattern=r"^/[^\s\"'<>\\]*$", max_length=500)] | UnsetType \
        = UNSET
    delay: Annotated[float, Meta(ge=0, le=3600)] | UnsetType = UNSET
    connect_timeout: Annotated[float, Meta(gt=0, le=300)] | UnsetType = UNSET
    read_timeout: Annotated[float, Meta(gt=0, le=3600)] | UnsetType = UNSET
    retries: Annotated[int, Meta(ge=0, le=20)] | UnsetType = UNSET
    backfill: Annotated[int, Meta(ge=1, le=100_000)] | UnsetType = UNSET
    page_size: Annotated[int, Meta(ge=1, le=500)] | UnsetType = UNSET
    max_response_bytes: Annotated[int, Meta(ge=1024, le=1 << 30)] | UnsetType = UNSET
    failure_threshold: Annotated[int, Meta(ge=1, le=1000)] | UnsetType = UNSET
    rest_seconds: Annotated[float, Meta(ge=1, le=_WEEK)] | UnsetType = UNSET


class SourceTable(_Table, frozen=True):
    kind: Literal["file", "govkz"] | UnsetType = UNSET
    path: PathText | UnsetType = UNSET
    url: Url | UnsetType = UNSET
    langs: list[Lang] | UnsetType = UNSET
    lang: Lang | UnsetType = UNSET
    interval: Interval | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


_Positive = Annotated[float, Meta(gt=0, le=366 * 24 * 3600.0)]
_SlugPattern = Annotated[str, Meta(max_length=100)]  # the pattern: portal_config says it


class PortalTable(_Table, frozen=True):
    """``[portal]``: see :class:`PortalConfig` (cross-field rules in :func:`portal_config`)."""

    langs: list[Lang] | UnsetType = UNSET
    allow: list[_SlugPattern] | UnsetType = UNSET
    deny: list[_SlugPattern] | UnsetType = UNSET
    requests_per_second: Annotated[float, Meta(gt=0, le=1000)] | UnsetType = UNSET
    budget_window: Annotated[float, Meta(ge=1, le=3600)] | UnsetType = UNSET
    min_interval: _Positive | UnsetType = UNSET
    max_interval: _Positive | UnsetType = UNSET
    poll_page_size: Annotated[int, Meta(ge=1, le=100)] | UnsetType = UNSET
    global_listing: Literal["auto", "off"] | UnsetType = UNSET
    global_interval: _Positive | UnsetType = UNSET
    safety_interval: _Positive | UnsetType = UNSET
    registry_interval: _Positive | UnsetType = UNSET
    batch_seconds: _Positive | UnsetType = UNSET
    health_window: Annotated[float, Meta(ge=60, le=_WEEK)] | UnsetType = UNSET
    health_failing_share: Annotated[float, Meta(gt=0, le=1)] | UnsetType = UNSET
    health_stale_after: Annotated[float, Meta(ge=60, le=366 * 24 * 3600.0)] | UnsetType = UNSET


class FileSchema(_Table, frozen=True):
    out_dir: PathText | UnsetType = UNSET
    db: PathText | UnsetType = UNSET
    base_url: Url | UnsetType = UNSET
    language: Lang | UnsetType = UNSET
    entry_cap: Annotated[int, Meta(ge=1, le=10_000)] | UnsetType = UNSET
    log_level: LogLevel | UnsetType = UNSET
    log_json: bool | UnsetType = UNSET
    topics_file: Annotated[str, Meta(pattern=r"^[^\x00]*$", max_length=4096)] | UnsetType \
        = UNSET
    server: ServerTable = ServerTable()
    schedule: ScheduleTable = ScheduleTable()
    govkz: GovkzTable = GovkzTable()
    portal: PortalTable = PortalTable()
    sources: list[SourceTable] | UnsetType = UNSET


# The flags that carry a setting, and where that setting sits in the schema.
FLAG_KEYS: dict[str, tuple[str, ...]] = {
    "--out": ("out_dir",), "--db": ("db",), "--base-url": ("base_url",),
    "--host": ("server", "host"), "--port": ("server", "port"),
    "--interval": ("schedule", "file_interval"),
}

_SOURCE_KINDS = {kind.name: kind.location_key for kind in KINDS.values()}


def load_config(path: Path | None) -> Config:
    """The defaults, or the defaults updated by ``path``; the environment's gov.kz base applies."""
    config = Config() if path is None else _parse_file(path)
    env_base = os.environ.get(GOVKZ_BASE_ENV)
    if env_base:
        problem = _check_one(("govkz", "base_url"), env_base)
        if problem:
            raise ConfigError(GOVKZ_BASE_ENV, f"{env_base!r}: {problem}")
        config = replace(config, govkz=replace(config.govkz, base_url=env_base))
    return config


def check_flags(values: dict[str, Any]) -> None:
    """Check flag values (``{"--port": 0, ...}``, None = not given) against the schema.

    Raises ``ValueError(flag, reason)`` for the first bad one, so the command line can report
    it as misuse of that flag.
    """
    for flag, value in values.items():
        if value is None:
            continue
        problem = _check_one(FLAG_KEYS[flag], str(value) if isinstance(value, Path) else value)
        if problem:
            raise ValueError(flag, problem)


def _check_one(keys: tuple[str, ...], value: Any) -> str | None:
    """Why ``value`` may not be set at ``keys``, or None when it may."""
    data: Any = value
    for key in reversed(keys):
        data = {key: data}
    try:
        msgspec.convert(data, FileSchema, strict=True)
    except msgspec.ValidationError as exc:
        return _explain(exc, data)[1]
    if keys[-1] in ("out_dir", "db"):
        return _path_problem(keys[-1], Path(value))
    return None


def _parse_file(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(str(path), f"cannot read: {reason}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise ConfigError(str(path), f"not valid TOML: {exc}", line) from exc
    except RecursionError:  # tomllib recurses once per nesting level
        raise ConfigError(str(path), "not valid TOML: arrays or tables nested too deeply"
                          ) from None
    return _Parser(path, text).parse(data)


def _line_from_message(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None


# --- turning a schema error into one line -----------------------------------------------------

_PATH = re.compile(r" - at `\$((?:\.[^.\[`]+|\[\d+\])*)`$", re.DOTALL)


def _explain(exc: msgspec.ValidationError, data: Any) -> tuple[tuple[str | int, ...], str]:
    """The failing key's path (``("govkz", "delay")``, ``("sources", 0, "interval")``) and a
    reason that says what is allowed: ``delay = -1.0: must be a number from 0 to 3600``."""
    message = str(exc)
    match = _PATH.search(message)
    where: tuple[str | int, ...] = ()
    if match:
        where = tuple(int(part[1:-1]) if part.startswith("[") else part[1:]
                      for part in re.findall(r"\.[^.\[]+|\[\d+\]", match.group(1)))
        message = message[:match.start()]
    unknown = re.match(r"Object contains unknown field `(.+)`$", message, re.DOTALL)
    if unknown:
        key = unknown.group(1)
        schema = _schema_at(where)
        known = ", ".join(sorted(schema.__struct_fields__)) if schema else ""
        table = "the top level" if not where else (
            f"[{where[0]}]" if len(where) == 1 else f"[[{where[0]}]]")
        return (*where, key), f"unknown key {_short(key)} in {table} (known: {known})"
    value = _value_at(data, where)
    name = next((part for part in reversed(where) if isinstance(part, str)), "value")
    allowed = _allowed(where) or message
    shown = "NaN" if isinstance(value, float) and math.isnan(value) else _short(value)
    return where, f"{_short(name)} must be {allowed}, not {shown}".replace("\n", " ")


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: a message stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _value_at(data: Any, where: tuple[str | int, ...]) -> Any:
    for part in where:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _schema_at(where: tuple[str | int, ...]) -> type[_Table] | None:
    """The struct that describes the table at ``where``, if any."""
    schema: Any = FileSchema
    for part in where:
        if isinstance(part, int):
            continue
        hints = get_type_hints(schema, include_extras=True)
        schema = _struct_in(hints.get(part))
        if schema is None:
            return None
    return schema


def _struct_in(hint: Any) -> type[_Table] | None:
    for candidate in (hint, *_flatten(hint)):
        if isinstance(candidate, type) and issubclass(candidate, _Table):
            return candidate
    return None


def _flatten(hint: Any) -> list[Any]:
    found = []
    for arg in get_args(hint):
        found.append(arg)
        found.extend(_flatten(arg))
    return found


_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _allowed(where: tuple[str | int, ...]) -> str | None:
    """What the schema allows at ``where``, in words, from the field's own declaration."""
    while where and isinstance(where[-1], int):  # an element of an array: the array's field
        where = where[:-1]
    if not where:
        return None
    table = _schema_at(where[:-1])
    if table is None:
        return None
    hint = get_type_hints(table, include_extras=True).get(str(where[-1]))
    if hint is None:
        return None
    return _describe(hint)


def _describe(hint: Any) -> str:
    if get_origin(hint) is Literal:
        return "one of " + ", ".join(map(str, get_args(hint)))
    if get_origin(hint) is list:
        item = get_args(hint)[0]
        if isinstance(item, type) and issubclass(item, _Table):
            return "an array of tables"
        return "an array of " + _describe(item).replace("one of", "values from")
    if get_origin(hint) is Annotated:
        base, *metas = get_args(hint)
        return _with_range(_TYPE_WORDS.get(base, base.__name__), base, metas)
    choices = [arg for arg in get_args(hint) if arg is not UnsetType]
    if choices:
        return " or ".join(_describe(choice) for choice in choices)
    if isinstance(hint, type) and issubclass(hint, _Table):
        return "a table"
    return _TYPE_WORDS.get(hint, getattr(hint, "__name__", str(hint)))


def _with_range(word: str, base: type, metas: list[Any]) -> str:
    meta = next((m for m in metas if isinstance(m, Meta)), None)
    if meta is None:
        return word
    low = meta.ge if meta.ge is not None else meta.gt
    high = meta.le if meta.le is not None else meta.lt
    if meta.pattern == _URL:
        return "an absolute http(s) URL without quotes, angle brackets or spaces"
    if meta.pattern == _PATH_TEXT:
        return "a non-empty path without NUL characters"
    if meta.pattern == r"^[^\x00]*$":
        return "a path without NUL characters"
    if meta.pattern and "debug" in meta.pattern:
        return "one of debug, info, warning, error"
    if meta.pattern:
        return f"{word} matching {meta.pattern}"
    if meta.min_length:
        return f"a non-empty {word.removeprefix('a ')}"
    if low is not None and high is not None:
        if meta.gt is not None:
            return f"{word} greater than {_num(low)} and at most {_num(high)}"
        return f"{word} from {_num(low)} to {_num(high)}"
    return word


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


# --- the file ---------------------------------------------------------------------------------


class _Parser:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.base = path.parent

    def fail(self, reason: str, where: tuple[str | int, ...] = ()) -> ConfigError:
        return ConfigError(str(self.path), reason, self.line_of(where))

    def line_of(self, where: tuple[str | int, ...]) -> int | None:
        """The line that sets ``where`` (``("govkz", "delay")``, ``("sources", 1, "url")``);
        best effort: the table's header when the key's own line cannot be found."""
        while len(where) > 2 and isinstance(where[-1], int):  # langs[0]: the line of langs
            where = where[:-1]
        if not where:
            return None
        *tables, key = where
        if isinstance(key, int):  # an array element: its [[table]] header
            return self._header_line(str(tables[-1]) if tables else "", key)
        names = [part for part in tables if isinstance(part, str)]
        index = next((part for part in tables if isinstance(part, int)), None)
        table = names[0] if names else None
        start = 0 if table is None else self._header_line(table, index or 0) or 0
        key_line = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        header = re.compile(r"^\s*\[")
        for number, line in enumerate(self.lines[start:], start=start + 1):
            if header.match(line) and number != start:
                break
            if key_line.match(line):
                return number
        if names:  # a dotted key at the top level: govkz.delay = 1
            dotted = re.compile(rf"^\s*{re.escape(names[0])}\s*\.\s*{re.escape(key)}\s*=")
            found = next((n for n, line in enumerate(self.lines, 1) if dotted.match(line)), None)
            if found:
                return found
        return start or None

    def _header_line(self, table: str, index: int) -> int | None:
        pattern = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?")
        seen = 0
        for number, line in enumerate(self.lines, start=1):
            if pattern.match(line):
                if seen == index:
                    return number
                seen += 1
        return None

    def parse(self, data: dict[str, Any]) -> Config:
        try:
            schema = msgspec.convert(data, FileSchema, strict=True)
        except msgspec.ValidationError as exc:
            where, reason = _explain(exc, data)
            prefix = f"[{where[0]}] " if len(where) > 1 and isinstance(where[0], str) and \
                where[0] != "sources" else ""
            if where[:1] == ("sources",) and len(where) > 1 and isinstance(where[1], int):
                prefix = f"source #{where[1] + 1}: "
            if reason.startswith("unknown key"):
                prefix = ""
            raise self.fail(prefix + reason, where) from None
        values: dict[str, Any] = {**schema.given(), **schema.server.given(),
                                  **schema.schedule.given()}
        for key in ("server", "schedule", "govkz", "portal", "sources"):
            values.pop(key, None)
        govkz: dict[str, Any] = {
            key: float(value) if isinstance(getattr(GovkzConfig(), key), float) else value
            for key, value in schema.govkz.given().items()}
        sources = self.parse_sources(schema.sources)
        portal = portal_config(str(self.path), schema.portal.given())
        config = Config(govkz=GovkzConfig(**govkz), portal=portal, path=self.path,
                        **self.resolve(values, sources))
        self.check_paths(config, schema)
        return config

    def parse_sources(self, raw: list[SourceTable] | UnsetType) -> tuple[SourceConfig, ...] | None:
        if raw is UNSET:
            return None
        return tuple(self.parse_source(index, entry) for index, entry in enumerate(raw))

    def parse_source(self, index: int, entry: SourceTable) -> SourceConfig:
        here = ("sources", index)
        label = f"source #{index + 1}"
        if (entry.path is UNSET) == (entry.url is UNSET):
            raise self.fail(f"{label} needs exactly one of 'path' or 'url'", here)
        kind = entry.kind
        if kind is not UNSET and getattr(entry, _SOURCE_KINDS[kind]) is UNSET:
            raise self.fail(f"{label}: kind {kind!r} needs '{_SOURCE_KINDS[kind]}'",
                            (*here, "kind"))
        langs = tuple(entry.langs or ()) + ((entry.lang,) if entry.lang is not UNSET else ())
        if entry.path is not UNSET:
            location, kind = str(self._resolve_path(entry.path)), "file"
        else:
            location, kind = str(entry.url), "govkz"
            try:
                if not is_portal_link(location):
                    parse_govkz_link(location)
            except InvalidSourceURL as exc:
                raise self.fail(f"{label}: {exc}", here) from exc
        interval = float(entry.interval) if entry.interval is not UNSET else None
        enabled = entry.enabled if entry.enabled is not UNSET else True
        return SourceConfig(location, kind, langs, interval, enabled)

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
        if "log_level" in values:
            values["log_level"] = values["log_level"].lower()
        for key in ("file_interval", "govkz_interval", "jitter"):
            if key in values:
                values[key] = float(values[key])
        if sources is not None:
            values["sources"] = sources
        return values

    def check_paths(self, config: Config, schema: FileSchema) -> None:
        for key in ("out_dir", "db"):
            if getattr(schema, key) is UNSET:
                continue
            problem = _path_problem(key, getattr(config, key), self.path)
            if problem:
                raise self.fail(problem, (key,))


def _path_problem(key: str, path: Path, config_file: Path | None = None) -> str | None:
    """Why ``path`` cannot be the store (``db``) or the output directory (``out_dir``)."""
    resolved = path.expanduser().resolve()
    if key == "db":
        if path.name in ("", ".", "..") or resolved.is_dir():
            return f"'db' must name a file, not a directory ({str(path)!r})"
        return None
    if resolved == Path(resolved.anchor):
        return f"'out_dir' must not be the root directory ({str(path)!r})"
    if config_file is not None and resolved in config_file.resolve().parents:
        return (f"'out_dir' must not contain the configuration file: it would be published "
                f"({str(path)!r})")
    return None
