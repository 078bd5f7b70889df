"""Incremental runs read only what changed (plus dependants); the full read is the reconciler. Real parts: the
demo SAP database, the sandbox over HTTP, the state store, Dagster runs."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance

from fp_demo_store import simulate
from fp_hubspot_assets.defs import incremental
from fp_hubspot_assets.runner import RunSummary, resource_config, run_sync
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets.state import read_markers
from fp_hubspot_assets_tests.fixtures_sync import SyncEnv, assert_hubspot_matches, hubspot_value, sql


def run_incremental(env: SyncEnv, overlap: float = 0.0) -> RunSummary:
    """An incremental run; no overlap by default, so the rows it reads are exactly the changed ones and
    those at the stored marker."""
    config = resource_config(panel=str(env.panel_path), sap_url=env.sap_url, state_url=env.state_url)
    config["resources"]["sync_mode"] = {"config": {"mode": "incremental", "overlap_seconds": overlap}}
    summary = run_sync(env.instance, config)
    assert summary.success, f"run failed in {summary.failed_steps}"
    return summary


def rows_read(summary: RunSummary, asset: str) -> tuple[str, int]:
    meta = summary.metadata[asset]
    return meta[read_markers.MODE], int(meta["dagster/row_count"])


def markers(env: SyncEnv) -> dict[str, datetime | None]:
    store = env.state()
    return {entity: read_markers.marker(store, entity) for entity in read_markers.INCREMENTAL_ENTITIES}


def shopper(env: SyncEnv, skip: int = 0) -> tuple[int, str]:
    """A registered web customer and an item without combinations, for new carts."""
    customer = sql(env, 'SELECT "CustomerId" FROM "FP_CUSTOMER" WHERE "IsGuest" = 0 AND "Email" IS NOT NULL '
                   'ORDER BY "CustomerId" LIMIT 1 OFFSET ?', skip)[0][0]  # fmt: skip
    item = sql(env, 'SELECT "ItemCode" FROM "FP_CART_LINE" WHERE "CombinationId" IS NULL ORDER BY "CartId" LIMIT 1')[0][0]
    return customer, item


def lone_open_order(env: SyncEnv) -> int:
    """An open order without a cart and without deliveries."""
    return sql(
        env,
        'SELECT MIN(o."DocEntry") FROM "ORDR" o WHERE o."U_FP_CartId" IS NULL AND o."DocStatus" = \'O\' '
        'AND o."CANCELED" = \'N\' AND o."DocEntry" NOT IN (SELECT "BaseEntry" FROM "DLN1" WHERE "BaseEntry" IS NOT NULL) '
        'AND o."DocEntry" NOT IN (SELECT "OrderDocEntry" FROM "FP_CART" WHERE "OrderDocEntry" IS NOT NULL)',
    )[0][0]


def test_an_incremental_run_reads_only_changed_rows_and_their_dependants(sync_env: SyncEnv) -> None:
    first = run_incremental(sync_env)
    assert rows_read(first, "store_carts")[0] == "full", "no marker yet: the first run reads everything"
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    customer, item = shopper(sync_env)
    # Move both markers past the demo's history: a cart checked out at t0 (cart and order change together).
    checked_out = simulate.add_cart(sync_env.sap_url, customer, [(item, 1.0)], now=now - timedelta(minutes=10))
    order_of_checked_out = simulate.complete_cart(sync_env.sap_url, checked_out, now=now - timedelta(minutes=10))
    warm = run_incremental(sync_env)
    assert f"C{checked_out}" in sync_env.hubspot("deals")
    assert rows_read(warm, "store_carts")[0] == "incremental"

    # The changes: a new cart (t1), and a delivery of an order that has no cart (its order changes through it).
    other, _ = shopper(sync_env, skip=1)
    new_cart = simulate.add_cart(sync_env.sap_url, other, [(item, 2.0)], now=now - timedelta(minutes=5))
    shipped = lone_open_order(sync_env)
    simulate.ship_order(sync_env.sap_url, shipped, now=now - timedelta(minutes=5))
    run = run_incremental(sync_env)

    # Read since the stored marker (t0): the checked-out cart and its order (at the marker), the new cart,
    # and the shipped order via its delivery. Nothing else of the store.
    assert rows_read(run, "store_carts") == ("incremental", 2)
    assert rows_read(run, "sap_orders") == ("incremental", 2)
    assert run.metadata["hubspot_deals"]["read_mode"] == "incremental"
    deals = sync_env.hubspot("deals")
    assert f"C{new_cart}" in deals and f"C{checked_out}" in deals and f"O{order_of_checked_out}" not in deals
    assert hubspot_value(deals[f"O{shipped}"], "fp_shipment_status") == "shipped"
    assert_hubspot_matches(sync_env)  # everything that changed is in HubSpot, nothing unread was touched
    assert markers(sync_env)["carts"] == now - timedelta(minutes=5)

    # The ID map (every synced record: millions at scale) is refreshed by full runs, not by incremental ones;
    # its check is skipped with it, and the run still succeeds (run_incremental asserts that).
    assert 0 < first.metadata["hubspot_id_map"]["dagster/row_count"] < sync_env.state().id_map_all().height
    assert first.checks["id_map_unique"] is True
    assert "hubspot_id_map" not in run.metadata and "id_map_unique" not in run.checks


def test_a_cart_linked_to_its_order_late_reads_the_order_too(sync_env: SyncEnv) -> None:
    """The cart ↔ order link is one deal: a change on the cart's side alone brings the order into the read."""
    sync_env.run()
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    customer, item = shopper(sync_env)
    cart = simulate.add_cart(sync_env.sap_url, customer, [(item, 1.0)], now=now - timedelta(minutes=10))
    doc_entry = simulate.complete_cart(sync_env.sap_url, cart, now=now - timedelta(minutes=10))
    sql(sync_env, 'UPDATE "ORDR" SET "U_FP_CartId" = NULL WHERE "DocEntry" = ?', doc_entry)
    sql(sync_env, 'UPDATE "FP_CART" SET "Status" = \'open\', "OrderDocEntry" = NULL WHERE "CartId" = ?', cart)
    run_incremental(sync_env)
    assert {f"C{cart}", f"O{doc_entry}"} <= set(sync_env.hubspot("deals")), "unlinked, they are two deals"

    # The link arrives on both sides, but only the cart's marker moves (SAP's UDF was set without one).
    sql(sync_env, 'UPDATE "ORDR" SET "U_FP_CartId" = ? WHERE "DocEntry" = ?', cart, doc_entry)
    sql(sync_env, 'UPDATE "FP_CART" SET "Status" = \'ordered\', "OrderDocEntry" = ?, "UpdatedAt" = ? WHERE "CartId" = ?',
        doc_entry, (now - timedelta(minutes=5)).isoformat(sep=" "), cart)  # fmt: skip
    run = run_incremental(sync_env)
    assert rows_read(run, "sap_orders")[0] == "incremental"
    deals = sync_env.hubspot("deals")
    assert f"O{doc_entry}" not in deals and f"C{cart}" in deals, "the order's deal merged into the cart's"
    assert_hubspot_matches(sync_env)


