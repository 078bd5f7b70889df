"""HubSpot's native orders and carts (``commerce.objects``) end to end: Dagster materializes the main job
against the sandbox over real HTTP, and what HubSpot holds is read back through the sandbox's inspection
route and compared with the mapping's payloads."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import polars as pl

from fp_demo_store import simulate
from fp_hubspot_assets import mapping
from fp_hubspot_assets.hubspot.client import HubSpotClient
from fp_hubspot_assets.hubspot.doctor import run_checks
from fp_hubspot_assets.hubspot.first_setup import existing_order_keys
from fp_hubspot_assets.hubspot.oauth import required_scopes
from fp_hubspot_assets.hubspot.properties import ORDER_PIPELINE_LABEL
from fp_hubspot_assets.hubspot.ratelimit import RateBudget
from fp_hubspot_assets.mapping.commerce import order_stage_label
from fp_hubspot_assets.panel import DealStage, PanelSettings, load_panel, parse_panel
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets.tracing import compute_payloads
from fp_hubspot_assets_tests.fixtures_sync import SyncEnv
from hubspot_sandbox.testing import SandboxHandle, running_sandbox

WRITTEN = ("created", "updated", "adopted", "archived")


def _payloads(env: SyncEnv) -> dict[str, mapping.Mapped]:
    frames = {name: result.frame for name, result in SapReader(env.sap_url).read_all().items()}
    return compute_payloads(frames, load_panel(env.panel_path))


def _linked(record: dict[str, Any], to_type: str) -> set[str]:
    return {a["id"] for a in record["associations"].get(to_type, [])}


def _written(env: SyncEnv, run_id: str) -> int:
    counts = env.state().log_counts(run_id)
    return sum(int(by_action.get(action, 0)) for by_action in counts.values() for action in WRITTEN)


def _commerce_panel(env: SyncEnv, mode: str) -> None:
    env.write_panel(f"commerce:\n  objects: {mode}\n")


def assert_orders_and_carts(env: SyncEnv, expected: dict[str, mapping.Mapped]) -> None:
    """Every order and cart payload is in HubSpot once, with our properties, line items and associations."""
    ids = {t: {k: r["id"] for k, r in env.hubspot(t).items()} for t in ("contacts", "companies", "deals", "orders", "carts")}
    for object_type in ("orders", "carts"):
        records = expected[object_type].records
        assert records.height > 0, f"the demo should produce {object_type}"
        in_hubspot = env.hubspot(object_type)
        assert len(env.sandbox.objects(object_type)) == len(in_hubspot), f"{object_type}: duplicate fp ids"
        assert set(in_hubspot) == set(records["source_key"]), f"{object_type}: HubSpot differs from the source"
        # hs_pipeline_stage holds a stage name in the payload and our pipeline's stage id in HubSpot: below
        columns = [c for c in records.columns if c not in ("source_key", "hs_pipeline_stage") and not c.startswith("assoc_")]
        for row in records.iter_rows(named=True):
            record = in_hubspot[row["source_key"]]
            for column in columns:
                assert (record["properties"].get(column) or "") == (row[column] or ""), (row["source_key"], column)
            for ref in mapping.model.SPECS[object_type].references:
                target = row[ref.column]
                want = {ids[ref.to_type][target]} if target is not None and target in ids[ref.to_type] else set()
                assert _linked(record, ref.to_type) & set(ids[ref.to_type].values()) == want, (row["source_key"], ref)
    _assert_order_stages(env, expected["orders"])
    # line items hang off their order or cart, never both, and match the source lines one for one
    lines = expected["line_items"].records
    in_hubspot = env.hubspot("line_items")
    for prefix, column, to_type in (("order/", "assoc_orders", "orders"), ("cart/", "assoc_carts", "carts")):
        ours = lines.filter(pl.col("source_key").str.starts_with(prefix))
        assert ours.height > 0, f"the demo should have {to_type} lines"
        for key, parent in ours.select("source_key", column).iter_rows():
            assert _linked(in_hubspot[key], to_type) == {ids[to_type][parent]}, key
            assert not _linked(in_hubspot[key], "deals"), f"{key}: an order/cart line item on a deal"


def _assert_order_stages(env: SyncEnv, orders: mapping.Mapped) -> None:
    """Each order sits in our order pipeline, read back over HTTP (pipelines API), at the stage of the panel's
    deal-stage rules: its stage id's label there is the order's fp_order_stage."""
    pipelines = env.sandbox.client().crm.pipelines.pipelines_api.get_all("orders").results
    ours = next(p for p in pipelines if p.label == ORDER_PIPELINE_LABEL)
    labels = {s.id: s.label for s in ours.stages}
    assert set(labels.values()) == {order_stage_label(s) for s in DealStage}
    in_hubspot = env.hubspot("orders")
    seen = set()
    for key, stage in orders.records.select("source_key", "hs_pipeline_stage").iter_rows():
        props = in_hubspot[key]["properties"]
        assert props.get("hs_pipeline") == ours.id, key
        label = labels.get(props.get("hs_pipeline_stage") or "")
        assert label == order_stage_label(DealStage(stage)) == props.get("fp_order_stage"), (key, stage, label)
        seen.add(label)
    assert len(seen) > 1, f"the demo should put orders in several stages, got {seen}"


def _assert_one_purchase(env: SyncEnv) -> None:
    """A cart that became an order is linked to exactly one order, and no order is claimed by two carts."""
    carts, orders = env.hubspot("carts"), env.hubspot("orders")
    ordered = [c for c in carts.values() if c["properties"].get("hs_external_status") == "ordered"]
    assert ordered, "the demo should have carts that became orders"
    claimed = Counter(oid for c in ordered for oid in _linked(c, "orders"))
    assert all(len(_linked(c, "orders")) <= 1 for c in carts.values())
    assert claimed and max(claimed.values()) == 1, "an order claimed by two carts"
    assert set(claimed) <= {o["id"] for o in orders.values()}
    # the order is the purchase: as many HubSpot orders as SAP orders, whatever the carts
    assert len(orders) == len({o["properties"]["fp_order_id"] for o in orders.values()})


def test_orders_and_carts_mode_syncs_native_objects_and_no_deals(sync_env: SyncEnv) -> None:
    _commerce_panel(sync_env, "orders_and_carts")
    sync_env.run()
    expected = _payloads(sync_env)
    assert expected["deals"].records.is_empty()
    assert sync_env.sandbox.objects("deals") == [], "orders_and_carts sends no deals"
    assert_orders_and_carts(sync_env, expected)
    _assert_one_purchase(sync_env)
    again = sync_env.run()
    assert _written(sync_env, again.run_id) == 0, "a re-run without source changes writes nothing"


def test_switch_from_deals_to_both_adds_orders_without_touching_deals(sync_env: SyncEnv) -> None:
    sync_env.run()
    assert sync_env.sandbox.objects("orders") == [] and sync_env.sandbox.objects("carts") == [], "deals mode is today's"
    deals_before = {k: (r["id"], r["properties"]) for k, r in sync_env.hubspot("deals").items()}
    deal_lines_before = {k: r["id"] for k, r in sync_env.hubspot("line_items").items()}
    assert deals_before

    _commerce_panel(sync_env, "both")
    switched = sync_env.run()
    deals_after = {k: (r["id"], r["properties"]) for k, r in sync_env.hubspot("deals").items()}
    assert deals_after == deals_before, "switching to both must not touch the deals"
    log = sync_env.state().log_frame(run_id=switched.run_id)
    assert log.filter(pl.col("object_type") == "deals").filter(pl.col("action").is_in(WRITTEN)).is_empty()
    line_items = sync_env.hubspot("line_items")
    assert {k: line_items[k]["id"] for k in deal_lines_before} == deal_lines_before, "deal line items unchanged"

    expected = _payloads(sync_env)
    assert_orders_and_carts(sync_env, expected)
    _assert_one_purchase(sync_env)
    # both: each order associated with its deal (the deal of a web order is its cart's)
    deals, orders = sync_env.hubspot("deals"), sync_env.hubspot("orders")
    with_deal = expected["orders"].records.filter(pl.col("assoc_deals").is_not_null())
    assert with_deal.height == expected["orders"].records.height
    for order_key, deal_key in with_deal.select("source_key", "assoc_deals").iter_rows():
        assert _linked(orders[order_key], "deals") == {deals[deal_key]["id"]}, order_key

    again = sync_env.run()
    assert _written(sync_env, again.run_id) == 0, "a re-run without source changes writes nothing"

    # and back: deals mode leaves the orders and carts as HubSpot holds them (nothing flagged or archived)
    _commerce_panel(sync_env, "deals")
    back = sync_env.run()
    assert _written(sync_env, back.run_id) == 0
    for object_type in ("orders", "carts"):
        held = sync_env.hubspot(object_type)
        assert set(held) == set(expected[object_type].keys())
        assert not [k for k, r in held.items() if r["properties"].get("fp_deleted_in_source")], object_type


def _oauth_client(sb: SandboxHandle, scope: str) -> HubSpotClient:
    """A public-app token granted exactly ``scope`` through the sandbox's consent page and token endpoint."""
    page = httpx.get(f"{sb.base_url}/oauth/authorize", params={
        "client_id": "sandbox-client-id", "redirect_uri": "http://localhost/cb", "scope": scope})
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    redirect = httpx.post(f"{sb.base_url}/oauth/authorize", data={**fields, "decision": "approve"})
    code = parse_qs(urlparse(redirect.headers["location"]).query)["code"][0]
    token = httpx.post(f"{sb.base_url}/oauth/v1/token", data={
        "grant_type": "authorization_code", "client_id": "sandbox-client-id", "client_secret": "sandbox-client-secret",
        "code": code, "redirect_uri": "http://localhost/cb"}).json()["access_token"]
    return HubSpotClient(sb.base_url, "", RateBudget(1000, None), token_provider=lambda _rejected: token)


