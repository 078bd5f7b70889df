"""map_line_items: one per line of every deal, product resolution, tier gating, bad quantities/prices."""

from __future__ import annotations

import math

import polars as pl
import pytest
from polars.testing import assert_frame_equal, assert_series_equal

from fp_hubspot_assets.mapping import map_line_items, map_products
from fp_hubspot_assets.mapping.common import concat_issues
from fp_hubspot_assets.mapping.model import Mapped
from fp_hubspot_assets.panel import PanelSettings
from fp_hubspot_assets_tests.fixtures_mapping import (
    CART_ROWS,
    ITEM_ROWS,
    ORDER_ROWS,
    STORE_ROWS,
    by_key,
    edited,
    frame,
    issues_of,
    panel,
    rows,
)

DEFAULT = panel()


def line_items(order_rows=ORDER_ROWS, cart_rows=CART_ROWS, settings: PanelSettings = DEFAULT, deals=None):
    products = map_products(frame("items", rows(ITEM_ROWS)), frame("stores", rows(STORE_ROWS)), settings)
    return map_line_items(
        frame("orders", rows(order_rows)), frame("carts", rows(cart_rows)), products, settings, deals=deals
    )


def with_line(order_key: str, **line) -> list[dict]:
    base = {"line_num": 0, "item_code": "A1", "description": "Mug", "quantity": 1.0, "price": 9.5}
    return edited(ORDER_ROWS, "order_key", order_key, lines=[{**base, **line}])


def test_one_line_item_per_deal_line() -> None:
    mapped = line_items()
    assert mapped.object_type == "line_items"
    assert sorted(by_key(mapped)) == ["C1:L0", "C1:L1", "C2:L0", "C3:L0", "O2:L0", "O3:L0"]
    assert all(row["fp_line_item_id"] == key for key, row in by_key(mapped).items())


def test_ordered_cart_uses_its_order_lines_not_the_cart_lines() -> None:
    line = by_key(line_items())["C1:L1"]
    assert (line["name"], line["assoc_deals"]) == ("Mug", "C1")


def test_fields() -> None:
    line = by_key(line_items())["C1:L0"]
    assert (line["name"], line["quantity"], line["price"], line["product_key"]) == (
        "Shirt red XL",
        "2",
        "22",
        "IS1#RXL",
    )


def test_cart_line_is_named_after_its_product() -> None:
    assert by_key(line_items())["C3:L0"]["name"] == "Shirt (Color: Blue, Size: M)"


def test_combinations_off_points_at_the_base_item() -> None:
    line = by_key(line_items(settings=panel(items={"sync_combinations": False})))["C1:L0"]
    assert line["product_key"] == "IS1"


def test_product_not_sent_leaves_line_without_product() -> None:
    mapped = line_items(with_line("O2", item_code="X9"))  # X9 is inactive → no product
    assert by_key(mapped)["O2:L0"]["product_key"] is None
    assert issues_of(mapped, "O2:L0") == [("repaired", "product IX9 is not synced; sent without product")]


def test_line_without_item() -> None:
    mapped = line_items(with_line("O2", item_code=None, description=None))
    line = by_key(mapped)["O2:L0"]
    assert (line["product_key"], line["name"]) == (None, "Line 0")
    assert issues_of(mapped, "O2:L0") == [("repaired", "line has no item; sent without product")]


@pytest.mark.parametrize("tier", ["free", "starter"])
def test_tier_without_products_sends_no_line_items(tier: str) -> None:
    mapped = line_items(settings=panel(tier=tier))
    assert mapped.records.is_empty()
    assert mapped.issues.height == 6
    assert set(mapped.issues.get_column("action")) == {"excluded"}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ({"quantity": -1.0}, "invalid quantity -1.0"),
        ({"quantity": math.nan}, "invalid quantity NaN"),
        ({"quantity": None}, "line has no quantity"),
        ({"price": -0.01}, "invalid price -0.01"),
        ({"price": math.inf}, "invalid price inf"),
    ],
)
def test_bad_quantity_or_price_skips_the_line(line: dict, reason: str) -> None:
    mapped = line_items(with_line("O2", **line))
    assert "O2:L0" not in by_key(mapped)
    assert issues_of(mapped, "O2:L0") == [("skipped", reason)]