def test_an_order_change_moves_the_carts_marker_too(sync_env: SyncEnv) -> None:
    """A carts read covers its orders' changes, so the carts' marker moves past a shipped order: the next
    run does not read the order's cart again (it did until some cart changed)."""
    run_incremental(sync_env)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    customer, item = shopper(sync_env)
    checked_out = simulate.add_cart(sync_env.sap_url, customer, [(item, 1.0)], now=now - timedelta(minutes=10))
    simulate.complete_cart(sync_env.sap_url, checked_out, now=now - timedelta(minutes=10))
    run_incremental(sync_env)
    # an order of the demo's history that came from a cart: its cart's own marker stays old
    ordered = sql(sync_env, 'SELECT MIN(o."DocEntry") FROM "ORDR" o JOIN "FP_CART" c ON c."CartId" = o."U_FP_CartId" '
                  'WHERE o."DocStatus" = \'O\' AND o."CANCELED" = \'N\' AND c."UpdatedAt" < ?',
                  (now - timedelta(days=1)).isoformat(sep=" "))[0][0]  # fmt: skip
    simulate.ship_order(sync_env.sap_url, ordered, now=now - timedelta(minutes=5))
    shipped = run_incremental(sync_env)
    assert rows_read(shipped, "store_carts") == ("incremental", 2), "the checked-out cart (at the marker) and the shipped order's"
    assert markers(sync_env)["carts"] == markers(sync_env)["orders"] == now - timedelta(minutes=5)

    unchanged = run_incremental(sync_env)
    assert rows_read(unchanged, "store_carts") == ("incremental", 1), "only the cart of the order at the marker"
    assert_hubspot_matches(sync_env)


