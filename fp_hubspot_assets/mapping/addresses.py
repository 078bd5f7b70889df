"""Choosing one address per contact/company from web (FocusPoint) and SAP addresses.

The panel's ``address_source`` picks billing or shipping. For each record we look at its address owners
in order (``level`` 0 = its own addresses, 1 = a fallback owner such as a web customer's SAP business
partner) and take, per owner level: the default address of the preferred kind, then any of that kind,
then the default / any of the other kind. Ties go to the most recently updated address.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from fp_hubspot_assets.mapping.common import non_empty

ADDRESS_FIELDS = ("street", "street2", "city", "zip", "state", "country")


def pick_address(
    owners: pl.DataFrame,
    addresses: pl.DataFrame,
    address_source: Literal["billing", "shipping"],
) -> pl.DataFrame:
    """``owners`` (``source_key``, ``owner_key``, ``level``) → one row per source_key that has a usable
    address: ``source_key`` + ``ADDRESS_FIELDS`` (cleaned, null when blank). Addresses with no street,
    city, zip, state or country are ignored: sending them would clear good data."""
    # the choice is made on the keys and ranks of the usable addresses; only the chosen rows' fields are cleaned
    # (at 1M customers: 1.8M addresses, and every cleaned field a new column)
    usable = pl.any_horizontal(non_empty(pl.col(f)).is_not_null() for f in ("street", "city", "zip", "state", "country"))
    keyed = addresses.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_address"),
        "owner_key",
        "address_key",
        "updated_at",
        pl.col("address_type").str.strip_chars().str.to_lowercase().alias("address_type"),
        pl.col("is_default").fill_null(False).alias("is_default"),
        usable.alias("_usable"),
    ).filter(pl.col("_usable"))
    candidates = owners.join(keyed, on="owner_key", how="inner").with_row_index("_row")
    kind_rank = (
        pl.when(pl.col("address_type") == address_source)
        .then(0)
        .when(pl.col("address_type").is_in(["billing", "shipping"]))
        .then(1)
        .otherwise(2)
    )
    # one small integer per candidate (lower is better), so the per-record choice is a cheap arg-min
    # instead of a multi-column sort over every address
    rank = pl.col("level").cast(pl.Int64) * 6 + kind_rank * 2 + (~pl.col("is_default")).cast(pl.Int64)
    best_rows = candidates.group_by("source_key").agg(
        pl.col("_row")
        .sort_by([rank, "updated_at", "address_key"], descending=[False, True, False], nulls_last=True)
        .first()
    )
    chosen = candidates.filter(pl.col("_row").is_in(best_rows.get_column("_row").implode()))
    fields = addresses.select(ADDRESS_FIELDS)[chosen.get_column("_address")]
    return pl.concat([chosen.select("source_key"), fields.select(non_empty(pl.col(f)).alias(f) for f in ADDRESS_FIELDS)],
                     how="horizontal")  # fmt: skip
