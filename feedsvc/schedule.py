"""The daemon's schedule: when each configured source is read again.

The first pass reads every source in one refresh, exactly as ``feedsvc build`` does (the same
workers, the same batching, the same result). After it, each configured entry has its own
APScheduler job, with its own interval and jitter, ``max_instances=1`` (a slow source never piles
up runs) and coalescing (a laptop waking up does not replay a backlog). Every job calls the one
refresh of :mod:`feedsvc.pipeline` for the sources its entry stands for now (a directory is
listed anew, so dropped-in files are picked up); the refresh stores and publishes through the
pipeline's single writer thread.

A failing source is retried sooner than its interval but with exponential backoff, and never
stops the other jobs.

The whole-portal source (``https://www.gov.kz``) is not in the first pass and has no interval:
after the first pass one job follows it (:class:`feedsvc.follow.Follower`), reading the streams
its planner says are due, within the gov.kz request budget, through the same refresh.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from .config import Config, SourceConfig
from .errors import ConfigError
from .kinds import KINDS, is_portal_link
from .pipeline import BuildReport, Pipeline
from .sources import Source

if TYPE_CHECKING:
    from .follow import Follower

log = logging.getLogger(__name__)

FIRST_PASS_JOB = "first-pass"
PORTAL_JOB = "portal"
#: The follower looks again at least this often (for streams a registry refresh adds).
PORTAL_IDLE_MAX = 60.0
#: When the follower, after reading, has nothing due for this long, the daemon gives back the
#: memory its reads filled (caches, SQLite's page cache; see Pipeline.release_memory).
PORTAL_IDLE_RELEASE = 30.0
#: Failure backoff: first retry after this long, doubling up to the source's own interval.
RETRY_BASE_SECONDS = 5.0


@dataclass(slots=True)
class _Backoff:
    failures: dict[str, int] = field(default_factory=dict)

    def delay(self, job_id: str, interval: float) -> float | None:
        """Seconds until a failed job's retry, or None once it is healthy again."""
        count = self.failures.get(job_id, 0)
        if count == 0:
            return None
        return min(interval, RETRY_BASE_SECONDS * 2 ** (count - 1))


def interval_for(config: Config, source: SourceConfig) -> float:
    """Seconds between reads of ``source``; refuses anything but a positive finite number,
    whoever built the configuration (a zero or negative interval would spin)."""
    interval = source.interval
    if interval is None:
        interval = getattr(config, KINDS[source.kind].interval_setting)
    if not (isinstance(interval, int | float) and math.isfinite(interval) and interval > 0):
        raise ConfigError(str(config.path or "configuration"),
                          f"{source.location}: the interval must be a positive number of "
                          f"seconds, not {interval!r}")
    return float(interval)


