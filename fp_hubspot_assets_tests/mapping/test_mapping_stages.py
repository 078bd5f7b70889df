"""deal_stage_for / unmapped_statuses: the panel's deal-stage mapping and cart abandonment."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

import polars as pl
import pytest

from fp_hubspot_assets.mapping import deal_stage_for, unmapped_statuses
from fp_hubspot_assets.panel import DealStage, DealStageMapping
from fp_hubspot_assets_tests.fixtures_mapping import NOW, frame

DEFAULT = DealStageMapping()


def order(order_status: str | None, shipment: str | None, payment: str | None, key: str = "O1") -> dict:
    return {
        "order_key": key,
        "order_status": order_status,
        "shipment_status": shipment,
        "payment_status": payment,
    }


def stages(order_rows: list[dict], mapping: DealStageMapping = DEFAULT) -> list[str]:
    return deal_stage_for(frame("orders", order_rows), mapping, 24, NOW).to_list()


@pytest.mark.parametrize(
    ("statuses", "stage"),
    [
        (("canceled", "shipped", "paid"), "checkout_canceled"),
        (("open", "shipped", "unpaid"), "checkout_shipped"),
        (("closed", "partially_shipped", "paid"), "checkout_processed"),
        (("open", "not_shipped", "partially_paid"), "checkout_completed"),
        ((" Open ", "not_shipped", "unpaid"), "checkout_completed"),
    ],
)
def test_default_precedence(statuses: tuple[str, str, str], stage: str) -> None:
    assert stages([order(*statuses)]) == [stage]


def test_precedence_decides_between_matching_rules() -> None:
    processed_first = DealStageMapping(
        precedence=[
            "checkout_processed",
            "checkout_canceled",
            "checkout_shipped",
            "checkout_completed",
            "checkout_pending",
        ]
    )
    assert stages([order("open", "shipped", "paid")]) == ["checkout_shipped"]
    assert stages([order("open", "shipped", "paid")], processed_first) == ["checkout_processed"]


def test_rule_fields_and_values_come_from_the_panel() -> None:
    by_payment = DealStageMapping(
        checkout_completed={"field": "payment_status", "values": ["partially_paid"]},
        checkout_pending={"field": "order_status", "values": ["open"]},
    )
    assert stages([order("open", "not_shipped", "partially_paid")], by_payment) == ["checkout_completed"]
    assert stages([order("open", "not_shipped", "unpaid")], by_payment) == ["checkout_pending"]


def test_unmapped_orders_get_the_unmapped_stage_and_are_listed() -> None:
    narrow = DealStageMapping(
        checkout_pending={"field": "payment_status", "values": ["unpaid"]},
        checkout_completed={"field": "order_status", "values": ["closed"]},
        unmapped_order_stage="checkout_processed",
    )
    rows = [order("open", "not_shipped", "partially_paid", "O1"), order("closed", "shipped", "paid", "O2")]
    assert stages(rows, narrow) == ["checkout_processed", "checkout_shipped"]
    missing = unmapped_statuses(frame("orders", rows), narrow)
    assert missing.rows() == [("O1", "open", "not_shipped", "partially_paid")]
    assert unmapped_statuses(frame("orders", rows), DEFAULT).is_empty()


def test_null_or_unknown_statuses_are_unmapped() -> None:
    rows = [order(None, None, None), order("on_hold", "lost", "refunded", "O2")]
    assert stages(rows) == ["checkout_completed", "checkout_completed"]
    assert unmapped_statuses(frame("orders", rows), DEFAULT).height == 2


def cart(hours_idle: float | None, status: str = "open", created_idle: float | None = None) -> dict:
    return {
        "cart_key": "C1",
        "status": status,
        "updated_at": None if hours_idle is None else NOW - timedelta(hours=hours_idle),
        "created_at": None if created_idle is None else NOW - timedelta(hours=created_idle),
    }


@pytest.mark.parametrize(
    ("hours_idle", "limit", "stage"),
    [
        (1, 24, "checkout_pending"),
        (23.99, 24, "checkout_pending"),
        (24, 24, "checkout_abandoned"),
        (100, 24, "checkout_abandoned"),
        (2, 1.5, "checkout_abandoned"),
        (2, 3, "checkout_pending"),
    ],
)
def test_open_cart_abandoned_after_panel_hours(hours_idle: float, limit: float, stage: str) -> None:
    assert deal_stage_for(frame("carts", [cart(hours_idle)]), DEFAULT, limit, NOW).to_list() == [stage]


def test_cart_age_falls_back_to_created_at_and_unknown_age_is_pending() -> None:
    carts = frame("carts", [cart(None, created_idle=30), cart(None)])
    assert deal_stage_for(carts, DEFAULT, 24, NOW).to_list() == ["checkout_abandoned", "checkout_pending"]


def test_timezone_aware_now_is_compared_in_utc() -> None:
    aware = NOW.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=5)))
    carts = frame("carts", [cart(23)])
    assert deal_stage_for(carts, DEFAULT, 24, aware).to_list() == ["checkout_pending"]
    assert deal_stage_for(carts, DEFAULT, 24, aware + timedelta(hours=1)).to_list() == ["checkout_abandoned"]


def test_ordered_cart_takes_its_orders_stage() -> None:
    ordered = frame("carts", [cart(100, status="ordered")]).with_columns(
        order_status=pl.lit("open"),
        shipment_status=pl.lit("shipped"),
        payment_status=pl.lit("paid"),
    )
    assert deal_stage_for(ordered, DEFAULT, 24, NOW).to_list() == ["checkout_shipped"]


def test_ordered_cart_without_order_data_is_never_abandoned() -> None:
    carts = frame("carts", [cart(100, status="ordered")])
    assert deal_stage_for(carts, DEFAULT, 24, NOW).to_list() == [DEFAULT.unmapped_order_stage.value]


def test_every_result_is_a_deal_stage_value() -> None:
    rows = [
        order("open", "shipped", "paid"),
        order(None, None, None, "O2"),
        order("canceled", None, None, "O3"),
    ]
    assert set(stages(rows)) <= {stage.value for stage in DealStage}
