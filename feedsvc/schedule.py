"""The daemon's scheduler: one APScheduler job per configured source, one debounced regeneration.

Each source job reads its source (a directory is listed anew every time, so dropped-in files are
picked up) and stores what it brought; it never renders. When a job leaves feeds to re-render, it
asks for a regeneration a moment later; requests that arrive while one is already pending join
it, so ten sources finishing together cause one regeneration.

A failing source is retried sooner than its interval but with exponential backoff, never stops
the other jobs (each runs in its own worker thread, ``max_instances=1`` so a hanging one never
piles up), and shows in the health data.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from .config import Config, SourceConfig
from .pipeline import Pipeline

log = logging.getLogger(__name__)

REGENERATE_JOB = "regenerate"
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


class Daemon:
    """Runs the pipeline on a schedule; the caller serves the output directory."""

    def __init__(self, config: Config, pipeline: Pipeline, *, debounce: float = 1.0,
                 max_workers: int = 8) -> None:
        self.config = config
        self.pipeline = pipeline
        self.debounce = debounce
        self.backoff = _Backoff()
        self._regen_lock = threading.Lock()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers)},
            job_defaults={"coalesce": True, "max_instances": 1},
        )

    def interval_for(self, source: SourceConfig) -> float:
        if source.interval is not None:
            return source.interval
        return self.config.file_interval if source.kind == "file" else self.config.govkz_interval

    def start(self) -> None:
        """Schedule every enabled source to run now and then every interval."""
        self.pipeline.refresh_derived()
        now = datetime.now(UTC)
        for index, source in enumerate(self.config.sources):
            if not source.enabled:
                continue
            interval = self.interval_for(source)
            self.scheduler.add_job(
                self.run_source, IntervalTrigger(seconds=interval,
                                                 jitter=self.config.jitter * interval),
                args=[source, f"source-{index}"], id=f"source-{index}", name=source.location,
                next_run_time=now, misfire_grace_time=max(1, int(interval)),
            )
            log.info("schedule.source source=%s kind=%s interval=%.0fs", source.location,
                     source.kind, interval)
        self.scheduler.start()

    def run_source(self, source: SourceConfig, job_id: str) -> None:
        """One scheduled run of one configured source (a directory: each of its files)."""
        try:
            outcomes = [self.pipeline.ingest(s) for s in self.pipeline.sources_for(source)]
            failed = any(outcome.error for outcome in outcomes)
        except Exception:  # listing a directory or a bad link: keep the job alive
            log.exception("source.job_failed source=%s", source.location)
            failed = True
        self._after_run(job_id, source, failed)
        if self.pipeline.has_pending:
            self.request_regeneration()

    def _after_run(self, job_id: str, source: SourceConfig, failed: bool) -> None:
        if failed:
            self.backoff.failures[job_id] = self.backoff.failures.get(job_id, 0) + 1
        else:
            self.backoff.failures.pop(job_id, None)
        delay = self.backoff.delay(job_id, self.interval_for(source))
        if delay is not None:
            log.info("source.retry source=%s in=%.0fs failures=%d", source.location, delay,
                     self.backoff.failures[job_id])
            self.scheduler.modify_job(job_id,
                                      next_run_time=datetime.now(UTC) + timedelta(seconds=delay))

    def request_regeneration(self) -> None:
        """Regenerate soon; a request while one is pending joins it (debounce)."""
        with self._regen_lock:
            if self.scheduler.get_job(REGENERATE_JOB) is not None:
                return
            self.scheduler.add_job(
                self.regenerate, "date",
                run_date=datetime.now(UTC) + timedelta(seconds=self.debounce),
                id=REGENERATE_JOB, misfire_grace_time=None)

    def regenerate(self) -> None:
        try:
            self.pipeline.regenerate()
        except Exception:
            log.exception("publish.failed")

    def stop(self) -> None:
        """Stop scheduling; jobs under way finish their current store write (the store lock)."""
        self.scheduler.shutdown(wait=False)
        with self.pipeline.lock:
            pass
