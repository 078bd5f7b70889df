"""Simulated store activity and the test helpers: each change is visible to an incremental read."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from fp_demo_store.generate import AS_OF
from fp_demo_store.simulate import (
    CartLine,
    add_cart,
    cancel_order,
    complete_cart,
    pay_order,
    set_customer_address,
    ship_order,
    simulate,
)
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets_tests.fixtures_sap import sql_rows

NOW = AS_OF + timedelta(days=2)


def _order(reader: SapReader, doc_entry: int) -> dict:
    frame = reader.read("orders", since=NOW).frame.filter(pl.col("doc_entry") == doc_entry)
    assert frame.height == 1
    return frame.row(0, named=True)


def _combination(url: str) -> tuple[str, int, float]:
    """An item published in store 1 with a combination: (item code, combination id, price delta)."""
    return sql_rows(
        url,
        'SELECT c."ItemCode", c."CombinationId", c."PriceDelta" FROM "FP_ITEM_COMBINATION" c '
        'JOIN "FP_ITEM_STORE" s ON s."ItemCode" = c."ItemCode" AND s."StoreId" = 1 '
        'WHERE c."PriceDelta" > 0 ORDER BY c."CombinationId" LIMIT 1',
    )[0]


def test_a_cart_checked_out_shipped_paid_step_by_step(sap_demo_copy: str) -> None:
    url = sap_demo_copy
    customer = sql_rows(url, 'SELECT "CustomerId" FROM "FP_CUSTOMER" WHERE "StoreId" = 1 AND NOT "IsGuest" LIMIT 1')[0][0]
    item, combination, delta = _combination(url)
    base_price = sql_rows(url, 'SELECT "Price" FROM "ITM1" WHERE "ItemCode" = ? AND "PriceList" = 1', (item,))[0][0]
    cart_id = add_cart(url, customer, [CartLine(item, 2, combination), (item, 3)], now=NOW)
    with SapReader(url) as reader:
        cart = reader.read("carts", since=NOW).frame.row(0, named=True)
        assert (cart["cart_key"], cart["status"], cart["order_key"], cart["customer_key"]) == (
            f"C{cart_id}", "open", None, f"W{customer}"
        )  # fmt: skip
        assert [line["price"] for line in cart["lines"]] == [pytest.approx(base_price + delta), base_price]
        doc_entry = complete_cart(url, cart_id, now=NOW)
        with pytest.raises(ValueError, match="already"):
            complete_cart(url, cart_id, now=NOW)
        cart = reader.read("carts", since=NOW).frame.row(0, named=True)
        assert (cart["status"], cart["order_key"]) == ("ordered", f"O{doc_entry}")
        order = _order(reader, doc_entry)
        assert (order["cart_key"], order["web_customer_key"], order["order_status"]) == (cart["cart_key"], f"W{customer}", "open")
        assert (order["shipment_status"], order["payment_status"]) == ("not_shipped", "unpaid")
        assert order["total"] == pytest.approx(cart["total"])
        ship_order(url, doc_entry, partial=True, now=NOW)
        pay_order(url, doc_entry, amount=10.0, now=NOW)
        order = _order(reader, doc_entry)
        assert (order["order_status"], order["shipment_status"], order["payment_status"]) == (
            "open", "partially_shipped", "partially_paid"
        )  # fmt: skip
        ship_order(url, doc_entry, now=NOW)
        pay_order(url, doc_entry, now=NOW)
        order = _order(reader, doc_entry)
        assert (order["order_status"], order["shipment_status"], order["payment_status"]) == ("closed", "shipped", "paid")
        with pytest.raises(ValueError, match="fully delivered"):
            ship_order(url, doc_entry, now=NOW)


def test_cancel_order_and_unknown_keys(sap_demo_copy: str) -> None:
    url = sap_demo_copy
    doc_entry = sql_rows(url, 'SELECT MAX("DocEntry") FROM "ORDR" WHERE "DocStatus" = \'O\' AND "CANCELED" = \'N\'')[0][0]
    cancel_order(url, doc_entry, now=NOW)
    with SapReader(url) as reader:
        assert _order(reader, doc_entry)["order_status"] == "canceled"
    with pytest.raises(KeyError):
        complete_cart(url, 10**9, now=NOW)
    with pytest.raises(ValueError, match="customer key"):
        set_customer_address(url, "X1", street="s", city="c", zip_code="z", country="DE", now=NOW)


def test_address_change_of_a_partner_reads_its_addresses(sap_demo_copy: str) -> None:
    url = sap_demo_copy
    code = sql_rows(url, 'SELECT MIN("CardCode") FROM "OCRD" WHERE "CardType" = \'C\'')[0][0]
    set_customer_address(url, f"BP{code}", street="Neue Straße 1", city="Köln", zip_code="50667", country="de", now=NOW)
    with SapReader(url) as reader:
        frame = reader.read("addresses", since=NOW).frame
    assert set(frame["owner_key"]) == {f"BP{code}"}
    billing = frame.filter(pl.col("is_default") & (pl.col("address_type") == "billing")).row(0, named=True)
    assert (billing["street"], billing["city"], billing["country"]) == ("Neue Straße 1", "Köln", "DE")


def test_simulate_is_deterministic_and_every_change_reads_incrementally(sap_demo_path: Path, tmp_path: Path) -> None:
    urls = []
    for name in ("a", "b"):
        target = tmp_path / f"{name}.db"
        shutil.copyfile(sap_demo_path, target)
        urls.append(f"sqlite:///{target}")
    done = [simulate(url, seed=3, new_carts=8, new_orders=5, changes=18, now=NOW) for url in urls]
    assert done[0] == done[1]
    counts = done[0]
    assert counts["carts_added"] == 8 and counts["carts_ordered"] == 5
    assert counts["emails_changed"] == 3 and counts["prices_changed"] == 3 and counts["addresses_changed"] >= 1
    assert counts["orders_shipped"] + counts["orders_paid"] + counts["orders_canceled"] >= 6
    with SapReader(urls[0]) as a, SapReader(urls[1]) as b:
        changed = {e: a.read(e, since=NOW).frame for e in ("customers", "addresses", "items", "orders", "carts")}
        for entity, frame in changed.items():
            assert frame.equals(b.read(entity, since=NOW).frame), entity
        # a cart is read with its order (one purchase): changed carts, plus the carts of changed orders
        touched = changed["carts"].filter(pl.col("updated_at") >= NOW)
        assert touched.height == counts["carts_added"] + counts["carts_ordered"] - _new_and_ordered(touched)
        partners = changed["carts"].filter(pl.col("updated_at") < NOW)
        assert partners["order_key"].is_in(changed["orders"]["order_key"].implode()).all()
        assert touched.filter(pl.col("status") == "ordered").height == counts["carts_ordered"]
        new_orders = changed["orders"].filter(pl.col("cart_key").is_in(touched.filter(pl.col("status") == "ordered")["cart_key"].implode()))
        assert new_orders.height == counts["carts_ordered"]
        assert changed["customers"].filter(pl.col("email").str.starts_with("changed.")).height == counts["emails_changed"]
        assert changed["items"].filter(pl.col("combination_id").is_null()).height == counts["prices_changed"]
        assert changed["orders"].height >= counts["carts_ordered"] + counts["orders_canceled"]
        assert a.max_updated_at("carts") == NOW


def _new_and_ordered(carts: pl.DataFrame) -> int:
    """Carts both added and checked out in the same burst (counted once in the frame)."""
    return carts.filter((pl.col("created_at") == NOW) & (pl.col("status") == "ordered")).height
