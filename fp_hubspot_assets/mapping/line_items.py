"""Order lines (or, while a cart is not ordered, cart lines) → HubSpot line items, one per line of every
deal. Keys are ``<deal_key>:L<line_num>`` so a cart's lines and its order's lines never both exist under
different deals."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import polars as pl

from fp_hubspot_assets.mapping.commerce import commerce_lines
from fp_hubspot_assets.mapping.common import (
    bad_number,
    decimal_string,
    empty_issues,
    empty_records,
    finalize_parts,
    issues_for,
    issues_where,
    keep_rows,
    non_empty,
    usable_rows,
)
from fp_hubspot_assets.mapping.deals import SLICE_DEALS, deal_sources
from fp_hubspot_assets.mapping.model import EXCLUDED, REPAIRED, SKIPPED, Mapped
from fp_hubspot_assets.mapping.products import tier_exclusion_reason
from fp_hubspot_assets.objects import child_key
from fp_hubspot_assets.panel import PanelSettings

# The order columns the line items need: those that decide each order's deal (``deal_sources``) and the lines.
ORDER_COLUMNS = ("order_key", "cart_key", "store_id", "web_customer_key", "updated_at", "lines")
_LINE_FIELDS = ("line_num", "item_code", "combination_id", "description", "quantity", "price")


def _exploded(deals: pl.DataFrame, lines_column: str, keep: tuple[str, ...] = ()) -> pl.DataFrame:
    """One row per line of ``lines_column`` (order or cart lines), with its deal key (and the ``keep`` columns)."""
    # a deal without such lines (null: an order deal's cart lines) yields no row rather than a null one to filter out
    lines = deals.select("deal_key", *keep, pl.col(lines_column).alias("_line")).explode("_line", keep_nulls=False)
    lines = keep_rows(lines, pl.col("_line").is_not_null()).unnest("_line")  # a null inside a list: none at scale
    return lines.select(
        "deal_key",
        *keep,
        *[pl.col(f) if f in lines.columns else pl.lit(None, pl.String).alias(f) for f in _LINE_FIELDS],
    )


def deal_lines(deals: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Every line of ``deals`` (``deal_sources`` rows): ``source_key`` (``<deal_key>:L<line_num>``), ``deal_key``
    and the line fields; and the issues of [unnumbered lines, duplicate lines]. Lines without a line number are
    skipped: there is no stable key for them. (Bad order/cart rows are reported by the deals mapping, not again
    here.)"""
    # an order deal has no cart lines and a cart deal no order lines (null): no filter by origin, which would
    # copy every line once more before the explode
    lines = pl.concat(
        [_exploded(deals, "order_lines"), _exploded(deals, "cart_lines")], how="vertical_relaxed"
    ).with_columns(child_key(pl.col("deal_key"), pl.col("line_num")).alias("source_key"))
    unnumbered = issues_where(
        lines.with_columns(pl.format("{}:L?", "deal_key").alias("source_key")),
        pl.col("line_num").is_null(),
        SKIPPED,
        "line has no line number",
    )
    lines, dup_issues = usable_rows(keep_rows(lines, pl.col("line_num").is_not_null()), "source_key", "line")
    return lines, [unnumbered, dup_issues]


def _deal_line_slices(
    orders: pl.DataFrame, carts: pl.DataFrame, parents: pl.Series | None, slice_deals: int
) -> Iterator[tuple[pl.DataFrame, list[pl.DataFrame]]]:
    """``deal_lines`` slice by slice of deals, each slice's lines kept to the deals in ``parents`` (when given): a
    deal's lines never depend on another deal's, and only one slice's exploded lines exist at a time."""
    deals, _ = deal_sources(orders, carts)
    # Columns taken one by one, each slice put together from their slices: the deals' columns are chunked
    # differently (they come from several joins and frames), and an operation on the whole frame would first copy
    # every column into one chunk. The other columns are freed before the slices.
    columns = [deals.get_column(name) for name in ("deal_key", "order_lines", "cart_lines")]
    del deals
    for start in range(0, max(columns[0].len(), 1), slice_deals):
        lines, issues = deal_lines(pl.DataFrame([column.slice(start, slice_deals) for column in columns]))
        yield lines if parents is None else keep_rows(lines, pl.col("deal_key").is_in(parents.implode())), issues


def _order_and_cart_lines(orders: pl.DataFrame, carts: pl.DataFrame, sent: Mapped | None, object_type: str) -> tuple[pl.DataFrame, pl.Series]:
    """Lines of the sent orders (or carts) keyed ``order/O7:L1`` (``cart/C5:L1``); returns (lines, parent keys)."""
    column = "assoc_orders" if object_type == "orders" else "assoc_carts"
    if sent is None or sent.records.is_empty():
        return pl.DataFrame(), pl.Series("parent_key", [], pl.String)
    rows = commerce_lines(orders, carts).filter(pl.col(column).is_in(sent.keys().implode()))
    lines = _exploded(rows.rename({"parent_key": "deal_key"}).rename({"_lines": "lines"}), "lines", (column,))
    lines = lines.filter(pl.col("line_num").is_not_null()).with_columns(
        child_key(pl.col("deal_key"), pl.col("line_num")).alias("source_key")
    )
    return lines.unique("source_key", keep="first", maintain_order=True), rows["parent_key"]


