"""Orders and shopping carts → HubSpot's native order and cart objects (``commerce.objects``).

The same source rows as the deals: ``deal_sources`` decides which cart each order came from, so a cart that
became an order is one purchase — one HubSpot order (key ``O<entry>``), and the cart (key ``C<id>``)
associated with it; a cart never becomes an order by itself. The order's stage follows the panel's
deal-stage rules (``hs_pipeline_stage`` of our order pipeline, and its label in ``fp_order_stage``), a cart is abandoned after ``abandoned_cart_hours``, the contact and company are the
deal's, and in ``both`` mode each order is associated with its deal. HubSpot's property names are in
``objects.py`` and docs/commerce-objects.md.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from fp_hubspot_assets.mapping.addresses import pick_address
from fp_hubspot_assets.mapping.common import (
    bad_number,
    decimal_string,
    finalize,
    iso_datetime,
    issues_where,
    non_empty,
    not_sent,
    usable_rows,
)
from fp_hubspot_assets.mapping.deals import DealLookups, _excluded_keys, deal_sources, with_associations
from fp_hubspot_assets.mapping.model import EXCLUDED, REPAIRED, Mapped
from fp_hubspot_assets.mapping.stages import cart_stage, deal_stage_for
from fp_hubspot_assets.panel import DealStage, PanelSettings

_ADDRESS_PROPERTIES = {"street": "street", "city": "city", "zip": "postal_code", "state": "state", "country": "country"}
ABANDONED = "abandoned"


def order_stage_label(stage: DealStage) -> str:
    """"Checkout Shipped" → "Shipped": an order's stage names the order's state, not a checkout's (also the
    stage labels of our order pipeline)."""
    return stage.label.removeprefix("Checkout ")


def _stage_label(stage: pl.Expr) -> pl.Expr:
    """"checkout_shipped" → "Shipped": the deal-stage rules' outcome as an order's stage."""
    labels = {s.value: order_stage_label(s) for s in DealStage}
    return stage.replace_strict(labels, default=None, return_dtype=pl.String)


def _store_names(stores: pl.DataFrame) -> pl.DataFrame:
    return stores.select("store_id", pl.col("name").alias("_store_name")).unique("store_id", keep="first")


def _contact_emails(contacts: Mapped) -> pl.DataFrame:
    return contacts.records.select(pl.col("source_key").alias("assoc_contacts"), pl.col("email").alias("_email"))


def _addresses(frame: pl.DataFrame, addresses: pl.DataFrame, kind: str) -> pl.DataFrame:
    """``hs_<kind>_address_*`` per order: the customer's address of that kind (web customer first, then its
    business partner), chosen like a contact's (pick_address)."""
    owners = pl.concat(
        [
            frame.select("source_key", pl.col("web_customer_key").alias("owner_key"), pl.lit(0).alias("level")),
            frame.select("source_key", pl.format("BP{}", "_card").alias("owner_key"), pl.lit(1).alias("level")),
        ]
    ).filter(pl.col("owner_key").is_not_null())
    picked = pick_address(owners, addresses, kind)  # type: ignore[arg-type]
    street = pl.concat_str([pl.col("street"), pl.col("street2")], separator=", ", ignore_nulls=True)
    return picked.select(
        "source_key",
        street.alias(f"hs_{kind}_address_street"),
        *[pl.col(f).alias(f"hs_{kind}_address_{p}") for f, p in _ADDRESS_PROPERTIES.items() if f != "street"],
    )