def _settings(sb: SandboxHandle, mode: str) -> PanelSettings:
    return parse_panel({"integration": {"mode": "public_app", "client_id": "sandbox-client-id", "base_url": sb.base_url},
                        "commerce": {"objects": mode}})


def test_doctor_reports_the_commerce_objects_and_their_scopes(tmp_path: Path) -> None:
    deal_scopes = ("oauth e-commerce crm.objects.line_items.read crm.objects.line_items.write " + " ".join(
        f"crm.{k}.{t}.{a}" for k in ("objects", "schemas") for t in ("contacts", "companies", "deals") for a in ("read", "write")))
    with running_sandbox(tmp_path / "h.db") as sb:
        without = _oauth_client(sb, deal_scopes)
        default = {c.name: c for c in run_checks(_settings(sb, "deals"), without)}
        missing = {c.name: c for c in run_checks(_settings(sb, "both"), without)}
        granted = _oauth_client(sb, deal_scopes + " " + " ".join(required_scopes(_settings(sb, "both"))))
        ready = {c.name: c for c in run_checks(_settings(sb, "orders_and_carts"), granted)}
    # the default mode neither needs nor probes the commerce objects
    assert default["commerce objects"].ok and "not used" in default["commerce objects"].detail
    assert all(c.ok for c in default.values()), [c for c in default.values() if not c.ok]
    # both: the scope check names the missing scopes, and the commerce check says what the account lacks
    assert not missing["scopes"].ok and "crm.objects.orders.write" in missing["scopes"].detail
    assert not missing["commerce objects"].ok and "crm.objects.carts.read" in missing["commerce objects"].detail
    assert ready["commerce objects"].ok and "orders and carts available" in ready["commerce objects"].detail
    assert ready["scopes"].ok and ready["properties: orders"].ok and ready["properties: carts"].ok
    assert "properties: deals" not in ready, "orders_and_carts syncs no deals"
    assert "order pipeline" not in default and "set-up creates it" in ready["order pipeline"].detail


