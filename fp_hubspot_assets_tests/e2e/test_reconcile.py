"""The nightly reconcile (``hubspot.reconcile``): records edited or deleted by hand in HubSpot are written
back, and nothing else. Against the sandbox over real HTTP; the hand edits go through the official SDK."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hubspot.crm.contacts import SimplePublicObjectInput

from fp_hubspot_assets.hubspot.sync import same_value
from fp_hubspot_assets.runner import RunSummary, resource_config, run_sync
from fp_hubspot_assets_tests.fixtures_sync import TYPES, SyncEnv, assert_hubspot_matches

WRITTEN = ("created", "updated", "adopted")


def _reconcile(env: SyncEnv) -> RunSummary:
    config = resource_config(panel=str(env.panel_path), sap_url=env.sap_url, state_url=env.state_url, reconcile=True)
    summary = run_sync(env.instance, config)
    assert summary.success, f"reconcile run failed in {summary.failed_steps}"
    return summary


def _written(env: SyncEnv, run_id: str) -> set[tuple[str, str, str]]:
    log = env.state().log_frame(run_id=run_id)
    rows = log.filter(pl.col("action").is_in(WRITTEN)).select("object_type", "source_key", "action")
    return set(rows.iter_rows())


def _with_value(records: dict[str, dict[str, Any]], prop: str) -> str:
    return next(key for key, rec in sorted(records.items()) if rec["properties"].get(prop))


def test_reconcile_writes_back_exactly_what_was_edited_or_deleted_in_hubspot(sync_env: SyncEnv) -> None:
    sync_env.run()
    contacts, deals = sync_env.hubspot("contacts"), sync_env.hubspot("deals")
    contact_key = _with_value(contacts, "firstname")
    deal_key = _with_value(deals, "dealname")
    original_name = contacts[contact_key]["properties"]["firstname"]
    old_deal_id = deals[deal_key]["id"]
    sdk = sync_env.sandbox.client()
    sdk.crm.contacts.basic_api.update(
        contacts[contact_key]["id"], SimplePublicObjectInput(properties={"firstname": "Edited by hand"})
    )
    sdk.crm.deals.basic_api.archive(old_deal_id)

    normal = sync_env.run()
    assert _written(sync_env, normal.run_id) == set(), "the normal diff compares with what we sent: blind to drift"
    assert sync_env.hubspot("contacts")[contact_key]["properties"]["firstname"] == "Edited by hand"

    first = _reconcile(sync_env)
    assert _written(sync_env, first.run_id) == {("contacts", contact_key, "updated"), ("deals", deal_key, "created")}
    assert first.metadata["hubspot_contacts"]["count_drifted"] == 1
    assert first.metadata["hubspot_deals"]["count_missing"] == 1
    for object_type in TYPES:
        meta = first.metadata[f"hubspot_{object_type}"]
        assert meta["reconcile"] is True
        expected = (1 if object_type == "contacts" else 0, 1 if object_type == "deals" else 0)
        assert (meta["count_drifted"], meta["count_missing"]) == expected, object_type
    assert sync_env.hubspot("contacts")[contact_key]["properties"]["firstname"] == original_name
    recreated = sync_env.hubspot("deals")[deal_key]
    assert recreated["id"] != old_deal_id
    assert sync_env.state().hubspot_ids("deals", [deal_key]) == {deal_key: recreated["id"]}
    # every record and association as expected: the recreated deal is linked to its contact, company and
    # line items again, and nothing was duplicated
    assert_hubspot_matches(sync_env)

    second = _reconcile(sync_env)
    assert _written(sync_env, second.run_id) == set()
    assert second.writes == 0
    assert all(second.metadata[f"hubspot_{t}"]["count_drifted"] == 0 for t in TYPES)


def test_reconcile_costs_one_list_request_per_100_records(sync_env: SyncEnv) -> None:
    sync_env.run()
    summary = _reconcile(sync_env)
    for object_type in TYPES:
        meta = summary.metadata[f"hubspot_{object_type}"]
        pages = -(-len(sync_env.hubspot(object_type)) // 100)
        assert meta["api_requests"] == pages, (object_type, meta["api_requests"], pages)
        assert meta["api_write_requests"] == 0


@pytest.mark.parametrize(
    ("ours", "theirs", "same"),
    [
        ("Anna", "Anna", True),
        ("", None, True),
        (None, "", True),
        ("Anna", "anna", False),
        ("", "x", False),
        ("10", "10.0", True),
        ("10.5", "10.50", True),
        ("10.5", "10.6", False),
        ("2024-05-01", "2024-05-01T00:00:00Z", True),
        ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00.000Z", True),
        ("2024-05-01", "1714521600000", True),
        ("2024-05-01", "2024-05-02T00:00:00Z", False),
    ],
)
def test_same_value_allows_for_hubspot_normalization(ours: str | None, theirs: str | None, same: bool) -> None:
    assert same_value(ours, theirs) is same