class Daemon:
    """Runs the pipeline's refresh on a schedule; the caller serves the output directory."""

    def __init__(self, config: Config, pipeline: Pipeline, *, max_workers: int = 8) -> None:
        self.config = config
        self.pipeline = pipeline
        self.backoff = _Backoff()
        self.first_pass_done = threading.Event()
        self.intervals = {job_id: interval_for(config, spec)
                          for job_id, spec in self._specs().items()}
        #: The whole-portal source (``https://www.gov.kz``), read by a Follower, not on an
        #: interval (feedsvc/follow.py); only the first such entry counts.
        self.portal = next((spec for spec in config.sources if _is_portal(spec)), None)
        self.follower: Follower | None = None
        self._stopping = threading.Event()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers)},
            job_defaults={"coalesce": True, "max_instances": 1},
        )

    def _specs(self) -> dict[str, SourceConfig]:
        return {f"source-{index}": spec for index, spec in enumerate(self.config.sources)
                if spec.enabled and not _is_portal(spec)}

    def start(self) -> None:
        """Publish what the store holds, then read every source once, now, in the background."""
        self.pipeline.health.started = False
        if self.portal is not None:  # the daemon before this one may have just used it up
            budget = getattr(self.pipeline.clients["govkz"].http, "budget", None)
            if budget is not None:
                budget.assume_full()
        self.pipeline.publish()  # the index and OPML are there before any source is read
        self.scheduler.add_job(self.first_pass, id=FIRST_PASS_JOB, name="first pass",
                               next_run_time=datetime.now(UTC), misfire_grace_time=None)
        self.scheduler.start()

    def first_pass(self) -> None:
        """Every source in one refresh, like ``feedsvc build``; then each gets its own job."""
        try:
            by_job = {job_id: self._expand(spec) for job_id, spec in self._specs().items()}
            report = self.pipeline.refresh([s for found in by_job.values() for s in found or ()])
            failed = {outcome.name for outcome in report.failed}
            for job_id, spec in self._specs().items():
                self._schedule(job_id, spec)
                found = by_job[job_id]
                self._after_run(job_id, spec,
                                found is None or any(s.name in failed for s in found))
            if self.portal is not None:
                self._start_follower(self.portal)
        finally:
            self.pipeline.health.started = True
            self.first_pass_done.set()

    def _start_follower(self, spec: SourceConfig) -> None:
        """The whole portal: one job that keeps reading the streams due, within the budget."""
        from .follow import Follower  # (imports the HTTP stack: only when it is configured)

        follower = Follower(self.pipeline, spec)
        follower.load()
        self.follower = follower
        self.scheduler.add_job(self.follow, id=PORTAL_JOB, name="the whole portal",
                               next_run_time=datetime.now(UTC), misfire_grace_time=None)

    def follow(self) -> None:
        """Runs until the daemon stops: each step reads what is due, then waits for more."""
        follower = self.follower
        assert follower is not None
        busy = False  # read something since memory was last released
        while not self._stopping.is_set():
            try:
                wait = follower.step()
            except Exception:  # a bug: keep following, a little later
                log.exception("portal.step_failed")
                wait = RETRY_BASE_SECONDS
            busy = busy or wait == 0
            if busy and wait >= PORTAL_IDLE_RELEASE:
                busy = False
                self.pipeline.release_memory()
            if wait > 0:
                self._stopping.wait(min(wait, PORTAL_IDLE_MAX))

    def _expand(self, spec: SourceConfig) -> list[Source] | None:
        try:
            return self.pipeline.sources([spec])
        except Exception:  # listing a directory: the job retries later
            log.exception("source.job_failed source=%s", spec.location)
            return None

    def _schedule(self, job_id: str, spec: SourceConfig) -> None:
        interval = self.intervals[job_id]
        self.scheduler.add_job(
            self.run_source, IntervalTrigger(seconds=interval,
                                             jitter=self.config.jitter * interval),
            args=[spec, job_id], id=job_id, name=spec.location,
            misfire_grace_time=max(1, int(interval)))
        log.info("schedule.source source=%s kind=%s interval=%.0fs", spec.location, spec.kind,
                 interval)

    def run_source(self, spec: SourceConfig, job_id: str) -> None:
        """One scheduled run of one configured entry (a directory: each of its files)."""
        try:
            report: BuildReport | None = self.pipeline.refresh(self.pipeline.sources([spec]))
        except Exception:  # listing a directory or a bug: keep the job alive
            log.exception("source.job_failed source=%s", spec.location)
            report = None
        self._after_run(job_id, spec, report is None or bool(report.failed))

    def _after_run(self, job_id: str, spec: SourceConfig, failed: bool) -> None:
        if failed:
            self.backoff.failures[job_id] = self.backoff.failures.get(job_id, 0) + 1
        else:
            self.backoff.failures.pop(job_id, None)
        delay = self.backoff.delay(job_id, self.intervals[job_id])
        if delay is not None:
            log.info("source.retry source=%s in=%.0fs failures=%d", spec.location, delay,
                     self.backoff.failures[job_id])
            self.scheduler.modify_job(job_id,
                                      next_run_time=datetime.now(UTC) + timedelta(seconds=delay))

    def stop(self) -> None:
        """Stop scheduling; a refresh under way finishes its current write on the writer."""
        self._stopping.set()
        self.scheduler.shutdown(wait=False)


def _is_portal(spec: SourceConfig) -> bool:
    return spec.enabled and spec.kind == "govkz" and is_portal_link(spec.location)
