"""``feedsvc daemon``: own the store, schedule the sources, serve the feeds, stop cleanly.

Start-up order: take the owner locks (a second daemon on the same store or output directory
refuses to start), serve what is already published (so subscribers never see an outage while
sources are read), open the store and wire the pipeline, publish the index and OPML, then read
every source once and schedule each. ``/healthz`` says "starting" until that first pass is
done. SIGTERM/SIGINT stop the scheduler, let the store's writer thread finish the write or
publication under way, close the store and exit 0. Writes are transactions and files are
renamed into place, so a stop at any moment leaves the store consistent and no half-written
file.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from contextlib import ExitStack
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

from .config import Config
from .health import PortalRule, PortalView
from .lock import owner_locks
from .pipeline import make_pipeline
from .schedule import Daemon

if TYPE_CHECKING:
    from .follow import Follower

log = logging.getLogger(__name__)


def portal_view(follower: Follower, config: Config) -> PortalView:
    """What ``/healthz`` shows of the whole portal, read from the follower (another thread:
    the streams are copied in one step, as the registry refresh may add some meanwhile)."""
    portal = config.portal
    return PortalView(
        streams=set(follower.planner.streams), description=follower.describe(),
        since=datetime.fromtimestamp(follower.started, UTC),
        listing_ok=None if follower.listing_ok is None
        else datetime.fromtimestamp(follower.listing_ok, UTC),
        rule=PortalRule(portal.health_window, portal.health_failing_share,
                        portal.health_stale_after))


def run_daemon(config: Config, *, base_url_from_socket: bool = False) -> None:
    """Run until SIGTERM or SIGINT; raises FeedsvcError for start-up problems.

    ``base_url_from_socket``: no base URL was given, so the feeds name the address the server
    actually listens on (port 0 becomes the port the system picked).
    """
    from .queryfeeds import QueryFeeds, pipeline_site
    from .serve import FeedServer, make_app

    stop = threading.Event()
    running: dict[str, Any] = {}

    def on_signal(number: int, _frame: FrameType | None) -> None:
        log.info("daemon.signal signal=%s", signal.Signals(number).name)
        stop.set()

    def health() -> dict[str, Any]:
        pipeline = running.get("pipeline")
        if pipeline is None:
            return {"status": "starting", "sources": {}}
        follower = getattr(running.get("daemon"), "follower", None)
        if follower is None:
            return pipeline.health.snapshot()
        return pipeline.health.snapshot(portal_view(follower, config), datetime.now(UTC))

    with ExitStack() as stack:
        for lock in owner_locks(config.db, config.out_dir):
            stack.enter_context(lock)
        config.out_dir.mkdir(parents=True, exist_ok=True)
        queries = QueryFeeds(config.db, pipeline_site(lambda: running.get("pipeline")))
        server = FeedServer(make_app(config.out_dir, health=health, queries=queries),
                            config.host, config.port, access_log=config.log_level == "debug")
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        server.start()
        stack.callback(server.stop)
        if base_url_from_socket:
            host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
            config = config.with_overrides(base_url=f"http://{host}:{server.port}/")
        pipeline = make_pipeline(config, parallel=True)
        stack.callback(pipeline.close)
        running["pipeline"] = pipeline
        daemon = Daemon(config, pipeline)
        running["daemon"] = daemon
        daemon.start()
        stack.callback(daemon.stop)
        log.info("daemon.started url=http://%s:%d/ out=%s db=%s sources=%d", config.host,
                 server.port, config.out_dir, config.db, len(config.sources))
        while not stop.wait(1.0):
            pass
        log.info("daemon.stopping")
    log.info("daemon.stopped")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Worker threads still blocked in a network read (bounded by its timeout, but possibly
    # minutes) would hold up interpreter exit; everything durable is already closed above.
    os._exit(0)
