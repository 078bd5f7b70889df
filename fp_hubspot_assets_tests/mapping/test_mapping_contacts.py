"""map_contacts: who becomes a contact, email handling and duplicates, names, roles, addresses, partners."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from fp_hubspot_assets.mapping import map_contacts
from fp_hubspot_assets.panel import PanelSettings
from fp_hubspot_assets_tests.fixtures_mapping import (
    ADDRESS_ROWS,
    CUSTOMER_ROWS,
    T0,
    by_key,
    edited,
    frame,
    issues_of,
    panel,
    rows,
    without,
)

ALL = panel(customers={"roles": ["Guest"], "all_registered": True})


def contacts(customer_rows=CUSTOMER_ROWS, address_rows=ADDRESS_ROWS, settings: PanelSettings = ALL):
    return map_contacts(
        frame("customers", rows(customer_rows)), frame("addresses", rows(address_rows)), settings
    )


def test_fixture_store_maps_to_expected_contacts(customers, addresses, settings) -> None:
    mapped = map_contacts(customers, addresses, settings)
    assert mapped.object_type == "contacts"
    assert sorted(by_key(mapped)) == ["BPP200", "CP1", "W1"]


def test_company_partners_are_not_contacts_but_private_partners_and_contact_persons_are() -> None:
    keys = set(by_key(contacts()))
    assert "BPC100" not in keys and "BPC300" not in keys
    assert {"BPP200", "CP1", "W1", "W2", "W3"} <= keys


def test_email_is_normalized() -> None:
    assert by_key(contacts())["W1"]["email"] == "alice.example@example.com"
    spaced = edited(CUSTOMER_ROWS, "customer_key", "CP1", email="\tBob @ ACME.de  ")
    assert by_key(contacts(spaced))["CP1"]["email"] == "bob@acme.de"


def test_invalid_email_is_dropped_but_contact_still_sent() -> None:
    mapped = contacts(edited(CUSTOMER_ROWS, "customer_key", "CP1", email="bob(at)acme"))
    assert by_key(mapped)["CP1"]["email"] == ""
    assert issues_of(mapped, "CP1") == [("repaired", "invalid email 'bob(at)acme' not sent")]


def test_missing_email_is_fine() -> None:
    mapped = contacts(edited(CUSTOMER_ROWS, "customer_key", "CP1", email=None))
    assert by_key(mapped)["CP1"]["email"] == ""
    assert issues_of(mapped, "CP1") == []


def test_duplicate_email_prefers_web_customer() -> None:
    mapped = contacts()
    assert "CP2" not in by_key(mapped)
    assert issues_of(mapped, "CP2") == [("skipped", "duplicate email of W1")]
    assert mapped.aliases.rows() == [("CP2", "W1")]


@pytest.mark.parametrize(
    ("pair", "survivor"),
    [
        (("CP1", "BPP200"), "CP1"),  # contact person beats business partner
        (("W3", "CP1"), "W3"),  # web beats contact person
        (("CP1", "CP2"), "CP1"),  # same kind: lowest key
    ],
)
def test_duplicate_survivor_rules(pair: tuple[str, str], survivor: str) -> None:
    shared = rows(CUSTOMER_ROWS)
    for row in shared:
        if row["customer_key"] in pair:
            row["email"] = "Same@Example.com"
    mapped = contacts(shared)
    (loser,) = [k for k in pair if k != survivor]
    assert survivor in by_key(mapped) and loser not in by_key(mapped)
    assert (loser, survivor) in mapped.aliases.rows()
    assert by_key(mapped)[survivor]["email"] == "same@example.com"


def test_lowest_key_is_numeric_within_a_prefix() -> None:
    extra = [
        {"customer_key": "W10", "kind": "web", "email": "twin@example.com", "roles": ["Registered"]},
        {"customer_key": "W9", "kind": "web", "email": "TWIN@example.com", "roles": ["Registered"]},
    ]
    mapped = contacts(rows(CUSTOMER_ROWS) + extra)
    assert mapped.aliases.filter(pl.col("source_key") == "W10").rows() == [("W10", "W9")]


def test_excluded_customers_do_not_take_part_in_duplicate_merging() -> None:
    # the guest shares Bob's email; with guests not selected Bob must still be sent, unaliased
    shared = edited(CUSTOMER_ROWS, "customer_key", "W2", email="bob@acme.de")
    mapped = contacts(shared, settings=panel(customers={"roles": ["Registered"]}))
    assert "CP1" in by_key(mapped)
    assert mapped.aliases.filter(pl.col("survivor_key") == "W2").is_empty()


def test_contacts_without_email_are_never_merged() -> None:
    no_mail = rows(CUSTOMER_ROWS)
    for row in no_mail:
        row["email"] = None
    mapped = contacts(no_mail)
    assert mapped.aliases.is_empty()
    assert {"W1", "CP1", "CP2"} <= set(by_key(mapped))


@pytest.mark.parametrize(
    ("card_name", "first", "last"),
    [
        ("John Smith", "John", "Smith"),
        ("Mary Ann  Smith", "Mary Ann", "Smith"),
        ("Smith, John", "John", "Smith"),
        ("Cher", "", "Cher"),
        ("  ", "", ""),
    ],
)
def test_private_partner_name_is_split_from_card_name(card_name: str, first: str, last: str) -> None:
    mapped = contacts(edited(CUSTOMER_ROWS, "customer_key", "BPP200", company_name=card_name))
    row = by_key(mapped)["BPP200"]
    assert (row["firstname"], row["lastname"], row["company"]) == (first, last, "")


def test_private_partner_own_names_win_over_card_name() -> None:
    mapped = contacts(
        edited(CUSTOMER_ROWS, "customer_key", "BPP200", first_name="Johnny", last_name="Smithers")
    )
    row = by_key(mapped)["BPP200"]
    assert (row["firstname"], row["lastname"]) == ("Johnny", "Smithers")


# ── roles ───────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("customer_options", "sent", "not_sent"),
    [
        ({"roles": ["Registered"]}, {"W1", "CP1", "BPP200"}, {"W2", "W3"}),
        ({"roles": ["Vendors"]}, {"W3"}, {"W1", "W2", "CP1"}),
        ({"roles": ["Wholesale"], "client_roles": ["Wholesale"]}, set(), {"W1", "W3", "CP1"}),
        ({"roles": [], "all_registered": True}, {"W1", "W3", "CP1", "BPP200"}, {"W2"}),
        ({"roles": ["Guest"]}, {"W2"}, {"W1", "W3"}),
        ({"roles": ["Guest", "Vendors"]}, {"W2", "W3"}, {"W1"}),
    ],
)
def test_role_filter(customer_options: dict, sent: set[str], not_sent: set[str]) -> None:
    mapped = contacts(settings=panel(customers=customer_options))
    keys = set(by_key(mapped))
    assert sent <= keys
    assert not (not_sent & keys)
    for key in not_sent:
        assert [action for action, _ in issues_of(mapped, key)] == ["excluded"]


def test_client_role_selects_contacts_holding_it() -> None:
    holder = edited(CUSTOMER_ROWS, "customer_key", "CP1", roles=["Wholesale"])
    mapped = contacts(
        holder, settings=panel(customers={"roles": ["Wholesale"], "client_roles": ["Wholesale"]})
    )
    assert set(by_key(mapped)) == {"CP1"}


def test_guest_needs_guest_role_even_with_all_registered() -> None:
    mapped = contacts(settings=panel(customers={"roles": ["Registered"], "all_registered": True}))
    assert "W2" not in by_key(mapped)
    assert issues_of(mapped, "W2") == [
        ("excluded", "guest customer and 'Guest' is not among the selected roles")
    ]


def test_guest_role_in_roles_list_counts_as_guest() -> None:
    marked = edited(CUSTOMER_ROWS, "customer_key", "W2", is_guest=None, roles=["Guest"])
    assert "W2" not in by_key(contacts(marked, settings=panel(customers={"all_registered": True})))
    assert "W2" in by_key(contacts(marked, settings=panel(customers={"roles": ["Guest"]})))


def test_inactive_is_excluded_whatever_the_roles() -> None:
    mapped = contacts()
    assert "W4" not in by_key(mapped)
    assert issues_of(mapped, "W4") == [("excluded", "inactive customer")]


def test_not_selected_reason_names_the_roles_held() -> None:
    mapped = contacts(settings=panel(customers={"roles": ["Registered"]}))
    assert issues_of(mapped, "W3") == [("excluded", "holds none of the selected roles (has: Vendors)")]
    roleless = edited(CUSTOMER_ROWS, "customer_key", "CP1", roles=None)
    assert issues_of(contacts(roleless, settings=panel()), "CP1") == [
        ("excluded", "holds none of the selected roles (has: no roles)")
    ]


def test_fp_roles_sorted_and_joined() -> None:
    many = edited(
        CUSTOMER_ROWS, "customer_key", "W1", roles=["Vendors", " Registered ", "Admins", "Vendors", ""]
    )
    assert by_key(contacts(many))["W1"]["fp_roles"] == "Admins;Registered;Vendors"
    assert by_key(contacts())["W2"]["fp_roles"] == "Guest"


# ── addresses ─────────────────────────────────────────────────────────────────────────────────────────


def address_of(row: dict) -> tuple[str, str, str, str, str]:
    return (row["address"], row["city"], row["zip"], row["state"], row["country"])


def test_billing_default_address(customers, addresses, settings) -> None:
    row = by_key(map_contacts(customers, addresses, settings))["W1"]
    assert address_of(row) == ("1 Main St", "Berlin", "10115", "", "DE")


def test_shipping_default_address_joins_street2() -> None:
    row = by_key(contacts(settings=panel(address_source="shipping", customers={"all_registered": True})))[
        "W1"
    ]
    assert address_of(row) == ("2 Ship Rd, Hof 3", "Hamburg", "20095", "", "DE")


def test_falls_back_to_any_address_of_the_kind_then_the_other_kind() -> None:
    no_default = without(ADDRESS_ROWS, "address_key", "W1:A1")
    assert by_key(contacts(address_rows=no_default))["W1"]["city"] == "Bonn"
    no_billing = without(ADDRESS_ROWS, "address_key", "W1:A1", "W1:A3")
    assert by_key(contacts(address_rows=no_billing))["W1"]["city"] == "Hamburg"


def test_most_recently_updated_wins_a_tie() -> None:
    two = edited(ADDRESS_ROWS, "address_key", "W1:A3", is_default=True)
    assert by_key(contacts(address_rows=two))["W1"]["city"] == "Bonn"
    older = edited(two, "address_key", "W1:A3", updated_at=T0 - timedelta(days=1))
    assert by_key(contacts(address_rows=older))["W1"]["city"] == "Berlin"


def test_blank_addresses_are_ignored() -> None:
    blank = edited(ADDRESS_ROWS, "address_key", "W1:A1", street=" ", city=None, zip="", country=None)
    assert by_key(contacts(address_rows=blank))["W1"]["city"] == "Bonn"


def test_private_partner_uses_other_kind_when_it_has_no_billing_address() -> None:
    assert by_key(contacts())["BPP200"]["city"] == "Köln"


@pytest.mark.parametrize(("source", "city"), [("billing", "München"), ("shipping", "Augsburg")])
def test_contact_person_uses_partner_address(source: str, city: str) -> None:
    mapped = contacts(settings=panel(address_source=source, customers={"all_registered": True}))
    assert by_key(mapped)["CP1"]["city"] == city


def test_linked_web_customer_falls_back_to_partner_address_only_without_own() -> None:
    assert by_key(contacts())["W3"]["city"] == "München"
    own = rows(ADDRESS_ROWS) + [
        {
            "address_key": "W3:A1",
            "owner_key": "W3",
            "address_type": "shipping",
            "street": "Own 1",
            "city": "Paris",
        }
    ]
    # own address of the other kind still beats the partner's address of the preferred kind
    assert by_key(contacts(address_rows=own))["W3"]["city"] == "Paris"


def test_no_address_means_empty_fields() -> None:
    row = by_key(contacts(address_rows=[]))["W1"]
    assert address_of(row) == ("", "", "", "", "")


# ── partner, company, store, source ─────────────────────────────────────────────────────────────────


def test_company_and_association_come_from_company_partner() -> None:
    mapped = by_key(contacts())
    assert (mapped["CP1"]["company"], mapped["CP1"]["assoc_companies"]) == ("Acme GmbH", "BPC100")
    assert (mapped["W3"]["company"], mapped["W3"]["assoc_companies"]) == ("Acme GmbH", "BPC100")
    assert (mapped["W1"]["company"], mapped["W1"]["assoc_companies"]) == ("", None)
    assert mapped["BPP200"]["assoc_companies"] is None


def test_no_association_to_an_inactive_company() -> None:
    inactive = edited(CUSTOMER_ROWS, "customer_key", "BPC100", active=False)
    row = by_key(contacts(inactive))["CP1"]
    assert row["assoc_companies"] is None
    assert row["company"] == "Acme GmbH"


def test_store_and_source() -> None:
    mapped = by_key(contacts())
    assert (mapped["W1"]["fp_store"], mapped["W1"]["fp_source"]) == ("1", "web")
    assert (mapped["CP1"]["fp_store"], mapped["CP1"]["fp_source"]) == ("", "sap_contact_person")
    assert mapped["BPP200"]["fp_source"] == "sap_business_partner"


def test_a_phone_that_is_no_number_is_kept_as_typed_and_reported() -> None:
    mapped = contacts(edited(CUSTOMER_ROWS, "customer_key", "CP1", phone="n/a"))
    assert by_key(mapped)["CP1"]["phone"] == "n/a"
    assert issues_of(mapped, "CP1") == [("repaired", "phone 'n/a' is not a valid number for DE; sent as typed")]


def test_unknown_kind_is_skipped() -> None:
    odd = rows(CUSTOMER_ROWS) + [{"customer_key": "X1", "kind": "lead", "email": "x@y.de"}]
    mapped = contacts(odd)
    assert "X1" not in by_key(mapped)
    assert issues_of(mapped, "X1") == [("skipped", "unknown customer kind 'lead'")]


def test_kind_is_matched_case_and_space_insensitively() -> None:
    shouty = edited(CUSTOMER_ROWS, "customer_key", "CP1", kind=" Contact_Person ")
    assert by_key(contacts(shouty))["CP1"]["fp_source"] == "sap_contact_person"
