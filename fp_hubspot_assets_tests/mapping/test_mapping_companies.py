"""map_companies: company partners only, domain, group, address choice, exclusions."""

from __future__ import annotations

import pytest

from fp_hubspot_assets.mapping import map_companies
from fp_hubspot_assets_tests.fixtures_mapping import (
    ADDRESS_ROWS,
    CUSTOMER_ROWS,
    by_key,
    edited,
    frame,
    issues_of,
    panel,
    rows,
    without,
)


def companies(customer_rows=CUSTOMER_ROWS, address_rows=ADDRESS_ROWS, **options):
    return map_companies(
        frame("customers", rows(customer_rows)), frame("addresses", rows(address_rows)), panel(**options)
    )


def test_only_company_partners_become_companies(customers, addresses, settings) -> None:
    mapped = map_companies(customers, addresses, settings)
    assert mapped.object_type == "companies"
    assert sorted(by_key(mapped)) == ["BPC100", "BPC300"]
    assert mapped.aliases is None


def test_company_fields() -> None:
    row = by_key(companies())["BPC100"]
    assert row["fp_company_id"] == "BPC100"
    assert (row["name"], row["domain"], row["phone"], row["fp_group"], row["fp_source"]) == (
        "Acme GmbH",
        "acme.de",
        "+4989555",  # E.164
        "Wholesale",
        "sap",
    )


@pytest.mark.parametrize(
    "email",
    [
        "owner@gmail.com",
        "owner@outlook.com",
        "owner@yahoo.com",
        "owner@hotmail.com",
        "owner@hotmail.co.uk",
        "owner@gmx.de",
        "owner@gmx.net",
        "owner@web.de",
        "OWNER@GMAIL.COM ",
    ],
)
def test_free_mail_domain_is_not_the_company_domain(email: str) -> None:
    mapped = companies(edited(CUSTOMER_ROWS, "customer_key", "BPC100", email=email))
    assert by_key(mapped)["BPC100"]["domain"] == ""


@pytest.mark.parametrize(
    ("email", "domain"),
    [
        (" Sales@Acme-Industries.CO.UK ", "acme-industries.co.uk"),
        ("not-an-email", ""),
        (None, ""),
        ("x@webde.com", "webde.com"),
    ],
)
def test_domain_from_partner_email(email: str | None, domain: str) -> None:
    assert (
        by_key(companies(edited(CUSTOMER_ROWS, "customer_key", "BPC100", email=email)))["BPC100"]["domain"]
        == domain
    )


@pytest.mark.parametrize(
    ("source", "street", "city"), [("billing", "Acme Str 1", "München"), ("shipping", "Lager 5", "Augsburg")]
)
def test_address_source(source: str, street: str, city: str) -> None:
    row = by_key(companies(address_source=source))["BPC100"]
    assert (row["address"], row["city"]) == (street, city)


def test_address_falls_back_to_other_kind() -> None:
    row = by_key(companies(address_rows=without(ADDRESS_ROWS, "address_key", "BPC100:B:HQ")))["BPC100"]
    assert row["city"] == "Augsburg"


def test_address2_is_sent_separately() -> None:
    row = by_key(
        companies(address_rows=edited(ADDRESS_ROWS, "address_key", "BPC100:B:HQ", street2="Gebäude B"))
    )["BPC100"]
    assert (row["address"], row["address2"]) == ("Acme Str 1", "Gebäude B")


def test_inactive_company_is_excluded() -> None:
    mapped = companies(edited(CUSTOMER_ROWS, "customer_key", "BPC300", active=False))
    assert "BPC300" not in by_key(mapped)
    assert issues_of(mapped, "BPC300") == [("excluded", "inactive business partner")]


def test_company_without_name_uses_card_code() -> None:
    mapped = companies(edited(CUSTOMER_ROWS, "customer_key", "BPC300", company_name="  "))
    assert by_key(mapped)["BPC300"]["name"] == "C300"
    assert issues_of(mapped, "BPC300") == [("repaired", "company has no name; used its card code")]


def test_system_roles_are_not_groups() -> None:
    grouped = edited(
        CUSTOMER_ROWS, "customer_key", "BPC100", roles=["Vendors", "Retail", "Admins", "Wholesale"]
    )
    assert by_key(companies(grouped))["BPC100"]["fp_group"] == "Retail;Wholesale"


def test_role_selection_does_not_filter_companies() -> None:
    assert sorted(by_key(companies(customers={"roles": ["Guest"]}))) == ["BPC100", "BPC300"]
