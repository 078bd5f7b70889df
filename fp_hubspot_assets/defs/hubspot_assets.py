"""The HubSpot writers: one asset per object type (what they need in HubSpot first: ``defs/hubspot_properties.py``).

Each writer wires its payload and resources into ``hubspot.object_sync.sync_object_type`` and renders the
result as metadata (the panel's "Tracing Integration" view).
"""

from collections.abc import Sequence

from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    asset,
)

from fp_hubspot_assets.defs import incremental
from fp_hubspot_assets.defs.hubspot_properties import hubspot_properties
from fp_hubspot_assets.defs.metadata import HUBSPOT_POOL, OWNERS, writer_metadata
from fp_hubspot_assets.defs.resources import (
    HubSpotResource,
    PanelResource,
    StateStoreResource,
)
from fp_hubspot_assets.hubspot.object_sync import sync_object_type
from fp_hubspot_assets.hubspot.sync import SyncContext
from fp_hubspot_assets.mapping import Mapped
from fp_hubspot_assets.objects import SPECS, ObjectSpec


def _write_object_type(
    context: AssetExecutionContext,
    spec: ObjectSpec,
    mapped: Mapped,
    panel: PanelResource,
    hubspot: HubSpotResource,
    state: StateStoreResource,
) -> MaterializeResult:
    settings = panel.settings()
    store = state.store()
    client = hubspot.client(settings, store)
    ctx = SyncContext(
        client=None if hubspot.dry_run else client,
        reader=client if hubspot.dry_run else None,
        state=store,
        run_id=context.run_id,
        dry_run=hubspot.dry_run,
        max_workers=hubspot.max_workers,
        progress=context.log.info,
        reconcile=hubspot.reconcile,
    )
    # An incremental read leaves out every unchanged record: absence means "not read", never "deleted".
    partial = incremental.read_partially(context.instance, context.run_id, spec.name)
    result = sync_object_type(spec, mapped, ctx, settings, partial=partial)
    if result.why_nothing_sent:
        context.log.info(f"{spec.name}: nothing sent — {result.why_nothing_sent}")
    context.log.info(f"{spec.name}: " + ", ".join(f"{k}={v}" for k, v in result.counts.items() if v))
    return MaterializeResult(metadata=writer_metadata(context, spec.name, mapped, result, hubspot.reconcile, partial))


def _writer(
    object_type: str,
    payload_asset: str,
    deps: Sequence[str],
    description: str,
) -> AssetsDefinition:
    """One writer asset per object type; its associations and parent come from the registry."""
    spec = SPECS[object_type]

    @asset(
        name=f"hubspot_{object_type}",
        ins={"payload": AssetIn(payload_asset)},
        deps=[AssetKey(d) for d in deps],
        group_name="hubspot",
        kinds={"hubspot"},
        owners=OWNERS,
        pool=HUBSPOT_POOL,
        description=description,
    )
    def _write(
        context: AssetExecutionContext,
        payload: Mapped,
        panel: PanelResource,
        hubspot: HubSpotResource,
        state: StateStoreResource,
    ) -> MaterializeResult:
        return _write_object_type(context, spec, payload, panel, hubspot, state)

    return _write


hubspot_companies = _writer(
    "companies", "company_payloads", ["hubspot_properties", "hubspot_first_setup"],
    "HubSpot companies for company business partners, upserted by fp_company_id.",
)
hubspot_contacts = _writer(
    "contacts", "contact_payloads", ["hubspot_properties", "hubspot_companies", "hubspot_first_setup"],
    "HubSpot contacts, upserted by fp_customer_id; an existing contact with the same email is adopted. "
    "Associated with their company.",
)
hubspot_products = _writer(
    # after the first set-up too: it runs only while nothing was synced, and a product written first would
    # make it refuse
    "products", "product_payloads", ["hubspot_properties", "hubspot_first_setup"],
    "HubSpot products (one per item or per attribute combination), upserted by fp_product_id.",
)
hubspot_deals = _writer(
    "deals", "deal_payloads", ["hubspot_properties", "hubspot_contacts", "hubspot_companies", "hubspot_first_setup"],
    "HubSpot deals for orders and carts in the FocusPoint pipeline, upserted by fp_deal_id; associated with "
    "their contact and company.",
)
hubspot_line_items = _writer(
    "line_items", "line_item_payloads", ["hubspot_deals", "hubspot_products", "hubspot_orders", "hubspot_carts"],
    "HubSpot line items of each deal (hs_product_id set), upserted by fp_line_item_id; associated with their deal.",
)
hubspot_orders = _writer(
    "orders", "order_payloads", ["hubspot_properties", "hubspot_contacts", "hubspot_companies", "hubspot_deals",
                                 "hubspot_first_setup"],
    "HubSpot's native orders (commerce.objects: orders_and_carts or both), upserted by fp_order_id; associated "
    "with their contact, company and (both) deal. Nothing is sent in the default deals mode.",
)
hubspot_carts = _writer(
    "carts", "cart_payloads", ["hubspot_properties", "hubspot_contacts", "hubspot_orders"],
    "HubSpot's native carts (commerce.objects: orders_and_carts or both), upserted by fp_cart_id; associated with "
    "their contact and the order they became. Nothing is sent in the default deals mode.",
)


hubspot_assets = [hubspot_properties, hubspot_companies, hubspot_contacts, hubspot_products, hubspot_deals,
                  hubspot_orders, hubspot_carts, hubspot_line_items]
