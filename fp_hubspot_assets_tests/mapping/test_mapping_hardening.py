"""Hostile and messy input: NUL bytes, huge strings, whitespace, unicode, broken keys, all-null rows."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from fp_hubspot_assets.mapping import (
    OBJECT_TYPES,
    PROPERTIES,
    map_companies,
    map_contacts,
    map_deals,
    map_line_items,
    map_products,
)
from fp_hubspot_assets.mapping.common import HUBSPOT_MAX_CHARS
from fp_hubspot_assets_tests.fixtures_mapping import (
    ADDRESS_ROWS,
    CART_ROWS,
    CUSTOMER_ROWS,
    ITEM_ROWS,
    NOW,
    ORDER_ROWS,
    STORE_ROWS,
    by_key,
    edited,
    frame,
    issues_of,
    panel,
    rows,
)

SETTINGS = panel(customers={"roles": ["Guest"], "all_registered": True})


def contacts(customer_rows, address_rows=ADDRESS_ROWS):
    return map_contacts(frame("customers", customer_rows), frame("addresses", rows(address_rows)), SETTINGS)


def products(item_rows):
    return map_products(frame("items", item_rows), frame("stores", rows(STORE_ROWS)), SETTINGS)


def test_nul_bytes_are_stripped_and_reported() -> None:
    mapped = contacts(
        edited(CUSTOMER_ROWS, "customer_key", "CP1", first_name="Bo\x00b", email="bob\x00@acme.de")
    )
    row = by_key(mapped)["CP1"]
    assert (row["firstname"], row["email"]) == ("Bob", "bob@acme.de")
    assert issues_of(mapped, "CP1") == [("repaired", "NUL bytes removed from firstname")]


def test_oversized_values_are_truncated_to_hubspots_limit() -> None:
    huge = "x" * (HUBSPOT_MAX_CHARS * 2)
    mapped = products(edited(ITEM_ROWS, "product_key", "IA1", description=huge))
    assert len(by_key(mapped)["IA1"]["description"]) == HUBSPOT_MAX_CHARS
    assert issues_of(mapped, "IA1") == [
        ("repaired", f"description truncated to {HUBSPOT_MAX_CHARS} characters")
    ]


def test_value_exactly_at_the_limit_is_untouched() -> None:
    exact = "y" * HUBSPOT_MAX_CHARS
    mapped = products(edited(ITEM_ROWS, "product_key", "IA1", description=exact))
    assert by_key(mapped)["IA1"]["description"] == exact
    assert issues_of(mapped, "IA1") == []


def test_surrounding_whitespace_is_trimmed_silently() -> None:
    mapped = contacts(
        edited(CUSTOMER_ROWS, "customer_key", "CP1", first_name=" \t Bob \n", last_name="  Builder")
    )
    row = by_key(mapped)["CP1"]
    assert (row["firstname"], row["lastname"]) == ("Bob", "Builder")
    assert issues_of(mapped, "CP1") == []


@pytest.mark.parametrize(
    "name",
    ["محمد", "שָׁלוֹם", "\u202eevil\u202c", "😀🎉", "Zoë Åström-Ñúñez", "李小龍", "e\u0301", "👩‍👩‍👧‍👦"],
)
def test_unicode_rtl_and_emoji_are_kept_as_is(name: str) -> None:
    mapped = contacts(edited(CUSTOMER_ROWS, "customer_key", "CP1", first_name=name, last_name=name))
    row = by_key(mapped)["CP1"]
    assert (row["firstname"], row["lastname"]) == (name, name)


def test_truncation_counts_characters_not_bytes() -> None:
    emoji = "😀" * (HUBSPOT_MAX_CHARS + 1)
    row = by_key(products(edited(ITEM_ROWS, "product_key", "IA1", description=emoji)))["IA1"]
    assert row["description"] == "😀" * HUBSPOT_MAX_CHARS


@pytest.mark.parametrize("key", [None, "", " W9", "W9 ", "W\x009", "W" * 300])
def test_unusable_keys_are_skipped(key: str | None) -> None:
    bad = rows(CUSTOMER_ROWS) + [
        {"customer_key": key, "kind": "web", "email": "k@example.com", "roles": ["Registered"]}
    ]
    mapped = contacts(bad)
    assert mapped.records.height == contacts(rows(CUSTOMER_ROWS)).records.height
    skipped = mapped.issues.filter(pl.col("reason") == "invalid customer key")
    assert skipped.height == 1
    assert "\x00" not in skipped.item(0, "source_key") and len(skipped.item(0, "source_key")) <= 256


def test_duplicate_source_rows_keep_the_latest() -> None:
    newer = {**rows(CUSTOMER_ROWS)[5], "first_name": "Robert", "updated_at": datetime(2025, 3, 1)}
    mapped = contacts(rows(CUSTOMER_ROWS) + [newer])
    assert by_key(mapped)["CP1"]["firstname"] == "Robert"
    assert issues_of(mapped, "CP1") == [("skipped", "duplicate customer row; kept the most recently updated")]


def test_all_null_rows_do_not_break_any_mapper() -> None:
    customers = frame("customers", rows(CUSTOMER_ROWS) + [{}, {"customer_key": "W77"}])
    addresses = frame("addresses", rows(ADDRESS_ROWS) + [{}, {"owner_key": "W1"}])
    items = frame("items", rows(ITEM_ROWS) + [{}, {"product_key": "I77"}])
    orders = frame("orders", rows(ORDER_ROWS) + [{}, {"order_key": "O77", "lines": [{}, None]}])
    carts = frame("carts", rows(CART_ROWS) + [{}, {"cart_key": "C77", "lines": [{}]}])
    stores = frame("stores", rows(STORE_ROWS) + [{}])
    contacts_ = map_contacts(customers, addresses, SETTINGS)
    companies = map_companies(customers, addresses, SETTINGS)
    products_ = map_products(items, stores, SETTINGS)
    deals = map_deals(orders, carts, customers, contacts_, companies, SETTINGS, NOW)
    lines = map_line_items(orders, carts, products_, SETTINGS, deals=deals)
    assert "W77" not in by_key(contacts_)  # no kind → unknown, skipped
    assert "I77" in by_key(products_)  # a bare item is still a product (no price, no SKU)
    assert {"O77", "C77"} <= set(by_key(deals))
    assert not any(k.startswith(("O77", "C77")) for k in by_key(lines))
    for mapped in (contacts_, companies, products_, deals, lines):
        assert mapped.object_type in OBJECT_TYPES
        assert (
            mapped.records.select(pl.col(PROPERTIES[mapped.object_type]).null_count()).sum_horizontal().item()
            == 0
        )


def test_hostile_strings_in_every_deal_field() -> None:
    hostile = "\x00 ' OR 1=1; -- <script>alert(1)</script> ${jndi:ldap://x} \u202e"
    orders = edited(
        ORDER_ROWS,
        "order_key",
        "O2",
        currency=hostile,
        order_status=hostile,
        store_id=hostile,
        card_code=hostile,
    )
    customers = frame("customers", rows(CUSTOMER_ROWS))
    addresses = frame("addresses", rows(ADDRESS_ROWS))
    deals = map_deals(
        frame("orders", orders),
        frame("carts", rows(CART_ROWS)),
        customers,
        map_contacts(customers, addresses, SETTINGS),
        map_companies(customers, addresses, SETTINGS),
        SETTINGS,
        NOW,
    )
    deal = by_key(deals)["O2"]
    assert "\x00" not in "".join(v for v in deal.values() if v)
    assert deal["fp_order_status"] == hostile.replace("\x00", "").strip()
    assert deal["dealstage"] == "checkout_pending"  # unpaid still matches; the junk status matched nothing


def test_nul_bytes_reported_for_address_company_and_product_fields() -> None:
    mapped = contacts(rows(CUSTOMER_ROWS), edited(ADDRESS_ROWS, "address_key", "W1:A1", city="Ber\x00lin"))
    assert by_key(mapped)["W1"]["city"] == "Berlin"
    assert issues_of(mapped, "W1") == [("repaired", "NUL bytes removed from city")]

    customers = frame(
        "customers", edited(CUSTOMER_ROWS, "customer_key", "BPC100", company_name="Acme\x00 GmbH")
    )
    companies = map_companies(customers, frame("addresses", rows(ADDRESS_ROWS)), SETTINGS)
    assert by_key(companies)["BPC100"]["name"] == "Acme GmbH"
    assert issues_of(companies, "BPC100") == [("repaired", "NUL bytes removed from name")]

    items = products(edited(ITEM_ROWS, "item_code", "S1", name="Sh\x00irt"))
    assert by_key(items)["IS1#RXL"]["name"] == "Shirt (Color: Red, Size: XL)"
    assert issues_of(items, "IS1#RXL") == [("repaired", "NUL bytes removed from name")]


def test_value_of_only_nul_and_spaces_counts_as_blank() -> None:
    mapped = contacts(edited(CUSTOMER_ROWS, "customer_key", "BPP200", first_name="\x00 ", last_name=" \x00"))
    row = by_key(mapped)["BPP200"]
    assert (row["firstname"], row["lastname"]) == ("John", "Smith")  # fell back to splitting CardName
