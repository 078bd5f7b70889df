"""The source's time zone ($FP_SAP_TIME_ZONE): SAP Business One stamps its rows in local time; the reader
returns UTC and binds its windows in source time, across daylight-saving changes too."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from fp_demo_store import simulate
from fp_hubspot_assets.defs.resources import SapSourceResource
from fp_hubspot_assets.preflight import PreflightError, sap_time_zone_from_env
from fp_hubspot_assets.sap.fetch import TEXT_DATETIME, SourceZone
from fp_hubspot_assets.sap.reader import ENTITIES, SapReader

FP_STAMPS = {"FP_CUSTOMER": ("CreatedAt", "UpdatedAt"), "FP_ADDRESS": ("UpdatedAt",),
             "FP_ITEM_COMBINATION": ("UpdatedAt",), "FP_CART": ("CreatedAt", "UpdatedAt")}  # fmt: skip
SAP_STAMPED = ("OCRD", "OITM", "ORDR", "ODLN", "OINV")
TOKYO = "Asia/Tokyo"  # UTC+9 all year


def _restamp_in(url: str, zone: str) -> None:
    """Rewrite every change marker of a UTC-stamped store into ``zone``'s local time, as SAP would have
    written it on a server there (a corrupt value stays as it is: it is a reject either way)."""
    local = SourceZone(zone)
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    with con:
        for table, columns in FP_STAMPS.items():
            for column in columns:
                rows = con.execute(f'SELECT rowid, "{column}" FROM "{table}"').fetchall()
                for rowid, value in rows:
                    try:
                        moment = datetime.strptime(value, TEXT_DATETIME)
                    except (TypeError, ValueError):
                        continue
                    shifted = local.local(moment).strftime(TEXT_DATETIME)
                    con.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE rowid = ?', (shifted, rowid))
        for table in SAP_STAMPED:
            for rowid, day, ts in con.execute(f'SELECT rowid, "UpdateDate", "UpdateTS" FROM "{table}"').fetchall():
                try:
                    moment = datetime.strptime(day, TEXT_DATETIME) + timedelta(
                        hours=ts // 10_000, minutes=ts // 100 % 100, seconds=ts % 100
                    )
                except (TypeError, ValueError):
                    continue
                shifted = local.local(moment)
                stamp = shifted.hour * 10_000 + shifted.minute * 100 + shifted.second
                midnight = shifted.replace(hour=0, minute=0, second=0, microsecond=0).strftime(TEXT_DATETIME)
                con.execute(f'UPDATE "{table}" SET "UpdateDate" = ?, "UpdateTS" = ? WHERE rowid = ?', (midnight, stamp, rowid))
    con.close()


def test_a_store_stamped_in_local_time_reads_exactly_as_the_same_store_stamped_in_utc(
    sap_demo_url: str, sap_demo_copy: str
) -> None:
    _restamp_in(sap_demo_copy, TOKYO)
    since = datetime(2024, 6, 1, 12, 0)
    with SapReader(sap_demo_url) as utc, SapReader(sap_demo_copy, time_zone=TOKYO) as tokyo:
        for entity in ENTITIES:
            expected, got = utc.read(entity), tokyo.read(entity)
            assert_frame_equal(got.frame, expected.frame)  # every instant (updated_at, created_at) back in UTC
            assert_frame_equal(got.rejects, expected.rejects)
            if entity != "stores":
                assert tokyo.max_updated_at(entity) == utc.max_updated_at(entity), entity
        for entity in ("orders", "carts"):  # windows are bound in source time: the same rows changed since
            assert_frame_equal(tokyo.read(entity, since).frame, utc.read(entity, since).frame)
        assert tokyo.deal_keys(since, since) == utc.deal_keys(since, since)
        # read as if it were UTC (the old behaviour), the same store is 9 hours off
        with SapReader(sap_demo_copy) as naive:
            assert naive.max_updated_at("carts") == utc.max_updated_at("carts") + timedelta(hours=9)


def test_a_change_saved_now_on_a_server_east_of_utc_is_news_not_a_clock_error(sap_demo_copy: str) -> None:
    """A Tokyo server's "now" is 9 hours ahead of UTC: read as UTC its newest changes lie beyond the horizon
    (now + 5 min), are logged as clock errors and never move a cursor; read in its zone they are the newest."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    tokyo_now = SourceZone(TOKYO).local(now)
    cart = simulate.add_cart(sap_demo_copy, _a_customer(sap_demo_copy), [(_an_item(sap_demo_copy), 1.0)], now=tokyo_now)
    with SapReader(sap_demo_copy, time_zone=TOKYO) as reader:
        assert reader.max_updated_at("carts") == now
        assert reader.newest_cart_change() == now
        assert reader.future_markers("carts") == []
        assert reader.cart_changes(now - timedelta(seconds=1)) == (1, now)
    with SapReader(sap_demo_copy) as as_utc:
        assert as_utc.future_markers("carts") == [f"FP_CART:{cart}"]
        assert as_utc.max_updated_at("carts") != now


