"""First set-up: matching rules (pure), and Pull Contacts / Pull Companies / Ignore existing deals end to end
against the sandbox over HTTP, through the Dagster ``first_setup`` job, followed by full syncs."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hubspot.crm.companies import SimplePublicObjectInputForCreate as CompanyInput
from hubspot.crm.contacts import SimplePublicObjectInputForCreate as ContactInput

from fp_demo_store import simulate
from fp_hubspot_assets.defs.first_setup import ASSET_NAME
from fp_hubspot_assets.hubspot.first_setup import (
    AMBIGUOUS,
    HubSpotRecord,
    existing_deal_keys,
    match_records,
    normalize_domain,
    normalize_email,
)
from fp_hubspot_assets.runner import RunSummary, resource_config, run_first_setup
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets_tests.fixtures_sync import SyncEnv, expected_payloads

ALL_OPTIONS = "first_setup:\n  pull_contacts: true\n  pull_companies: true\n  ignore_existing_deals: true\n"


# ---------------------------------------------------------------------------------- pure rules
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.Example.com:443/about?x=1", "example.com"),
        ("example.com.", "example.com"),
        ("WWW.shop.example.co.uk", "shop.example.co.uk"),
        ("info@Example.com", "example.com"),
        ("localhost", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_domain(raw: str | None, expected: str | None) -> None:
    assert normalize_domain(raw) == expected


def test_normalize_email_matches_the_mapping_rule() -> None:
    assert normalize_email("  John.Doe @Example.COM\x00") == "john.doe@example.com"
    assert normalize_email(" ") is None


def _hs(hubspot_id: str, *keys: str | None, owner: str | None = None) -> HubSpotRecord:
    return HubSpotRecord(hubspot_id, tuple(keys), owner)


def test_match_pairs_unique_keys_and_reports_duplicates() -> None:
    ours = {"A": ("a.com", "a.com"), "B": ("b.com", "b.com"), "C": ("c.com", "c.com"), "D": ("d.com", "d.com"),
            "E": ("e.com", "e.com"), "F": ("e.com", "e.com"), "G": (None, None)}
    theirs = [
        _hs("1", "a.com", None),
        _hs("2", "b.com", None),
        _hs("3", "b.com", None),  # HubSpot duplicate → B is ambiguous
        _hs("4", None, "c.com"),  # matched by website only (tier 2)
        _hs("5", "e.com", None),  # two of ours share e.com → ambiguous
        _hs("6", "x.com", None, owner="D"),  # already ours
        _hs("7", "zzz.com", None),
    ]
    result = match_records(ours, theirs, ("domain", "website"))
    assert result.matched == {"A": "1", "C": "4"}
    assert result.already_ours == {"D": "6"}
    cases = {tuple(a.source_keys): a for a in result.ambiguous}
    assert set(cases) == {("B",), ("E", "F")}
    assert cases[("B",)].hubspot_ids == ["2", "3"] and "duplicates in HubSpot" in cases[("B",)].reason
    assert "2 of our records share" in cases[("E", "F")].reason


def test_ambiguity_in_a_strong_tier_is_not_resolved_by_a_weaker_one() -> None:
    ours = {"A": ("a.com", "a.com")}
    theirs = [_hs("1", "a.com", None), _hs("2", "a.com", None), _hs("3", None, "a.com")]
    result = match_records(ours, theirs, ("domain", "website"))
    assert result.matched == {} and [a.source_keys for a in result.ambiguous] == [["A"]]


def test_a_record_carrying_someone_elses_id_is_never_stamped_over() -> None:
    result = match_records({"A": ("a@x.com",)}, [_hs("1", "a@x.com", owner="OTHER")], ("email",))
    assert result.matched == {}
    assert "already carries another id (OTHER)" in result.ambiguous[0].reason


# ---------------------------------------------------------------------------------- end to end
def _setup(env: SyncEnv, force: bool = False) -> RunSummary:
    config = resource_config(panel=str(env.panel_path), sap_url=env.sap_url, state_url=env.state_url)
    return run_first_setup(env.instance, config, force=force)


def _seed_hubspot(env: SyncEnv) -> dict[str, Any]:
    """Pre-existing HubSpot data, as a store that used HubSpot before would have it."""
    expected = expected_payloads(env)
    contacts = expected["contacts"].records.filter(pl.col("email") != "").sort("source_key")
    companies = expected["companies"].records.filter(pl.col("domain") != "").sort("source_key")
    sdk = env.sandbox.client()
    seeded: dict[str, Any] = {"contacts": {}, "companies": {}}
    for key, email in contacts.select("source_key", "email").head(3).iter_rows():
        created = sdk.crm.contacts.basic_api.create(
            ContactInput(properties={"email": f" {email.upper()}", "firstname": "Typed by hand"})
        )
        seeded["contacts"][key] = created.id
    for i in range(2):
        sdk.crm.contacts.basic_api.create(ContactInput(properties={"email": f"nobody{i}@elsewhere.example"}))
    rows = companies.select("source_key", "domain").head(3).rows()
    (by_domain, domain_a), (by_website, domain_b), (ambiguous, domain_c) = rows
    seeded["companies"][by_domain] = sdk.crm.companies.basic_api.create(
        CompanyInput(properties={"name": "Old name", "domain": f"www.{domain_a.upper()}"})
    ).id
    seeded["companies"][by_website] = sdk.crm.companies.basic_api.create(
        CompanyInput(properties={"name": "Web only", "website": f"https://{domain_b}/home"})
    ).id
    seeded["duplicates"] = [
        sdk.crm.companies.basic_api.create(CompanyInput(properties={"name": f"Dup {i}", "domain": domain_c})).id
        for i in range(2)
    ]
    seeded["ambiguous"] = ambiguous
    sdk.crm.companies.basic_api.create(CompanyInput(properties={"name": "Unrelated", "domain": "unrelated.example"}))
    return seeded


def test_first_setup_pulls_baselines_and_the_sync_creates_no_duplicates(sync_env: SyncEnv) -> None:
    env = sync_env
    seeded = _seed_hubspot(env)
    env.write_panel(ALL_OPTIONS)
    frames = {name: r.frame for name, r in SapReader(env.sap_url).read_all().items()}
    existing_orders = existing_deal_keys(frames["orders"], frames["carts"])
    assert existing_orders

    run = _setup(env)
    assert run.success, run.error
    meta = run.metadata[ASSET_NAME]
    assert meta["status"] == "done" and meta["forced"] is False
    assert (meta["count_contacts_matched"], meta["count_contacts_stamped"]) == (3, 3)
    assert (meta["count_companies_matched"], meta["count_companies_stamped"]) == (2, 2)
    assert meta["count_companies_ambiguous"] == 1 and meta["count_ambiguous"] == 1
    assert meta["count_baselined"] == len(existing_orders)
    assert run.checks["no_ambiguous_matches"] is False

    # HubSpot records now carry our ids; the ID map knows them with no payload hash (content not synced yet).
    for object_type, prop in (("contacts", "fp_customer_id"), ("companies", "fp_company_id")):
        by_id = {o["id"]: o["properties"].get(prop) for o in env.sandbox.objects(object_type)}
        for key, hubspot_id in seeded[object_type].items():
            assert by_id[hubspot_id] == key
        ids = env.state().id_map(object_type)
        assert dict(ids.select("source_key", "hubspot_id").iter_rows()) == seeded[object_type]
        assert ids["payload_hash"].null_count() == ids.height
    assert all(not (o["properties"].get("fp_company_id")) for o in env.sandbox.objects("companies")
               if o["id"] in seeded["duplicates"])
    log = env.state().log_frame(run_id=run.run_id)
    ambiguous_rows = log.filter(pl.col("error_category") == AMBIGUOUS)
    assert ambiguous_rows["source_key"].to_list() == [seeded["ambiguous"]]
    assert set(log.filter(pl.col("action") == "adopted")["source_key"]) == set(seeded["contacts"]) | set(
        seeded["companies"]
    )
    assert env.state().baseline("deals") == set(existing_orders)
    assert not env.state().anything_synced()

    sync = env.run()
    expected = expected_payloads(env)
    # Matched records were updated in place, never duplicated.
    for object_type in ("contacts", "companies"):
        in_hubspot = {k: v for k, v in env.hubspot(object_type).items() if k}  # None: not ours
        raw = env.sandbox.objects(object_type)
        ours = [o for o in raw if o["properties"].get("fp_customer_id" if object_type == "contacts" else "fp_company_id")]
        assert len(ours) == len(in_hubspot) == expected[object_type].records.height
        for key, hubspot_id in seeded[object_type].items():
            assert in_hubspot[key]["id"] == hubspot_id
    contact_key = next(iter(seeded["contacts"]))
    assert env.hubspot("contacts")[contact_key]["properties"]["firstname"] != "Typed by hand"
    assert env.hubspot("companies")[next(iter(seeded["companies"]))]["properties"]["name"] != "Old name"
    assert len(env.sandbox.objects("contacts")) == expected["contacts"].records.height + 2  # + the 2 unrelated
    # No baselined order reached HubSpot, nor any of its line items; everything else did.
    deals = env.hubspot("deals")
    assert not set(deals) & set(existing_orders)
    assert set(deals) == set(expected["deals"].records["source_key"]) - set(existing_orders)
    line_items = env.hubspot("line_items")
    assert not {k for k in line_items if k.split(":L")[0] in existing_orders}
    assert sync.metadata["hubspot_deals"]["count_baselined"] == len(
        set(expected["deals"].records["source_key"]) & set(existing_orders)
    )
    assert sync.metadata["hubspot_deals"]["count_excluded"] >= sync.metadata["hubspot_deals"]["count_baselined"]
    assert sync.metadata["hubspot_first_setup"]["status"] == "done earlier"

    # An order created after set-up is synced; a baselined order that changes stays unsent.
    web_customer = int(next(k for k in expected["contacts"].records["source_key"] if k.startswith("W"))[1:])
    item = next(k for k in expected["products"].records["source_key"] if "#" not in k)[1:]
    cart = simulate.add_cart(env.sap_url, web_customer, [simulate.CartLine(item, 2)])
    simulate.complete_cart(env.sap_url, cart)
    baselined_order = next(k for k in existing_orders if k.startswith("O"))
    simulate.cancel_order(env.sap_url, int(baselined_order[1:]))
    env.run()
    deals = env.hubspot("deals")
    assert f"C{cart}" in deals and deals[f"C{cart}"]["properties"]["fp_order_status"] == "open"
    assert baselined_order not in deals


def test_guard_refuses_after_a_sync_and_a_forced_run_is_logged(sync_env: SyncEnv) -> None:
    env = sync_env
    env.run()  # something is synced now
    env.write_panel("first_setup:\n  pull_contacts: true\n")
    refused = _setup(env)
    assert not refused.success
    assert "first set-up refused" in refused.error and "force" in refused.error
    # The sync job does not fail over it: it reports the options as not applied.
    assert env.run().metadata["hubspot_first_setup"]["status"] == "refused"

    forced = _setup(env, force=True)
    assert forced.success, forced.error
    assert forced.metadata[ASSET_NAME]["forced"] is True
    # Every synced contact already carries our id: all matched, none re-stamped, no hash lost.
    contacts = env.hubspot("contacts")
    assert forced.metadata[ASSET_NAME]["count_contacts_matched"] == len(contacts)
    assert forced.metadata[ASSET_NAME]["count_contacts_stamped"] == 0
    assert env.state().id_map("contacts")["payload_hash"].null_count() == 0
    assert env.run().writes == 0

    env.write_panel("first_setup:\n  pull_contacts: true\n  force: true\n")
    assert _setup(env).metadata[ASSET_NAME]["forced"] is True  # the panel's force works as --force


def test_the_first_sync_runs_pending_first_setup_options_itself(sync_env: SyncEnv) -> None:
    env = sync_env
    seeded = _seed_hubspot(env)
    env.write_panel("first_setup:\n  pull_contacts: true\n")
    run = env.run()
    assert run.metadata["hubspot_first_setup"]["status"] == "done"
    in_hubspot = env.hubspot("contacts")
    for key, hubspot_id in seeded["contacts"].items():
        assert in_hubspot[key]["id"] == hubspot_id
    assert env.run().metadata["hubspot_first_setup"]["status"] == "done earlier"
