"""map_deals: one deal per cart/order, names and fields, stages, associations, repairs."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from fp_hubspot_assets.mapping import Mapped, map_companies, map_contacts, map_deals
from fp_hubspot_assets.panel import PanelSettings
from fp_hubspot_assets_tests.fixtures_mapping import (
    ADDRESS_ROWS,
    CART_ROWS,
    CUSTOMER_ROWS,
    NOW,
    ORDER_ROWS,
    by_key,
    edited,
    frame,
    issues_of,
    panel,
    rows,
    without,
)

ALL = panel(customers={"roles": ["Guest"], "all_registered": True})


def deals(
    order_rows=ORDER_ROWS, cart_rows=CART_ROWS, customer_rows=CUSTOMER_ROWS, settings: PanelSettings = ALL
):
    customers = frame("customers", rows(customer_rows))
    addresses = frame("addresses", rows(ADDRESS_ROWS))
    contacts = map_contacts(customers, addresses, settings)
    companies = map_companies(customers, addresses, settings)
    return map_deals(
        frame("orders", rows(order_rows)),
        frame("carts", rows(cart_rows)),
        customers,
        contacts,
        companies,
        settings,
        NOW,
    )


def test_a_cart_and_its_order_are_one_deal_keyed_by_the_cart() -> None:
    mapped = deals()
    assert mapped.object_type == "deals"
    assert sorted(by_key(mapped)) == ["C1", "C2", "C3", "O2", "O3", "O4"]
    deal = by_key(mapped)["C1"]
    assert (deal["fp_deal_id"], deal["dealname"], deal["dealstage"]) == (
        "C1",
        "Order #1001",
        "checkout_shipped",
    )


def test_order_fields() -> None:
    deal = by_key(deals())["C1"]
    assert deal["amount"] == "53.5"
    assert deal["deal_currency_code"] == "EUR"
    assert deal["closedate"] == "2025-05-02T10:30:15.123Z"
    assert (deal["fp_order_status"], deal["fp_shipment_status"], deal["fp_payment_status"]) == (
        "open",
        "shipped",
        "paid",
    )
    assert deal["fp_store"] == "2"
    assert "pipeline" not in deals().records.columns


def test_cart_fields() -> None:
    deal = by_key(deals())["C2"]
    assert (deal["dealname"], deal["amount"], deal["closedate"], deal["fp_order_status"]) == (
        "Cart 2",
        "28.5",
        "",
        "",
    )


def test_the_link_is_also_read_from_the_cart_side() -> None:
    unlinked = edited(ORDER_ROWS, "order_key", "O1", cart_key=None, web_customer_key=None)
    mapped = deals(unlinked)
    assert "O1" not in by_key(mapped)
    assert by_key(mapped)["C1"]["dealname"] == "Order #1001"
    assert by_key(mapped)["C1"]["assoc_contacts"] == "W3"  # the cart's customer


def test_order_without_cart_keeps_its_own_key() -> None:
    assert by_key(deals())["O2"]["dealname"] == "Order #1002"


def test_two_orders_claiming_one_cart_stay_two_deals() -> None:
    second = {**rows(ORDER_ROWS)[0], "order_key": "O5", "doc_entry": 5, "doc_num": 1005}
    mapped = deals(rows(ORDER_ROWS) + [second])
    assert by_key(mapped)["C1"]["dealname"] == "Order #1001"
    assert by_key(mapped)["O5"]["dealname"] == "Order #1005"
    assert issues_of(mapped, "O5") == [
        ("repaired", "cart C1 already became another order; this order is a deal of its own")
    ]


def test_ordered_cart_whose_order_is_missing_is_still_one_deal() -> None:
    mapped = deals(without(ORDER_ROWS, "order_key", "O1"))
    deal = by_key(mapped)["C1"]
    assert (deal["dealname"], deal["dealstage"]) == ("Cart 1", "checkout_completed")
    assert [a for a, _ in issues_of(mapped, "C1")] == ["repaired"]


@pytest.mark.parametrize(("hours", "c2_stage"), [(24, "checkout_pending"), (1, "checkout_abandoned")])
def test_abandoned_hours_from_panel(hours: float, c2_stage: str) -> None:
    settings = panel(
        customers={"all_registered": True}, abandoned_cart_hours=hours, deals={"of_excluded_customers": "send"}
    )
    mapped = by_key(deals(settings=settings))
    assert mapped["C2"]["dealstage"] == c2_stage
    assert mapped["C3"]["dealstage"] == "checkout_abandoned"


def test_stage_mapping_from_panel() -> None:
    settings = panel(
        customers={"all_registered": True},
        deal_stages={"checkout_canceled": {"field": "payment_status", "values": ["partially_paid"]}},
    )
    mapped = by_key(deals(settings=settings))
    assert mapped["O3"]["dealstage"] == "checkout_canceled"
    assert mapped["O2"]["dealstage"] == "checkout_pending"  # canceled by status no longer maps to canceled


# ── associations ──────────────────────────────────────────────────────────────────────────────────────


def test_cart_deal_associates_its_customer() -> None:
    assert by_key(deals())["C2"]["assoc_contacts"] == "W1"


def test_sap_order_of_private_partner_associates_the_partner_contact() -> None:
    deal = by_key(deals())["O2"]
    assert (deal["assoc_contacts"], deal["assoc_companies"]) == ("BPP200", None)


def test_sap_order_of_company_associates_first_active_contact_person_and_the_company() -> None:
    deal = by_key(deals())["O3"]
    assert (deal["assoc_contacts"], deal["assoc_companies"]) == ("CP1", "BPC100")


def test_first_contact_person_is_mapped_through_duplicate_aliases() -> None:
    # CP1 inactive → CP2 is the first active contact person; CP2 was merged into W1 (same email)
    mapped = deals(customer_rows=edited(CUSTOMER_ROWS, "customer_key", "CP1", active=False))
    assert by_key(mapped)["O3"]["assoc_contacts"] == "W1"


def test_contact_person_order_is_numeric() -> None:
    later = without(CUSTOMER_ROWS, "customer_key", "CP2") + [
        {"customer_key": "CP10", "kind": "contact_person", "card_code": "C100", "roles": ["Registered"]}
    ]
    extra = edited(later, "customer_key", "CP1", customer_key="CP9")
    assert by_key(deals(customer_rows=extra))["O3"]["assoc_contacts"] == "CP9"


def test_no_contact_association_when_the_contact_is_not_sent() -> None:
    guests_off = panel(customers={"roles": ["Registered"]}, deals={"of_excluded_customers": "send"})
    assert by_key(deals(settings=guests_off))["C3"]["assoc_contacts"] is None
    assert by_key(deals(settings=guests_off))["C1"]["assoc_contacts"] is None  # W3 is a vendor


def test_deals_of_excluded_customers_are_skipped_unless_the_panel_sends_them() -> None:
    guests_off = panel(customers={"roles": ["Registered"]})
    mapped = deals(settings=guests_off)
    assert "C3" not in by_key(mapped) and "C1" not in by_key(mapped)  # a guest's cart, a vendor's cart
    assert ("excluded", "customer W3 is excluded by the role filter (deals.of_excluded_customers: skip)") in issues_of(mapped, "C1")
    sent = deals(settings=panel(customers={"roles": ["Registered"]}, deals={"of_excluded_customers": "send"}))
    assert {"C1", "C3"} <= set(by_key(sent))


def test_a_rejected_contact_keeps_its_deal_association() -> None:
    customers = frame("customers", rows(CUSTOMER_ROWS))
    addresses = frame("addresses", rows(ADDRESS_ROWS))
    contacts = map_contacts(customers, addresses, ALL)
    rejected = Mapped(
        "contacts",
        contacts.records.filter(pl.col("source_key") != "W1"),
        pl.concat([contacts.issues, pl.DataFrame({"source_key": ["W1"], "action": ["skipped"], "reason": ["bad value"]})]),
        contacts.aliases,
    )
    companies = map_companies(customers, addresses, ALL)
    args = (frame("orders", rows(ORDER_ROWS)), frame("carts", rows(CART_ROWS)), customers)
    assert by_key(map_deals(*args, rejected, companies, ALL, NOW))["C2"]["assoc_contacts"] == "W1"
    excluded = Mapped("contacts", rejected.records, rejected.issues.with_columns(pl.lit("excluded").alias("action")), contacts.aliases)
    assert "C2" not in by_key(map_deals(*args, excluded, companies, ALL, NOW))


def test_an_order_linked_to_its_cart_names_its_old_deal_as_an_alias() -> None:
    mapped = deals()
    aliases = dict(mapped.aliases.iter_rows()) if mapped.aliases is not None else {}
    linked = {key: deal for key, deal in by_key(mapped).items() if deal["dealname"].startswith("Order") and key.startswith("C")}
    assert linked, "the fixture has an ordered cart"
    for cart_key in linked:
        assert cart_key in aliases.values()
    assert all(old.startswith("O") and new.startswith("C") for old, new in aliases.items())


def test_a_negative_total_is_never_sent_as_the_amount() -> None:
    negative = [{**row, "total": -1052.11} for row in rows(CART_ROWS)]
    mapped = deals(cart_rows=negative)
    for key, deal in by_key(mapped).items():
        if key.startswith("C") and not deal["dealname"].startswith("Order"):
            assert deal["amount"] == ""
            assert ("repaired", "invalid amount -1052.11; cleared") in issues_of(mapped, key)


def test_company_association_only_when_the_company_is_sent() -> None:
    inactive = edited(CUSTOMER_ROWS, "customer_key", "BPC100", active=False)
    assert by_key(deals(customer_rows=inactive))["O3"]["assoc_companies"] is None
    assert by_key(deals())["C1"]["assoc_companies"] == "BPC100"


def test_open_cart_of_linked_web_customer_associates_the_company() -> None:
    cart = {**rows(CART_ROWS)[1], "cart_key": "C7", "cart_id": 7, "customer_key": "W3"}
    deal = by_key(deals(cart_rows=rows(CART_ROWS) + [cart]))["C7"]
    assert (deal["assoc_contacts"], deal["assoc_companies"]) == ("W3", "BPC100")


def test_order_for_unknown_customer_is_still_a_deal() -> None:
    mapped = deals()
    deal = by_key(mapped)["O4"]
    assert (deal["assoc_contacts"], deal["assoc_companies"]) == (None, None)
    assert issues_of(mapped, "O4") == [
        ("repaired", "customer unknown (web customer '', business partner 'Z999'); deal sent without contact")
    ]


def test_unknown_web_customer_falls_back_to_the_partner() -> None:
    ghost = edited(ORDER_ROWS, "order_key", "O3", web_customer_key="W404")
    mapped = deals(ghost)
    assert by_key(mapped)["O3"]["assoc_contacts"] == "CP1"
    assert issues_of(mapped, "O3") == []


# ── repairs ───────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("doc_date", [datetime(1900, 1, 1), datetime(2200, 1, 1)])
def test_out_of_range_dates_clear_closedate(doc_date: datetime) -> None:
    mapped = deals(edited(ORDER_ROWS, "order_key", "O2", doc_date=doc_date))
    assert by_key(mapped)["O2"]["closedate"] == ""
    ((action, reason),) = issues_of(mapped, "O2")
    assert action == "repaired" and "closedate cleared" in reason


@pytest.mark.parametrize("total", [math.nan, math.inf])
def test_bad_amount_is_cleared(total: float) -> None:
    mapped = deals(edited(ORDER_ROWS, "order_key", "O2", total=total))
    assert by_key(mapped)["O2"]["amount"] == ""
    assert [a for a, _ in issues_of(mapped, "O2")] == ["repaired"]


def test_missing_doc_num_names_deal_by_entry() -> None:
    assert by_key(deals(edited(ORDER_ROWS, "order_key", "O2", doc_num=None)))["O2"]["dealname"] == "Order #2"


def test_late_cart_update_does_not_change_an_order_deal() -> None:
    stale = edited(CART_ROWS, "cart_key", "C1", status="open", updated_at=NOW - timedelta(days=90))
    deal = by_key(deals(cart_rows=stale))["C1"]
    assert (deal["dealname"], deal["dealstage"]) == ("Order #1001", "checkout_shipped")


def test_web_order_booked_to_a_collective_partner_is_not_that_partners_deal() -> None:
    """SAP books unlinked web customers' orders to a collective account (e.g. "Web Shop EU"): the deal belongs
    to the web customer, not to that company; a linked web customer's deal keeps its own company."""
    order_rows = edited(ORDER_ROWS, "order_key", "O1", card_code="C300", web_customer_key="W1")
    cart_rows = edited(CART_ROWS, "cart_key", "C1", customer_key="W1")
    deal = by_key(deals(order_rows=order_rows, cart_rows=cart_rows))["C1"]
    assert deal["assoc_contacts"] == "W1"
    assert deal["assoc_companies"] is None
    linked = by_key(deals(order_rows=edited(ORDER_ROWS, "order_key", "O1", card_code="C300")))["C1"]
    assert linked["assoc_companies"] == "BPC100"  # W3 belongs to C100, whatever partner the order names


