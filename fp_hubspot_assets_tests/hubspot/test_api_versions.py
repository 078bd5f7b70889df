"""The API-version switch, association create/archive on both path families, and isolating a bad record
of a batch HubSpot refuses as a whole — our client over real HTTP against the sandbox."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fp_hubspot_assets.hubspot import endpoints as ep
from fp_hubspot_assets.hubspot.client import HubSpotClient, HubSpotError, isolate
from fp_hubspot_assets.hubspot.properties import SetupReport, ensure_properties
from fp_hubspot_assets.hubspot.ratelimit import RateBudget
from fp_hubspot_assets.mapping import custom_properties
from fp_hubspot_assets.panel import PanelError, parse_panel
from hubspot_sandbox.testing import SandboxHandle, running_sandbox


def _client(sb: SandboxHandle, version: str = ep.DEFAULT_API_VERSION) -> HubSpotClient:
    return HubSpotClient(sb.base_url, sb.token, RateBudget(10_000, None), api_version=version)


def _ids(sb: SandboxHandle, object_type: str) -> list[str]:
    return [o["id"] for o in sb.objects(object_type)]


def test_every_endpoint_has_a_dated_path_without_v3_or_v4() -> None:
    for endpoint in (e for e in vars(ep).values() if isinstance(e, ep.Endpoint)):
        dated = endpoint.path_for("2026-03")
        assert "/v3/" not in dated or not dated.startswith("/crm/"), endpoint.name
        assert "/crm/v4/" not in dated and "/crm/v3/" not in dated, endpoint.name
    assert ep.OBJECTS_BATCH_UPSERT.path_for("2026-09") == "/crm/objects/2026-09/{objectType}/batch/upsert"
    assert ep.ASSOCIATIONS_BATCH_ARCHIVE.path_for(ep.LEGACY).startswith("/crm/v4/associations/")
    with pytest.raises(ValueError, match="unknown HubSpot API version"):
        ep.OBJECTS_LIST.path_for("2026-01")


def test_panel_names_a_bad_api_version() -> None:
    assert parse_panel({}).integration.api_version == "2026-03"
    assert parse_panel({"integration": {"api_version": "legacy"}}).integration.api_version == "legacy"
    with pytest.raises(PanelError, match="api_version"):
        parse_panel({"integration": {"api_version": "2026-01"}})


def test_sandbox_serves_published_versions_only(sandbox_session: SandboxHandle) -> None:
    headers = {"Authorization": f"Bearer {sandbox_session.token}"}
    for version, status in (("2025-09", 200), ("2026-03", 200), ("2026-09", 200), ("2026-01", 404), ("2024-12", 404)):
        answer = httpx.get(f"{sandbox_session.base_url}/crm/objects/{version}/contacts", headers=headers)
        assert answer.status_code == status, version
    assert httpx.get(f"{sandbox_session.base_url}/crm/v3/objects/contacts", headers=headers).status_code == 200
    refused = httpx.get(f"{sandbox_session.base_url}/crm/objects/2026-01/contacts", headers=headers).json()
    assert "2026-01" in refused["message"] and "2026-03" in refused["message"]


@pytest.mark.parametrize("version", ["2026-03", "legacy"])
def test_associations_are_created_primary_and_archived(sandbox_session: SandboxHandle, version: str) -> None:
    sb = sandbox_session
    client = _client(sb, version)
    ensure_properties(client, {t: custom_properties(t) for t in ("contacts", "companies")}, SetupReport())
    client.batch_upsert("companies", "fp_company_id", [("K1", {"name": "Shop AG"})])
    client.batch_upsert("contacts", "fp_customer_id", [(f"C{i}", {"email": f"c{i}@shop.ch"}) for i in range(3)])
    (company,) = _ids(sb, "companies")
    contacts = _ids(sb, "contacts")
    assert client.associate_default("contacts", "companies", [(c, company) for c in contacts]) == []
    links = {o["id"]: o["associations"].get("companies", []) for o in sb.objects("contacts")}
    assert all(link and sorted(link[0]["types"]) == [1, 279] for link in links.values()), links

    assert client.archive_associations("contacts", "companies", [(contacts[0], company), (contacts[1], company)]) == []
    links = {o["id"]: o["associations"].get("companies", []) for o in sb.objects("contacts")}
    assert links[contacts[0]] == links[contacts[1]] == [] and links[contacts[2]]
    # archiving what is already gone is not an error (a retry after a crash)
    assert client.archive_associations("contacts", "companies", [(contacts[0], company)]) == []
    family = "/crm/v4/associations/" if version == "legacy" else f"/crm/associations/{version}/"
    assert f"POST {family}{{fromObjectType}}/{{toObjectType}}/batch/archive" in sb.stats()["requests"]


def test_one_bad_record_in_a_batch_of_100_costs_few_requests(sandbox_session: SandboxHandle) -> None:
    """HubSpot fails a batch with one bad record as a whole; the other 99 are still written, and finding
    the bad one costs at most 8 requests (measured: 3 — the batch, the bad record alone, the other 99)."""
    sb = sandbox_session
    client = _client(sb)
    ensure_properties(client, {"contacts": custom_properties("contacts")}, SetupReport())
    measured = []
    for bad_at in (0, 37, 99):
        sb.reset(data=True)
        ensure_properties(client, {"contacts": custom_properties("contacts")}, SetupReport())
        records = [(f"B{bad_at}-{i}", {"email": f"p{i}@shop.ch" if i != bad_at else "not-an-email"}) for i in range(100)]
        before = client.requests[ep.OBJECTS_BATCH_UPSERT.name]
        outcome = client.batch_upsert("contacts", "fp_customer_id", records)
        measured.append(client.requests[ep.OBJECTS_BATCH_UPSERT.name] - before)
        assert set(outcome.failed) == {f"B{bad_at}-{bad_at}"} and "INVALID_EMAIL" in outcome.failed[f"B{bad_at}-{bad_at}"][1]
        assert len(outcome.ok) == 99 and len(sb.objects("contacts")) == 99
    assert max(measured) <= 8, measured
    assert measured == [3, 3, 3]


def test_isolate_sends_the_named_record_alone_else_halves() -> None:
    records = [(f"K{i}", {"email": f"k{i}@shop.ch"}) for i in range(6)]
    named = HubSpotError(409, "CONFLICT", "Contact already exists. Existing ID: 7", {"ids": ["K4"]})
    assert isolate(records, named) == [[records[4]], records[:4] + records[5:]]
    quoted = HubSpotError(400, "VALIDATION_ERROR", "Email address k2@shop.ch is invalid")
    assert isolate(records, quoted) == [[records[2]], records[:2] + records[3:]]
    by_hubspot_id = HubSpotError(404, "OBJECT_NOT_FOUND", "not found", {"ids": ["901"]})
    assert isolate(records, by_hubspot_id, {"901": "K1"})[0] == [records[1]]
    silent = HubSpotError(400, "VALIDATION_ERROR", "Property values were not valid")
    assert isolate(records, silent) == [records[:3], records[3:]]


def test_a_client_on_an_unknown_version_fails_before_any_request(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2026-01"):
        HubSpotClient("http://127.0.0.1:9", "t", RateBudget(10, None), api_version="2026-01")


def test_account_details_and_time_zone_are_read_once(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "h.db", time_zone="America/New_York") as sb:
        client = _client(sb)
        assert client.account_details()["timeZone"] == "America/New_York"
        assert str(client.read_time_zone()) == "America/New_York"
        client.read_time_zone()
        assert client.requests[ep.ACCOUNT_DETAILS.name] == 2  # the explicit read, then one for the zone
