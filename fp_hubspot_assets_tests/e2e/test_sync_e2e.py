"""The main job end to end: Dagster materializes every asset against the sandbox over real HTTP through the
official SDK, and HubSpot's content is compared with the expected records one by one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl
from hubspot.crm.contacts import SimplePublicObjectInputForCreate

from fp_demo_store import simulate
from fp_hubspot_assets_tests.fixtures_sync import (
    TYPES,
    SyncEnv,
    assert_hubspot_matches,
    expected_payloads,
    hubspot_value,
    logged_keys,
    make_sync_env,
)


def test_full_sync_matches_hubspot_and_rerun_writes_nothing(sync_env: SyncEnv) -> None:
    first = sync_env.run()
    assert first.writes > 0
    assert_hubspot_matches(sync_env)
    for object_type in TYPES:
        assert first.count(object_type, "created") == sync_env.sandbox.stats()["records"][object_type]
    upserts_before = _upserts(sync_env)

    second = sync_env.run()
    assert second.writes == 0
    assert _upserts(sync_env) == upserts_before
    for object_type in TYPES:
        assert second.count(object_type, "created") == second.count(object_type, "updated") == 0
        assert second.count(object_type, "unchanged") == first.count(object_type, "created")
    meta = second.metadata["hubspot_contacts"]
    assert {"api_requests", "duration_seconds", "records", "count_failed", "count_skipped"} <= set(meta)


def _upserts(env: SyncEnv) -> int:
    requests = env.sandbox.stats()["requests"]
    return sum(n for route, counts in requests.items() if route.endswith("/batch/upsert") for n in counts.values())


def _routes(env: SyncEnv) -> set[str]:
    return set(env.sandbox.stats()["requests"])


def test_demo_traffic_is_all_on_the_date_versioned_api(sync_env: SyncEnv) -> None:
    """A whole demo, set-up included, on the default api_version 2026-03: not one /crm/v3 or /crm/v4 path."""
    sync_env.run()
    routes = _routes(sync_env)
    assert routes and _upserts(sync_env) > 0
    assert not [r for r in routes if "/crm/v3/" in r or "/crm/v4/" in r], routes
    assert "POST /crm/objects/2026-03/{objectType}/batch/upsert" in routes
    assert "POST /crm/properties/2026-03/{objectType}" in routes
    assert any(r.startswith("POST /crm/associations/2026-03/") for r in routes)
    # the customer's company is the primary company of its contacts (type 1) and deals (type 5)
    for object_type, primary in (("contacts", 1), ("deals", 5)):
        linked = [a for rec in sync_env.sandbox.objects(object_type) for a in rec["associations"].get("companies", [])]
        assert linked and all(primary in a["types"] for a in linked), object_type


def test_without_unique_properties_on_products_and_line_items_the_sync_stays_exact(tmp_path: Path) -> None:
    """An account refusing hasUniqueValue on products and line items (sandbox --no-unique-on): set-up
    creates plain id properties and the client creates and maps by id, searching our key first."""
    env_iter = make_sync_env(tmp_path, no_unique_on="products,line_items")
    env = next(env_iter)
    try:
        first = env.run()
        assert first.writes > 0
        assert_hubspot_matches(env)
        assert "POST /crm/objects/2026-03/{objectType}/batch/create" in _routes(env)
        # nothing was sent before, so nothing is searched but HubSpot's count, once per type (7 batches)
        assert _searches(env) == 2
        assert env.run().writes == 0
        simulate.set_item_price(env.sap_url, next(k for k in sorted(env.hubspot("products")) if "#" not in k)[1:], 77.5)
        again = env.run()
        assert again.count("products", "updated") >= 1 and again.count("products", "created") == 0
        assert _searches(env) == 2 + 2  # the count, then the known key's record (it may have been re-created)
        assert_hubspot_matches(env)
    finally:
        env_iter.close()


def test_without_unique_properties_a_replaced_state_store_creates_no_duplicates(tmp_path: Path) -> None:
    """Products and line items have no unique property, and the state store is replaced by an empty one: HubSpot
    counts more records with our id than the store knows, so every key is searched and found, none re-created."""
    env_iter = make_sync_env(tmp_path, no_unique_on="products,line_items")
    env = next(env_iter)
    try:
        env.run()
        counts = {t: len(env.sandbox.objects(t)) for t in ("products", "line_items")}
        env.state_url = f"sqlite:///{tmp_path / 'replaced-state.db'}"
        again = env.run()
        assert again.count("products", "created") == again.count("line_items", "created") == 0
        assert {t: len(env.sandbox.objects(t)) for t in counts} == counts
        assert_hubspot_matches(env)
    finally:
        env_iter.close()


def _searches(env: SyncEnv) -> int:
    return sum(env.sandbox.stats()["requests"].get("POST /crm/objects/2026-03/{objectType}/search", {}).values())


def test_legacy_api_version_still_syncs_exactly(sync_env: SyncEnv) -> None:
    sync_env.write_panel("  api_version: legacy\n")
    first = sync_env.run()
    assert first.writes > 0
    assert_hubspot_matches(sync_env)
    routes = _routes(sync_env)
    assert not [r for r in routes if "/2026-03/" in r], routes
    assert "POST /crm/v3/objects/{objectType}/batch/upsert" in routes
    assert any(r.startswith("POST /crm/v4/associations/") for r in routes)
    assert sync_env.run().writes == 0


def test_source_changes_update_exactly_those_records(sync_env: SyncEnv) -> None:
    sync_env.run()
    contacts = sync_env.hubspot("contacts")
    web = sorted(k for k in contacts if k.startswith("W"))
    email_key, address_key = web[0], web[1]
    simulate.set_customer_email(sync_env.sap_url, email_key, "changed.address@example.org")
    simulate.set_customer_address(
        sync_env.sap_url, address_key, street="1 New Street", city="Newtown", zip_code="12345", country="DE"
    )
    products = sync_env.hubspot("products")
    item_code = next(k for k in sorted(products) if "#" not in k)[1:]
    simulate.set_item_price(sync_env.sap_url, item_code, 1234.5)
    deals = sync_env.hubspot("deals")
    order_key = next(k for k in sorted(deals) if k.startswith("O") and hubspot_value(deals[k], "fp_order_status") == "open")
    simulate.cancel_order(sync_env.sap_url, int(order_key[1:]))

    run = sync_env.run()
    updated = logged_keys(sync_env, run.run_id, "updated")
    assert updated.get("contacts") == {email_key, address_key}
    assert updated.get("products") == {k for k in products if k == f"I{item_code}" or k.startswith(f"I{item_code}#")}
    assert updated.get("deals") == {order_key}
    assert "companies" not in updated and "line_items" not in updated
    assert logged_keys(sync_env, run.run_id, "created") == {}
    after = sync_env.hubspot("contacts")
    assert hubspot_value(after[email_key], "email") == "changed.address@example.org"
    assert after[email_key]["id"] == contacts[email_key]["id"]
    assert hubspot_value(after[address_key], "city") == "Newtown"
    assert hubspot_value(sync_env.hubspot("products")[f"I{item_code}"], "price") in {"1234.5", "1234.50"}
    assert hubspot_value(sync_env.hubspot("deals")[order_key], "fp_order_status") == "canceled"
    assert_hubspot_matches(sync_env)


def test_cart_that_becomes_an_order_keeps_its_deal(sync_env: SyncEnv) -> None:
    sync_env.run()
    deals = sync_env.hubspot("deals")
    cart_key = next(k for k in sorted(deals) if k.startswith("C") and hubspot_value(deals[k], "fp_order_status") == "")
    doc_entry = simulate.complete_cart(sync_env.sap_url, int(cart_key[1:]))

    sync_env.run()
    after = sync_env.hubspot("deals")
    assert len(after) == len(deals), "the order must not become a second deal"
    assert f"O{doc_entry}" not in after
    assert after[cart_key]["id"] == deals[cart_key]["id"]
    assert hubspot_value(after[cart_key], "fp_order_status") == "open"
    assert hubspot_value(after[cart_key], "dealstage") != hubspot_value(deals[cart_key], "dealstage")
    assert_hubspot_matches(sync_env)


def test_existing_contact_with_the_same_email_is_adopted(sync_env: SyncEnv) -> None:
    expected = expected_payloads(sync_env)["contacts"].records.filter(pl.col("email") != "")
    key, email = expected.select("source_key", "email").row(0)
    client = sync_env.sandbox.client()
    existing = client.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": email.upper(), "firstname": "Typed by hand"})
    )

    run = sync_env.run()
    same_email = [c for c in sync_env.sandbox.objects("contacts") if (c["properties"].get("email") or "").lower() == email]
    assert len(same_email) == 1
    assert same_email[0]["id"] == existing.id
    assert same_email[0]["properties"]["fp_customer_id"] == key
    assert key in logged_keys(sync_env, run.run_id, "adopted").get("contacts", set())
    assert sync_env.state().hubspot_ids("contacts", [key]) == {key: existing.id}
    assert_hubspot_matches(sync_env)
    assert sync_env.run().writes == 0


def test_dry_run_reports_and_writes_nothing(sync_env: SyncEnv) -> None:
    run = sync_env.run(dry_run=True)
    assert run.writes == 0
    assert sum(sync_env.sandbox.stats()["records"].values()) == 0
    assert run.metadata["hubspot_contacts"]["count_would_create"] > 0
    assert run.metadata["hubspot_contacts"]["dry_run"] is True


def test_a_line_removed_from_a_cart_is_archived_in_hubspot(sync_env: SyncEnv) -> None:
    sync_env.run()
    lines = sync_env.hubspot("line_items")
    per_cart: dict[str, list[str]] = {}
    for key in lines:
        deal, _, _line = key.rpartition(":L")
        per_cart.setdefault(deal, []).append(key)
    deals = sync_env.hubspot("deals")
    cart_key, keys = next(
        (deal, keys) for deal, keys in sorted(per_cart.items())
        if deal.startswith("C") and len(keys) >= 2 and hubspot_value(deals[deal], "fp_order_status") == ""
    )
    removed = sorted(keys)[-1]
    with sqlite3.connect(sync_env.sap_url.removeprefix("sqlite:///")) as conn:
        conn.execute(
            'DELETE FROM "FP_CART_LINE" WHERE "CartId" = ? AND "LineNum" = ?',
            (int(cart_key[1:]), int(removed.rpartition(":L")[2])),
        )
        conn.execute('UPDATE "FP_CART" SET "UpdatedAt" = CURRENT_TIMESTAMP WHERE "CartId" = ?', (int(cart_key[1:]),))

    run = sync_env.run()
    assert run.count("line_items", "archived") == 1
    assert logged_keys(sync_env, run.run_id, "archived") == {"line_items": {removed}}
    assert removed not in sync_env.hubspot("line_items")
    assert sync_env.state().hubspot_ids("line_items", [removed]) == {}
    assert_hubspot_matches(sync_env)
    assert sync_env.run().writes == 0


def test_a_dry_run_names_the_properties_that_differ_and_writes_nothing(sync_env: SyncEnv) -> None:
    sync_env.run()
    products = sync_env.hubspot("products")
    item_code = next(k for k in sorted(products) if "#" not in k)[1:]
    before = hubspot_value(products[f"I{item_code}"], "price")
    simulate.set_item_price(sync_env.sap_url, item_code, 1234.5)
    writes_before = sum(sync_env.sandbox.stats()["records"].values())

    run = sync_env.run(dry_run=True)
    rows = [dict(r.data) for r in run.metadata["hubspot_products"]["records"].records]
    message = next(r["message"] for r in rows if r["source_key"] == f"I{item_code}")
    assert message == f"price: {before!r} → '1234.5'"
    assert run.writes == 0 and sum(sync_env.sandbox.stats()["records"].values()) == writes_before
    assert hubspot_value(sync_env.hubspot("products")[f"I{item_code}"], "price") == before
