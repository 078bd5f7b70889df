"""The full Definitions load, and the lineage reads SAP → payloads → HubSpot."""

from __future__ import annotations

from dagster import AssetKey, Definitions

from fp_hubspot_assets.definitions import SYNC_JOB, defs


def test_definitions_load() -> None:
    Definitions.validate_loadable(defs)
    assert defs.resolve_job_def(SYNC_JOB) is not None


def test_lineage_reads_sap_to_hubspot() -> None:
    graph = defs.resolve_asset_graph()
    upstream = {
        key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }
    assert {"sap_customers", "sap_addresses"} <= upstream["contact_payloads"]
    assert "contact_payloads" in upstream["hubspot_contacts"]
    assert "hubspot_companies" in upstream["hubspot_contacts"]
    assert {"deal_payloads", "hubspot_contacts", "hubspot_companies"} <= upstream["hubspot_deals"]
    assert {"line_item_payloads", "hubspot_deals", "hubspot_products"} <= upstream["hubspot_line_items"]
    writers = {
        "hubspot_companies",
        "hubspot_contacts",
        "hubspot_products",
        "hubspot_deals",
        "hubspot_line_items",
    }
    assert writers <= upstream["hubspot_id_map"]


def test_writers_share_the_hubspot_pool_and_carry_metadata() -> None:
    graph = defs.resolve_asset_graph()
    for name in (
        "hubspot_companies",
        "hubspot_contacts",
        "hubspot_products",
        "hubspot_deals",
        "hubspot_line_items",
    ):
        node = graph.get(AssetKey(name))
        assert node.pools == {"hubspot"}, name
        assert node.owners and node.description, name
    assert graph.get(AssetKey("sap_customers")).group_name == "sap_source"
