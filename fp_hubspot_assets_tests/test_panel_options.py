"""Every panel option through the real sync: change the panel, run the job against the sandbox, and read
what HubSpot holds. (The pure mapping rules are tested option by option in test_mapping_*.py.)"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from fp_demo_store import simulate
from fp_hubspot_assets import mapping
from fp_hubspot_assets.defs.checks import order_statuses_mapped
from fp_hubspot_assets.defs.resources import HubSpotResource, PanelResource
from fp_hubspot_assets.hubspot import endpoints as ep
from fp_hubspot_assets.hubspot.properties import pipeline_from_state
from fp_hubspot_assets.panel import load_panel
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets_tests.fixtures_sync import SyncEnv, assert_hubspot_matches, expected_payloads


def _prop(record: dict[str, Any], name: str) -> str:
    return str(record["properties"].get(name) or "")


def _ids(env: SyncEnv, object_type: str) -> dict[str, str]:
    return {key: rec["id"] for key, rec in env.hubspot(object_type).items()}


def assert_converged(env: SyncEnv) -> None:
    """Every record the current panel selects is in HubSpot exactly once with the current properties. Records
    a narrower panel no longer selects may stay (the integration deletes nothing)."""
    expected = expected_payloads(env)
    for object_type, mapped in expected.items():
        raw = env.sandbox.objects(object_type)
        in_hubspot = env.hubspot(object_type)
        assert len(raw) == len(in_hubspot), f"{object_type}: duplicate ids in HubSpot"
        props = [p for p in mapping.PROPERTIES[object_type]]
        for row in mapped.records.iter_rows(named=True):
            record = in_hubspot[row["source_key"]]
            for prop in props:
                assert _prop(record, prop) == (row[prop] or ""), (object_type, row["source_key"], prop)


def _customers(env: SyncEnv) -> pl.DataFrame:
    return SapReader(env.sap_url).read("customers").frame


# ── subscription tier ───────────────────────────────────────────────────────────────────────────────


def test_starter_tier_syncs_deals_but_no_products_and_says_why(sync_env: SyncEnv) -> None:
    sync_env.write_panel("tier: starter\n")
    run = sync_env.run()
    assert sync_env.hubspot("deals") and sync_env.hubspot("contacts")
    assert sync_env.hubspot("products") == {} and sync_env.hubspot("line_items") == {}
    for asset in ("hubspot_products", "hubspot_line_items"):
        why = run.metadata[asset]["why_nothing_sent"]
        assert "'starter'" in why and "Professional or Enterprise" in why, why
    deals_before = _ids(sync_env, "deals")

    sync_env.write_panel("tier: professional\n")
    sync_env.run()
    assert _ids(sync_env, "deals") == deals_before, "the upgrade must not duplicate deals"
    assert_hubspot_matches(sync_env)


def test_tier_sets_the_api_budget(sync_env: SyncEnv) -> None:
    budgets = {}
    for tier in ("free", "starter", "professional", "enterprise"):
        sync_env.write_panel(f"tier: {tier}\n")
        budget = HubSpotResource().client(load_panel(sync_env.panel_path)).budget
        budgets[tier] = (budget.standard.limit, budget.daily_limit)
    assert budgets == {t: ep.budget_for(t, oauth=False) for t in budgets}
    assert budgets["free"] < budgets["professional"] < budgets["enterprise"]


# ── customer roles ──────────────────────────────────────────────────────────────────────────────────


def _web_with(customers: pl.DataFrame, role: str) -> set[str]:
    web = customers.filter(pl.col("kind") == "web")
    return set(web.filter(pl.col("roles").list.contains(role))["customer_key"])


def test_roles_select_contacts_and_a_removed_role_deletes_nothing(sync_env: SyncEnv) -> None:
    customers = _customers(sync_env)
    guests = set(customers.filter((pl.col("kind") == "web") & pl.col("is_guest"))["customer_key"])
    registered = _web_with(customers, "Registered") - guests
    assert guests and registered

    sync_env.run()  # default panel: Registered only
    web = {k for k in sync_env.hubspot("contacts") if k.startswith("W")}
    assert web and web <= registered and not web & guests
    assert_hubspot_matches(sync_env)

    sync_env.write_panel("customers:\n  roles: [Guest, Registered]\n")
    sync_env.run()
    with_guests = {k for k in sync_env.hubspot("contacts") if k.startswith("W")}
    assert with_guests & guests, "guests are sent once Guest is selected"
    assert_hubspot_matches(sync_env)

    # Registered removed: those contacts stay in HubSpot, but their changes are no longer sent
    sync_env.write_panel("customers:\n  roles: [Guest]\n")
    before = sync_env.hubspot("contacts")
    dropped = sorted(web - _web_with(customers, "Guest"))[0]
    simulate.set_customer_email(sync_env.sap_url, dropped, "no.longer.synced@example.org")
    sync_env.run()
    after = sync_env.hubspot("contacts")
    assert set(before) <= set(after), "removing a role deletes nothing"
    assert _prop(after[dropped], "email") == _prop(before[dropped], "email")
    assert_converged(sync_env)


def test_all_registered_sends_every_registered_customer(sync_env: SyncEnv) -> None:
    sync_env.write_panel("customers:\n  roles: []\n  all_registered: true\n")
    sync_env.run()
    customers = _customers(sync_env)
    web = customers.filter((pl.col("kind") == "web") & ~pl.col("is_guest") & pl.col("active"))
    expected = set(expected_payloads(sync_env)["contacts"].keys())
    in_hubspot = {k for k in sync_env.hubspot("contacts") if k.startswith("W")}
    assert in_hubspot == {k for k in expected if k.startswith("W")}
    assert len(in_hubspot) > len(_web_with(customers, "Registered") & set(web["customer_key"])) // 2
    assert not in_hubspot & set(customers.filter(pl.col("is_guest"))["customer_key"])


# ── item options ────────────────────────────────────────────────────────────────────────────────────


def test_sku_off_sends_no_sku(sync_env: SyncEnv) -> None:
    sync_env.run()
    assert any(_prop(p, "hs_sku") for p in sync_env.hubspot("products").values())
    sync_env.write_panel("items:\n  sync_sku: false\n")
    sync_env.run()
    assert {_prop(p, "hs_sku") for p in sync_env.hubspot("products").values()} == {""}
    assert_hubspot_matches(sync_env)


def test_store_prefix_updates_existing_products_never_duplicates(sync_env: SyncEnv) -> None:
    sync_env.run()
    plain = sync_env.hubspot("products")
    sync_env.write_panel("items:\n  store_prefix: true\n")
    run = sync_env.run()
    prefixed = sync_env.hubspot("products")
    assert {k: p["id"] for k, p in prefixed.items()} == {k: p["id"] for k, p in plain.items()}
    assert run.count("products", "created") == 0 and run.count("products", "updated") > 0
    stores = dict(SapReader(sync_env.sap_url).read("stores").frame.select("store_id", "store_code").iter_rows())
    changed = [k for k in plain if _prop(plain[k], "hs_sku")]
    homed = [k for k in changed if _prop(prefixed[k], "fp_store") in stores]
    assert len(homed) > len(changed) // 2
    for key in changed:
        code = stores.get(_prop(prefixed[key], "fp_store"))  # no home store: sent without prefix (repaired)
        want = f"{code}-{_prop(plain[key], 'hs_sku')}" if code else _prop(plain[key], "hs_sku")
        assert _prop(prefixed[key], "hs_sku") == want
    assert_hubspot_matches(sync_env)


def test_combinations_each_a_product_and_every_line_item_has_one(sync_env: SyncEnv) -> None:
    run = sync_env.run()
    products = sync_env.hubspot("products")
    combos = [k for k in products if "#" in k]
    assert combos
    shirt = products[combos[0]]
    assert "(" in _prop(shirt, "name") and ":" in _prop(shirt, "name")
    items = SapReader(sync_env.sap_url).read("items").frame
    assert _prop(shirt, "hs_sku") == items.filter(pl.col("product_key") == combos[0])["sku"][0]
    # SAP orders sell base items of items with combinations: those bases are products too
    line_items = sync_env.hubspot("line_items")
    without = [k for k, li in line_items.items() if not _prop(li, "hs_product_id")]
    expected = expected_payloads(sync_env)["line_items"]
    no_product = expected.issues.filter(pl.col("reason").str.contains("not synced|has no item"))
    assert len(without) == no_product.height < len(line_items) // 50, (len(without), len(line_items))
    assert run.metadata["hubspot_line_items"]["count_repaired"] < len(line_items) // 50


def test_combinations_off_one_product_per_item(sync_env: SyncEnv) -> None:
    sync_env.write_panel("items:\n  sync_combinations: false\n")
    sync_env.run()
    products = sync_env.hubspot("products")
    assert products and not any("#" in k for k in products)
    ids = {v: k for k, v in _ids(sync_env, "products").items()}
    linked = {ids.get(_prop(li, "hs_product_id"), "") for li in sync_env.hubspot("line_items").values()}
    assert not any("#" in k for k in linked)
    assert_hubspot_matches(sync_env)


# ── address source ──────────────────────────────────────────────────────────────────────────────────


def _addresses(env: SyncEnv) -> pl.DataFrame:
    return SapReader(env.sap_url).read("addresses").frame


def _differing_web_customer(env: SyncEnv, synced: set[str]) -> str:
    """A synced web customer whose default billing and shipping addresses are in different cities."""
    a = _addresses(env).filter(pl.col("is_default") & pl.col("owner_key").is_in(list(synced)))
    cities = a.pivot(on="address_type", index="owner_key", values="city", aggregate_function="first")
    return str(cities.filter(pl.col("billing") != pl.col("shipping")).sort("owner_key")["owner_key"][0])


def test_address_source_billing_or_shipping_and_changes_in_either_system(sync_env: SyncEnv) -> None:
    sync_env.run()
    contacts = sync_env.hubspot("contacts")
    key = _differing_web_customer(sync_env, {k for k in contacts if k.startswith("W")})
    defaults = _addresses(sync_env).filter((pl.col("owner_key") == key) & pl.col("is_default"))
    city = dict(defaults.select("address_type", "city").iter_rows())
    assert _prop(contacts[key], "city") == city["billing"]

    sync_env.write_panel("address_source: shipping\n")
    sync_env.run()
    assert _prop(sync_env.hubspot("contacts")[key], "city") == city["shipping"]
    assert_hubspot_matches(sync_env)

    # a changed web shipping address reaches the contact
    with sqlite3.connect(sync_env.sap_url.removeprefix("sqlite:///")) as con:
        con.execute(
            'UPDATE "FP_ADDRESS" SET "City" = ?, "UpdatedAt" = ? WHERE "CustomerId" = ? AND "AddressType" = ? '
            'AND "IsDefault" = 1',
            ("Shipton", datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"), int(key[1:]), "shipping"),
        )
    sync_env.run()
    assert _prop(sync_env.hubspot("contacts")[key], "city") == "Shipton"

    # and a changed SAP billing address reaches the business partner's contact (billing source again)
    sync_env.write_panel("")
    partner = sorted(k for k in sync_env.hubspot("contacts") if k.startswith("BP"))
    companies = sorted(sync_env.hubspot("companies"))
    target = partner[0] if partner else companies[0]
    simulate.set_customer_address(sync_env.sap_url, target, street="9 SAP Way", city="Sapville", zip_code="1", country="DE")
    sync_env.run()
    kind = "contacts" if partner else "companies"
    assert _prop(sync_env.hubspot(kind)[target], "city") == "Sapville"
    assert_hubspot_matches(sync_env)


def test_missing_address_kind_falls_back_to_the_other(sync_env: SyncEnv) -> None:
    sync_env.run()
    contacts = sync_env.hubspot("contacts")
    key = _differing_web_customer(sync_env, {k for k in contacts if k.startswith("W")})
    with sqlite3.connect(sync_env.sap_url.removeprefix("sqlite:///")) as con:
        con.execute('DELETE FROM "FP_ADDRESS" WHERE "CustomerId" = ? AND "AddressType" = ?', (int(key[1:]), "shipping"))
        con.execute('UPDATE "FP_CUSTOMER" SET "UpdatedAt" = ? WHERE "CustomerId" = ?',
                    (datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"), int(key[1:])))  # fmt: skip
    sync_env.write_panel("address_source: shipping\n")
    sync_env.run()
    billing = _addresses(sync_env).filter(
        (pl.col("owner_key") == key) & (pl.col("address_type") == "billing") & pl.col("is_default")
    )
    assert _prop(sync_env.hubspot("contacts")[key], "city") == billing["city"][0]


# ── deal stage mapping ──────────────────────────────────────────────────────────────────────────────

# Shipped already when partly shipped; Completed only once closed; Pending only when partly paid. An open,
# unshipped, unpaid order then matches no rule and takes unmapped_order_stage.
CUSTOM_STAGES = """deal_stages:
  checkout_shipped: {field: shipment_status, values: [partially_shipped, shipped]}
  checkout_completed: {field: order_status, values: [closed]}
  checkout_pending: {field: payment_status, values: [partially_paid]}
  unmapped_order_stage: checkout_processed
