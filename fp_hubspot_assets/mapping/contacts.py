"""Web customers, SAP contact persons and private business partners → HubSpot contacts.

Company business partners are not contacts (they become companies); their contact persons and the web
customers linked to them are, and associate to the company.
"""

from __future__ import annotations

import polars as pl

from fp_hubspot_assets.mapping.addresses import pick_address
from fp_hubspot_assets.mapping.common import (
    empty_aliases,
    finalize,
    issues_for,
    issues_where,
    join_sorted,
    keep_rows,
    natural_order,
    non_empty,
    normalize_email,
    preview,
    usable_rows,
    valid_email,
    with_clean_phone,
    with_country_codes,
)
from fp_hubspot_assets.mapping.companies import company_candidates
from fp_hubspot_assets.mapping.model import EXCLUDED, REPAIRED, SKIPPED, Mapped
from fp_hubspot_assets.panel import CustomerRoles, PanelSettings

# Which record survives a shared email: the web account (it is what the person logs in with), then the
# SAP contact person, then the business partner.
KIND_RANK = {"web": 0, "contact_person": 1, "bp": 2}
SOURCE_LABEL = {"web": "web", "contact_person": "sap_contact_person", "bp": "sap_business_partner"}


def _kind() -> pl.Expr:
    return pl.col("kind").str.strip_chars().str.to_lowercase()


def _with_roles(frame: pl.DataFrame, options: CustomerRoles) -> pl.DataFrame:
    """Adds ``_guest``, ``_roles`` (effective roles: a guest always holds "Guest") and ``_selected``.

    Guests are sent only when "Guest" is selected. Registered (non-guest) customers are sent when
    ``all_registered`` or when they hold a selected role; SAP rows hold whatever roles the reader gave them.
    """
    frame = frame.with_columns(
        pl.col("roles").fill_null([]).list.eval(pl.element().str.strip_chars()).alias("_roles")
    )
    frame = frame.with_columns(pl.col("_roles").list.contains("Guest").alias("_has_guest_role"))
    frame = frame.with_columns(
        (pl.col("is_guest").fill_null(False) | pl.col("_has_guest_role")).alias("_guest")
    )
    frame = frame.with_columns(
        pl.when(pl.col("_guest") & ~pl.col("_has_guest_role"))
        .then(pl.concat_list([pl.col("_roles"), pl.lit("Guest")]))
        .otherwise(pl.col("_roles"))
        .alias("_roles")
    )
    holds_selected = pl.col("_roles").list.eval(pl.element().is_in(options.roles)).list.any().fill_null(False)
    selected = (
        pl.when(pl.col("_guest"))
        .then(pl.lit("Guest" in options.roles))
        .otherwise(pl.lit(options.all_registered) | holds_selected)
    )
    # the role lists are read here only: dropped before the filters that copy every column they keep
    return frame.with_columns(selected.alias("_selected"), join_sorted(pl.col("_roles")).alias("fp_roles")).drop(
        "roles", "_roles", "_has_guest_role", "is_guest"
    )


def _exclusions(frame: pl.DataFrame) -> pl.DataFrame:
    not_selected = (
        pl.when(pl.col("_guest"))
        .then(pl.lit("guest customer and 'Guest' is not among the selected roles"))
        .otherwise(
            pl.format(
                "holds none of the selected roles (has: {})",
                pl.when(pl.col("fp_roles") == "")
                .then(pl.lit("no roles"))
                .otherwise(preview(pl.col("fp_roles"))),
            )
        )
    )
    reason = pl.when(~pl.col("_active")).then(pl.lit("inactive customer")).otherwise(not_selected)
    return issues_where(frame, ~pl.col("_active") | ~pl.col("_selected"), EXCLUDED, reason)


