"""Orders and shopping carts → HubSpot deals.

A cart and the order it became are ONE deal: its key is the cart's key (``C<id>``) when the order came from
a web cart, else the order's (``O<entry>``). The link is read both ways (``orders.cart_key`` and
``carts.order_key``) so a late or partial source still yields one deal, never two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl
import polars.selectors as cs

from fp_hubspot_assets.mapping.common import (
    bad_number,
    columns_of,
    concat_issues,
    date_in_range,
    decimal_string,
    empty_aliases,
    empty_issues,
    finalize_parts,
    iso_datetime,
    issues_where,
    keep_rows,
    natural_order,
    non_empty,
    not_sent,
    preview,
    usable_rows,
    valid_key,
)
from fp_hubspot_assets.mapping.model import EXCLUDED, REPAIRED, SKIPPED, Mapped
from fp_hubspot_assets.mapping.stages import deal_stage_for
from fp_hubspot_assets.panel import PanelSettings
from fp_hubspot_assets.source_model import UNKNOWN_STATUS

_ORDER_FIELDS = (
    "order_key",
    "doc_num",
    "card_code",
    "store_id",
    "doc_date",
    "total",
    "currency",
    "order_status",
    "shipment_status",
    "payment_status",
    "updated_at",
    "lines_total",
)


# What the deals read of the customers (``_contact_lookup``) and of the contact and company payloads: the keys
# sent, the issues' keys and actions (rejected or excluded), the aliases (merged). Their steps load only these.
CUSTOMER_COLUMNS = ("customer_key", "kind", "card_code", "is_company", "active")
PAYLOAD_COLUMNS = ("source_key", "action", "survivor_key")
# Deals mapped at once (deals and line items): at 1M customers there are 1.9M deals with 4.7M lines.
SLICE_DEALS = 200_000


def _first_by_key(frame: pl.DataFrame, group: str, key: str) -> pl.DataFrame:
    """For each ``group`` value, the row with the lowest ``key`` (ids in numeric order)."""
    return frame.filter(pl.col(group).is_not_null()).sort(natural_order(key)).unique(group, keep="first")


def deal_sources(
    orders: pl.DataFrame, carts: pl.DataFrame, *, with_lines: bool = True
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One row per deal: ``deal_key``, ``origin`` ("order" | "cart"), the order's fields (those ``orders`` has;
    null for cart deals), the cart fields ``cart_key``, ``cart_id``, ``status`` (null for order deals), ``created_at``,
    ``updated_at``, ``web_customer_key``, and the lines (``order_lines`` / ``cart_lines``; not with
    ``with_lines=False``, for callers that need only ``lines_total``, nor when the frames were loaded without
    them). Shared by deals and line items so both agree on deal keys.

    An order claims its cart (``orders.cart_key``, else a cart whose ``order_key`` names it); if several
    orders claim one cart the lowest order key keeps it and the others are deals of their own (repaired).
    Carts that no order claimed are cart deals.
    """
    if not with_lines:
        orders, carts = orders.drop("lines", strict=False), carts.drop("lines", strict=False)
    orders, order_issues = usable_rows(orders, "order_key", "order")
    carts, cart_issues = usable_rows(carts, "cart_key", "cart")
    # Which cart each order claims is decided on a narrow frame of keys, aligned row for row with ``orders`` (every
    # join is a left join on a unique key): the wide order rows and their nested lines (millions at scale) are
    # never copied by a join, only put beside the keys. Frames loaded without their lines (the deals step needs
    # only ``lines_total``) yield deals without them.
    cart_of_order = _first_by_key(carts.select("cart_key", "order_key"), "order_key", "cart_key").select(
        "order_key", pl.col("cart_key").alias("_cart_ref")
    )
    links = (
        orders.select("order_key", "cart_key", "store_id", "web_customer_key")
        .join(cart_of_order, on="order_key", how="left", maintain_order="left")
        .with_columns(
            pl.coalesce(pl.when(valid_key(pl.col("cart_key"))).then(pl.col("cart_key")), "_cart_ref").alias("_cart")
        )
    )
    claims = _first_by_key(links, "_cart", "order_key").select("order_key", pl.lit(True).alias("_claims"))
    links = links.join(claims, on="order_key", how="left", maintain_order="left").with_columns(
        pl.col("_claims").fill_null(False)
    )
    split = issues_where(
        links.with_columns(pl.col("order_key").alias("source_key")),
        pl.col("_cart").is_not_null() & ~pl.col("_claims"),
        REPAIRED,
        pl.format("cart {} already became another order; this order is a deal of its own", pl.col("_cart")),
    )
    cart_info = carts.select(
        pl.col("cart_key").alias("_cart"),
        pl.col("customer_key").alias("_cart_customer"),
        pl.col("store_id").alias("_cart_store"),
        pl.col("cart_id"),
        pl.col("created_at"),
    )
    links = links.join(cart_info, on="_cart", how="left", maintain_order="left")
    if links.height != orders.height:  # the joins above must keep one row per order
        raise AssertionError("deal_sources: a join changed the orders' rows; their fields would be misplaced")
    keyed = links.select(
        pl.when(pl.col("_claims")).then(pl.col("_cart")).otherwise(pl.col("order_key")).alias("deal_key"),
        pl.lit("order").alias("origin"),
        pl.coalesce("store_id", "_cart_store").alias("store_id"),
        pl.when(pl.col("_claims")).then(pl.col("_cart")).alias("cart_key"),
        "cart_id",
        "created_at",
        pl.lit(None, pl.String).alias("status"),
        pl.coalesce(non_empty(pl.col("web_customer_key")), "_cart_customer").alias("web_customer_key"),
    )
    fields = orders.select(  # those the frame was loaded with (the line items load only what decides the deal)
        *[c for c in _ORDER_FIELDS if c != "store_id" and c in orders.columns],
        *([pl.col("lines").alias("order_lines")] if "lines" in orders.columns else []),
    )
    order_deals = pl.concat([keyed, fields], how="horizontal")  # side by side: no copy
    claimed = order_deals.get_column("cart_key").drop_nulls().implode()
    cart_deals = carts.filter(~pl.col("cart_key").is_in(claimed)).select(
        pl.col("cart_key").alias("deal_key"),
        pl.lit("cart").alias("origin"),
        "cart_key",
        "cart_id",
        "store_id",
        pl.col("total"),
        "currency",
        "status",
        "created_at",
        "updated_at",
        non_empty(pl.col("customer_key")).alias("web_customer_key"),
        *([pl.col("lines").alias("cart_lines")] if "lines" in carts.columns else []),
    )
    lost_order = issues_where(
        cart_deals.with_columns(pl.col("deal_key").alias("source_key")),
        pl.col("status").str.strip_chars().str.to_lowercase() == "ordered",
        REPAIRED,
        "cart is ordered but its order is not in the source; staged as an unmapped order",
    )
    # The columns come from several joins and frames, chunked differently, and polars copies every column of such
    # a frame into one chunk for a whole-frame operation (a select, a filter, a join): the deals and line items
    # work on slices of it, each copied on its own (a slice is a view).
    deals = pl.concat([order_deals, cart_deals], how="diagonal_relaxed")
    return deals, concat_issues([order_issues, cart_issues, split, lost_order])