@pytest.mark.parametrize("settings", [ALL, panel(customers={"roles": ["Registered"]})], ids=["all", "guests excluded"])
def test_mapping_in_slices_of_deals_gives_the_whole_mapping(settings: PanelSettings) -> None:
    # issues of several kinds in several deals (a split cart claim, a bad amount, a bad date, an unknown customer,
    # a NUL byte, excluded customers), so slices of one deal each report them in several parts
    second = {**rows(ORDER_ROWS)[0], "order_key": "O5", "doc_entry": 5, "doc_num": 1005, "currency": "e\x00ur"}
    orders = edited(edited(rows(ORDER_ROWS) + [second], "order_key", "O2", total=math.nan), "order_key", "O3",
                    doc_date=datetime(1900, 1, 1))  # fmt: skip
    customers = frame("customers", rows(CUSTOMER_ROWS))
    addresses = frame("addresses", rows(ADDRESS_ROWS))
    args = (frame("orders", orders), frame("carts", rows(CART_ROWS)), customers,
            map_contacts(customers, addresses, settings), map_companies(customers, addresses, settings), settings, NOW)  # fmt: skip
    whole = map_deals(*args)
    assert {a for a in whole.issues["action"]} >= {"repaired"} and whole.issues.height >= 5
    assert whole.aliases is not None
    # with every customer sent an ordered cart merges its order's deal; with guests excluded that cart is not sent
    assert whole.aliases.height if settings is ALL else "excluded" in whole.issues["action"]
    for slice_deals in (1, 2, 4):
        sliced = map_deals(*args, slice_deals=slice_deals)
        assert_frame_equal(sliced.records, whole.records)
        assert_frame_equal(sliced.issues, whole.issues)
        assert sliced.aliases is not None
        assert_frame_equal(sliced.aliases, whole.aliases)
