"""One rate budget per HubSpot account, shared by every thread of a run.

A sliding window for the 10-second budget, a counter for the daily one, a separate per-second window for
search, and the rate-limit headers HubSpot sends back: ``-Max`` replaces our idea of the window's size,
and another client spending the same budget shows up as a lower ``-Remaining`` than our own requests
explain, so we leave its share free — the largest share seen (in two answers at least) over the last few
windows, because a client paced evenly fills each window a little differently and a share read from one answer
is already out of date when the next request goes. Every request but search and OAuth spends the 10-second window
(association batches included: no HubSpot document exempts them). The daily budget resets at midnight in
the account's time zone.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo

from fp_hubspot_assets.hubspot.endpoints import SEARCH_REQUESTS_PER_SECOND, TEN_SECONDS, Bucket

WINDOW_MARGIN = 0.02
FOREIGN_HOLD_WINDOWS = 3  # how long another client's observed share stays reserved for it
FOREIGN_HEADROOM = 1  # slots left free beyond that share while another client is seen
DAILY_LOW = 1000  # daily requests left when the account's time zone is worth a request


def next_midnight(zone: tzinfo = UTC, now: datetime | None = None) -> datetime:
    """The next midnight in ``zone`` (HubSpot resets an account's daily budget then)."""
    local = (now or datetime.now(UTC)).astimezone(zone)
    return datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=zone)


class DailyLimitReached(RuntimeError):
    """The account's daily budget is spent: the run must stop cleanly and resume after midnight in the
    account's time zone."""

    def __init__(self, detail: str = "", zone: tzinfo = UTC) -> None:
        self.detail = detail
        resume = next_midnight(zone)
        self.resume_at = resume
        super().__init__(
            f"HubSpot's daily API limit is reached{': ' + detail if detail else ''}. Nothing was lost: "
            f"run the sync again after {resume:%Y-%m-%d %H:%M} {getattr(zone, 'key', None) or resume.tzname()} "
            "(midnight in the HubSpot account's time zone) and it continues where it stopped."
        )


class _Window:
    """At most ``limit`` acquisitions in any ``seconds``-long window (thread-safe), less what another client of
    the same budget was seen to use over the last ``FOREIGN_HOLD_WINDOWS`` windows."""

    def __init__(self, limit: int, seconds: float, clock: Callable[[], float]) -> None:
        self.limit, self.seconds, self._clock = limit, seconds, clock
        # Our start times, oldest first, kept for two windows: an answer read after its request left our
        # window still needs the requests HubSpot counted when it admitted that one.
        self._starts: list[float] = []
        self.blocked_until = 0.0
        # (when seen, slots another client held in HubSpot's window then), oldest first
        self._foreign_seen: deque[tuple[float, int]] = deque()

    def _in_window(self, now: float) -> list[float]:
        """Our starts still in the window at ``now`` (drops those too old to matter again)."""
        if self._starts and self._starts[0] <= now - 2 * self.seconds:
            del self._starts[: bisect_right(self._starts, now - 2 * self.seconds)]
        while self._foreign_seen and self._foreign_seen[0][0] <= now - self.seconds * FOREIGN_HOLD_WINDOWS:
            self._foreign_seen.popleft()
        return self._starts[bisect_right(self._starts, now - self.seconds):]

    def oldest(self) -> float | None:
        """The start of our oldest request still in the window."""
        current = self._in_window(self._clock())
        return current[0] if current else None

    @property
    def foreign(self) -> int:
        """Slots left to another client: the most it held in at least two answers of the last few windows. One
        answer alone is not enough: a request of ours that reached HubSpot later than the ones after it makes a
        single answer show a slot ours do not explain (a 429 counts twice: HubSpot did refuse)."""
        self._in_window(self._clock())
        seen = sorted((n for _at, n in self._foreign_seen), reverse=True)
        return seen[1] if len(seen) > 1 else 0

    @property
    def allowed(self) -> int:
        """How many of our requests the window admits now. Beside another client one more slot stays free: its
        pace varies (a poller catching up after a pause sends a burst), and its next request must not be the
        one that makes ours a 429."""
        foreign = self.foreign
        return max(1, self.limit - foreign - (FOREIGN_HEADROOM if foreign else 0))

    def ours_up_to(self, started: float) -> int:
        """Our requests HubSpot may still count when it admits one we started at ``started``: those started in
        the window before it (ours is longer than HubSpot's, so this leans to more of ours, less foreign)."""
        return bisect_right(self._starts, started) - bisect_right(self._starts, started - self.seconds)

    def see_foreign(self, slots: int, refused: bool = False) -> None:
        if slots > 0:
            now = self._clock()
            self._foreign_seen.extend([(now, slots)] * (2 if refused else 1))

    def wait_time(self) -> float:
        now = self._clock()
        current = self._in_window(now)
        wait = max(0.0, self.blocked_until - now)
        allowed = self.allowed
        if len(current) >= allowed:
            # the next slot frees when enough of ours have left for one more to fit
            wait = max(wait, current[len(current) - allowed] + self.seconds - now)
        return wait

    def take(self) -> float:
        now = self._clock()
        if self._starts and now < self._starts[-1]:
            now = self._starts[-1]  # keep the list ordered whatever the clock does
        self._starts.append(now)
        return now


