"""HubSpot's rate budgets: a rolling 10-second window per app (private-app token, or all OAuth tokens of
one client), a daily budget per account, and a separate per-second limit for search.

`window_seconds` scales the rolling window for fast tests while keeping HubSpot's requests-per-second
ratio (190 per 10 s becomes 19 per 1 s). Every request but search spends the 10-second window (association
batches included). The daily budget resets at midnight in the account's time zone. Rate headers are sent on
every answer of the 10-second bucket, 429s included."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from .catalog import OAUTH_PER_TEN_SECONDS, SEARCH_PER_SECOND, TIERS
from .errors import ApiError


@dataclass
class Decision:
    headers: dict[str, str] = field(default_factory=dict)
    error: ApiError | None = None


def rate_error(policy: str) -> ApiError:
    names = {"TEN_SECONDLY_ROLLING": "ten_secondly_rolling", "DAILY": "daily", "SECONDLY": "secondly"}
    return ApiError(429, "RATE_LIMIT", f"You have reached your {names[policy]} limit.",
                    extra={"errorType": "RATE_LIMIT", "policyName": policy})


class RateLimiter:
    def __init__(self, tier: str, enabled: bool, window_seconds: float = 10.0, daily_limit: int | None = None,
                 time_zone: str = "UTC", per_ten_seconds: int | None = None) -> None:
        self.enabled = enabled
        self.zone = ZoneInfo(time_zone)
        self.window = window_seconds
        budget = TIERS[tier]
        scale = window_seconds / 10.0
        self.app_max = max(1, round((per_ten_seconds or budget.per_ten_seconds) * scale))
        self.oauth_max = max(1, round(OAUTH_PER_TEN_SECONDS * scale))
        self.daily_max = daily_limit if daily_limit is not None else budget.per_day
        self.reset()

    def reset(self) -> None:
        self.windows: dict[str, deque[float]] = {}
        self.search_window: deque[float] = deque()
        self.daily_used = 0
        self.day = self._today()
        self.rejected: dict[str, int] = {}

    def _today(self) -> object:
        return datetime.now(UTC).astimezone(self.zone).date()

    def utc_offset(self) -> str:
        offset = datetime.now(self.zone).strftime("%z")
        return f"{offset[:3]}:{offset[3:]}"

    def utc_offset_ms(self) -> int:
        delta = datetime.now(self.zone).utcoffset()
        return int(delta.total_seconds() * 1000) if delta else 0

    def _roll_day(self) -> None:
        today = self._today()
        if today != self.day:
            self.day, self.daily_used = today, 0

    def check(self, bucket: str, oauth: bool, search: bool) -> Decision:
        """Admit or refuse one request."""
        if not self.enabled:
            return Decision()
        now = time.monotonic()
        self._roll_day()
        limit = self.oauth_max if oauth else self.app_max
        if self.daily_used >= self.daily_max:
            decision = self._refuse("DAILY")
            if not search:
                decision.headers = self._headers(limit, limit - len(self.windows.get(bucket, ())), oauth)
            return decision
        if search:
            w = self.search_window
            while w and w[0] <= now - 1.0:
                w.popleft()
            if len(w) >= SEARCH_PER_SECOND:
                return self._refuse("SECONDLY")
            w.append(now)
            self.daily_used += 1
            return Decision()
        w = self.windows.setdefault(bucket, deque())
        while w and w[0] <= now - self.window:
            w.popleft()
        if len(w) >= limit:
            decision = self._refuse("TEN_SECONDLY_ROLLING")
            decision.headers = self._headers(limit, 0, oauth)
            return decision
        w.append(now)
        self.daily_used += 1
        return Decision(self._headers(limit, limit - len(w), oauth))

    def _headers(self, limit: int, remaining: int, oauth: bool) -> dict[str, str]:
        headers = {
            "X-HubSpot-RateLimit-Max": str(limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, remaining)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.window * 1000)),
        }
        if not oauth:  # HubSpot leaves the daily pair off OAuth calls
            headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_max)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(0, self.daily_max - self.daily_used))
        return headers

    def _refuse(self, policy: str) -> Decision:
        self.rejected[policy] = self.rejected.get(policy, 0) + 1
        return Decision(error=rate_error(policy))