"""


def test_custom_stage_mapping_moves_deals_and_unmapped_get_the_default(sync_env: SyncEnv) -> None:
    sync_env.run()
    sync_env.write_panel(CUSTOM_STAGES)
    sync_env.run()
    stages = pipeline_from_state(sync_env.state())["stages"]
    deals = sync_env.hubspot("deals")
    orders = [d for d in deals.values() if _prop(d, "fp_order_status")]
    shipping = [d for d in orders if _prop(d, "fp_order_status") != "canceled"
                and _prop(d, "fp_shipment_status") in ("partially_shipped", "shipped")]  # fmt: skip
    assert shipping and all(_prop(d, "dealstage") == stages["checkout_shipped"] for d in shipping)
    # open, unshipped, unpaid → no rule matches → the panel's unmapped_order_stage
    unmapped = [d for d in orders if _prop(d, "fp_order_status") == "open" and _prop(d, "fp_shipment_status") ==
                "not_shipped" and _prop(d, "fp_payment_status") == "unpaid"]  # fmt: skip
    assert unmapped and all(_prop(d, "dealstage") == stages["checkout_processed"] for d in unmapped)
    assert_hubspot_matches(sync_env)

    sap_orders = SapReader(sync_env.sap_url).read("orders").frame
    check = order_statuses_mapped(sap_orders=sap_orders, panel=PanelResource(path=str(sync_env.panel_path)))
    # the check counts SAP orders, also those of guests whose deals are not sent (deals.of_excluded_customers)
    in_source = sap_orders.filter(
        (pl.col("order_status") == "open") & (pl.col("shipment_status") == "not_shipped") & (pl.col("payment_status") == "unpaid")
    )
    assert not check.passed and check.metadata["unmapped_orders"].value == in_source.height >= len(unmapped)
    assert check.metadata["default_stage"].value == "Checkout Processed"


def test_default_stage_mapping_maps_every_order(sync_env: SyncEnv) -> None:
    check = order_statuses_mapped(
        sap_orders=SapReader(sync_env.sap_url).read("orders").frame, panel=PanelResource(path=str(sync_env.panel_path))
    )
    assert check.passed


# ── abandoned checkout ──────────────────────────────────────────────────────────────────────────────


def test_abandoned_hours_and_a_later_order_moves_the_same_deal(sync_env: SyncEnv) -> None:
    customers = _customers(sync_env)
    customer = int(sorted(_web_with(customers, "Registered"))[0][1:])
    items = SapReader(sync_env.sap_url).read("items").frame.filter(pl.col("combination_id").is_null() & pl.col("active"))
    ten_hours_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=10)
    cart = simulate.add_cart(sync_env.sap_url, customer, [(items["item_code"][0], 1.0)], now=ten_hours_ago)
    sync_env.run()
    stages = pipeline_from_state(sync_env.state())["stages"]
    deal = sync_env.hubspot("deals")[f"C{cart}"]
    assert _prop(deal, "dealstage") == stages["checkout_pending"], "10 h < the default 24 h"

    sync_env.write_panel("abandoned_cart_hours: 8\n")
    sync_env.run()
    assert _prop(sync_env.hubspot("deals")[f"C{cart}"], "dealstage") == stages["checkout_abandoned"]

    order = simulate.complete_cart(sync_env.sap_url, cart)
    sync_env.run()
    after = sync_env.hubspot("deals")
    assert after[f"C{cart}"]["id"] == deal["id"] and f"O{order}" not in after
    assert _prop(after[f"C{cart}"], "dealstage") == stages["checkout_completed"]
    assert_hubspot_matches(sync_env)
