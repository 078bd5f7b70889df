"""map_products: tier gating, attribute combinations, SKU options, prices."""

from __future__ import annotations

import math

import pytest

from fp_hubspot_assets.mapping import map_products
from fp_hubspot_assets_tests.fixtures_mapping import (
    ITEM_ROWS,
    STORE_ROWS,
    by_key,
    edited,
    frame,
    issues_of,
    panel,
    rows,
)


def products(item_rows=ITEM_ROWS, store_rows=STORE_ROWS, **options):
    return map_products(frame("items", rows(item_rows)), frame("stores", rows(store_rows)), panel(**options))


@pytest.mark.parametrize("tier", ["free", "starter"])
def test_tiers_without_products_send_none(tier: str) -> None:
    mapped = products(tier=tier)
    assert mapped.records.is_empty()
    assert "fp_product_id" in mapped.records.columns
    assert mapped.issues.height == len(ITEM_ROWS)
    assert set(mapped.issues.get_column("action")) == {"excluded"}
    assert all(f"tier '{tier}'" in reason for reason in mapped.issues.get_column("reason"))


@pytest.mark.parametrize("tier", ["professional", "enterprise"])
def test_professional_and_enterprise_send_products(tier: str) -> None:
    assert "IA1" in by_key(products(tier=tier))


def test_combinations_on_each_combination_is_a_product(items, stores, settings) -> None:
    mapped = map_products(items, stores, settings)
    # the base item too: orders entered in SAP sell it without a combination (see mapping/products.py)
    assert sorted(by_key(mapped)) == ["IA1", "IS1", "IS1#BM", "IS1#RXL"]
    red = by_key(mapped)["IS1#RXL"]
    assert (red["name"], red["hs_sku"], red["price"]) == ("Shirt (Color: Red, Size: XL)", "SH-1-R-XL", "22")
    assert (by_key(mapped)["IS1"]["name"], by_key(mapped)["IS1"]["hs_sku"]) == ("Shirt", "SH-1")
    assert issues_of(mapped, "IS1") == []


def test_combinations_off_one_product_per_item() -> None:
    mapped = products(items={"sync_combinations": False})
    assert sorted(by_key(mapped)) == ["IA1", "IS1"]
    shirt = by_key(mapped)["IS1"]
    assert (shirt["name"], shirt["hs_sku"], shirt["price"]) == ("Shirt", "SH-1", "20")
    assert [a for a, _ in issues_of(mapped, "IS1#RXL")] == ["excluded"]


def test_combination_without_attributes_is_named_by_its_id() -> None:
    mapped = products(edited(ITEM_ROWS, "product_key", "IS1#BM", attributes=" "))
    assert by_key(mapped)["IS1#BM"]["name"] == "Shirt (BM)"


def test_sku_off_sends_empty_sku() -> None:
    assert {row["hs_sku"] for row in by_key(products(items={"sync_sku": False})).values()} == {""}


def test_store_prefix_uses_home_store_code_and_keeps_identity() -> None:
    plain = by_key(products())
    prefixed = by_key(products(items={"store_prefix": True}))
    assert prefixed["IS1#RXL"]["hs_sku"] == "US-SH-1-R-XL"
    assert prefixed["IA1"]["hs_sku"] == "EU-MUG-1"
    assert set(prefixed) == set(plain)
    assert all(prefixed[k]["fp_product_id"] == plain[k]["fp_product_id"] == k for k in plain)


def test_store_prefix_without_sku_sync_sends_nothing() -> None:
    assert by_key(products(items={"store_prefix": True, "sync_sku": False}))["IA1"]["hs_sku"] == ""


def test_store_prefix_with_unknown_store_keeps_plain_sku() -> None:
    mapped = products(edited(ITEM_ROWS, "product_key", "IA1", store_id="7"), items={"store_prefix": True})
    assert by_key(mapped)["IA1"]["hs_sku"] == "MUG-1"
    assert issues_of(mapped, "IA1") == [
        ("repaired", "no store code for home store '7'; SKU sent without prefix")
    ]


def test_item_without_sku_gets_no_lonely_prefix() -> None:
    mapped = products(edited(ITEM_ROWS, "product_key", "IA1", sku=None), items={"store_prefix": True})
    assert by_key(mapped)["IA1"]["hs_sku"] == ""


@pytest.mark.parametrize(("price", "text"), [(19.99, "19.99"), (0.0, "0"), (1234.5, "1234.5"), (None, "")])
def test_price_as_decimal_string(price: float | None, text: str) -> None:
    assert by_key(products(edited(ITEM_ROWS, "product_key", "IA1", price=price)))["IA1"]["price"] == text


@pytest.mark.parametrize("price", [-0.01, math.nan, math.inf, -math.inf, 1e300])
def test_bad_price_skips_the_product(price: float) -> None:
    mapped = products(edited(ITEM_ROWS, "product_key", "IA1", price=price))
    assert "IA1" not in by_key(mapped)
    ((action, reason),) = issues_of(mapped, "IA1")
    assert action == "skipped" and reason.startswith("invalid price")


def test_inactive_item_is_excluded() -> None:
    mapped = products()
    assert "IX9" not in by_key(mapped)
    assert issues_of(mapped, "IX9") == [("excluded", "inactive item")]


def test_description_and_store() -> None:
    row = by_key(products())["IA1"]
    assert (row["description"], row["fp_store"]) == ("A mug", "1")


def test_item_without_name_uses_item_code() -> None:
    mapped = products(edited(ITEM_ROWS, "product_key", "IA1", name=None))
    assert by_key(mapped)["IA1"]["name"] == "A1"
    assert issues_of(mapped, "IA1") == [("repaired", "item has no name; used its item code")]