def test_a_burst_of_changes_is_read_once_not_by_every_run_after_it(sync_env: SyncEnv) -> None:
    """The overlap re-reads what was saved just before the marker and committed after a run looked. A run that
    looked long after its marker needs none of it: a burst of changes followed by silence (a nightly job in
    SAP) is read by the run after it, and not again by every run until something newer changes."""
    overlap = 120.0
    run_incremental(sync_env, overlap)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    customer, item = shopper(sync_env)
    burst = [simulate.add_cart(sync_env.sap_url, customer, [(item, 1.0)], now=now - timedelta(minutes=30, seconds=-i))
             for i in range(3)]  # three carts in three seconds, half an hour ago  # fmt: skip
    after_burst = run_incremental(sync_env, overlap)
    assert rows_read(after_burst, "store_carts")[0] == "incremental"
    assert {f"C{cart}" for cart in burst} <= set(sync_env.hubspot("deals"))
    quiet = run_incremental(sync_env, overlap)
    assert rows_read(quiet, "store_carts") == ("incremental", 1), "only the cart at the marker (the bound is inclusive)"
    assert quiet.metadata["store_carts"][read_markers.SINCE] == (now - timedelta(minutes=30, seconds=-2)).isoformat(timespec="microseconds")

    # A marker taken moments after its change keeps the whole overlap: a cart saved a minute before the marker
    # whose transaction committed only after that run looked is still read by the next run.
    recent = simulate.add_cart(sync_env.sap_url, customer, [(item, 2.0)], now=now)
    run_incremental(sync_env, overlap)
    assert markers(sync_env)["carts"] == now
    late = simulate.add_cart(sync_env.sap_url, customer, [(item, 3.0)], now=now - timedelta(minutes=1))
    caught = run_incremental(sync_env, overlap)
    assert rows_read(caught, "store_carts") == ("incremental", 2), "the late cart and the one at the marker"
    assert {f"C{recent}", f"C{late}"} <= set(sync_env.hubspot("deals"))
    assert_hubspot_matches(sync_env)


def test_where_an_incremental_window_starts() -> None:
    last, overlap = datetime(2026, 11, 29, 12, 0), timedelta(seconds=120)
    tolerance = read_markers.MARKER_SKEW
    assert read_markers.window_start(last, None, overlap) == last - overlap  # taken when? unknown: the whole overlap
    assert read_markers.window_start(last, last + timedelta(seconds=5), overlap) == last - overlap
    # looked a minute later than the tolerance after the marker: only the last minute of the overlap is re-read …
    assert read_markers.window_start(last, last + tolerance + timedelta(minutes=1), overlap) == last - timedelta(minutes=1)
    # … and never after the marker itself
    assert read_markers.window_start(last, last + timedelta(hours=2), overlap) == last
    assert read_markers.window_start(last, last + timedelta(hours=2), timedelta(0)) == last