def test_ignore_existing_deals_also_keeps_existing_orders_out(sync_env: SyncEnv) -> None:
    """First set-up's "Ignore existing deals" baselines the orders that exist now as HubSpot orders too: only
    orders created afterwards reach HubSpot, with their cart and line items."""
    frames = {name: r.frame for name, r in SapReader(sync_env.sap_url).read_all().items()}
    existing = set(existing_order_keys(frames["orders"], frames["carts"]))
    assert existing
    sync_env.write_panel("first_setup:\n  ignore_existing_deals: true\ncommerce:\n  objects: orders_and_carts\n")
    first = sync_env.run()
    assert sync_env.state().baseline("orders") == existing
    assert sync_env.sandbox.objects("orders") == [], "no existing order is sent"
    assert first.metadata["hubspot_orders"]["count_baselined"] == len(existing & set(_payloads(sync_env)["orders"].keys()))
    assert not [k for k in sync_env.hubspot("line_items") if k.startswith("order/")], "nor their line items"

    expected = _payloads(sync_env)
    web_customer = int(next(k for k in expected["contacts"].records["source_key"] if k.startswith("W"))[1:])
    item = next(k for k in expected["products"].records["source_key"] if "#" not in k)[1:]
    cart = simulate.add_cart(sync_env.sap_url, web_customer, [simulate.CartLine(item, 2)])
    order_key = f"O{simulate.complete_cart(sync_env.sap_url, cart)}"
    sync_env.run()
    orders, carts = sync_env.hubspot("orders"), sync_env.hubspot("carts")
    assert set(orders) == {order_key}, "only the order created after set-up"
    assert _linked(carts[f"C{cart}"], "orders") == {orders[order_key]["id"]}
    lines = [r for k, r in sync_env.hubspot("line_items").items() if k.startswith(f"order/{order_key}:L")]
    assert lines and all(_linked(r, "orders") == {orders[order_key]["id"]} for r in lines)