def test_missing_price_is_sent_empty() -> None:
    mapped = line_items(with_line("O2", price=None))
    assert by_key(mapped)["O2:L0"]["price"] == ""
    assert issues_of(mapped, "O2:L0") == [("repaired", "line has no price")]


def test_line_without_number_is_skipped_and_duplicate_numbers_collapse() -> None:
    lines = [
        {"line_num": None, "item_code": "A1", "quantity": 1.0, "price": 1.0},
        {"line_num": 3, "item_code": "A1", "quantity": 1.0, "price": 1.0},
        {"line_num": 3, "item_code": "A1", "quantity": 2.0, "price": 1.0},
        None,
    ]
    mapped = line_items(edited(ORDER_ROWS, "order_key", "O2", lines=lines))
    assert [k for k in by_key(mapped) if k.startswith("O2")] == ["O2:L3"]
    assert issues_of(mapped, "O2:L?") == [("skipped", "line has no line number")]
    assert [a for a, _ in issues_of(mapped, "O2:L3")] == ["skipped"]


def sent_deals(*keys: str) -> Mapped:
    return Mapped(
        "deals", pl.DataFrame({"source_key": list(keys)}, schema={"source_key": pl.String}), concat_issues([])
    )


def test_only_lines_of_sent_deals_when_deals_are_given() -> None:
    assert line_items(deals=sent_deals()).records.is_empty()
    assert sorted(by_key(line_items(deals=sent_deals("C2", "O3")))) == ["C2:L0", "O3:L0"]


def sent(object_type: str, *keys: str) -> Mapped:
    return Mapped(object_type, sent_deals(*keys).records, concat_issues([]))


ISSUE_LINES = [
    {"line_num": None, "item_code": "A1", "quantity": 1.0, "price": 1.0},
    {"line_num": 3, "item_code": "A1", "quantity": 1.0, "price": 1.0},
    {"line_num": 3, "item_code": "A1", "quantity": 2.0, "price": 1.0},
    {"line_num": 4, "item_code": "A1", "quantity": -1.0, "price": 1.0},
    {"line_num": 5, "item_code": "X9", "description": "a\x00b", "quantity": 1.0, "price": None},
]


@pytest.mark.parametrize("settings", [DEFAULT, panel(commerce={"objects": "both"}), panel(tier="starter")],
                         ids=["deals", "both", "no products"])  # fmt: skip
@pytest.mark.parametrize("deals", [None, ("C1", "C2", "O2", "O3")], ids=["every deal", "some deals"])
def test_mapping_in_slices_of_deals_gives_the_whole_mapping(settings: PanelSettings, deals: tuple[str, ...] | None) -> None:
    # issues of every kind in two deals' lines, so slices of one deal each report them in several parts
    orders = frame("orders", edited(edited(ORDER_ROWS, "order_key", "O2", lines=ISSUE_LINES), "order_key", "O3",
                                    lines=ISSUE_LINES[1:]))  # fmt: skip
    carts = frame("carts", rows(CART_ROWS))
    products = map_products(frame("items", rows(ITEM_ROWS)), frame("stores", rows(STORE_ROWS)), settings)
    sends = {"deals": sent_deals(*deals) if deals else None, "order_records": sent("orders", "O2", "O3"),
             "cart_records": sent("carts", "C2")}  # fmt: skip
    whole = map_line_items(orders, carts, products, settings, **sends)
    assert whole.issues.height  # the comparison below covers the issues' order too
    for slice_deals in (1, 2):
        sliced = map_line_items(orders, carts, products, settings, **sends, slice_deals=slice_deals)
        assert_frame_equal(sliced.records, whole.records)
        assert_frame_equal(sliced.issues, whole.issues)
        assert (sliced.parents is None) == (whole.parents is None)
        if whole.parents is not None:
            assert_series_equal(sliced.parents, whole.parents)
