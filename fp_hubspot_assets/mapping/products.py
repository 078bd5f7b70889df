"""Items and their attribute combinations → HubSpot products.

HubSpot has no variants, so with ``items.sync_combinations`` each combination is a product of its own
("Shirt (Color: Red, Size: XL)") and the base item is sent as well: SAP sales orders entered in SAP carry no
combination and sell the item itself, so their line items need the base item's product (without it about a
fifth of the demo's line items had no product). Without the option: one product per item. The
source key (``I<code>`` / ``I<code>#<combination>``) never depends on SKU options, so switching the SKU
prefix on or off updates products instead of creating new ones.
"""

from __future__ import annotations

import polars as pl

from fp_hubspot_assets.mapping.common import (
    bad_number,
    concat_issues,
    decimal_string,
    empty_records,
    finalize,
    issues_for,
    issues_where,
    non_empty,
    usable_rows,
)
from fp_hubspot_assets.mapping.model import EXCLUDED, REPAIRED, SKIPPED, Mapped
from fp_hubspot_assets.panel import ItemOptions, PanelSettings, Tier


def tier_exclusion_reason(tier: Tier, what: str) -> str:
    return f"subscription tier '{tier.value}' does not send {what} (Professional or Enterprise only)"


def _is_combination() -> pl.Expr:
    return non_empty(pl.col("combination_id")).is_not_null()


def _exclusion_reason(frame: pl.DataFrame, options: ItemOptions) -> pl.Expr:
    """Why a row is not sent (null when it is): inactive, or the combination setting."""
    if options.sync_combinations:
        by_setting = pl.lit(None, pl.String)  # combinations and base items alike (see the module docstring)
    else:
        by_setting = pl.when(_is_combination()).then(
            pl.lit("attribute combination not sent: items.sync_combinations is off")
        )
    return pl.when(~pl.col("active").fill_null(True)).then(pl.lit("inactive item")).otherwise(by_setting)


def _with_sku(
    frame: pl.DataFrame, stores: pl.DataFrame, options: ItemOptions
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """hs_sku: "" unless ``sync_sku``; with ``store_prefix`` "<store_code>-<sku>" of the home store."""
    sku = non_empty(pl.col("sku"))
    if not options.sync_sku:
        return frame.with_columns(pl.lit(None, pl.String).alias("hs_sku")), concat_issues([])
    if not options.store_prefix:
        return frame.with_columns(sku.alias("hs_sku")), concat_issues([])
    codes = stores.select("store_id", non_empty(pl.col("store_code")).alias("_store_code")).unique(
        "store_id", keep="first", maintain_order=True
    )
    frame = frame.join(codes, on="store_id", how="left", maintain_order="left")
    no_code = issues_where(
        frame,
        sku.is_not_null() & pl.col("_store_code").is_null(),
        REPAIRED,
        pl.format(
            "no store code for home store '{}'; SKU sent without prefix", pl.col("store_id").fill_null("")
        ),
    )
    prefixed = (
        pl.when(pl.col("_store_code").is_not_null())
        .then(pl.format("{}-{}", "_store_code", sku))
        .otherwise(sku)
    )
    return frame.with_columns(prefixed.alias("hs_sku")), no_code


def map_products(items: pl.DataFrame, stores: pl.DataFrame, settings: PanelSettings) -> Mapped:
    """Canonical items → products: name, hs_sku, price (decimal string), description, fp_store."""
    frame, key_issues = usable_rows(items.rename({"product_key": "source_key"}), "source_key", "item")
    if not settings.tier.sends_products:
        excluded = issues_for(frame, "source_key", EXCLUDED, tier_exclusion_reason(settings.tier, "products"))
        return Mapped("products", empty_records("products"), concat_issues([key_issues, excluded]))

    frame = frame.with_columns(_exclusion_reason(frame, settings.items).alias("_excluded"))
    excluded = issues_where(frame, pl.col("_excluded").is_not_null(), EXCLUDED, pl.col("_excluded"))
    frame = frame.filter(pl.col("_excluded").is_null())

    price = pl.col("price").cast(pl.Float64)
    bad_price = bad_number(price) | (price < 0)
    skipped = issues_where(frame, bad_price, SKIPPED, pl.format("invalid price {}", price.cast(pl.String)))
    frame = frame.filter(~bad_price.fill_null(False))
    no_price = issues_where(
        frame, price.is_null(), REPAIRED, "no price in SAP (ITM1.Price is empty for the store's price list); price sent empty"
    )
    # SAP ItemCodes are one code whatever the case (case-insensitive collation); two codes differing only in
    # case are two products here, which is almost always a typo in the source: say so on both
    folded = pl.col("item_code").str.to_lowercase()
    case_twins = issues_where(
        frame.with_columns(pl.col("item_code").n_unique().over(folded).alias("_spellings")),
        pl.col("_spellings") > 1,
        REPAIRED,
        pl.format("item code '{}' differs from another item code only in case; sent as separate products", pl.col("item_code")),
    )

    base_name = non_empty(pl.col("name"))
    unnamed = issues_where(frame, base_name.is_null(), REPAIRED, "item has no name; used its item code")
    base_name = pl.coalesce(base_name, non_empty(pl.col("item_code")), pl.col("source_key"))
    variant = pl.coalesce(non_empty(pl.col("attributes")), non_empty(pl.col("combination_id")))
    frame, sku_issues = _with_sku(frame, stores, settings.items)
    records = frame.with_columns(
        pl.when(_is_combination())
        .then(pl.format("{} ({})", base_name, variant))
        .otherwise(base_name)
        .alias("name"),
        decimal_string(price).alias("price"),
        pl.col("store_id").alias("fp_store"),
    )
    return finalize("products", records, [key_issues, excluded, skipped, no_price, case_twins, unnamed, sku_issues])
