"""Deal stages: which of the six e-commerce stages an order or a cart is in.

Orders: the first stage in ``DealStageMapping.precedence`` whose rule (field, values) matches; none →
``unmapped_order_stage``. Open carts: Checkout Pending, or Checkout Abandoned once ``abandoned_cart_hours``
have passed since the cart last changed. A cart that became an order takes the order's stage (pass a
frame with the order's status columns joined; without them it gets ``unmapped_order_stage``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from fp_hubspot_assets.mapping.common import naive_utc
from fp_hubspot_assets.panel import DealStage, DealStageMapping

STATUS_FIELDS = ("order_status", "shipment_status", "payment_status")


def _status(frame: pl.DataFrame, field: str) -> pl.Expr:
    """A status column, normalized for matching; null when the frame has no such column (carts)."""
    if field not in frame.columns:
        return pl.lit(None, pl.String)
    return pl.col(field).str.strip_chars().str.to_lowercase()


def order_stage(frame: pl.DataFrame, mapping: DealStageMapping) -> pl.Expr:
    """The stage of each order row by the mapping's rules, in precedence order."""
    expr: pl.Expr = pl.lit(mapping.unmapped_order_stage.value)
    for stage, rule in reversed(mapping.rules()):
        expr = (
            pl.when(_status(frame, rule.field).is_in(rule.values)).then(pl.lit(stage.value)).otherwise(expr)
        )
    return expr


def cart_stage(abandoned_cart_hours: float, now: datetime) -> pl.Expr:
    """Pending, or Abandoned when the cart has not changed for ``abandoned_cart_hours`` (a cart with no
    timestamp at all stays Pending: we cannot tell how old it is)."""
    last_change = pl.coalesce("updated_at", "created_at")
    age = pl.lit(naive_utc(now)) - last_change
    abandoned = (age >= timedelta(hours=abandoned_cart_hours)).fill_null(False)
    return (
        pl.when(abandoned)
        .then(pl.lit(DealStage.checkout_abandoned.value))
        .otherwise(pl.lit(DealStage.checkout_pending.value))
    )


def _open_cart(frame: pl.DataFrame) -> pl.Expr:
    """Rows that are carts not (yet) ordered. Frames without a cart ``status`` column are all orders; rows
    with a null status in a mixed frame are orders too."""
    if "status" not in frame.columns:
        return pl.lit(False)
    status = pl.col("status").str.strip_chars().str.to_lowercase()
    return (status.is_not_null() & (status != "ordered")).fill_null(False)


def deal_stage_for(
    frame: pl.DataFrame,
    mapping: DealStageMapping,
    abandoned_cart_hours: float,
    now: datetime,
) -> pl.Series:
    """The DealStage value (e.g. "checkout_shipped") of each row of an orders frame, a carts frame, or a
    mixed deal frame (order rows have a null ``status``)."""
    if "created_at" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.Datetime("us")).alias("created_at"))
    if "updated_at" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.Datetime("us")).alias("updated_at"))
    expr = (
        pl.when(_open_cart(frame))
        .then(cart_stage(abandoned_cart_hours, now))
        .otherwise(order_stage(frame, mapping))
    )
    return frame.select(expr.alias("dealstage")).to_series()


def unmapped_statuses(orders: pl.DataFrame, mapping: DealStageMapping) -> pl.DataFrame:
    """Orders that no stage rule matches (they get ``unmapped_order_stage``): order_key + the three
    statuses, so an admin can see which status combinations the panel mapping misses."""
    matched = pl.any_horizontal(_status(orders, rule.field).is_in(rule.values) for _, rule in mapping.rules())
    return orders.filter(~matched.fill_null(False)).select("order_key", *STATUS_FIELDS)