def _a_customer(url: str) -> int:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as con:
        return con.execute('SELECT "CustomerId" FROM "FP_CUSTOMER" WHERE "IsGuest" = 0 ORDER BY 1 LIMIT 1').fetchone()[0]


def _an_item(url: str) -> str:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as con:
        return con.execute('SELECT "ItemCode" FROM "FP_CART_LINE" WHERE "CombinationId" IS NULL LIMIT 1').fetchone()[0]


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", TOKYO, "UTC"])
def test_window_bounds_cover_every_row_across_daylight_saving_changes(zone: str) -> None:
    """A row saved at UTC moment u carries local(u). A window from ``since`` must take every row with u ≥ since,
    also when the clock went back an hour after ``since`` (its rows then carry earlier local times); a window
    up to ``until`` every row with u ≤ until. Checked every 10 minutes around the changes of 2026 (Lord Howe moves its clock by 30 minutes)."""
    source = SourceZone(zone)
    starts = (datetime(2026, 3, 7), datetime(2026, 3, 28), datetime(2026, 10, 1), datetime(2026, 10, 24))  # both hemispheres
    near = 3 * 6  # rows up to 3 hours away (every 10 minutes); farther ones are hours away in any zone
    for start in starts:
        moments = [start + timedelta(minutes=m) for m in range(0, 9 * 24 * 60, 10)]
        local = [source.local(u) for u in moments]
        for i, since in enumerate(moments):
            lower, upper = source.bound(since), source.bound(since, upper=True)
            assert all(t >= lower for t in local[i : i + near]), (zone, since)
            assert all(t <= upper for t in local[max(0, i - near) : i + 1]), (zone, since)
            assert source.local(since) - timedelta(hours=1) <= lower <= source.local(since)  # never wider than the hour


def test_local_times_turn_into_utc_also_in_the_hours_the_clock_skips_or_repeats() -> None:
    source = SourceZone("America/New_York")
    frame = pl.DataFrame({"t": [datetime(2026, 7, 1, 12), datetime(2026, 3, 8, 2, 30), datetime(2026, 11, 1, 1, 30)]})
    got = frame.select(source.to_utc_expr(pl.col("t")))["t"].to_list()
    # summer (UTC-4); 02:30 never happened (spring forward): read with the winter offset; 01:30 twice: the first (EDT)
    assert got == [datetime(2026, 7, 1, 16), datetime(2026, 3, 8, 7, 30), datetime(2026, 11, 1, 5, 30)]
    assert [source.to_utc(t) for t in frame["t"]] == got  # one value for one marker, in SQL bounds and in frames
    assert SourceZone("Etc/UTC").is_utc and not SourceZone("Europe/London").is_utc  # London is UTC only in winter


def test_an_unknown_time_zone_stops_the_load_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FP_SAP_TIME_ZONE", "Europe/Atlantis")
    with pytest.raises(PreflightError, match="FP_SAP_TIME_ZONE: unknown time zone 'Europe/Atlantis'"):
        sap_time_zone_from_env()
    with pytest.raises(ValueError, match="FP_SAP_TIME_ZONE"):
        SapSourceResource(url="sqlite:///x.db", time_zone="CEST")
    monkeypatch.setenv("FP_SAP_TIME_ZONE", " Europe/Berlin ")
    assert sap_time_zone_from_env() == "Europe/Berlin"
    monkeypatch.delenv("FP_SAP_TIME_ZONE")
    assert sap_time_zone_from_env() == "UTC"
    # the code location itself does not load with an unknown zone, and says why in one line
    env = {**os.environ, "FP_SAP_TIME_ZONE": "Europe/Atlantis"}
    loaded = subprocess.run([sys.executable, "-c", "import fp_hubspot_assets.definitions"], env=env,
                            capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=120)  # fmt: skip
    assert loaded.returncode != 0
    assert "FP_SAP_TIME_ZONE: unknown time zone 'Europe/Atlantis'" in loaded.stderr.splitlines()[-1]


def test_the_resource_reads_in_its_zone_and_the_zone_is_part_of_the_read_digest(sap_demo_copy: str) -> None:
    from fp_hubspot_assets.panel import PanelSettings
    from fp_hubspot_assets.state.sync_cursor import panel_digest

    _restamp_in(sap_demo_copy, TOKYO)
    with SapSourceResource(url=sap_demo_copy, time_zone=TOKYO).reader() as reader:
        assert reader.source.zone.name == TOKYO
    settings = PanelSettings()
    assert panel_digest(settings) == panel_digest(settings, "")  # UTC: the digest of earlier releases
    assert panel_digest(settings, TOKYO) != panel_digest(settings)  # a new zone: the next run reads in full
