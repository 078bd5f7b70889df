"""Timestamps as HubSpot writes them: ISO 8601 in UTC with milliseconds and a trailing Z."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


@lru_cache(maxsize=8192)  # a batch stamps ~100 records with a handful of distinct milliseconds
def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_ms(value: str) -> float | None:
    """Epoch milliseconds from a number or an ISO date/datetime string, else None."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        text = value.replace("Z", "+00:00")
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp() * 1000