def _contact_lookup(customers: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(every customer key with its business partner, per partner key ``BP<code>`` its SAP contact: the
    private partner itself, or the company's first active contact person by key)."""
    people = customers.select(
        "customer_key",
        pl.col("kind").str.strip_chars().str.to_lowercase().alias("kind"),
        "card_code",
        pl.col("is_company").fill_null(False),
        pl.col("active").fill_null(True),
    ).unique("customer_key", keep="first", maintain_order=True)
    first_person = _first_by_key(
        people.filter((pl.col("kind") == "contact_person") & pl.col("active")), "card_code", "customer_key"
    ).select(
        pl.format("BP{}", pl.col("card_code")).alias("_bp"), pl.col("customer_key").alias("_first_person")
    )
    partners = (
        people.filter(pl.col("kind") == "bp")
        .select(pl.col("customer_key").alias("_bp"), "is_company")
        .join(first_person, on="_bp", how="left")
        .select(
            "_bp",
            pl.lit(True).alias("_bp_known"),
            pl.when(pl.col("is_company"))
            .then(pl.col("_first_person"))
            .otherwise(pl.col("_bp"))
            .alias("_sap_contact"),
        )
    )
    return people.select(
        pl.col("customer_key").alias("web_customer_key"), pl.col("card_code").alias("_web_card")
    ), partners


def _kept_keys(mapped: Mapped) -> pl.Series:
    """Keys that are sent, or rejected this run for a bad value (HubSpot keeps their record)."""
    rejected = mapped.issues.filter(pl.col("action") == SKIPPED)["source_key"]
    return pl.concat([mapped.keys(), rejected]).unique()


def _excluded_keys(mapped: Mapped) -> pl.Series:
    return mapped.issues.filter(pl.col("action") == EXCLUDED)["source_key"].unique()


def late_links(deals: pl.DataFrame) -> pl.DataFrame:
    """``source_key`` → ``survivor_key`` for every order that is part of a cart's deal: if the order was
    synced before its cart link arrived, its deal ``O…`` must merge into the cart's deal ``C…``."""
    return columns_of(deals, "origin", "deal_key", "order_key").filter((pl.col("origin") == "order") & (pl.col("deal_key") != pl.col("order_key"))).select(
        pl.col("order_key").alias("source_key"), pl.col("deal_key").alias("survivor_key")
    )


@dataclass(frozen=True)
class DealLookups:
    """What every slice of deals looks up, computed once: the customers' partners and SAP contacts, the merged
    contacts' survivors, the contact and company keys a deal may name, the excluded contacts."""

    people: pl.DataFrame
    partners: pl.DataFrame
    aliases: pl.DataFrame
    kept_contacts: pl.Series
    kept_companies: pl.Series
    excluded_contacts: pl.Series

    @classmethod
    def of(cls, customers: pl.DataFrame, contacts: Mapped, companies: Mapped) -> DealLookups:
        people, partners = _contact_lookup(customers)
        aliases = contacts.aliases if contacts.aliases is not None else empty_aliases()
        return cls(people, partners, aliases, _kept_keys(contacts), _kept_keys(companies), _excluded_keys(contacts))


def with_associations(deals: pl.DataFrame, lookups: DealLookups) -> pl.DataFrame:
    people, partners, aliases = lookups.people, lookups.partners, lookups.aliases
    # The lookups join a narrow frame of the two customer keys, whose new columns are then put beside ``deals``
    # (every join is a left join on a unique key): a join of the wide deal rows would copy every column of them.
    keys = deals.select("web_customer_key", "card_code")
    frame = (
        keys.join(
            people.with_columns(pl.lit(True).alias("_web_known")),
            on="web_customer_key",
            how="left",
            maintain_order="left",
        )
        .with_columns(
            pl.col("_web_known").fill_null(False),
            pl.format("BP{}", pl.coalesce(non_empty(pl.col("card_code")), "_web_card")).alias("_bp"),
        )
        .join(partners, on="_bp", how="left", maintain_order="left")
        .with_columns(
            pl.col("_bp_known").fill_null(False),
            pl.when(pl.col("_web_known"))
            .then(pl.col("web_customer_key"))
            .otherwise(pl.col("_sap_contact"))
            .alias("_contact"),
        )
        .join(aliases.rename({"source_key": "_contact"}), on="_contact", how="left", maintain_order="left")
        .with_columns(pl.coalesce("survivor_key", "_contact").alias("_contact"))
    )
    # A contact or company rejected for a bad value is still the deal's: its association stays as HubSpot
    # has it (rejected is not removed); an excluded one is not (the deal is then excluded too).
    found = frame.with_columns(
        pl.when(pl.col("_contact").is_in(lookups.kept_contacts))
        .then(pl.col("_contact"))
        .alias("assoc_contacts"),
        # A web customer's deal belongs to the customer's own company, never to the collective partner account
        # (e.g. "Web Shop EU") that SAP books unlinked web orders to; SAP-only orders use the order's partner.
        pl.when(pl.col("_web_known"))
        .then(pl.format("BP{}", non_empty(pl.col("_web_card"))))
        .otherwise(pl.col("_bp"))
        .pipe(lambda company: pl.when(company.is_in(lookups.kept_companies)).then(company))
        .alias("assoc_companies"),
    ).drop(keys.columns)
    if found.height != deals.height:
        raise AssertionError("_associations: a join changed the deals' rows; their lookups would be misplaced")
    return pl.concat([deals, found.rechunk()], how="horizontal")  # side by side: no copy of the deal rows


def map_deals(
    orders: pl.DataFrame,
    carts: pl.DataFrame,
    customers: pl.DataFrame,
    contacts: Mapped,
    companies: Mapped,
    settings: PanelSettings,
    now: datetime,
    *,
    slice_deals: int = SLICE_DEALS,
) -> Mapped:
    """Orders and carts → deals: dealname, amount, deal_currency_code, closedate, fp_* statuses, fp_store,
    plus ``dealstage`` (a DealStage value) and the contact/company association keys.

    After ``deal_sources`` every rule reads one deal's row only, so the deals are mapped ``slice_deals`` at a
    time (the result does not depend on it): at scale the lookups' and filters' copies of 1.9M wide rows were
    the step's peak (bench/README.md §3c)."""
    if not settings.commerce.sends_deals:  # commerce.objects: orders_and_carts
        return not_sent("deals")
    # a deal needs of its lines only their total (``lines_total``): the lines would be copied by every join below
    deals, source_issues = deal_sources(orders, carts, with_lines=False)
    lookups = DealLookups.of(customers, contacts, companies)
    parts = (
        _mapped_slice(deals.slice(start, slice_deals), lookups, settings, now, source_issues if start == 0 else empty_issues())
        for start in range(0, max(deals.height, 1), slice_deals)
    )
    mapped = finalize_parts("deals", parts)
    # the merges of the deals sent (an excluded deal is not sent, so nothing merges into it)
    aliases = late_links(deals).filter(pl.col("survivor_key").is_in(mapped.keys().implode()))
    return Mapped(mapped.object_type, mapped.records, mapped.issues, aliases=aliases)


def _mapped_slice(
    deals: pl.DataFrame, lookups: DealLookups, settings: PanelSettings, now: datetime, source_issues: pl.DataFrame
) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """One slice of ``deal_sources``' deals → deal rows (before ``finalize``) and the issues of [the sources
    (given), excluded customers, unknown customers, bad amounts, missing totals, bad dates, odd statuses]."""
    deals = deals.with_columns(
        deal_stage_for(deals, settings.deal_stages, settings.abandoned_cart_hours, now).alias("dealstage"),
        pl.col("deal_key").alias("source_key"),
    )
    deals = with_associations(deals, lookups)
    is_order = pl.col("origin") == "order"
    unknown = issues_where(
        deals,
        ~pl.col("_web_known") & ~pl.col("_bp_known"),
        REPAIRED,
        pl.format(
            "customer unknown (web customer '{}', business partner '{}'); deal sent without contact",
            preview(pl.col("web_customer_key").fill_null("")),
            preview(pl.col("card_code").fill_null("")),
        ),
    )
    excluded_customer = (
        pl.col("_contact").is_in(lookups.excluded_contacts.implode())
        if settings.deals.of_excluded_customers == "skip"
        else pl.lit(False)
    )
    excluded = issues_where(
        deals,
        excluded_customer,
        EXCLUDED,
        pl.format("customer {} is excluded by the role filter (deals.of_excluded_customers: skip)", pl.col("_contact")),
    )
    kept = deals.select(~excluded_customer.fill_null(False)).to_series()
    # without the lookups' helper columns (``_…``, read above): the filter copies every column it keeps
    deals = keep_rows(deals.drop(cs.starts_with("_")), kept)
    # A negative total comes from lines with invalid quantities or prices (rejected, so HubSpot keeps them):
    # sending it would contradict the deal's line items.
    invalid_total = bad_number(pl.col("total")) | (pl.col("total").cast(pl.Float64) < 0)
    bad_amount = issues_where(
        deals,
        invalid_total,
        REPAIRED,
        pl.format("invalid amount {}; cleared", pl.col("total").cast(pl.String)),
    )
    # an order whose DocTotal is empty keeps an amount: the sum of its lines (never a silent clear)
    lines_sum = pl.col("lines_total").round(2)
    no_total = issues_where(
        deals, is_order & pl.col("total").is_null(), REPAIRED,
        pl.format("SAP order total (DocTotal) is empty; amount is the sum of its lines ({})", lines_sum),
    )
    deals = deals.with_columns(pl.when(is_order).then(pl.coalesce(pl.col("total"), lines_sum)).otherwise("total").alias("total"))
    bad_date = issues_where(
        deals,
        is_order & pl.col("doc_date").is_not_null() & ~date_in_range(pl.col("doc_date")),
        REPAIRED,
        pl.format("order date {} outside 1970..2100; closedate cleared", pl.col("doc_date").cast(pl.String)),
    )
    odd_status = issues_where(
        deals,
        is_order & (pl.col("order_status") == UNKNOWN_STATUS),
        REPAIRED,
        pl.format("SAP holds an unknown order status; deal staged as {}", pl.col("dealstage")),
    )
    records = deals.with_columns(
        pl.when(is_order)
        .then(
            pl.format(
                "Order #{}",
                pl.coalesce(pl.col("doc_num").cast(pl.String), pl.col("order_key").str.strip_prefix("O")),
            )
        )
        .otherwise(
            pl.format(
                "Cart {}",
                pl.coalesce(pl.col("cart_id").cast(pl.String), pl.col("cart_key").str.strip_prefix("C")),
            )
        )
        .alias("dealname"),
        pl.when(~invalid_total.fill_null(False)).then(decimal_string(pl.col("total"))).alias("amount"),
        non_empty(pl.col("currency")).str.to_uppercase().alias("deal_currency_code"),
        pl.when(is_order).then(iso_datetime(pl.col("doc_date"))).alias("closedate"),
        pl.col("order_status").alias("fp_order_status"),
        pl.col("shipment_status").alias("fp_shipment_status"),
        pl.col("payment_status").alias("fp_payment_status"),
        pl.col("store_id").alias("fp_store"),
    )
    return records, [source_issues, excluded, unknown, bad_amount, no_total, bad_date, odd_status]