def _merge_duplicate_emails(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """One contact per email (HubSpot's contacts are unique by email). Returns (survivors and contacts
    without email, aliases, issues). Only rows whose email repeats are grouped, so this stays cheap."""
    dup = frame.filter(pl.col("email").is_not_null() & pl.col("email").is_duplicated())
    if dup.is_empty():
        return frame, empty_aliases(), issues_for(dup, "source_key", SKIPPED, "")
    rank = pl.col("kind").replace_strict(KIND_RANK, default=len(KIND_RANK), return_dtype=pl.Int32)
    survivors = dup.group_by("email").agg(
        pl.col("source_key").sort_by([rank, *natural_order("source_key")]).first().alias("survivor_key")
    )
    aliases = (
        dup.join(survivors, on="email", maintain_order="left")
        .filter(pl.col("source_key") != pl.col("survivor_key"))
        .select("source_key", "survivor_key")
    )
    issues = issues_for(
        aliases, "source_key", SKIPPED, pl.format("duplicate email of {}", pl.col("survivor_key"))
    )
    kept = keep_rows(frame, ~pl.col("source_key").is_in(aliases["source_key"].implode()))  # no join of the wide rows
    return kept, aliases, issues


def _names(frame: pl.DataFrame) -> pl.DataFrame:
    """firstname/lastname; a private partner without them gets its CardName split ("Smith, John" or
    "John Smith" → John / Smith; a single word is the last name)."""
    card_name = non_empty(pl.col("company_name"))
    comma = card_name.str.extract_groups(r"^([^,]+),\s*(.+)$")
    spaced = card_name.str.extract_groups(r"^(.*\S)\s+(\S+)$")
    split_first = pl.coalesce(comma.struct.field("2"), spaced.struct.field("1"))
    split_last = pl.coalesce(non_empty(comma.struct.field("1")), spaced.struct.field("2"), card_name)
    first, last = non_empty(pl.col("first_name")), non_empty(pl.col("last_name"))
    split = (pl.col("kind") == "bp") & first.is_null() & last.is_null()
    return frame.with_columns(
        pl.when(split).then(split_first).otherwise(first).alias("firstname"),
        pl.when(split).then(split_last).otherwise(last).alias("lastname"),
    )


def _partners(customers: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """company and assoc_companies from the row's business partner (``BP<card_code>``)."""
    companies, _ = company_candidates(customers)
    partner_names = companies.select(
        pl.col("source_key").alias("_partner"),
        non_empty(pl.col("company_name")).alias("_partner_name"),
        pl.col("eligible").alias("_partner_sent"),
    )
    partner = pl.when(pl.col("kind") != "bp").then(pl.format("BP{}", pl.col("card_code")))
    return (
        frame.with_columns(partner.alias("_partner"))
        .join(partner_names, on="_partner", how="left", maintain_order="left")
        .with_columns(
            pl.coalesce(
                "_partner_name",
                pl.when(pl.col("kind") == "contact_person").then(non_empty(pl.col("company_name"))),
            ).alias("company"),
            pl.when(pl.col("_partner_sent")).then(pl.col("_partner")).alias("assoc_companies"),
        )
    )


def _address_owners(frame: pl.DataFrame) -> pl.DataFrame:
    """Own addresses first; web customers fall back to their partner's SAP addresses, contact persons
    use their partner's."""
    own = frame.filter(pl.col("kind") != "contact_person").select(
        "source_key", pl.col("source_key").alias("owner_key"), pl.lit(0).alias("level")
    )
    partner = frame.filter((pl.col("kind") != "bp") & pl.col("card_code").is_not_null()).select(
        "source_key",
        pl.format("BP{}", pl.col("card_code")).alias("owner_key"),
        pl.when(pl.col("kind") == "web").then(1).otherwise(0).alias("level"),
    )
    return pl.concat([own, partner])


def map_contacts(customers: pl.DataFrame, addresses: pl.DataFrame, settings: PanelSettings) -> Mapped:
    """Canonical customers + addresses → HubSpot contacts (see the module doc and ``Mapped``)."""
    frame = customers.with_columns(_kind().alias("kind"))
    known_kind = pl.col("kind").is_in(list(KIND_RANK)).fill_null(False)
    unknown = issues_for(
        frame.filter(~known_kind).with_columns(preview(pl.col("customer_key").fill_null(""), 255)),
        "customer_key",
        SKIPPED,
        pl.format("unknown customer kind '{}'", preview(pl.col("kind").fill_null(""))),
    )
    people = frame.filter(known_kind & ~((pl.col("kind") == "bp") & pl.col("is_company").fill_null(False)))
    people, key_issues = usable_rows(people.rename({"customer_key": "source_key"}), "source_key", "customer")
    people = people.drop("created_at", "updated_at")  # usable_rows' tie-break was their last use

    people = _with_roles(people, settings.customers).with_columns(
        pl.col("active").fill_null(True).alias("_active")
    )
    excluded = _exclusions(people)
    people = people.filter(pl.col("_active") & pl.col("_selected"))

    people = people.with_columns(normalize_email(pl.col("email")).alias("_email_norm"))
    people = people.with_columns(valid_email(pl.col("_email_norm")).alias("_email_valid"))
    people = people.with_columns(pl.col("_email_valid").is_not_null().alias("_email_ok"))
    bad_email = issues_where(
        people,
        pl.col("_email_norm").is_not_null() & ~pl.col("_email_ok"),
        REPAIRED,
        pl.format("invalid email '{}' not sent", preview(pl.col("_email_norm"))),
    )
    people = people.with_columns(pl.col("_email_valid").alias("email"))
    people, aliases, duplicates = _merge_duplicate_emails(people)

    people = _partners(customers, _names(people))
    address = pick_address(_address_owners(people), addresses, settings.address_source)
    records = people.join(address, on="source_key", how="left", maintain_order="left").with_columns(
        pl.concat_str([pl.col("street"), pl.col("street2")], separator=", ", ignore_nulls=True).alias(
            "address"
        ),
        pl.col("store_id").alias("fp_store"),
        pl.col("kind").replace_strict(SOURCE_LABEL, return_dtype=pl.String).alias("fp_source"),
    )
    records, country_issues = with_country_codes(records)
    records, phone_issues = with_clean_phone(records, country="country")  # read with the address's country
    return finalize(
        "contacts",
        records,
        [unknown, key_issues, excluded, bad_email, duplicates, phone_issues, country_issues],
        aliases=aliases,
    )
