"""Benchmark: map 1,000,000 synthetic customers (+ ~1.5M addresses) to HubSpot contacts.

Target (bench/README.md): seconds, not minutes — mapping must never be the bottleneck next to HubSpot's
rate budget. Run: ``.venv/bin/python bench/mapping_speed.py [customers]``.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime

import numpy as np
import polars as pl

from fp_hubspot_assets.mapping import map_companies, map_contacts
from fp_hubspot_assets.panel import parse_panel
from fp_hubspot_assets.source_model import conform


def synthetic(n: int, seed: int = 7) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``n`` customers: 75% web (5% guests, a third linked to a partner), 15% contact persons, 10% partners
    (half companies); 2% share an email with another row; ~1.5 addresses per web customer / partner."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(np.array(["web", "contact_person", "bp"]), size=n, p=[0.75, 0.15, 0.10])
    ids = np.arange(n).astype(str)
    prefix = np.select([kind == "web", kind == "contact_person"], ["W", "CP"], "BP")
    n_partners = max(1, n // 10)
    card = rng.integers(0, n_partners, size=n).astype(str)
    email_ids = np.where(rng.random(n) < 0.02, rng.integers(0, n, size=n), np.arange(n)).astype(str)
    role_pick = rng.choice(
        np.array(["Registered", "Vendors", "Admins", "Wholesale"]), size=n, p=[0.85, 0.05, 0.05, 0.05]
    )
    customers = pl.DataFrame(
        {
            "prefix": prefix,
            "id": ids,
            "kind": kind,
            "card": card,
            "email_id": email_ids,
            "role": role_pick,
            "guest": (kind == "web") & (rng.random(n) < 0.05),
            "linked": rng.random(n) < 0.33,
            "company": rng.random(n) < 0.5,
            "active": rng.random(n) < 0.97,
        }
    ).select(
        pl.when(pl.col("kind") == "bp")
        .then(pl.format("BPC{}", "id"))
        .otherwise(pl.format("{}{}", "prefix", "id"))
        .alias("customer_key"),
        "kind",
        pl.when(pl.col("kind") == "web").then(pl.lit("1")).alias("store_id"),
        pl.when(pl.col("kind") == "bp")
        .then(pl.format("C{}", "id"))
        .when((pl.col("kind") == "contact_person") | pl.col("linked"))
        .then(pl.format("C{}", "card"))
        .alias("card_code"),
        ((pl.col("kind") == "bp") & pl.col("company")).alias("is_company"),
        pl.format("Company {}", "card").alias("company_name"),
        pl.format(" User.{}@Example.com ", "email_id").alias("email"),
        pl.format("First{}", "id").alias("first_name"),
        pl.format("Last{}", "id").alias("last_name"),
        pl.format("+49 30 {}", "id").alias("phone"),
        pl.concat_list([pl.col("role")]).alias("roles"),
        pl.col("guest").alias("is_guest"),
        "active",
        pl.lit(datetime(2025, 1, 1)).alias("updated_at"),
    )
    owners = customers.filter(pl.col("kind") != "contact_person").get_column("customer_key")
    m = len(owners)
    picks = np.concatenate([np.arange(m), rng.integers(0, m, size=m // 2)])
    addresses = pl.DataFrame(
        {
            "owner_key": owners.gather(picks),
            "n": np.arange(len(picks)).astype(str),
            "shipping": rng.random(len(picks)) < 0.4,
            "default": rng.random(len(picks)) < 0.7,
        }
    ).select(
        pl.format("{}:A{}", "owner_key", "n").alias("address_key"),
        "owner_key",
        pl.lit("web").alias("source"),
        pl.when(pl.col("shipping"))
        .then(pl.lit("shipping"))
        .otherwise(pl.lit("billing"))
        .alias("address_type"),
        pl.col("default").alias("is_default"),
        pl.format("Street {}", "n").alias("street"),
        pl.lit("Berlin").alias("city"),
        pl.lit("10115").alias("zip"),
        pl.lit("DE").alias("country"),
        pl.lit(datetime(2025, 1, 1)).alias("updated_at"),
    )
    return conform(customers, "customers"), conform(addresses, "addresses")


def main(n: int = 1_000_000) -> None:
    settings = parse_panel({"customers": {"roles": ["Registered", "Vendors"], "client_roles": ["Wholesale"]}})
    started = time.perf_counter()
    customers, addresses = synthetic(n)
    print(
        f"generated {customers.height:,} customers, {addresses.height:,} addresses in {time.perf_counter() - started:.2f}s"
    )
    for name, fn in (("map_contacts", map_contacts), ("map_companies", map_companies)):
        started = time.perf_counter()
        mapped = fn(customers, addresses, settings)
        elapsed = time.perf_counter() - started
        print(f"{name}: {mapped.records.height:,} records, {mapped.issues.height:,} issues in {elapsed:.2f}s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
