"""Shared pytest fixtures for the mapping tests: a small hand-built store, conformed to the canonical
schemas. Tests that need a variation build their own rows with ``frame`` (rows missing a field get null)."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest

from fp_hubspot_assets.panel import PanelSettings, parse_panel
from fp_hubspot_assets.source_model import SCHEMAS, conform

NOW = datetime(2025, 6, 1, 12, 0, 0)
T0 = datetime(2025, 1, 1, 9, 0, 0)

Row = dict[str, Any]


def frame(entity: str, rows: list[Row]) -> pl.DataFrame:
    """Canonical frame of ``entity`` from partial row dicts."""
    return conform(pl.DataFrame(rows, schema=SCHEMAS[entity]), entity)


def panel(**options: Any) -> PanelSettings:
    """Panel settings from nested option dicts, validated like a panel file."""
    return parse_panel(options)


STORE_ROWS: list[Row] = [
    {"store_id": "1", "store_code": "EU", "name": "EU Store", "currency": "EUR", "price_list": 1},
    {"store_id": "2", "store_code": "US", "name": "US Store", "currency": "USD", "price_list": 2},
]

CUSTOMER_ROWS: list[Row] = [
    # a registered web customer; her email is shared with contact person CP2 (duplicate)
    {
        "customer_key": "W1",
        "kind": "web",
        "store_id": "1",
        "email": " Alice.Example@Example.COM ",
        "first_name": "Alice",
        "last_name": "Example",
        "phone": "+49 30 1234",
        "roles": ["Registered"],
        "is_guest": False,
        "active": True,
        "updated_at": T0,
    },
    {
        "customer_key": "W2",
        "kind": "web",
        "store_id": "1",
        "email": "guest@example.com",
        "first_name": "Gus",
        "roles": [],
        "is_guest": True,
        "active": True,
        "updated_at": T0,
    },
    # a vendor web account linked to company partner C100
    {
        "customer_key": "W3",
        "kind": "web",
        "store_id": "2",
        "card_code": "C100",
        "email": "vendor@shop.com",
        "first_name": "Vera",
        "last_name": "Vendor",
        "roles": ["Vendors"],
        "is_guest": False,
        "active": True,
        "updated_at": T0,
    },
    {
        "customer_key": "W4",
        "kind": "web",
        "store_id": "1",
        "email": "gone@example.com",
        "roles": ["Registered"],
        "is_guest": False,
        "active": False,
        "updated_at": T0,
    },
    {
        "customer_key": "BPC100",
        "kind": "bp",
        "card_code": "C100",
        "is_company": True,
        "company_name": "Acme GmbH",
        "email": "info@acme.de",
        "phone": "+49 89 555",
        "roles": ["Registered", "Wholesale"],
        "is_guest": False,
        "active": True,
        "updated_at": T0,
    },
    {
        "customer_key": "CP1",
        "kind": "contact_person",
        "card_code": "C100",
        "company_name": "Acme GmbH",
        "email": "bob@acme.de",
        "first_name": "Bob",
        "last_name": "Builder",
        "roles": ["Registered"],
        "is_guest": False,
        "active": True,
        "updated_at": T0,
    },
    {
        "customer_key": "CP2",
        "kind": "contact_person",
        "card_code": "C100",
        "company_name": "Acme GmbH",
        "email": "alice.example@example.com",
        "first_name": "Alice",
        "last_name": "Acme",
        "roles": ["Registered"],
        "is_guest": False,
        "active": True,
        "updated_at": T0,
    },
    # a private partner: a person, so a contact — named only by CardName
    {
        "customer_key": "BPP200",
        "kind": "bp",
        "card_code": "P200",
        "is_company": False,
        "company_name": "John Smith",
        "email": "john@gmail.com",
        "roles": ["Registered"],
        "is_guest": False,
        "active": True,
        "updated_at": T0,
    },
    {
        "customer_key": "BPC300",
        "kind": "bp",
        "card_code": "C300",
        "is_company": True,
        "company_name": "Solo Trader Ltd",
        "email": "owner@gmail.com",
        "roles": ["Registered"],
        "is_guest": False,
        "active": True,
        "updated_at": T0,
    },
]

ADDRESS_ROWS: list[Row] = [
    {
        "address_key": "W1:A1",
        "owner_key": "W1",
        "source": "web",
        "address_type": "billing",
        "is_default": True,
        "street": "1 Main St",
        "city": "Berlin",
        "zip": "10115",
        "country": "DE",
        "updated_at": T0,
    },
    {
        "address_key": "W1:A2",
        "owner_key": "W1",
        "source": "web",
        "address_type": "shipping",
        "is_default": True,
        "street": "2 Ship Rd",
        "street2": "Hof 3",
        "city": "Hamburg",
        "zip": "20095",
        "country": "DE",
        "updated_at": T0,
    },
    {
        "address_key": "W1:A3",
        "owner_key": "W1",
        "source": "web",
        "address_type": "billing",
        "is_default": False,
        "street": "3 Old St",
        "city": "Bonn",
        "zip": "53111",
        "country": "DE",
        "updated_at": T0 + timedelta(days=9),
    },
    {
        "address_key": "BPC100:B:HQ",
        "owner_key": "BPC100",
        "source": "sap",
        "address_type": "billing",
        "is_default": True,
        "street": "Acme Str 1",
        "city": "München",
        "zip": "80331",
        "state": "BY",
        "country": "DE",
        "updated_at": T0,
    },
    {
        "address_key": "BPC100:S:WH",
        "owner_key": "BPC100",
        "source": "sap",
        "address_type": "shipping",
        "is_default": True,
        "street": "Lager 5",
        "city": "Augsburg",
        "zip": "86150",
        "country": "DE",
        "updated_at": T0,
    },
    {
        "address_key": "BPP200:S:Home",
        "owner_key": "BPP200",
        "source": "sap",
        "address_type": "shipping",
        "is_default": False,
        "street": "Home 9",
        "city": "Köln",
        "zip": "50667",
        "country": "DE",
        "updated_at": T0,
    },
]

ITEM_ROWS: list[Row] = [
    {
        "product_key": "IA1",
        "item_code": "A1",
        "name": "Plain Mug",
        "sku": "MUG-1",
        "description": "A mug",
        "price": 9.5,
        "currency": "EUR",
        "store_id": "1",
        "has_combinations": False,
        "active": True,
    },
    {
        "product_key": "IS1",
        "item_code": "S1",
        "name": "Shirt",
        "sku": "SH-1",
        "price": 20.0,
        "currency": "EUR",
        "store_id": "2",
        "has_combinations": True,
        "active": True,
    },
    {
        "product_key": "IS1#RXL",
        "item_code": "S1",
        "combination_id": "RXL",
        "name": "Shirt",
        "attributes": "Color: Red, Size: XL",
        "sku": "SH-1-R-XL",
        "price": 22.0,
        "currency": "EUR",
        "store_id": "2",
        "has_combinations": True,
        "active": True,
    },
    {
        "product_key": "IS1#BM",
        "item_code": "S1",
        "combination_id": "BM",
        "name": "Shirt",
        "attributes": "Color: Blue, Size: M",
        "sku": "SH-1-B-M",
        "price": 21.0,
        "currency": "EUR",
        "store_id": "2",
        "has_combinations": True,
        "active": True,
    },
    {
        "product_key": "IX9",
        "item_code": "X9",
        "name": "Old Thing",
        "sku": "OLD",
        "price": 1.0,
        "store_id": "1",
        "has_combinations": False,
        "active": False,
    },
]

ORDER_ROWS: list[Row] = [
    # came from web cart C1 of W3 (company partner C100)
    {
        "order_key": "O1",
        "doc_entry": 1,
        "doc_num": 1001,
        "card_code": "C100",
        "web_customer_key": "W3",
        "cart_key": "C1",
        "store_id": "2",
        "doc_date": datetime(2025, 5, 2, 10, 30, 15, 123456),
        "total": 53.5,
        "currency": "eur",
        "order_status": "open",
        "shipment_status": "shipped",
        "payment_status": "paid",
        "updated_at": T0,
        "lines": [
            {
                "line_num": 0,
                "item_code": "S1",
                "combination_id": "RXL",
                "description": "Shirt red XL",
                "quantity": 2.0,
                "price": 22.0,
            },
            {"line_num": 1, "item_code": "A1", "description": "Mug", "quantity": 1.0, "price": 9.5},
        ],
    },
    # SAP-only, private partner, canceled
    {
        "order_key": "O2",
        "doc_entry": 2,
        "doc_num": 1002,
        "card_code": "P200",
        "store_id": "1",
        "doc_date": datetime(2025, 5, 3),
        "total": 9.5,
        "currency": "EUR",
        "order_status": "canceled",
        "shipment_status": "not_shipped",
        "payment_status": "unpaid",
        "updated_at": T0,
        "lines": [{"line_num": 0, "item_code": "A1", "description": "Mug", "quantity": 1.0, "price": 9.5}],
    },
    # SAP-only, company partner: the deal's contact is its first active contact person
    {
        "order_key": "O3",
        "doc_entry": 3,
        "doc_num": 1003,
        "card_code": "C100",
        "store_id": "1",
        "doc_date": datetime(2025, 5, 4),
        "total": 19.0,
        "currency": "EUR",
        "order_status": "closed",
        "shipment_status": "partially_shipped",
        "payment_status": "partially_paid",
        "updated_at": T0,
        "lines": [{"line_num": 0, "item_code": "A1", "description": "Mug", "quantity": 2.0, "price": 9.5}],
    },
    # a partner we do not know at all
    {
        "order_key": "O4",
        "doc_entry": 4,
        "doc_num": 1004,
        "card_code": "Z999",
        "store_id": "1",
        "doc_date": datetime(2025, 5, 5),
        "total": 0.0,
        "currency": "EUR",
        "order_status": "open",
        "shipment_status": "not_shipped",
        "payment_status": "unpaid",
        "updated_at": T0,
        "lines": [],
    },
]

CART_ROWS: list[Row] = [
    {
        "cart_key": "C1",
        "cart_id": 1,
        "store_id": "2",
        "customer_key": "W3",
        "email": "vendor@shop.com",
        "status": "ordered",
        "order_key": "O1",
        "total": 53.5,
        "currency": "EUR",
        "created_at": T0,
        "updated_at": NOW - timedelta(days=30),
        "lines": [
            {"line_num": 0, "item_code": "S1", "combination_id": "RXL", "quantity": 2.0, "price": 22.0}
        ],
    },
    {
        "cart_key": "C2",
        "cart_id": 2,
        "store_id": "1",
        "customer_key": "W1",
        "email": "alice@example.com",
        "status": "open",
        "total": 28.5,
        "currency": "EUR",
        "created_at": NOW - timedelta(hours=3),
        "updated_at": NOW - timedelta(hours=2),
        "lines": [{"line_num": 0, "item_code": "A1", "quantity": 3.0, "price": 9.5}],
    },
    {
        "cart_key": "C3",
        "cart_id": 3,
        "store_id": "1",
        "customer_key": "W2",
        "email": "guest@example.com",
        "status": "open",
        "total": 22.0,
        "currency": "EUR",
        "created_at": NOW - timedelta(hours=50),
        "updated_at": NOW - timedelta(hours=48),
        "lines": [{"line_num": 0, "item_code": "S1", "combination_id": "BM", "quantity": 1.0, "price": 21.0}],
    },
]


def rows(source: list[Row]) -> list[Row]:
    """A private copy of fixture rows, safe to edit in a test."""
    return copy.deepcopy(source)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def settings() -> PanelSettings:
    """Defaults, except that the client role Wholesale is declared."""
    return panel(customers={"roles": ["Registered"], "client_roles": ["Wholesale"]})


@pytest.fixture
def stores() -> pl.DataFrame:
    return frame("stores", rows(STORE_ROWS))


@pytest.fixture
def customers() -> pl.DataFrame:
    return frame("customers", rows(CUSTOMER_ROWS))


@pytest.fixture
def addresses() -> pl.DataFrame:
    return frame("addresses", rows(ADDRESS_ROWS))


@pytest.fixture
def items() -> pl.DataFrame:
    return frame("items", rows(ITEM_ROWS))


@pytest.fixture
def orders() -> pl.DataFrame:
    return frame("orders", rows(ORDER_ROWS))


@pytest.fixture
def carts() -> pl.DataFrame:
    return frame("carts", rows(CART_ROWS))


def by_key(mapped: Any) -> dict[str, Row]:
    """A ``Mapped``'s records as {source_key: row}."""
    return {row["source_key"]: row for row in mapped.records.iter_rows(named=True)}


def issues_of(mapped: Any, key: str) -> list[tuple[str, str]]:
    """(action, reason) of every issue raised for ``key``."""
    found = mapped.issues.filter(pl.col("source_key") == key)
    return list(zip(found.get_column("action").to_list(), found.get_column("reason").to_list(), strict=True))


def edited(source: list[Row], key_field: str, key: str, **changes: Any) -> list[Row]:
    """Copy of ``source`` with the row whose ``key_field`` is ``key`` updated."""
    copied = rows(source)
    matches = [row for row in copied if row[key_field] == key]
    assert matches, f"no fixture row {key_field}={key}"
    for row in matches:
        row.update(changes)
    return copied


def without(source: list[Row], key_field: str, *keys: str) -> list[Row]:
    return [row for row in rows(source) if row[key_field] not in keys]