def _without_excluded_customers(
    frame: pl.DataFrame, contacts: Mapped, settings: PanelSettings
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Orders and carts of customers the role filter excludes are left out under ``deals.of_excluded_customers:
    skip`` (as their deals are); returns (kept, their issues)."""
    excluded = (
        pl.lit(False) if settings.deals.of_excluded_customers != "skip"
        else pl.col("_contact").is_in(_excluded_keys(contacts).implode()).fill_null(False)
    )
    issues = issues_where(
        frame, excluded, EXCLUDED,
        pl.format("customer {} is excluded by the role filter (deals.of_excluded_customers: skip)", pl.col("_contact")),
    )
    return frame.filter(~excluded), issues


def map_orders(
    orders: pl.DataFrame,
    carts: pl.DataFrame,
    customers: pl.DataFrame,
    addresses: pl.DataFrame,
    stores: pl.DataFrame,
    contacts: Mapped,
    companies: Mapped,
    settings: PanelSettings,
    now: datetime,
    deals: Mapped | None = None,
) -> Mapped:
    """SAP/web orders → HubSpot orders (``fp_order_id`` = ``O<entry>``), with contact, company and — when
    ``deals`` is given (``both`` mode) — deal association keys."""
    if not settings.commerce.sends_orders:  # before any work: the default mode pays nothing for orders
        return not_sent("orders")
    # of its lines an order needs only their total here (``lines_total``): the joins below would copy every line
    sources, source_issues = deal_sources(orders, carts, with_lines=False)
    frame = sources.filter(pl.col("origin") == "order").with_columns(pl.col("lines_total").round(2).alias("_subtotal"))
    frame = frame.with_columns(
        pl.col("order_key").alias("source_key"),
        deal_stage_for(frame, settings.deal_stages, settings.abandoned_cart_hours, now).alias("_stage"),
        pl.col("card_code").alias("_card"),
    )
    frame = with_associations(frame, DealLookups.of(customers, contacts, companies))
    frame, excluded = _without_excluded_customers(frame, contacts, settings)
    invalid_total = (bad_number(pl.col("total")) | (pl.col("total").cast(pl.Float64) < 0)).fill_null(False)
    bad_amount = issues_where(
        frame, invalid_total, REPAIRED, pl.format("invalid order total {}; cleared", pl.col("total").cast(pl.String))
    )
    frame = frame.with_columns(
        pl.when(invalid_total).then(None).otherwise(pl.coalesce("total", "_subtotal")).alias("_total"),
    )
    for kind in ("billing", "shipping"):
        frame = frame.join(_addresses(frame, addresses, kind), on="source_key", how="left", maintain_order="left")
    frame = frame.join(_store_names(stores), on="store_id", how="left", maintain_order="left").join(
        _contact_emails(contacts), on="assoc_contacts", how="left", maintain_order="left"
    )
    deal_key = pl.col("deal_key") if deals is not None else pl.lit(None, pl.String)
    if deals is not None:
        deal_key = pl.when(pl.col("deal_key").is_in(deals.keys().implode())).then(pl.col("deal_key"))
    closed = pl.col("order_status").str.strip_chars().str.to_lowercase().is_in(["closed", "canceled"])
    optional = {c: pl.col(c) if c in frame.columns else pl.lit(None, pl.Float64) for c in ("discount", "tax", "shipping")}
    records = frame.with_columns(
        pl.format("Order #{}", pl.coalesce(pl.col("doc_num").cast(pl.String), pl.col("order_key").str.strip_prefix("O")))
        .alias("hs_order_name"),
        pl.col("doc_num").cast(pl.String).alias("hs_external_order_id"),
        non_empty(pl.col("currency")).str.to_uppercase().alias("hs_currency_code"),
        decimal_string(pl.col("_total")).alias("hs_total_price"),
        decimal_string(pl.col("_subtotal")).alias("hs_subtotal_price"),
        decimal_string(optional["discount"]).alias("hs_order_discount"),
        decimal_string(optional["tax"]).alias("hs_tax"),
        decimal_string(optional["shipping"]).alias("hs_shipping_cost"),
        pl.coalesce("_store_name", "store_id").alias("hs_source_store"),
        pl.col("shipment_status").alias("hs_fulfillment_status"),
        pl.col("payment_status").alias("hs_payment_status"),
        iso_datetime(pl.col("doc_date")).alias("hs_external_created_date"),
        pl.col("_email").alias("hs_billing_address_email"),
        _stage_label(pl.col("_stage")).alias("fp_order_stage"),
        pl.col("_stage").alias("hs_pipeline_stage"),  # a stage name; the writer turns it into our pipeline's id
        pl.col("order_status").alias("fp_order_status"),
        pl.col("shipment_status").alias("fp_shipment_status"),
        pl.col("payment_status").alias("fp_payment_status"),
        pl.when(closed).then(iso_datetime(pl.col("updated_at"))).alias("fp_closed_date"),
        deal_key.alias("assoc_deals"),
    )
    return finalize("orders", records, [source_issues, excluded, bad_amount])


def _cart_orders(sources: pl.DataFrame, orders: Mapped) -> pl.DataFrame:
    """cart key → the key of the order it became (one purchase), when that order is sent or kept."""
    kept = pl.concat([orders.keys(), orders.issues.filter(pl.col("action") != EXCLUDED)["source_key"]])
    return sources.filter((pl.col("origin") == "order") & pl.col("cart_key").is_not_null()).select(
        pl.col("cart_key").alias("source_key"),
        pl.when(pl.col("order_key").is_in(kept.implode())).then(pl.col("order_key")).alias("assoc_orders"),
    )


def map_carts(
    orders: pl.DataFrame,
    carts: pl.DataFrame,
    customers: pl.DataFrame,
    stores: pl.DataFrame,
    contacts: Mapped,
    companies: Mapped,
    order_records: Mapped,
    settings: PanelSettings,
    now: datetime,
) -> Mapped:
    """Every web cart → a HubSpot cart (``fp_cart_id`` = ``C<id>``): status open / abandoned (after
    ``abandoned_cart_hours`` without a change) / ordered, associated with its contact and, once ordered, with
    the order it became."""
    if not settings.commerce.sends_orders:
        return not_sent("carts")
    carts = carts.drop("lines", strict=False)  # lines are the line items' business
    frame, cart_issues = usable_rows(carts, "cart_key", "cart")
    sources, _ = deal_sources(orders, carts, with_lines=False)
    frame = frame.with_columns(
        pl.col("cart_key").alias("source_key"),
        non_empty(pl.col("customer_key")).alias("web_customer_key"),
        pl.lit(None, pl.String).alias("card_code"),
    )
    frame = with_associations(frame, DealLookups.of(customers, contacts, companies))
    frame, excluded = _without_excluded_customers(frame, contacts, settings)
    frame = frame.join(_cart_orders(sources, order_records), on="source_key", how="left", maintain_order="left")
    status = pl.col("status").str.strip_chars().str.to_lowercase()
    abandoned = (status != "ordered").fill_null(True) & (
        cart_stage(settings.abandoned_cart_hours, now) == pl.lit(DealStage.checkout_abandoned.value)
    )
    lost_order = issues_where(
        frame, (status == "ordered").fill_null(False) & pl.col("assoc_orders").is_null(), REPAIRED,
        "cart is ordered but its order is not sent; the cart is sent without an order",
    )
    invalid_total = (bad_number(pl.col("total")) | (pl.col("total").cast(pl.Float64) < 0)).fill_null(False)
    bad_amount = issues_where(
        frame, invalid_total, REPAIRED, pl.format("invalid cart total {}; cleared", pl.col("total").cast(pl.String))
    )
    frame = frame.join(_store_names(stores), on="store_id", how="left", maintain_order="left")
    cart_url = pl.col("cart_url") if "cart_url" in frame.columns else pl.lit(None, pl.String)
    records = frame.with_columns(
        pl.format("Cart {}", pl.coalesce(pl.col("cart_id").cast(pl.String), pl.col("cart_key").str.strip_prefix("C")))
        .alias("hs_cart_name"),
        pl.col("cart_id").cast(pl.String).alias("hs_external_cart_id"),
        non_empty(pl.col("currency")).str.to_uppercase().alias("hs_currency_code"),
        pl.when(~invalid_total).then(decimal_string(pl.col("total"))).alias("hs_total_price"),
        pl.coalesce("_store_name", "store_id").alias("hs_source_store"),
        cart_url.alias("hs_cart_url"),
        pl.when(abandoned).then(pl.lit(ABANDONED)).otherwise(status).alias("hs_external_status"),
        iso_datetime(pl.col("created_at")).alias("hs_external_created_date"),
        iso_datetime(pl.coalesce("updated_at", "created_at")).alias("hs_external_modified_date"),
        pl.when(abandoned).then(pl.lit("true")).otherwise(pl.lit("false")).alias("fp_abandoned"),
    )
    return finalize("carts", records, [cart_issues, excluded, lost_order, bad_amount])


def commerce_lines(orders: pl.DataFrame, carts: pl.DataFrame) -> pl.DataFrame:
    """Lines of orders and carts as line-item sources: ``parent_key`` (prefixed, e.g. ``order/O7``), the
    order/cart key in ``assoc_orders`` / ``assoc_carts``, and the line fields (``line_num`` … ``price``)."""
    from fp_hubspot_assets.objects import COMMERCE_LINE_PREFIX

    sources, _ = deal_sources(orders, carts)
    order_rows = sources.filter(pl.col("origin") == "order").select(
        pl.format(COMMERCE_LINE_PREFIX["orders"] + "{}", "order_key").alias("parent_key"),
        pl.col("order_key").alias("assoc_orders"),
        pl.lit(None, pl.String).alias("assoc_carts"),
        pl.col("order_lines").alias("_lines"),
    )
    cart_rows, _ = usable_rows(carts, "cart_key", "cart")
    cart_rows = cart_rows.select(
        pl.format(COMMERCE_LINE_PREFIX["carts"] + "{}", "cart_key").alias("parent_key"),
        pl.lit(None, pl.String).alias("assoc_orders"),
        pl.col("cart_key").alias("assoc_carts"),
        pl.col("lines").alias("_lines"),
    )
    return pl.concat([order_rows, cart_rows], how="diagonal_relaxed")