def test_a_failed_run_does_not_advance_the_markers(sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    sync_env.run()
    before = markers(sync_env)
    assert before["carts"] is not None
    customer, item = shopper(sync_env)
    cart = simulate.add_cart(sync_env.sap_url, customer, [(item, 1.0)])
    monkeypatch.setenv("FP_TEST_WRONG_TOKEN", "not-the-sandbox-token")  # HubSpot refuses every request
    sync_env.write_panel("  access_token_env: FP_TEST_WRONG_TOKEN\n")
    config = resource_config(panel=str(sync_env.panel_path), sap_url=sync_env.sap_url, state_url=sync_env.state_url)
    failed = run_sync(sync_env.instance, config)
    assert not failed.success
    assert "store_carts" in failed.metadata, "the sources were read before the writers failed"
    assert markers(sync_env) == before

    sync_env.write_panel()
    run_incremental(sync_env)
    assert f"C{cart}" in sync_env.hubspot("deals")
    assert markers(sync_env)["carts"] > before["carts"]


def _materialized(env: SyncEnv, asset: str) -> bool:
    return any(
        (m := r.asset_materialization) is not None and m.asset_key.to_user_string() == asset
        for r in env.instance.all_logs(_latest_run_id(env), of_type=DagsterEventType.ASSET_MATERIALIZATION)
    )


def _latest_run_id(env: SyncEnv) -> str:
    runs = env.instance.get_runs(limit=1)
    return runs[0].run_id if runs else ""


def test_a_change_landing_during_a_run_is_picked_up_by_the_next_run(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_env.run()
    customer, item = shopper(sync_env)
    landed: dict[str, Any] = {}
    read = SapReader.read

    def read_then_shop(self: SapReader, entity: str, since: Any = None) -> Any:
        """The store takes a cart right after this run read the carts (and before the run ends): at that exact
        point, whatever the machine's speed (a thread polling for the moment missed it on a loaded machine)."""
        result = read(self, entity, since)
        if entity == "carts" and "cart" not in landed:
            landed["cart"] = simulate.add_cart(sync_env.sap_url, customer, [(item, 1.0)])
        return result

    monkeypatch.setattr(SapReader, "read", read_then_shop)
    run_incremental(sync_env)
    monkeypatch.setattr(SapReader, "read", read)
    cart_key = f"C{landed['cart']}"
    assert cart_key not in sync_env.hubspot("deals"), "this run read the carts before the cart existed"

    run_incremental(sync_env)
    assert cart_key in sync_env.hubspot("deals")
    assert_hubspot_matches(sync_env)


def test_the_full_reconcile_fixes_a_change_an_incremental_run_missed(sync_env: SyncEnv) -> None:
    sync_env.run()
    # A cart line changed with an old marker (a restore, a tool writing without UpdatedAt): invisible to
    # incremental reads.
    cart_id, line = sql(sync_env, 'SELECT l."CartId", l."LineNum" FROM "FP_CART_LINE" l JOIN "FP_CART" c USING ("CartId") '
                        'WHERE c."Status" = \'open\' ORDER BY l."CartId", l."LineNum" LIMIT 1')[0]  # fmt: skip
    key = f"C{cart_id}:L{line}"
    assert key in sync_env.hubspot("line_items")
    sql(sync_env, 'UPDATE "FP_CART_LINE" SET "Quantity" = 77 WHERE "CartId" = ? AND "LineNum" = ?', cart_id, line)

    missed = run_incremental(sync_env, overlap=120)
    assert rows_read(missed, "store_carts")[0] == "incremental"
    assert hubspot_value(sync_env.hubspot("line_items")[key], "quantity") != "77"

    fixed = sync_env.run(mode="full")
    assert rows_read(fixed, "store_carts")[0] == "full"
    assert hubspot_value(sync_env.hubspot("line_items")[key], "quantity") == "77"
    assert_hubspot_matches(sync_env)


def test_only_a_full_read_flags_a_record_deleted_in_the_source(sync_env: SyncEnv) -> None:
    sync_env.run()
    doc_entry = lone_open_order(sync_env)
    sql(sync_env, 'DELETE FROM "RDR1" WHERE "DocEntry" = ?', doc_entry)
    sql(sync_env, 'DELETE FROM "ORDR" WHERE "DocEntry" = ?', doc_entry)

    assert_only_a_full_read_flags(sync_env, "deals", f"O{doc_entry}")


def assert_only_a_full_read_flags(sync_env: SyncEnv, object_type: str, key: str) -> None:
    """``key`` was deleted in the source: an incremental run does not read it (not read is not deleted); the full
    reconcile flags it in HubSpot."""
    run_incremental(sync_env)
    assert hubspot_value(sync_env.hubspot(object_type)[key], "fp_deleted_in_source") == "", "not read is not deleted"
    sync_env.run(mode="full")
    assert hubspot_value(sync_env.hubspot(object_type)[key], "fp_deleted_in_source") != ""


def test_the_abandonment_sensor_makes_the_run_read_carts_its_marker_has_passed(sync_env: SyncEnv) -> None:
    """Crossing the abandonment threshold moves no marker: the sensor's tag widens the cart read."""
    sync_env.run()
    with sync_env.state() as store:
        from fp_hubspot_assets.sap.reader import SapReader

        with SapReader(sync_env.sap_url) as reader:
            sync = incremental.SyncModeResource()
            plain = read_markers.read_window(store, reader, "carts", sync, {})
            floor = plain.since - timedelta(days=3)
            widened = read_markers.read_window(store, reader, "carts", sync, {read_markers.CARTS_SINCE_TAG: floor.isoformat()})
            everything = read_markers.read_window(store, reader, "carts", sync, {read_markers.CARTS_SINCE_TAG: ""})
            orders = read_markers.read_window(store, reader, "orders", sync, {read_markers.CARTS_SINCE_TAG: ""})
            untagged = read_markers.read_window(store, reader, "orders", sync, {})
    assert plain.mode == "incremental" and widened.since == floor and everything.mode == "full"
    assert orders.since == untagged.since == read_markers.marker(store, "orders"), "the tag is the carts' only"


def test_deals_waiting_for_a_retry_make_orders_and_carts_read_in_full(sync_env: SyncEnv) -> None:
    """HubSpot re-sends a rejected record only when it is in the payload: an incremental read would leave it out."""
    sync_env.run()
    from fp_hubspot_assets.sap.reader import SapReader

    sync = incremental.SyncModeResource()
    with sync_env.state() as store, SapReader(sync_env.sap_url) as reader:
        assert read_markers.read_window(store, reader, "orders", sync, {}).mode == "incremental"
        store.record_failures("deals", [("O1", "some-hash", "VALIDATION_ERROR", "closedate: invalid")])
        waiting = read_markers.read_window(store, reader, "orders", sync, {})
        assert waiting.mode == "full" and "retry" in waiting.why
        assert read_markers.read_window(store, reader, "stores", sync, {}).why.startswith("always")


def test_a_panel_change_makes_the_next_run_read_in_full(sync_env: SyncEnv) -> None:
    """A panel change re-maps every record (e.g. a deal-stage rule): reading only changed rows would miss most."""
    sync_env.run()
    assert rows_read(run_incremental(sync_env), "sap_orders")[0] == "incremental"
    sync_env.write_panel("abandoned_cart_hours: 6\n")
    changed = run_incremental(sync_env)
    assert rows_read(changed, "sap_orders")[0] == "full" and rows_read(changed, "store_carts")[0] == "full"
    assert_hubspot_matches(sync_env)
    assert rows_read(run_incremental(sync_env), "sap_orders")[0] == "incremental", "and back once it succeeded"


def test_a_full_run_never_maps_the_frames_of_an_incremental_run_working_beside_it(
    sync_env: SyncEnv, tmp_path: Path
) -> None:
    """Each run keeps its asset values in its own directory: an incremental run that stores its few changed
    orders while a full run works must not become the full run's ``sap_orders`` (which would make almost
    every deal look deleted)."""
    sync_env.run()
    customer, item = shopper(sync_env)
    simulate.add_cart(sync_env.sap_url, customer, [(item, 1.0)])
    # two runs at once need an instance on disk (the in-memory one serializes nothing between threads)
    (tmp_path / "dagster_home").mkdir()
    sync_env.instance = DagsterInstance.local_temp(str(tmp_path / "dagster_home"))
    runs_before = len(sync_env.instance.get_runs())
    beside: dict[str, RunSummary] = {}

    def incremental_run_beside() -> None:
        deadline = time.monotonic() + 900  # a guard against a hang only: when it starts does not matter
        while time.monotonic() < deadline:
            if len(sync_env.instance.get_runs()) > runs_before and _materialized(sync_env, "sap_orders"):
                beside["run"] = run_incremental(sync_env, overlap=120)
                return
            time.sleep(0.005)

    thread = threading.Thread(target=incremental_run_beside)
    thread.start()
    full = sync_env.run(mode="full")
    thread.join()
    assert rows_read(beside["run"], "sap_orders")[0] == "incremental"
    assert full.metadata["deal_payloads"]["dagster/row_count"] > 10 * beside["run"].metadata["deal_payloads"]["dagster/row_count"]
    assert not [d for d in sync_env.hubspot("deals").values() if hubspot_value(d, "fp_deleted_in_source")]
    assert_hubspot_matches(sync_env)