class RateBudget:
    def __init__(
        self,
        per_window: int,
        daily: int | None,
        window_seconds: float = TEN_SECONDS,
        search_per_second: int = SEARCH_REQUESTS_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = WINDOW_MARGIN,
    ) -> None:
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep
        # Our window is a little longer than HubSpot's: room for the time between taking a slot here and the
        # request reaching HubSpot, so network jitter does not turn into 429s.
        self.standard = _Window(per_window, window_seconds * (1 + margin), clock)
        self.base_window = window_seconds
        self.search = _Window(search_per_second, 1.0, clock)
        self.daily_limit = daily
        self.daily_used = 0
        self.daily_remaining: int | None = None
        self.waited_seconds = 0.0
        # The account's time zone (account-info API, read once by the client); the daily count restarts
        # at its midnight.
        self.time_zone: tzinfo = UTC
        self.time_zone_read = False
        self._day = self._today()

    def _today(self) -> object:
        return datetime.now(UTC).astimezone(self.time_zone).date()

    def wants_time_zone(self) -> bool:
        """Whether the account's time zone matters yet: once, when the day's budget nears its end (the
        resume time of a stop and the next reset depend on it), so ordinary runs spend no request on it."""
        if self.time_zone_read:
            return False
        low = self.daily_remaining is not None and self.daily_remaining <= DAILY_LOW
        near = self.daily_limit is not None and self.daily_used >= self.daily_limit * 0.9
        return low or near

    def set_time_zone(self, zone: tzinfo) -> None:
        with self._lock:
            self.time_zone_read = True
            self.time_zone = zone
            self._day = self._today()

    @property
    def window_seconds(self) -> float:
        return self.standard.seconds

    def acquire(self, bucket: Bucket) -> float | None:
        """Block until a request in ``bucket`` may start; raise DailyLimitReached when the day is spent.
        Returns the slot's start time in the 10-second window (for ``observe``), None outside it."""
        if bucket is Bucket.oauth:
            return None
        window = self.search if bucket is Bucket.search else self.standard
        while True:
            with self._lock:
                if (today := self._today()) != self._day:
                    self._day, self.daily_used, self.daily_remaining = today, 0, None
                if self.daily_remaining is not None and self.daily_remaining <= 0:
                    raise DailyLimitReached("HubSpot reports 0 daily requests remaining", self.time_zone)
                if self.daily_limit is not None and self.daily_used >= self.daily_limit:
                    raise DailyLimitReached(f"this run's daily budget of {self.daily_limit} requests is used",
                                            self.time_zone)
                wait = window.wait_time()
                if wait <= 0:
                    started = window.take()
                    self.daily_used += 1
                    return started if window is self.standard else None
            self.waited_seconds += wait
            self._sleep(min(wait, 1.0))

    def observe(self, headers: Mapping[str, str] | None, started: float | None = None,
                refused: bool = False) -> None:
        """Read HubSpot's rate-limit headers of the answer to a request that took its slot at ``started`` (what
        ``acquire`` returned; ``refused`` for a 429): ``-Max`` (per ``-Interval-Milliseconds``) sets the window's
        size, used slots our own requests up to that one do not explain are another client's and are left to
        it for a few windows, and an exhausted window blocks everyone until it rolls over."""
        if not headers:
            return
        lower = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            remaining = _int(lower.get("x-hubspot-ratelimit-remaining"))
            most = _int(lower.get("x-hubspot-ratelimit-max"))
            window = self.standard
            if most is not None and most > 0:
                interval = _int(lower.get("x-hubspot-ratelimit-interval-milliseconds"))
                scale = self.base_window / (interval / 1000) if interval else 1.0
                window.limit = max(1, round(most * scale))
                if remaining is not None:
                    # HubSpot counted ours started before this one (and this one, unless it was refused);
                    # those started after it were still on their way.
                    ours = window.ours_up_to(started if started is not None else self._clock())
                    if refused and started is not None:
                        ours -= 1
                    window.see_foreign(round((most - remaining) * scale) - ours, refused)
            if remaining is not None and remaining <= 0:
                # The window is full: the next slot frees when our oldest request in it leaves (HubSpot's window
                # rolls too). With none of ours in it, another client filled it: wait a whole interval.
                interval = _int(lower.get("x-hubspot-ratelimit-interval-milliseconds"))
                seconds = interval / 1000 if interval else window.seconds
                oldest = window.oldest()
                until = oldest + window.seconds if oldest is not None else self._clock() + seconds
                window.blocked_until = max(window.blocked_until, until)
            daily_remaining = _int(lower.get("x-hubspot-ratelimit-daily-remaining"))
            if daily_remaining is not None:
                self.daily_remaining = daily_remaining

    def penalize(self, bucket: Bucket, headers: Mapping[str, str] | None = None) -> None:
        """A TEN_SECONDLY_ROLLING (or search) 429: hold the next request until a slot frees — when our oldest
        request in the window leaves it (the window rolls; a request of ours that reached HubSpot a little
        late made the extra one). With none of ours in the window another client filled it: wait a whole
        window. (Its rate headers, when HubSpot sends them, were already read by ``observe``.)"""
        window = self.search if bucket is Bucket.search else self.standard
        with self._lock:
            oldest = window.oldest()
            until = oldest + window.seconds if oldest is not None else self._clock() + window.seconds
            window.blocked_until = max(window.blocked_until, until)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
