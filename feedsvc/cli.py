"""Command line: ``feedsvc build``, ``daemon``, ``serve``, ``explain-topics``, ``registry``.

Nothing imports this module; it turns flags into a :class:`~feedsvc.config.Config` and calls the
pipeline, the scheduler or the server. User errors exit 1 with a one-line message, misuse exits 2
(click's convention), a build where some source failed exits 1 after doing everything it could.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import LANGUAGES, Config, load_config, source_from_string
from .errors import FeedsvcError
from .links import parse_govkz_link

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
        click.option("--out", "out_dir", type=click.Path(path_type=Path),
                     help="Output directory for the feeds (default: feeds/)."),
        click.option("--db", type=click.Path(path_type=Path),
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
    config = load_config(config_path)
    overrides: dict[str, Any] = dict(out_dir=out_dir, db=db, base_url=base_url,
                                     log_level=log_level, log_json=log_json, **extra)
    if sources:
        overrides["sources"] = [source_from_string(s, langs) for s in sources]
    elif langs:
        overrides["sources"] = [source_from_string(s.location, langs, s.interval, s.enabled)
                                for s in config.sources]
    config = config.with_overrides(**overrides)
    for source in config.sources:
        if source.kind == "govkz":
            parse_govkz_link(source.location)  # InvalidSourceURL: one line, exit 1
    if not config.base_url.startswith(("http://", "https://")):
        raise click.BadParameter("must be an absolute http(s) URL", param_hint="--base-url")
    return config


@contextmanager
def _user_errors() -> Iterator[None]:
    """FeedsvcError -> one line on stderr and exit status 1, no traceback."""
    try:
        yield
    except FeedsvcError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="feedsvc")
def main() -> None:
    """feedsvc: Atom feeds of gov.kz news, per organisation, ministry and topic."""


@main.command()
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
    from .pipeline import Pipeline, relax_garbage_collection

    relax_garbage_collection()  # a one-shot process: see there why
    with _user_errors():
        config = make_config(**options)
        setup_logging(config.log_level, config.log_json)
        started = time.monotonic()
        with ExitStack() as stack:
            for lock in owner_locks(config.db, config.out_dir):
                stack.enter_context(lock)
            pipeline = Pipeline(config, parallel=True)
            stack.callback(pipeline.close)
            report = pipeline.build(progress=_progress_bar)
        elapsed = time.monotonic() - started
    for failure in report.failed:
        click.echo(f"error: {failure.error}", err=True)
    click.echo(f"feedsvc build: {report.summary()} ({elapsed:.2f} s)", err=True)
    if not report.ok:
        sys.exit(1)


@main.command()
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

    with _user_errors():
        extra: dict[str, Any] = {"host": host, "port": port}
        if interval is not None:
            extra["file_interval"] = interval
            extra["govkz_interval"] = interval
        config = make_config(**options, **extra)
        setup_logging(config.log_level, config.log_json)
        # No base URL given anywhere: the feeds name the address actually served (port 0
        # becomes the port the system picked).
        run_daemon(config, base_url_from_socket=options.get("base_url") is None
                   and config.base_url == Config().base_url)


@main.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              default="feeds", show_default=True, help="Directory to serve.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to serve on (0 picks a free one).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True, help="Log verbosity.")
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False),
              help="The store the feeds were built from: also answer query feeds "
                   "(/query.atom?org=kgd&q=...) from it, read-only.")
def serve(out_dir: Path, host: str, port: int, log_level: str, db: Path | None) -> None:
    """Serve an already built output directory over HTTP (no scheduling, no building).

    \b
    Examples:
      feedsvc serve --out feeds --port 8080
      feedsvc serve --out feeds --db feedsvc.sqlite3   # with /query.atom, .rss, .json
    """
    from .serve import FeedServer, make_app

    setup_logging(log_level, False)
    if not out_dir.is_dir():
        raise click.ClickException(f"{out_dir}: no such directory; run 'feedsvc build' first")
    queries = None
    if db is not None:
        from .queryfeeds import QueryFeeds, static_site

        with _user_errors():
            queries = QueryFeeds(db, static_site(db))
    server = FeedServer(make_app(out_dir, queries=queries), host, port,
                        access_log=log_level == "debug")
    server.run()


@main.command("explain-topics")
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

    with _user_errors():
        config = load_config(config_path).with_overrides(db=db)
        filing = Filing.load(config)
        if filing.taxonomy is None:
            raise click.ClickException("topics are switched off in this configuration")
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
        raise click.ClickException(f"{target}: not a file, and there is no store at {config.db} "
                                   "to look it up in")
    keys = [target]
    link = parse_govkz_url(target)
    if link and link.news_id is not None:
        keys = [news_key_for(link.news_id, lang) for lang in (link.lang, *LANGUAGES) if lang]
    from .store import Store

    store = Store(config.db)
    try:
        for key in keys:
            found = store.find_item(key)
            if found is not None:
                return [(f"{found.atom_id}: {found.item.title}", found.item)]
    finally:
        store.close()
    raise click.ClickException(f"{target}: no such file, and no such item in {config.db}")


@main.group()
def registry() -> None:
    """The registry of gov.kz organisations (names, kinds, parents)."""


@registry.command("update")
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

    from .registry import load_registry
    from .sources.govkz import GovkzClient
    from .store import Store
    from .updates import merge_org_records

    with _user_errors():
        config = load_config(config_path).with_overrides(db=db)
        setup_logging(config.log_level, config.log_json)
        client = GovkzClient(config.govkz)
        from .sources.govkz import fetch_organisations

        records = [record for lang in (langs or LANGUAGES)
                   for record in fetch_organisations(client, lang)]
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
