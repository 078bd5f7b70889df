"""Set-up's order pipeline against the sandbox over HTTP: created only when the mode syncs orders, adopted on
re-runs without writing, its stage ids kept in the state store; the free tier keeps HubSpot's default."""

from __future__ import annotations

from pathlib import Path

from fp_hubspot_assets import mapping
from fp_hubspot_assets.hubspot.client import HubSpotClient
from fp_hubspot_assets.hubspot.properties import (
    ORDER_PIPELINE_LABEL,
    ORDER_PIPELINE_STATE_KEY,
    pipeline_from_state,
    run_setup,
)
from fp_hubspot_assets.hubspot.ratelimit import RateBudget
from fp_hubspot_assets.mapping.commerce import order_stage_label
from fp_hubspot_assets.objects import synced_types
from fp_hubspot_assets.panel import DealStage
from fp_hubspot_assets.state.store import StateStore
from hubspot_sandbox.testing import running_sandbox


def _properties(mode: str) -> dict[str, list[mapping.CustomProperty]]:
    return {t: mapping.custom_properties(t) for t in synced_types(mode)}


def test_order_pipeline_is_created_once_and_only_when_orders_are_synced(tmp_path: Path, state_store: StateStore) -> None:
    with running_sandbox(tmp_path / "h.db") as sb:
        client = HubSpotClient(sb.base_url, sb.token, RateBudget(1000, None))
        pipelines = sb.client().crm.pipelines.pipelines_api
        run_setup(client, state_store, "professional", _properties("deals"))
        assert state_store.get_setup(ORDER_PIPELINE_STATE_KEY) is None, "deals mode never touches order pipelines"
        assert [p.id for p in pipelines.get_all("orders").results] == ["default"]

        report = run_setup(client, state_store, "professional", _properties("both"))
        ours = next(p for p in pipelines.get_all("orders").results if p.label == ORDER_PIPELINE_LABEL)
        stored = pipeline_from_state(state_store, ORDER_PIPELINE_STATE_KEY)
        by_label = {s.label: s.id for s in ours.stages}
        assert stored == {"pipeline_id": ours.id, "stages": {s.value: by_label[order_stage_label(s)] for s in DealStage}}
        assert report.order_pipeline_id == ours.id
        assert pipeline_from_state(state_store)["pipeline_id"] != ours.id, "the deal pipeline is its own"

        writes = client.write_requests
        again = run_setup(client, state_store, "professional", _properties("orders_and_carts"))
        assert client.write_requests == writes, "a re-run adopts the pipeline and writes nothing"
        assert again.order_pipeline_id == ours.id
        assert [p.label for p in pipelines.get_all("orders").results].count(ORDER_PIPELINE_LABEL) == 1


def test_free_tier_keeps_the_default_order_pipeline(tmp_path: Path, state_store: StateStore) -> None:
    with running_sandbox(tmp_path / "h.db", tier="free") as sb:
        client = HubSpotClient(sb.base_url, sb.token, RateBudget(1000, None))
        report = run_setup(client, state_store, "free", _properties("orders_and_carts"))
        assert pipeline_from_state(state_store, ORDER_PIPELINE_STATE_KEY) == {"pipeline_id": "", "stages": {}}
        assert any("default order pipeline" in note for note in report.notes)
        assert [p.id for p in sb.client().crm.pipelines.pipelines_api.get_all("orders").results] == ["default"]
