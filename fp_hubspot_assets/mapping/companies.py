"""SAP company business partners → HubSpot companies."""

from __future__ import annotations

import polars as pl

from fp_hubspot_assets.mapping.addresses import pick_address
from fp_hubspot_assets.mapping.common import (
    email_domain,
    finalize,
    issues_where,
    join_sorted,
    non_empty,
    normalize_email,
    usable_rows,
    valid_email,
    with_clean_phone,
    with_country_codes,
)
from fp_hubspot_assets.mapping.model import EXCLUDED, REPAIRED, Mapped
from fp_hubspot_assets.panel import PanelSettings
from fp_hubspot_assets.source_model import SYSTEM_ROLES

# Mailbox providers: a partner writing from one of these tells us nothing about its own web domain.
FREE_MAIL_DOMAIN_RE = (
    r"^(gmail\.com|googlemail\.com|outlook\.[a-z.]+|hotmail\.[a-z.]+|live\.[a-z.]+|msn\.com|"
    r"yahoo\.[a-z.]+|ymail\.com|aol\.[a-z.]+|icloud\.com|me\.com|mac\.com|gmx\.[a-z.]+|web\.de|"
    r"t-online\.de|freenet\.de|mail\.ru|yandex\.[a-z.]+|proton\.me|protonmail\.[a-z.]+|zoho\.com|"
    r"mail\.com|qq\.com|163\.com)$"
)


def is_company_partner() -> pl.Expr:
    """A SAP business partner row that is a company (OCRD.CmpPrivate = 'C')."""
    kind = pl.col("kind").str.strip_chars().str.to_lowercase()
    return (kind == "bp") & pl.col("is_company").fill_null(False)


def company_candidates(customers: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Company partners with a usable key (``source_key``) and whether they are sent (``eligible``), plus
    the key issues. Shared with contacts, which associate to a company only when it is sent."""
    companies = customers.filter(is_company_partner()).rename({"customer_key": "source_key"})
    kept, key_issues = usable_rows(companies, "source_key", "company")
    return kept.with_columns(pl.col("active").fill_null(True).alias("eligible")), key_issues


def map_companies(customers: pl.DataFrame, addresses: pl.DataFrame, settings: PanelSettings) -> Mapped:
    """Company business partners → companies: name, domain (from the partner's email unless it is a
    free-mail provider), phone, address (``settings.address_source`` with fallback), fp_group (the
    partner's client-defined roles). Inactive partners are excluded."""
    candidates, key_issues = company_candidates(customers)
    inactive = issues_where(candidates, ~pl.col("eligible"), EXCLUDED, "inactive business partner")
    frame = candidates.filter(pl.col("eligible"))
    email = valid_email(normalize_email(pl.col("email")))
    domain = email_domain(email)
    frame = frame.with_columns(
        non_empty(pl.col("company_name")).alias("_name"),
        pl.when(email.is_not_null() & ~domain.str.contains(FREE_MAIL_DOMAIN_RE))
        .then(domain)
        .alias("domain"),
        join_sorted(pl.col("roles").list.eval(pl.element().filter(~pl.element().is_in(SYSTEM_ROLES)))).alias(
            "fp_group"
        ),
    )
    unnamed = issues_where(
        frame, pl.col("_name").is_null(), REPAIRED, "company has no name; used its card code"
    )
    owners = frame.select("source_key", pl.col("source_key").alias("owner_key"), pl.lit(0).alias("level"))
    address = pick_address(owners, addresses, settings.address_source)
    records = frame.join(address, on="source_key", how="left", maintain_order="left").with_columns(
        pl.coalesce(
            "_name", non_empty(pl.col("card_code")), pl.col("source_key").str.strip_prefix("BP")
        ).alias("name"),
        pl.col("street").alias("address"),
        pl.col("street2").alias("address2"),
        pl.lit("sap").alias("fp_source"),
    )
    records, country_issues = with_country_codes(records)
    records, phone_issues = with_clean_phone(records, country="country")  # read with the address's country
    return finalize("companies", records, [key_issues, inactive, unnamed, phone_issues, country_issues])
