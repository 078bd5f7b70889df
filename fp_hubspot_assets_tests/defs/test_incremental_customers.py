"""Incremental reads of customers, addresses and items: only the changed rows and the rows their mapping needs
beside them, through the real job (demo SAP database, sandbox over HTTP, state store, Dagster runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from fp_demo_store import simulate
from fp_hubspot_assets.defs.run_storage import read_value
from fp_hubspot_assets.runner import RunSummary, resource_config, run_sync
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets_tests.defs.test_incremental import (
    assert_only_a_full_read_flags,
    markers,
    rows_read,
    run_incremental,
)
from fp_hubspot_assets_tests.fixtures_sync import SyncEnv, assert_hubspot_matches, hubspot_value, sql

KEYED = ("sap_customers", "sap_addresses", "sap_items")


def stored_frame(env: SyncEnv, summary: RunSummary, asset: str) -> pl.DataFrame:
    """The frame an asset produced in that run (the run-scoped IO manager's file)."""
    value: pl.DataFrame = read_value(Path(env.instance.storage_directory()) / "runs" / summary.run_id / asset)
    return value


def lone_customers(env: SyncEnv, count: int) -> list[int]:
    """Web customers synced as contacts that share nothing with anyone: no business partner, an e-mail nobody
    else has, a default billing address."""
    synced = {int(k[1:]) for k in env.hubspot("contacts") if k.startswith("W")}
    rows = sql(
        env,
        'SELECT c."CustomerId" FROM "FP_CUSTOMER" c WHERE c."CardCode" IS NULL AND c."Email" LIKE \'%@%\' '
        'AND (SELECT COUNT(*) FROM "FP_CUSTOMER" o WHERE LOWER(TRIM(o."Email")) = LOWER(TRIM(c."Email"))) = 1 '
        'AND NOT EXISTS (SELECT 1 FROM "OCPR" p WHERE LOWER(TRIM(p."E_MailL")) = LOWER(TRIM(c."Email"))) '
        'AND NOT EXISTS (SELECT 1 FROM "OCRD" p WHERE LOWER(TRIM(p."E_Mail")) = LOWER(TRIM(c."Email"))) '
        'AND EXISTS (SELECT 1 FROM "FP_ADDRESS" a WHERE a."CustomerId" = c."CustomerId" AND a."AddressType" = \'billing\' '
        'AND a."IsDefault" = 1) ORDER BY c."CustomerId"',
    )
    found = [r[0] for r in rows if r[0] in synced][:count]
    assert len(found) == count, "the demo should have enough lone customers"
    return found


def plain_products(env: SyncEnv, count: int) -> list[str]:
    """Items synced as one product (no combinations) that carts use."""
    synced = {k[1:] for k in env.hubspot("products") if "#" not in k}
    rows = sql(env, 'SELECT DISTINCT "ItemCode" FROM "FP_CART_LINE" WHERE "CombinationId" IS NULL ORDER BY "ItemCode"')
    found = [r[0] for r in rows if r[0] in synced and not sql(
        env, 'SELECT 1 FROM "FP_ITEM_COMBINATION" WHERE "ItemCode" = ?', r[0])][:count]  # fmt: skip
    assert len(found) == count
    return found


def test_an_incremental_run_reads_only_changed_customers_addresses_items_and_their_dependants(sync_env: SyncEnv) -> None:
    sync_env.run()
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    t0, t1 = now - timedelta(minutes=10), now - timedelta(minutes=5)
    a, b, c, shopper = lone_customers(sync_env, 4)
    at_marker, priced, in_cart = plain_products(sync_env, 3)
    # Move every marker to t0 (past the demo's history): a customer, an address, an item, a checked-out cart.
    simulate.set_customer_email(sync_env.sap_url, f"W{a}", f"moved-{a}@example.com", now=t0)
    simulate.set_customer_address(sync_env.sap_url, f"W{a}", street="Marker 1", city="Kiel", zip_code="24103",
                                  country="DE", now=t0)  # fmt: skip
    simulate.set_item_price(sync_env.sap_url, at_marker, 11.5, now=t0)
    cart = simulate.add_cart(sync_env.sap_url, shopper, [(in_cart, 1.0)], now=t0)
    doc_entry = simulate.complete_cart(sync_env.sap_url, cart, now=t0)
    warm = run_incremental(sync_env)
    assert all(rows_read(warm, asset)[0] == "incremental" for asset in KEYED)
    assert set(markers(sync_env).values()) == {t0}, "every marker at t0: the demo's history is older"

    # The changes at t1: an e-mail, another customer's address, an item's price.
    simulate.set_customer_email(sync_env.sap_url, f"W{b}", f"new-{b}@example.com", now=t1)
    simulate.set_customer_address(sync_env.sap_url, f"W{c}", street="Hafenstr. 9", city="Lübeck", zip_code="23552",
                                  country="DE", now=t1)  # fmt: skip
    simulate.set_item_price(sync_env.sap_url, priced, 42.25, now=t1)
    run = run_incremental(sync_env)

    # Read: the changed rows (b, c's address, the item), those at the stored marker (a, the item priced at t0),
    # and the dependants of the deal the run maps again (the cart and its order at the carts' marker): its
    # customer, the business partner SAP booked the order to, the cart line's item.
    (order_partner,) = sql(sync_env, 'SELECT "CardCode" FROM "ORDR" WHERE "DocEntry" = ?', doc_entry)[0]
    persons = {f"CP{r[0]}" for r in sql(sync_env, 'SELECT "CntctCode" FROM "OCPR" WHERE "CardCode" = ?', order_partner)}
    web = {f"W{k}" for k in (a, b, c, shopper)}
    customers = stored_frame(sync_env, run, "sap_customers")
    assert set(customers["customer_key"]) == web | {f"BP{order_partner}"} | persons
    assert rows_read(run, "sap_customers") == ("incremental", customers.height)
    addresses = stored_frame(sync_env, run, "sap_addresses")
    assert set(addresses["owner_key"]) <= web | {f"BP{order_partner}"} and f"W{c}" in set(addresses["owner_key"])
    (web_addresses,) = sql(sync_env, 'SELECT COUNT(*) FROM "FP_ADDRESS" WHERE "CustomerId" IN (?, ?, ?, ?)', a, b, c, shopper)[0]
    (sap_addresses,) = sql(sync_env, 'SELECT COUNT(*) FROM "CRD1" WHERE "CardCode" = ?', order_partner)[0]
    assert rows_read(run, "sap_addresses") == ("incremental", web_addresses + sap_addresses)
    items = stored_frame(sync_env, run, "sap_items")
    assert set(items["item_code"]) == {at_marker, priced, in_cart}
    assert rows_read(run, "sap_items") == ("incremental", 3)
    for writer in ("hubspot_contacts", "hubspot_companies", "hubspot_products"):
        assert run.metadata[writer]["read_mode"] == "incremental"

    contacts = sync_env.hubspot("contacts")
    assert hubspot_value(contacts[f"W{b}"], "email") == f"new-{b}@example.com"
    assert hubspot_value(contacts[f"W{c}"], "city") == "Lübeck"
    assert hubspot_value(sync_env.hubspot("products")[f"I{priced}"], "price") == "42.25"
    assert_hubspot_matches(sync_env)  # what was read is right, and nothing unread was touched
    assert run.writes > 0 and run_incremental(sync_env).writes == 0


def test_a_changed_email_frees_the_contact_that_was_its_duplicate(sync_env: SyncEnv) -> None:
    """The duplicate does not change: it is read because it was last mapped as a duplicate of one that did."""
    sync_env.run()
    (survivor,) = lone_customers(sync_env, 1)
    (email,) = sql(sync_env, 'SELECT "Email" FROM "FP_CUSTOMER" WHERE "CustomerId" = ?', survivor)[0]
    (duplicate,) = sql(sync_env, 'SELECT MAX("CustomerId") + 1 FROM "FP_CUSTOMER"')[0]
    stamp = datetime.now(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    sql(sync_env, 'INSERT INTO "FP_CUSTOMER" SELECT ?, "StoreId", "CardCode", "Email", "FirstName", \'Later\', "Phone", '
        '"IsGuest", "Disabled", "CreatedAt", ? FROM "FP_CUSTOMER" WHERE "CustomerId" = ?', duplicate, stamp, survivor)  # fmt: skip
    sql(sync_env, 'INSERT INTO "FP_CUSTOMER_ROLE" SELECT ?, "RoleId" FROM "FP_CUSTOMER_ROLE" WHERE "CustomerId" = ?',
        duplicate, survivor)  # fmt: skip
    run_incremental(sync_env)
    assert f"W{duplicate}" not in sync_env.hubspot("contacts"), "one contact per e-mail: the older account keeps it"

    simulate.set_customer_email(sync_env.sap_url, f"W{survivor}", f"other-{survivor}@example.com")
    run = run_incremental(sync_env)
    assert rows_read(run, "sap_customers")[0] == "incremental"
    assert f"W{duplicate}" in set(stored_frame(sync_env, run, "sap_customers")["customer_key"])
    contacts = sync_env.hubspot("contacts")
    assert hubspot_value(contacts[f"W{survivor}"], "email") == f"other-{survivor}@example.com"
    assert hubspot_value(contacts[f"W{duplicate}"], "email") == email.strip().lower()
    assert_hubspot_matches(sync_env)


def test_a_failed_run_does_not_advance_the_customer_markers(sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    sync_env.run()
    (customer,) = lone_customers(sync_env, 1)
    before = markers(sync_env)
    simulate.set_customer_email(sync_env.sap_url, f"W{customer}", f"failed-{customer}@example.com")
    monkeypatch.setenv("FP_TEST_WRONG_TOKEN", "not-the-sandbox-token")  # HubSpot refuses every request
    sync_env.write_panel("  access_token_env: FP_TEST_WRONG_TOKEN\n")
    config = resource_config(panel=str(sync_env.panel_path), sap_url=sync_env.sap_url, state_url=sync_env.state_url)
    config["resources"]["sync_mode"] = {"config": {"mode": "incremental", "overlap_seconds": 0.0}}
    failed = run_sync(sync_env.instance, config)
    assert not failed.success and "sap_customers" in failed.metadata, "customers were read before the writers failed"
    assert markers(sync_env) == before

    sync_env.write_panel()
    run_incremental(sync_env)
    assert hubspot_value(sync_env.hubspot("contacts")[f"W{customer}"], "email") == f"failed-{customer}@example.com"
    assert markers(sync_env)["customers"] > before["customers"]


def test_a_customer_change_landing_during_a_run_is_picked_up_by_the_next_run(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_env.run()
    (customer,) = lone_customers(sync_env, 1)
    landed: dict[str, bool] = {}
    read = SapReader.read

    def read_then_change(self: SapReader, entity: str, since: Any = None) -> Any:
        """The store changes the email right after this run read the customers (and before the run ends): at
        that exact point, whatever the machine's speed (a thread polling for the moment misses it under load)."""
        result = read(self, entity, since)
        if entity == "customers" and not landed:
            simulate.set_customer_email(sync_env.sap_url, f"W{customer}", f"late-{customer}@example.com")
            landed["after_read"] = True
        return result

    monkeypatch.setattr(SapReader, "read", read_then_change)
    run_incremental(sync_env)
    monkeypatch.setattr(SapReader, "read", read)
    assert landed, "the run read the customers"
    assert hubspot_value(sync_env.hubspot("contacts")[f"W{customer}"], "email") != f"late-{customer}@example.com"

    run_incremental(sync_env)
    assert hubspot_value(sync_env.hubspot("contacts")[f"W{customer}"], "email") == f"late-{customer}@example.com"
    assert_hubspot_matches(sync_env)


def test_the_full_reconcile_fixes_a_customer_change_an_incremental_run_missed(sync_env: SyncEnv) -> None:
    sync_env.run()
    (customer,) = lone_customers(sync_env, 1)
    # written without moving UpdatedAt (a restore, a tool that does not stamp): invisible to incremental reads
    sql(sync_env, 'UPDATE "FP_CUSTOMER" SET "LastName" = ? WHERE "CustomerId" = ?', "Quietly-Changed", customer)
    missed = run_incremental(sync_env, overlap=120)
    assert rows_read(missed, "sap_customers")[0] == "incremental"
    assert hubspot_value(sync_env.hubspot("contacts")[f"W{customer}"], "lastname") != "Quietly-Changed"

    fixed = sync_env.run(mode="full")
    assert rows_read(fixed, "sap_customers")[0] == "full"
    assert hubspot_value(sync_env.hubspot("contacts")[f"W{customer}"], "lastname") == "Quietly-Changed"
    assert_hubspot_matches(sync_env)


def test_only_a_full_read_flags_a_customer_deleted_in_the_source(sync_env: SyncEnv) -> None:
    sync_env.run()
    (customer,) = lone_customers(sync_env, 1)
    for table in ("FP_ADDRESS", "FP_CUSTOMER_ROLE", "FP_CUSTOMER"):
        sql(sync_env, f'DELETE FROM "{table}" WHERE "CustomerId" = ?', customer)
    assert_only_a_full_read_flags(sync_env, "contacts", f"W{customer}")


def test_orders_read_in_full_make_customers_and_items_read_in_full(sync_env: SyncEnv) -> None:
    """Every deal needs its contact, company and products: when all deals are mapped, all of those are read."""
    sync_env.run()
    assert all(rows_read(run_incremental(sync_env), asset)[0] == "incremental" for asset in KEYED)
    with sync_env.state() as store:  # a deal waiting for a retry: orders and carts are read in full
        store.record_failures("deals", [("O1", "some-hash", "VALIDATION_ERROR", "closedate: invalid")])
    run = run_incremental(sync_env)
    assert rows_read(run, "sap_orders")[0] == "full"
    assert all(rows_read(run, asset)[0] == "full" for asset in KEYED)
    assert run.metadata["sap_items"]["read_reason"].startswith("orders were read in full")
    assert run.metadata["sap_addresses"]["read_reason"].startswith("customers were read in full")
    assert_hubspot_matches(sync_env)
