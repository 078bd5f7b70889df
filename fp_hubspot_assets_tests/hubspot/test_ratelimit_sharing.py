"""RateBudget beside another client of the same HubSpot budget, on a fake clock: which requests the budget
admits after given rate-limit headers (decisions only, never how long anything took)."""

from __future__ import annotations

from fp_hubspot_assets.hubspot.endpoints import Bucket
from fp_hubspot_assets.hubspot.ratelimit import (
    FOREIGN_HEADROOM,
    FOREIGN_HOLD_WINDOWS,
    WINDOW_MARGIN,
    RateBudget,
)

WINDOW = 1.0
LIMIT = 19  # Professional's 190 per 10 s over a 1-s window


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _budget(clock: Clock) -> RateBudget:
    return RateBudget(LIMIT, None, window_seconds=WINDOW, clock=clock, sleep=clock.sleep)


def _headers(remaining: int, most: int = LIMIT) -> dict[str, str]:
    return {"X-HubSpot-RateLimit-Max": str(most), "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(WINDOW * 1000))}


def _admitted_now(budget: RateBudget, clock: Clock) -> int:
    """How many more requests start before the clock has to move."""
    at, admitted = clock.now, 0
    while True:
        budget.acquire(Bucket.standard)
        if clock.now != at:
            return admitted
        admitted += 1


def test_alone_the_whole_window_is_ours() -> None:
    clock = Clock()
    budget = _budget(clock)
    first = budget.acquire(Bucket.standard)
    budget.observe(_headers(LIMIT - 1), first)
    assert budget.standard.foreign == 0
    assert _admitted_now(budget, clock) == LIMIT - 1


def test_requests_still_on_their_way_are_not_counted_as_ours() -> None:
    """Four of ours in flight; the answers to the first two say 6 and 7 used: 1 and 2 ours, 5 another client's —
    the ones started after them had not reached HubSpot yet."""
    clock = Clock()
    budget = _budget(clock)
    starts = []
    for at in (0.0, 0.01, 0.02, 0.03):
        clock.now = at
        starts.append(budget.acquire(Bucket.standard))
    clock.now = 0.1
    budget.observe(_headers(LIMIT - 6), starts[0])
    budget.observe(_headers(LIMIT - 7), starts[1])
    assert budget.standard.foreign == 5
    assert _admitted_now(budget, clock) == LIMIT - 5 - 4 - FOREIGN_HEADROOM, "our 4 + their 5 (+ a spare slot)"


def test_one_answer_alone_reserves_nothing() -> None:
    """A request of ours that reached HubSpot after the one started next makes one answer show a slot ours do
    not explain; a second answer showing another client is needed before its share is reserved."""
    clock = Clock()
    budget = _budget(clock)
    first = budget.acquire(Bucket.standard)
    budget.observe(_headers(LIMIT - 2), first)  # 2 used, 1 ours
    assert budget.standard.foreign == 0
    assert _admitted_now(budget, clock) == LIMIT - 1
    clock.now = 0.5
    second = budget.acquire(Bucket.standard)
    budget.observe(_headers(LIMIT - 3), second)  # still one slot not ours: another client is there
    assert budget.standard.foreign == 1


def test_an_answer_read_after_its_request_left_our_window_still_counts_the_requests_before_it() -> None:
    clock = Clock()
    budget = _budget(clock)
    starts = []
    for i in range(10):
        clock.now = 0.05 * i
        starts.append(budget.acquire(Bucket.standard))
    clock.now = 2.0  # the answer to the last one arrives late: all ten have left our window by now
    budget.observe(_headers(LIMIT - 10), starts[-1])
    assert budget.standard.foreign == 0, "HubSpot's 10 used were all ours"


def test_another_clients_share_is_held_for_a_few_windows_then_returned() -> None:
    clock = Clock()
    budget = _budget(clock)
    for used in (7, 8):  # two answers: 7 used with 1 ours, 8 with 2 ours — another client holds 6
        started = budget.acquire(Bucket.standard)
        budget.observe(_headers(LIMIT - used), started)
    assert budget.standard.foreign == 6
    # one answer later it happens to hold fewer (an evenly paced client fills each window a little differently):
    # its largest recent share stays reserved
    clock.now = 0.5
    started = budget.acquire(Bucket.standard)
    budget.observe(_headers(LIMIT - 4), started)
    assert budget.standard.foreign == 6
    clock.now = 3 * WINDOW
    assert _admitted_now(budget, clock) == LIMIT - 6 - FOREIGN_HEADROOM
    # it went quiet: after the hold its share comes back
    clock.now += FOREIGN_HOLD_WINDOWS * WINDOW * (1 + WINDOW_MARGIN) + 0.01
    assert budget.standard.foreign == 0
    assert _admitted_now(budget, clock) == LIMIT


def test_a_429_reserves_what_our_requests_do_not_explain() -> None:
    """A refused request did not take a slot at HubSpot: the full window holds our earlier 12 and 7 of another
    client's."""
    clock = Clock()
    budget = _budget(clock)
    for i in range(12):
        clock.now = 0.01 * i
        budget.acquire(Bucket.standard)
    refused = budget.acquire(Bucket.standard)
    budget.observe(_headers(0), refused, refused=True)
    assert budget.standard.foreign == 7
    clock.now = 2.5  # our requests have left the window; the reservation has not
    assert _admitted_now(budget, clock) == LIMIT - 7 - FOREIGN_HEADROOM


def test_a_full_window_of_another_client_still_lets_one_of_ours_through_per_window() -> None:
    clock = Clock()
    budget = _budget(clock)
    started = budget.acquire(Bucket.standard)
    budget.observe(_headers(0), started, refused=True)
    assert budget.standard.foreign == LIMIT
    clock.now = 2.0
    assert _admitted_now(budget, clock) == 1, "never starved: one request per window keeps the run alive"
