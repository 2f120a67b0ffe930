"""The pure parts of following the whole portal: the request budget and the poll planner."""

from __future__ import annotations

import random

import pytest

from feedsvc.poller import (
    DAY,
    Planner,
    PollPolicy,
    RequestBudget,
    StreamStats,
    learn_history,
    max_in_window,
    rate,
)


class VirtualTime:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_budget_never_lets_more_than_its_limit_start_in_any_window() -> None:
    time = VirtualTime()
    budget = RequestBudget(10, 60.0, clock=time.clock, sleep=time.sleep)
    starts = []
    rng = random.Random(3)
    for _ in range(500):
        time.now += rng.choice([0.0, 0.0, 0.5, 3.0, 20.0])  # bursts and pauses
        budget.acquire()
        starts.append(time.now)
    assert max_in_window(starts, 60.0) == 10
    assert budget.granted == 500


def test_budget_waits_exactly_until_the_oldest_start_leaves_the_window() -> None:
    time = VirtualTime()
    budget = RequestBudget(2, 60.0, clock=time.clock, sleep=time.sleep)
    budget.acquire()
    time.now += 10
    budget.acquire()
    budget.acquire()  # third start: waits until the first is 60 s old
    assert time.slept == [50.0]
    assert budget.wait_for(time.now) == 10.0


def test_max_in_window_counts_half_open_windows() -> None:
    assert max_in_window([0.0, 59.9, 60.0, 119.9], 60.0) == 2
    assert max_in_window([0.0, 0.0, 0.0], 60.0) == 3
    assert max_in_window([], 60.0) == 0


def test_a_budget_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one request"):
        RequestBudget(0, 60.0, clock=lambda: 0.0, sleep=lambda s: None)


def test_history_of_a_busy_stream_gives_a_higher_rate_than_a_quiet_one() -> None:
    policy = PollPolicy()
    now = 100 * DAY
    busy = StreamStats("govkz:a:kk")
    learn_history(busy, now, [now - hour * 3600 for hour in range(100)], False, policy)
    quiet = StreamStats("govkz:b:kk")
    learn_history(quiet, now, [now - 10 * DAY, now - 20 * DAY], True, policy)
    silent = StreamStats("govkz:c:kk")
    learn_history(silent, now, [], True, policy)
    assert rate(busy, policy) * 3600 == pytest.approx(1.0, rel=0.2)  # about one an hour
    assert rate(silent, policy) < rate(quiet, policy) < rate(busy, policy) / 100


def planner_with(rates: dict[str, float], capacity: float = 0.1) -> tuple[Planner, float]:
    """A planner whose streams were each read once with ``rate`` items a day of history."""
    planner = Planner(PollPolicy(), requests_per_second=capacity)
    now = 200 * DAY
    for name, per_day in rates.items():
        planner.add(StreamStats(name))
        count = int(per_day * 30)
        history = [now - (k + 0.5) * DAY / per_day for k in range(count)] if per_day else []
        planner.polled(name, now, history=history, complete=True)
    return planner, now


def test_fitted_intervals_use_the_budget_share_and_follow_the_rate() -> None:
    rates = {f"govkz:o{n}:ru": per_day for n, per_day in
             enumerate([16.0, 4.0, 1.0, 0.25] + [0.0] * 200)}
    planner, now = planner_with(rates, capacity=0.005)
    planner.fit(now)
    assert planner.planned == pytest.approx(0.005 * planner.policy.poll_share, rel=0.01)
    hot, warm = (planner.interval(planner.streams[f"govkz:o{n}:ru"]) for n in (0, 1))
    exponent = planner.policy.exponent
    assert hot / warm == pytest.approx(4 ** -exponent, rel=0.1)  # 4x the rate
    dormant = planner.interval(planner.streams["govkz:o9:ru"])
    assert dormant > 10 * hot  # rarely, but not never


def test_intervals_stay_within_their_bounds() -> None:
    planner, now = planner_with({"govkz:a:ru": 500.0, "govkz:b:ru": 0.0}, capacity=100.0)
    planner.fit(now)
    for stats in planner.streams.values():
        assert planner.policy.min_interval <= planner.interval(stats) \
            <= planner.policy.max_interval


def test_new_items_bring_the_next_poll_closer_and_wake_the_sibling_languages() -> None:
    planner, now = planner_with({"govkz:a:kk": 1.0, "govkz:a:ru": 1.0, "govkz:b:ru": 1.0},
                                capacity=0.0005)
    planner.fit(now)
    later = now + 6 * 3600
    quiet = planner.polled("govkz:b:ru", later, new_items=0)
    busy = planner.polled("govkz:a:kk", later, new_items=1)
    assert busy.next_poll - later < quiet.next_poll - later
    assert planner.streams["govkz:a:ru"].urgent
    assert not planner.streams["govkz:b:ru"].urgent
    assert planner.due(later, 10)[0] == "govkz:a:ru"


def test_failures_push_a_stream_back_more_each_time() -> None:
    planner, now = planner_with({"govkz:a:ru": 1.0})
    delays = [planner.polled("govkz:a:ru", now, failed=True).next_poll - now for _ in range(3)]
    assert delays[0] < delays[1] < delays[2]
    assert planner.polled("govkz:a:ru", now).errors == 0


def test_due_orders_by_lateness_relative_to_the_interval() -> None:
    planner, now = planner_with({"govkz:hot:ru": 20.0, "govkz:cold:ru": 0.1}, capacity=0.001)
    planner.fit(now)
    hot, cold = planner.streams["govkz:hot:ru"], planner.streams["govkz:cold:ru"]
    later = max(hot.next_poll, cold.next_poll) + 60
    assert planner.due(later, 2) == ["govkz:hot:ru", "govkz:cold:ru"]
    assert planner.due(later, 1) == ["govkz:hot:ru"]
    assert planner.due(now, 5) == []


def test_backfill_keeps_a_share_of_every_batch_and_new_items_keep_flowing() -> None:
    planner, now = planner_with({f"govkz:r{n}:ru": 5.0 for n in range(40)})
    for n in range(100):
        planner.add(StreamStats(f"govkz:u{n}:ru"))
    late = now + 2 * DAY  # every read stream is overdue
    batch = planner.due(late, 20)
    unread = [name for name in batch if name.startswith("govkz:u")]
    assert len(unread) == 5 and len(batch) == 20


def test_next_due_is_now_when_something_is_urgent() -> None:
    planner, now = planner_with({"govkz:a:ru": 1.0})
    assert planner.next_due(now) > now
    planner.urge(["govkz:a:ru"])
    assert planner.next_due(now) == now
    assert Planner(PollPolicy(), 1.0).next_due(now) is None