def _line_records(lines: pl.DataFrame, product_names: pl.DataFrame, settings: PanelSettings) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Lines → line item rows (before ``finalize``) and the issues of [invalid lines, lines without product,
    lines without price]."""
    for column in ("assoc_orders", "assoc_carts"):
        if column not in lines.columns:
            lines = lines.with_columns(pl.lit(None, pl.String).alias(column))
    quantity, price = pl.col("quantity").cast(pl.Float64), pl.col("price").cast(pl.Float64)
    reason = (
        pl.when(quantity.is_null())
        .then(pl.lit("line has no quantity"))
        .when(bad_number(quantity) | (quantity < 0))
        .then(pl.format("invalid quantity {}", quantity.cast(pl.String)))
        .when(bad_number(price) | (price < 0))
        .then(pl.format("invalid price {}", price.cast(pl.String)))
    )
    lines = lines.with_columns(reason.alias("_invalid"))
    invalid = issues_where(lines, pl.col("_invalid").is_not_null(), SKIPPED, pl.col("_invalid"))
    lines = keep_rows(lines, pl.col("_invalid").is_null())

    item = non_empty(pl.col("item_code"))
    combination = (
        non_empty(pl.col("combination_id")) if settings.items.sync_combinations else pl.lit(None, pl.String)
    )
    wanted = pl.when(item.is_not_null()).then(
        pl.when(combination.is_not_null())
        .then(pl.format("I{}#{}", item, combination))
        .otherwise(pl.format("I{}", item))
    )
    lines = lines.with_columns(wanted.alias("_wanted")).join(
        product_names, on="_wanted", how="left", maintain_order="left"
    )
    no_product = issues_where(
        lines,
        pl.col("_product_name").is_null(),
        REPAIRED,
        pl.when(pl.col("_wanted").is_null())
        .then(pl.lit("line has no item; sent without product"))
        .otherwise(pl.format("product {} is not synced; sent without product", pl.col("_wanted"))),
    )
    no_price = issues_where(lines, price.is_null(), REPAIRED, "line has no price")
    records = lines.with_columns(
        pl.coalesce(
            non_empty(pl.col("description")),
            non_empty(pl.col("_product_name")),
            item,
            pl.format("Line {}", pl.col("line_num").cast(pl.String)),
        ).alias("name"),
        decimal_string(quantity).alias("quantity"),
        decimal_string(price).alias("price"),
        pl.when(pl.col("_product_name").is_not_null()).then(pl.col("_wanted")).alias("product_key"),
        pl.when(pl.col("assoc_orders").is_null() & pl.col("assoc_carts").is_null())
        .then(pl.col("deal_key"))
        .alias("assoc_deals"),
    )
    return records, [invalid, no_product, no_price]


def _mapped_parts(
    lines: Iterable[tuple[pl.DataFrame, list[pl.DataFrame]]], product_names: pl.DataFrame, settings: PanelSettings
) -> Iterator[tuple[pl.DataFrame, list[pl.DataFrame]]]:
    for part, issues in lines:
        records, more = _line_records(part, product_names, settings)
        yield records, [*issues, *more]


def map_line_items(
    orders: pl.DataFrame,
    carts: pl.DataFrame,
    products: Mapped,
    settings: PanelSettings,
    deals: Mapped | None = None,
    order_records: Mapped | None = None,
    cart_records: Mapped | None = None,
    *,
    slice_deals: int = SLICE_DEALS,
) -> Mapped:
    """Deal, order and cart lines → line items: name, quantity, price (decimal strings), ``product_key`` (the
    combination's product when combinations are synced and the line has one, else the item's; null when
    that product is not sent) and one of ``assoc_deals`` / ``assoc_orders`` / ``assoc_carts``. With ``deals``
    only lines of deals in ``deals.records`` are sent; likewise for ``order_records`` / ``cart_records``
    (``commerce.objects``), whose lines are keyed ``order/<key>:L<n>`` / ``cart/<key>:L<n>``.

    The deals' lines are mapped ``slice_deals`` deals at a time (the result does not depend on it): at scale
    the exploded lines of every deal at once were the largest frame of the job (bench/README.md §3c)."""
    parents = deals.keys() if deals is not None else None
    parts: list[Iterable[tuple[pl.DataFrame, list[pl.DataFrame]]]] = [
        _deal_line_slices(orders, carts, parents, slice_deals)
    ]
    for sent, object_type in ((order_records, "orders"), (cart_records, "carts")):
        extra, extra_parents = _order_and_cart_lines(orders, carts, sent, object_type)
        if extra.height:  # no unnumbered or duplicate lines here: those are left out above
            parts.append([(extra, [empty_issues(), empty_issues()])])
        if parents is not None and extra_parents.len():
            parents = pl.concat([parents, extra_parents.alias(parents.name)])
    lines = itertools.chain.from_iterable(parts)
    if not settings.tier.sends_products:
        reason = tier_exclusion_reason(settings.tier, "line items")
        excluded = ((empty_records("line_items"), [*issues, issues_for(part, "source_key", EXCLUDED, reason)])
                    for part, issues in lines)  # fmt: skip
        return finalize_parts("line_items", excluded)  # no parents: archive none
    product_names = products.records.select(
        pl.col("source_key").alias("_wanted"), pl.col("name").alias("_product_name")
    )
    mapped = finalize_parts("line_items", _mapped_parts(lines, product_names, settings))
    return Mapped(mapped.object_type, mapped.records, mapped.issues, parents=parents)
