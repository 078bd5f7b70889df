"""Timestamps as SAP and the web store really write them: every ISO-8601 and SQL datetime form, stored as UTC."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from fp_hubspot_assets.sap.fetch import as_datetime


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2025-03-01 10:00:00", datetime(2025, 3, 1, 10)),
        ("2025-03-01 10:00", datetime(2025, 3, 1, 10)),  # no seconds
        ("2025-03-01T10:00:00+02:00", datetime(2025, 3, 1, 8)),
        ("2025-03-01T10:00+02:00", datetime(2025, 3, 1, 8)),
        ("2025-03-01 10:00:00 +02:00", datetime(2025, 3, 1, 8)),
        ("2025-03-01T10:00:00.5+0200", datetime(2025, 3, 1, 8, 0, 0, 500_000)),
        ("2025-03-01T10:00:00-05", datetime(2025, 3, 1, 15)),
        ("2025-03-01T10:00:00Z", datetime(2025, 3, 1, 10)),
        ("2025-03-01T10:00Z", datetime(2025, 3, 1, 10)),
        ("2025-03-01T10:00:00,25Z", datetime(2025, 3, 1, 10, 0, 0, 250_000)),  # ISO's decimal comma
        ("20250301T100000Z", datetime(2025, 3, 1, 10)),  # basic form
        ("20250301T1000", datetime(2025, 3, 1, 10)),
        ("20250301", datetime(2025, 3, 1)),
        ("2025-03-01", datetime(2025, 3, 1)),
        ("  2025-03-01 10:00:00.123  ", datetime(2025, 3, 1, 10, 0, 0, 123_000)),
        ("2025-03-01T23:30:00-02:00", datetime(2025, 3, 2, 1, 30)),  # crosses midnight in UTC
    ],
)
def test_timestamp_forms_are_read_as_utc(text: str, utc: datetime) -> None:
    assert pl.select(as_datetime(pl.lit(text), pl.String)).item() == utc


@pytest.mark.parametrize("text", ["garbage", "2025-13-01 10:00", "2025-03-01 25:00", "10:00", "2025-03-01T10"])
def test_text_that_is_no_timestamp_stays_unread(text: str) -> None:
    assert pl.select(as_datetime(pl.lit(text), pl.String)).item() is None
