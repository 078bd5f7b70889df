"""RateBudget on a fake clock: the rolling window, HubSpot's headers and the daily budget."""

from __future__ import annotations

import pytest

from fp_hubspot_assets.hubspot.endpoints import Bucket
from fp_hubspot_assets.hubspot.ratelimit import (
    FOREIGN_HEADROOM,
    FOREIGN_HOLD_WINDOWS,
    WINDOW_MARGIN,
    DailyLimitReached,
    RateBudget,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _budget(clock: Clock, per_window: int = 3, daily: int | None = None) -> RateBudget:
    return RateBudget(per_window, daily, window_seconds=10.0, clock=clock, sleep=clock.sleep)


def test_window_admits_the_limit_then_waits_for_the_oldest_to_leave() -> None:
    clock = Clock()
    budget = _budget(clock)
    for at in (0.0, 0.5, 1.0):
        clock.now = at
        budget.acquire(Bucket.standard)
    budget.acquire(Bucket.standard)  # the fourth waits until the first (t=0) leaves our slightly longer window
    assert clock.now == pytest.approx(10.0 * (1 + WINDOW_MARGIN))


def test_remaining_zero_waits_only_until_our_oldest_request_leaves() -> None:
    clock = Clock()
    budget = _budget(clock, per_window=100)
    for at in (0.0, 2.0):
        clock.now = at
        budget.acquire(Bucket.standard)
    clock.now = 2.1
    budget.observe({"X-HubSpot-RateLimit-Remaining": "0", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    assert budget.standard.wait_time() == pytest.approx(10.0 * (1 + WINDOW_MARGIN) - 2.1)


def test_remaining_zero_with_none_of_ours_in_the_window_waits_a_whole_interval() -> None:
    clock = Clock()
    budget = _budget(clock)
    clock.now = 50.0
    budget.observe({"x-hubspot-ratelimit-remaining": "0", "x-hubspot-ratelimit-interval-milliseconds": "10000"})
    assert budget.standard.wait_time() == pytest.approx(10.0)


def test_daily_budget_and_header_end_the_run() -> None:
    clock = Clock()
    budget = _budget(clock, per_window=100, daily=2)
    budget.acquire(Bucket.standard)
    budget.acquire(Bucket.associations)  # association batches count against the day (and the window)
    with pytest.raises(DailyLimitReached, match="run the sync again after"):
        budget.acquire(Bucket.standard)
    other = _budget(clock, per_window=100)
    other.observe({"X-HubSpot-RateLimit-Daily-Remaining": "0"})
    with pytest.raises(DailyLimitReached):
        other.acquire(Bucket.standard)


def test_search_has_its_own_per_second_window() -> None:
    clock = Clock()
    budget = RateBudget(100, None, search_per_second=5, clock=clock, sleep=clock.sleep)
    for _ in range(6):
        budget.acquire(Bucket.search)
    assert clock.now == pytest.approx(1.0)


def test_association_batches_spend_the_ten_second_window() -> None:
    clock = Clock()
    budget = _budget(clock)
    for _ in range(3):
        budget.acquire(Bucket.associations)
    budget.acquire(Bucket.standard)  # no HubSpot document exempts association batches: this one waits
    assert clock.now == pytest.approx(10.0 * (1 + WINDOW_MARGIN))


def test_max_header_sets_the_window_and_another_clients_share_is_left_free() -> None:
    clock = Clock()
    budget = _budget(clock, per_window=190)
    for _ in range(10):
        budget.acquire(Bucket.standard)
    # HubSpot, in two answers: 100 per 10 s for this app, 40 left: 60 used, only 10 of them ours.
    for _ in range(2):
        budget.observe({"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "40",
                        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    assert budget.standard.limit == 100 and budget.standard.foreign == 50
    for _ in range(40 - FOREIGN_HEADROOM):
        budget.acquire(Bucket.standard)
    assert clock.now == 0.0, "our 10 + their 50 + 39 more fit the window (one slot spare for them)"
    budget.acquire(Bucket.standard)
    assert clock.now > 10.0, "the 100th request of the window waits"
    # the other client went quiet: its share is held for a few windows, then comes back
    budget.observe({"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "99",
                    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    assert budget.standard.foreign == 50
    clock.now += FOREIGN_HOLD_WINDOWS * budget.window_seconds
    assert budget.standard.foreign == 0


def test_headers_of_a_shortened_window_are_scaled_to_ours() -> None:
    clock = Clock()
    budget = RateBudget(19, None, window_seconds=1.0, clock=clock, sleep=clock.sleep)
    budget.observe({"X-HubSpot-RateLimit-Max": "110", "X-HubSpot-RateLimit-Remaining": "110",
                    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    assert budget.standard.limit == 11


def test_daily_stop_names_the_accounts_midnight() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from fp_hubspot_assets.hubspot.ratelimit import next_midnight

    berlin = ZoneInfo("Europe/Berlin")
    # 23:30 UTC on 1 March is already 00:30 on 2 March in Berlin: the reset is midnight of 3 March there.
    assert next_midnight(berlin, datetime(2026, 3, 1, 23, 30, tzinfo=UTC)) == datetime(2026, 3, 3, tzinfo=berlin)
    assert next_midnight(UTC, datetime(2026, 3, 1, 23, 30, tzinfo=UTC)) == datetime(2026, 3, 2, tzinfo=UTC)
    assert "Europe/Berlin" in str(DailyLimitReached("spent", berlin))
