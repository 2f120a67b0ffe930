"""Command line: ``feedsvc build``, ``daemon``, ``serve``, ``explain-topics``, ``registry``.

Nothing imports this module; it turns flags into a :class:`~feedsvc.config.Config` and calls the
pipeline, the scheduler or the server. Every failure that stops a command is one line on stderr
and a documented exit status (:data:`EXIT_STATUSES`, shown in each command's ``--help``); a
traceback only ever means a bug.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import LANGUAGES, Config, check_flags, load_config, source_from_string
from .errors import (
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_IN_USE,
    EXIT_OK,
    EXIT_USAGE,
    FeedsvcError,
    environment_error,
)
from .kinds import KINDS

log = logging.getLogger("feedsvc")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
                           "level": record.levelname.lower(), "logger": record.name,
                           "message": record.getMessage()}, ensure_ascii=False)


def setup_logging(level: str, as_json: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if as_json else logging.Formatter(
        "%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("apscheduler", "urllib3", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


EXIT_STATUSES = {
    EXIT_OK: "done",
    EXIT_FAILED: "the work failed: a source could not be read (a build still publishes the "
                 "rest), or gov.kz did not answer",
    EXIT_USAGE: "misuse: a bad flag, an invalid configuration or topics file, a link that is "
                "not a gov.kz organisation; nothing was started",
    EXIT_IN_USE: "another feedsvc process owns the store or the output directory; try again "
                 "when it has finished",
    EXIT_ENVIRONMENT: "the system refused: no permission, a read-only or full disk, a path "
                      "through a file, the port already in use",
}


def _epilog(*statuses: int) -> str:
    lines = "\n".join(f"  {status}  {EXIT_STATUSES[status]}" for status in statuses)
    return f"\b\nExit status:\n{lines}"


_ALL_STATUSES = (EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_IN_USE, EXIT_ENVIRONMENT)


def _as_path(_ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """A path flag: ``""`` is refused (``Path("")`` would quietly mean the current directory)."""
    if value is None:
        return None
    if not value:
        raise click.BadParameter("must be a non-empty path", param=param)
    return Path(value)


def _common(function: Any) -> Any:
    options = [
        click.option("--config", "config_path", type=click.Path(path_type=Path),
                     help="TOML configuration file (see feedsvc.example.toml)."),
        click.option("--source", "sources", multiple=True, metavar="PATH|URL",
                     help="A text dump, a directory of them, or a gov.kz link. Repeatable; "
                     "replaces the configured sources."),
        click.option("--lang", "langs", multiple=True, type=click.Choice(LANGUAGES),
                     help="Language(s) to follow for gov.kz links (default: the link's ?lang=, "
                     "else kk)."),
        click.option("--out", "out_dir", type=click.Path(), callback=_as_path,
                     help="Output directory for the feeds (default: feeds/)."),
        click.option("--db", type=click.Path(), callback=_as_path,
                     help="SQLite store (default: var/feedsvc.sqlite3)."),
        click.option("--base-url", help="Public URL the output directory is served at."),
        click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
                     help="Log verbosity (default: info, or the config's)."),
        click.option("--log-json", is_flag=True, default=None,
                     help="Log one JSON object per line, for log collectors."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def make_config(config_path: Path | None, sources: tuple[str, ...], langs: tuple[str, ...],
                out_dir: Path | None, db: Path | None, base_url: str | None,
                log_level: str | None, log_json: bool | None, **extra: Any) -> Config:
    _check_flags({"--out": out_dir, "--db": db, "--base-url": base_url,
                  "--host": extra.get("host"), "--port": extra.get("port"),
                  "--interval": extra.get("file_interval")})
    config = load_config(config_path)
    overrides: dict[str, Any] = dict(out_dir=out_dir, db=db, base_url=base_url,
                                     log_level=log_level, log_json=log_json, **extra)
    if sources:
        overrides["sources"] = [source_from_string(s, langs) for s in sources]
    elif langs:
        overrides["sources"] = [source_from_string(s.location, langs, s.interval, s.enabled)
                                for s in config.sources]
    config = config.with_overrides(**overrides)
    for source in config.sources:  # a malformed link: one line, before anything starts
        KINDS[source.kind].implementation().check(source.location)
    return config


def _check_flags(values: dict[str, Any]) -> None:
    """The configuration schema's checks for flags: misuse (exit status 2) naming the flag."""
    try:
        check_flags(values)
    except ValueError as exc:
        flag, reason = exc.args
        raise click.BadParameter(reason, param_hint=f"'{flag}'") from None


