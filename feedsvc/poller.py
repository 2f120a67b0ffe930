"""When to ask gov.kz about each stream, and how many requests it may receive: pure decisions.

A *stream* is one organisation in one language (``govkz:<slug>:<lang>``). Following the whole
portal means 6,183 of them on one host, far more than fixed intervals can serve within a polite
budget, and most of them publish once a month. So, as Miniflux's entry-frequency scheduler does,
each stream's next poll follows what it has shown:

- :func:`rate` is a time-decayed estimate of new items per second (half-life ``half_life``),
  with a weak prior so a stream that never published is still looked at now and then. A first
  read (the backfill) seeds it from the publication dates it brought (:func:`learn_history`);
  every later poll adds what it found over the time since the previous one (:func:`learn_poll`).
- :meth:`Planner.fit` spreads the polls the budget allows over the streams (interval ∝
  rate^-0.4: near the square-root rule, which minimises the mean delay of an item for a given
  number of polls, a little flatter for a shorter tail), clamped between ``min_interval`` and
  ``max_interval``.
- A stream that just published is looked at again sooner (``recheck``) and its sibling
  languages at once (a story is usually published in several languages together); a failure
  pushes a stream back, doubling with each failure in a row.
- :meth:`Planner.due` picks what to read now: streams someone asked for first (a sibling, the
  cross-organisation listing), then the most overdue relative to their interval; streams never
  read (the backfill) keep a fixed share of every batch, so a first run of the whole portal
  keeps new items flowing while it works through the backlog.

:class:`RequestBudget` is the hard limit: at most ``limit`` requests start in any window of
``window`` seconds, whoever sends them (tickets and retries included). Every function takes
``now``; the budget takes its clock and its sleep, so tests and the simulation run on a virtual
clock.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

Clock = Callable[[], float]
Sleep = Callable[[float], None]
DAY = 86_400.0


# --- the budget ------------------------------------------------------------------------------

class RequestBudget:
    """At most ``limit`` request starts in any half-open window ``[t, t + window)``.

    :meth:`acquire` waits (with the injected ``sleep``) until one more start keeps that true,
    then records it. Thread-safe; the waiting happens under the lock, so starts are granted in
    order.
    """

    starts: deque[float]

    def __init__(self, limit: int, window: float = 60.0, *, clock: Clock,
                 sleep: Sleep) -> None:
        if limit < 1 or not window > 0:
            raise ValueError(f"a budget needs at least one request per window, not "
                             f"{limit} per {window} s")
        self.limit = limit
        self.window = float(window)
        self._clock = clock
        self._sleep = sleep
        self.starts: deque[float] = deque()
        self._lock = threading.Lock()
        self.granted = 0

    def assume_full(self) -> None:
        """Start as if the window had just been used up: a process that starts does not know
        what the one before it sent in the last window (a restarted daemon waits one window
        before its first request rather than risk a burst)."""
        with self._lock:
            now = self._clock()
            self.starts.extend([now] * (self.limit - len(self.starts)))

    def wait_for(self, now: float) -> float:
        """Seconds from ``now`` until one more start is allowed (0: at once)."""
        starts = self.starts
        while starts and starts[0] + self.window <= now:
            starts.popleft()
        if len(starts) < self.limit:
            return 0.0
        return starts[0] + self.window - now

    def used(self) -> int:
        """Starts in the window ending now (for ``/healthz``; any thread)."""
        since = self._clock() - self.window
        return sum(1 for moment in list(self.starts) if moment > since)

    def acquire(self) -> None:
        """Wait for a slot, then take it. The start is recorded no earlier than the slot
        opens, even if ``sleep`` returned early (a test's sleep that does not wait), so the
        record never shows more than ``limit`` starts in a window."""
        with self._lock:
            now = self._clock()
            delay = self.wait_for(now)
            if delay > 0:
                self._sleep(delay)
            self.starts.append(max(self._clock(), now + delay))
            self.granted += 1


def max_in_window(starts: Iterable[float], window: float) -> int:
    """The most starts found in any half-open window of ``window`` seconds (for checking)."""
    times = sorted(starts)
    most = 0
    left = 0
    for right, moment in enumerate(times):
        while times[left] + window <= moment:
            left += 1
        most = max(most, right - left + 1)
    return most


# --- what a stream has shown -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PollPolicy:
    min_interval: float = 300.0
    max_interval: float = DAY
    #: How fast old observations fade from the rate estimate.
    half_life: float = 14 * DAY
    #: The least rate any stream is credited with (one item in 120 days): a stream that never
    #: published is still looked at now and then.
    floor_rate: float = 1 / (120 * DAY)
    #: Observations shorter than this are stretched to it (one early item is no torrent).
    min_span: float = 3600.0
    #: After new items, the next poll comes after this fraction of the stream's interval.
    recheck: float = 0.5
    #: Share of every batch kept for streams never read while there are some.
    backfill_share: float = 0.25
    #: Share of the budget the fitted intervals plan for (the rest absorbs the backfill,
    #: rechecks, siblings, retries and the registry).
    poll_share: float = 0.9
    #: interval ∝ rate ** -exponent. 0.5 (the square-root rule) minimises the mean delay; a
    #: smaller one spreads polls more evenly, which shortens the tail: in the simulation of
    #: benchmarks/portal_sim.py on a quarter of the portal at a quarter of the budget, 0.4
    #: gave p50 9.3 and p95 34.9 minutes, 0.5 p50 5.6 and p95 45.2; the p95 is the harder
    #: target. (The whole portal at 1 request/s, with 0.4: p50 9.6, p95 42.3.)
    exponent: float = 0.4
    #: While streams remain unread, the fitted intervals plan for this share only.
    poll_share_backfilling: float = 0.5


@dataclass(slots=True)
class StreamStats:
    """What the planner knows of one stream; persisted in the store (``poll_stats``)."""

    name: str
    last_poll: float | None = None  # seconds since 1970
    next_poll: float = 0.0
    events: float = 0.0  # time-decayed count of new items seen
    span: float = 0.0  # time-decayed seconds observed
    errors: int = 0
    last_new: float | None = None
    #: Transient: someone (a sibling, the listing) asked for this stream to be read now.
    urgent: bool = field(default=False, compare=False)


def rate(stats: StreamStats, policy: PollPolicy) -> float:
    """Estimated new items per second."""
    return max(policy.floor_rate, stats.events / max(stats.span, policy.min_span))


def _decay(seconds: float, policy: PollPolicy) -> float:
    return 0.5 ** (max(0.0, seconds) / policy.half_life)


def learn_history(stats: StreamStats, now: float, published: Iterable[float],
                  complete: bool, policy: PollPolicy) -> None:
    """Seed the estimate from a first read's publication dates.

    ``complete``: the read saw the stream's whole history (fewer items than it asked for), so
    the observed period is the whole horizon; otherwise it began at the oldest item read.
    """
    horizon = 4 * policy.half_life
    ages = sorted(min(horizon, max(0.0, now - moment)) for moment in published)
    observed = horizon if complete or not ages else max(ages[-1], policy.min_interval)
    decay_constant = policy.half_life / math.log(2)
    stats.events = sum(_decay(age, policy) for age in ages if age <= observed)
    stats.span = decay_constant * (1 - _decay(observed, policy))
    stats.last_new = now - ages[0] if ages else stats.last_new


def learn_poll(stats: StreamStats, now: float, new_items: int, policy: PollPolicy) -> None:
    """Add one later poll: ``new_items`` found over the time since the previous poll."""
    elapsed = 0.0 if stats.last_poll is None else max(0.0, now - stats.last_poll)
    weight = _decay(elapsed, policy)
    stats.events = stats.events * weight + new_items
    stats.span = stats.span * weight + elapsed
    if new_items:
        stats.last_new = now


# --- the planner -----------------------------------------------------------------------------

def group_of(name: str) -> str:
    """The organisation of a stream name (``govkz:<slug>:<lang>`` -> ``govkz:<slug>``)."""
    return name.rpartition(":")[0]


class Planner:
    """Decides which streams are due and when each is polled next. No I/O, no clock."""

    def __init__(self, policy: PollPolicy, requests_per_second: float) -> None:
        self.policy = policy
        self.requests_per_second = requests_per_second
        self.streams: dict[str, StreamStats] = {}
        self._groups: dict[str, list[str]] = {}
        self._scale = 0.0  # interval = scale / rate ** exponent
        self._fitted_at: float | None = None
        #: Polls per second the fitted intervals plan for (for logs and health).
        self.planned = 0.0
        #: Fixed interval instead of the fitted ones (the cross-organisation listing finds new
        #: items; per-stream polls are then a safety net).
        self.fixed_interval: float | None = None

    # --- the set of streams --------------------------------------------------------------

    def add(self, stats: StreamStats) -> None:
        if stats.name in self.streams:
            return
        self.streams[stats.name] = stats
        self._groups.setdefault(group_of(stats.name), []).append(stats.name)
        self._fitted_at = None

    def keep_only(self, names: set[str]) -> None:
        """Forget streams no longer configured (a narrowed allow list)."""
        for name in [n for n in self.streams if n not in names]:
            del self.streams[name]
            self._groups[group_of(name)].remove(name)
        self._fitted_at = None

    def unread(self) -> int:
        """Streams never polled. Called from ``/healthz``'s thread while a registry refresh
        may add streams: the dict is copied in one step (atomic under the GIL) before the
        count, which would otherwise fail with "dictionary changed size during iteration"."""
        return sum(1 for stats in list(self.streams.values()) if stats.last_poll is None)

    # --- intervals ------------------------------------------------------------------------

    def interval(self, stats: StreamStats) -> float:
        policy = self.policy
        if self.fixed_interval is not None:
            return self.fixed_interval
        if self._scale <= 0:
            return policy.min_interval
        wanted = self._scale / rate(stats, policy) ** policy.exponent
        return min(policy.max_interval, max(policy.min_interval, wanted))

    def fit(self, now: float, capacity: float | None = None) -> None:
        """Choose the scale so that the polls planned use the budget's share.

        ``capacity``: polls per second to plan for (default: the share of the budget).
        """
        policy = self.policy
        if capacity is None:
            share = policy.poll_share_backfilling if self.unread() else policy.poll_share
            capacity = self.requests_per_second * share
        roots = [rate(s, policy) ** policy.exponent for s in self.streams.values()
                 if s.last_poll is not None]
        self._fitted_at = now
        if not roots:
            self._scale, self.planned = 0.0, 0.0
            return

        def demand(scale: float) -> float:
            return sum(1 / min(policy.max_interval, max(policy.min_interval, scale / root))
                       for root in roots)

        if demand(0.0) <= capacity:  # even all at the minimum interval fits
            self._scale = 0.0
            self.planned = demand(0.0)
            return
        low, high = 0.0, 1.0
        while demand(high) > capacity and high < 1e12:
            high *= 2
        for _ in range(50):
            middle = (low + high) / 2
            if demand(middle) > capacity:
                low = middle
            else:
                high = middle
        self._scale = high
        self.planned = demand(high)

    def _refit_if_stale(self, now: float) -> None:
        if self._fitted_at is None or now - self._fitted_at >= self.policy.min_interval:
            self.fit(now)

    # --- decisions ------------------------------------------------------------------------

    def due(self, now: float, limit: int) -> list[str]:
        """Up to ``limit`` streams to read now, most pressing first."""
        self._refit_if_stale(now)
        read: list[tuple[tuple[int, float], str]] = []
        unread: list[str] = []
        for stats in self.streams.values():
            if stats.next_poll > now and not stats.urgent:
                continue
            if stats.last_poll is None and not stats.urgent:
                unread.append(stats.name)
                continue
            lateness = (now - stats.next_poll) / self.interval(stats)
            read.append(((0 if stats.urgent else 1, -lateness), stats.name))
        read.sort()
        reserved = min(len(unread), max(1, int(limit * self.policy.backfill_share))) \
            if unread else 0
        chosen = [name for _, name in read[:limit - reserved]]
        chosen += unread[:limit - len(chosen)]  # the registry's order: stable across runs
        return chosen

    def next_due(self, now: float) -> float | None:
        """When the next stream falls due (``now`` if one already is); None if none is known."""
        if not self.streams:
            return None
        moments = (now if stats.urgent else stats.next_poll for stats in self.streams.values())
        return max(now, min(moments))

    def reschedule(self, now: float) -> None:
        """Bring every read stream's next poll within its (re)fitted interval: after the
        cross-organisation listing stopped working, streams waiting for their safety poll are
        polled on their own again."""
        for stats in self.streams.values():
            if stats.last_poll is not None:
                stats.next_poll = min(stats.next_poll,
                                      max(now, stats.last_poll + self.interval(stats)))

    def urge(self, names: Iterable[str]) -> None:
        """Read these streams as soon as possible."""
        for name in names:
            stats = self.streams.get(name)
            if stats is not None:
                stats.urgent = True

    def polled(self, name: str, now: float, *, new_items: int = 0,
               history: list[float] | None = None, complete: bool = False,
               failed: bool = False) -> StreamStats:
        """Record one poll's outcome and plan the stream's next one.

        ``history``: a first read's publication dates (seeds the estimate); ``new_items``: what
        a later read found.
        """
        stats = self.streams[name]
        policy = self.policy
        stats.urgent = False
        if failed:
            stats.errors += 1
            push = self.interval(stats) * 2 ** min(stats.errors, 10)
            stats.next_poll = now + min(policy.max_interval, max(policy.min_interval, push))
            return stats
        first = stats.last_poll is None
        if first:
            learn_history(stats, now, history or [], complete, policy)
        else:
            learn_poll(stats, now, new_items, policy)
        stats.last_poll = now
        stats.errors = 0
        interval = self.interval(stats)
        found = bool(history) if first else new_items > 0
        if found and stats.last_new is not None and now - stats.last_new < interval:
            interval = max(policy.min_interval, interval * policy.recheck)
            if not first and self.fixed_interval is None:  # (the listing names them)
                self.urge(n for n in self._groups[group_of(name)] if n != name
                          and self.streams[n].last_poll is not None)
        stats.next_poll = now + interval
        return stats