def test_killed_syncs_in_both_mode_converge_to_exactly_the_source(tmp_path: Path) -> None:
    """bench/crash_safety.py in ``both``: `fp-hubspot sync` SIGKILLed twice at random request counts, then run
    to completion — HubSpot holds every deal, order, cart and line item once, with their associations."""
    spec = importlib.util.spec_from_file_location("crash_safety", Path(__file__).resolve().parents[2] / "bench" / "crash_safety.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("crash_safety", bench)
    spec.loader.exec_module(bench)
    report = bench.crash_and_converge(tmp_path, customers=150, kills=2, seed=13, log=False, commerce="both")
    assert report.kills == 2
    assert report.expected_records["orders"] > 0 and report.expected_records["carts"] > 0
    assert report.discrepancies.total == 0, report.lines()
    assert report.rerun_writes == 0, "after convergence the state store must know every record"


def test_dry_run_in_both_mode_writes_nothing_and_names_the_orders(sync_env: SyncEnv) -> None:
    sync_env.run()
    _commerce_panel(sync_env, "both")
    dry = sync_env.run(dry_run=True)
    assert sync_env.sandbox.objects("orders") == [] and sync_env.sandbox.objects("carts") == []
    expected = _payloads(sync_env)
    assert dry.metadata["hubspot_orders"]["count_would_create"] == expected["orders"].records.height > 0
    assert dry.metadata["hubspot_carts"]["count_would_create"] == expected["carts"].records.height > 0
    assert dry.metadata["hubspot_deals"].get("count_would_update", 0) == 0, "the deals are unchanged"


def test_free_tier_orders_keep_the_default_pipeline_with_their_stage_in_fp_order_stage(sync_env: SyncEnv) -> None:
    """No pipeline can be added on the free tier and the default order pipeline's stage ids are unknown: orders
    carry no hs_pipeline_stage (HubSpot keeps them in its default pipeline), their stage is fp_order_stage."""
    sync_env.write_panel("tier: free\ncommerce:\n  objects: orders_and_carts\n")
    sync_env.run()
    pipelines = sync_env.sandbox.client().crm.pipelines.pipelines_api.get_all("orders").results
    assert [p.label for p in pipelines if p.label == ORDER_PIPELINE_LABEL] == []
    expected = _payloads(sync_env)["orders"].records
    in_hubspot = sync_env.hubspot("orders")
    assert set(in_hubspot) == set(expected["source_key"]) and expected.height
    for key, stage in expected.select("source_key", "fp_order_stage").iter_rows():
        props = in_hubspot[key]["properties"]
        assert props.get("hs_pipeline") == "default" and not props.get("hs_pipeline_stage"), key
        assert props.get("fp_order_stage") == stage, key