class _Failure(click.ClickException):
    """A one-line error with the exit status of its cause."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class


@contextmanager
def _user_errors(store: Path | None = None) -> Iterator[dict[str, Path]]:
    """FeedsvcError -> one line on stderr and its exit status, no traceback.

    A refusal of the system that reached here undressed (``OSError`` such as EROFS or ENOSPC,
    ``sqlite3.OperationalError`` "database or disk is full") becomes one too, exit status 4;
    the store (``store``, or ``where["store"]`` set once the configuration is known) names the
    file for SQLite's messages, which name none. Anything else is a bug and keeps its traceback.
    """
    where: dict[str, Path] = {"store": store} if store else {}
    try:
        yield where
    except FeedsvcError as exc:
        raise _Failure(str(exc), exc.exit_status) from exc
    except (OSError, sqlite3.OperationalError) as exc:
        problem = environment_error(exc, str(where["store"]) if "store" in where else None)
        if problem is None:
            raise
        raise _Failure(str(problem), problem.exit_status) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="feedsvc")
def main() -> None:
    """feedsvc: Atom feeds of gov.kz news, per organisation, ministry and topic."""


@main.command(epilog=_epilog(*_ALL_STATUSES))
@_common
def build(**options: Any) -> None:
    """Read every source once, update the store and publish the feeds that changed.

    With no options: seeds/ in, feeds/ out.

    \b
    Examples:
      feedsvc build
      feedsvc build --source dumps/ --out public/ --base-url https://feeds.example.org/
      feedsvc build --source https://www.gov.kz/memleket/entities/mfa-brussels --lang en
    """
    from .lock import owner_locks
    from .parallel import relax_garbage_collection
    from .pipeline import make_pipeline

    relax_garbage_collection()  # a one-shot process: see there why
    with _user_errors() as where:
        config = make_config(**options)
        where["store"] = config.db
        setup_logging(config.log_level, config.log_json)
        started = time.monotonic()
        with ExitStack() as stack:
            for lock in owner_locks(config.db, config.out_dir):
                stack.enter_context(lock)
            pipeline = make_pipeline(config, parallel=True)
            stack.callback(pipeline.close)
            report = pipeline.refresh(progress=_progress_bar)
        elapsed = time.monotonic() - started
    for failure in report.failed:
        click.echo(f"error: {failure.error}", err=True)
    for error in report.publish.errors:
        click.echo(f"error: {error}", err=True)
    click.echo(f"feedsvc build: {report.summary()} ({elapsed:.2f} s)", err=True)
    if not report.ok:
        sys.exit(EXIT_FAILED)


@main.command(epilog=_epilog(EXIT_OK, EXIT_USAGE, EXIT_IN_USE, EXIT_ENVIRONMENT))
@_common
@click.option("--host", help="Address to serve on (default: 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535),
              help="Port to serve on (default: 8080; 0 picks a free one).")
@click.option("--interval", type=click.FloatRange(min=1),
              help="Default seconds between reads of a source without its own interval.")
def daemon(host: str | None, port: int | None, interval: float | None,
           **options: Any) -> None:
    """Keep the feeds fresh and serve them: re-read sources on a schedule, publish changes.

    With no options: seeds/ in, feeds/ out, served on http://127.0.0.1:8080/.
    SIGTERM or Ctrl-C stops it cleanly (exit status 0).

    \b
    Examples:
      feedsvc daemon
      feedsvc daemon --config /etc/feedsvc/feedsvc.toml
      feedsvc daemon --source dumps/ --port 9000 --interval 30
    """
    from .daemon import run_daemon

    with _user_errors() as where:
        extra: dict[str, Any] = {"host": host, "port": port}
        if interval is not None:
            extra["file_interval"] = interval
            extra["govkz_interval"] = interval
        config = make_config(**options, **extra)
        where["store"] = config.db
        setup_logging(config.log_level, config.log_json)
        # No base URL given anywhere: the feeds name the address actually served (port 0
        # becomes the port the system picked).
        run_daemon(config, base_url_from_socket=options.get("base_url") is None
                   and config.base_url == Config().base_url)


@main.command(epilog=_epilog(EXIT_OK, EXIT_USAGE, EXIT_ENVIRONMENT))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), callback=_as_path,
              default="feeds", show_default=True, help="Directory to serve.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to serve on (0 picks a free one).")
@click.option("--header-timeout", type=click.FloatRange(min=0.1, max=300), default=10.0,
              show_default=True, help="Close a connection that has not sent a whole request "
              "head within this many seconds (slow or idle clients).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True, help="Log verbosity.")
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False),
              help="The store the feeds were built from: also answer query feeds "
                   "(/query.atom?org=kgd&q=...) from it, read-only.")
def serve(out_dir: Path, host: str, port: int, header_timeout: float, log_level: str,
          db: Path | None) -> None:
    """Serve an already built output directory over HTTP (no scheduling, no building).

    \b
    Examples:
      feedsvc serve --out feeds --port 8080
      feedsvc serve --out feeds --db feedsvc.sqlite3   # with /query.atom, .rss, .json
    """
    from .serve import FeedServer, make_app

    _check_flags({"--out": out_dir, "--host": host, "--port": port})
    setup_logging(log_level, False)
    if not out_dir.is_dir():
        raise click.BadParameter(f"{out_dir}: no such directory; run 'feedsvc build' first",
                                 param_hint="'--out'")
    if db is not None and not db.is_file():
        raise click.BadParameter(f"{db}: no such store; run 'feedsvc build' first",
                                 param_hint="'--db'")
    with _user_errors():
        queries = None
        if db is not None:
            from .queryfeeds import QueryFeeds, static_site

            queries = QueryFeeds(db, static_site(db))
        server = FeedServer(make_app(out_dir, queries=queries), host, port,
                            access_log=log_level == "debug", header_timeout=header_timeout)
        server.run()


@main.command("explain-topics", epilog=_epilog(EXIT_OK, EXIT_USAGE, EXIT_ENVIRONMENT))
@click.argument("target")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="TOML configuration file (for the store and a custom topics file).")
@click.option("--db", type=click.Path(path_type=Path), help="SQLite store to look items up in.")
def explain_topics(target: str, config_path: Path | None, db: Path | None) -> None:
    """Show why items get their topics: per topic, the score and the words behind it.

    TARGET is a text-dump file (every item in it is explained) or an item of the store: its
    Atom id (urn:uuid:...) or its gov.kz link.

    \b
    Examples:
      feedsvc explain-topics seeds/000_b0f3105e8a9764a0.txt
      feedsvc explain-topics https://www.gov.kz/memleket/entities/mfa/press/news/details/1161897
    """
    from .filing import Filing
    from .topics import explain

    _check_flags({"--db": db})
    with _user_errors(db):
        config = load_config(config_path).with_overrides(db=db)
        filing = Filing.load(config)
        if filing.taxonomy is None:
            raise _Failure("topics are switched off in this configuration", EXIT_USAGE)
        for title, item in _items_to_explain(target, config):
            chain = filing.registry.chain(item.org) if item.org else ()
            kind = filing.registry.get(item.org).kind if item.org else None
            click.echo(f"== {title}")
            click.echo(explain(filing.taxonomy, item, org_kind=kind, org_chain=chain))
            click.echo("")


def _items_to_explain(target: str, config: Config) -> list[tuple[str, Any]]:
    path = Path(target)
    if path.is_file():
        from .sources.textdump import read_dump

        result = read_dump(path, None)
        return [(f"{item.origin}: {item.title}", item) for item in result.items]
    from .links import parse_govkz_url
    from .model import news_key_for

    if not config.db.exists():
        raise _Failure(f"{target}: not a file, and there is no store at {config.db} "
                       "to look it up in", EXIT_USAGE)
    keys = [target]
    link = parse_govkz_url(target)
    if link and link.news_id is not None:
        keys = [news_key_for(link.news_id, lang) for lang in (link.lang, *LANGUAGES) if lang]
    from .store import ReadOnlyStore

    store = ReadOnlyStore(config.db)
    try:
        for key in keys:
            found = store.find_item(key)
            if found is not None:
                return [(f"{found.atom_id}: {found.item.title}", found.item)]
    finally:
        store.close()
    raise _Failure(f"{target}: no such file, and no such item in {config.db}", EXIT_USAGE)


@main.group()
def registry() -> None:
    """The registry of gov.kz organisations (names, kinds, parents)."""


@registry.command("update", epilog=_epilog(EXIT_OK, EXIT_FAILED, EXIT_USAGE,
                                            EXIT_ENVIRONMENT))
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="TOML configuration file (store path, gov.kz API settings).")
@click.option("--db", type=click.Path(path_type=Path), help="SQLite store to update.")
@click.option("--lang", "langs", multiple=True, type=click.Choice(LANGUAGES),
              help="Languages to fetch names in (default: kk, ru and en).")
def registry_update(config_path: Path | None, db: Path | None, langs: tuple[str, ...]) -> None:
    """Fetch organisation names, kinds and parents from gov.kz into the store.

    The shipped registry stays the fallback; the next build uses the real names.

    \b
    Example:
      feedsvc registry update --lang ru --lang en
    """
    from datetime import UTC, datetime

    from .lock import store_lock
    from .registry import load_registry
    from .sources.govkz import GovkzClient
    from .store import Store
    from .updates import merge_org_records

    _check_flags({"--db": db})
    with _user_errors(db):
        config = load_config(config_path).with_overrides(db=db)
        setup_logging(config.log_level, config.log_json)
        client = GovkzClient(config.govkz)
        from .sources.govkz import fetch_organisations

        records = [record for lang in (langs or LANGUAGES)
                   for record in fetch_organisations(client, lang)]
        with store_lock(config.db):  # the store has one writer at a time
            store = Store(config.db)
            try:
                before = load_registry(store.live_organisations())
                organisations = merge_org_records(records)
                with store.transaction():
                    store.save_organisations(organisations, datetime.now(UTC))
                after = load_registry(store.live_organisations())
            finally:
                store.close()
    gained = sum(1 for org in organisations
                 if any(after.get(org.slug).names.get(lang) and
                        not before.get(org.slug).names.get(lang) for lang in LANGUAGES))
    renamed = sum(1 for org in organisations
                  if before.get(org.slug).names and after.get(org.slug).names !=
                  before.get(org.slug).names)
    new = sum(1 for org in organisations if org.slug not in before)
    click.echo(f"feedsvc registry: {len(organisations)} organisations fetched; {gained} slugs "
               f"gained names ({new} not in the registry before); {renamed} names changed")


def _progress_bar(sources: Iterable[Any]) -> Iterable[Any]:
    """A progress bar on a terminal for runs of several sources; plain iteration otherwise."""
    chosen = list(sources)
    if not sys.stderr.isatty() or len(chosen) < 2:
        return chosen
    from tqdm import tqdm

    return tqdm(chosen, desc="sources", unit="source", file=sys.stderr, leave=False)


if __name__ == "__main__":
    main()
