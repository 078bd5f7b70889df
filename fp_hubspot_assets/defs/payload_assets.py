"""Mapped payload assets: pure mapping of the source frames into HubSpot records (``mapping/``).

Lineage reads SAP → payloads → HubSpot: ``sap_customers`` → ``contact_payloads`` → ``hubspot_contacts``.
Payload assets carry the blocking duplicate checks (``defs/checks.py``), so a corrupting batch never reaches
HubSpot.
"""

from datetime import UTC, datetime

import polars as pl
from dagster import AssetIn, Output, asset

from fp_hubspot_assets import mapping
from fp_hubspot_assets.defs.metadata import OWNERS, Metadata, table_metadata
from fp_hubspot_assets.defs.resources import PanelResource
from fp_hubspot_assets.defs.run_storage import Stored
from fp_hubspot_assets.mapping import Mapped
from fp_hubspot_assets.mapping import deals as deals_mapping
from fp_hubspot_assets.mapping.line_items import ORDER_COLUMNS as LINE_ITEM_ORDER_COLUMNS
from fp_hubspot_assets.source_model import SCHEMAS

# Deals and native orders/carts need of the order and cart lines only ``lines_total`` (and the cart's total): they
# load the source frames without the nested lines, the largest part of both at scale (the IO manager reads only
# the listed columns, Dagster's AssetIn-metadata convention). The line items step loads them whole.
WITHOUT_LINES = {
    asset_name: AssetIn(metadata={"columns": [c for c in SCHEMAS[entity].names() if c != "lines"]})
    for asset_name, entity in (("sap_orders", "orders"), ("store_carts", "carts"))
}
# The deals need of the customers only what links a deal to its contact and company, and of the contact and company
# payloads which keys are sent, rejected, excluded or merged.
DEAL_INS = {
    **WITHOUT_LINES,
    "sap_customers": AssetIn(metadata={"columns": list(deals_mapping.CUSTOMER_COLUMNS)}),
    **{name: AssetIn(metadata={"columns": list(deals_mapping.PAYLOAD_COLUMNS)})
       for name in ("contact_payloads", "company_payloads")},
}
# The line items need of the deals (and native orders and carts) sent only which keys they are, and of the orders
# only what decides their deal and the lines.
LINE_ITEM_INS = {
    **{name: AssetIn(metadata={"columns": ["source_key"]}) for name in ("deal_payloads", "order_payloads", "cart_payloads")},
    "sap_orders": AssetIn(metadata={"columns": list(LINE_ITEM_ORDER_COLUMNS)}),
}


def _payload_metadata(mapped: Mapped) -> Metadata:
    counts = mapped.issues.group_by("action").len() if mapped.issues.height else None
    by_action = dict(counts.iter_rows()) if counts is not None else {}
    meta: Metadata = {
        "dagster/row_count": mapped.records.height,
        "skipped": int(by_action.get("skipped", 0)),
        "repaired": int(by_action.get("repaired", 0)),
        "excluded": int(by_action.get("excluded", 0)),
        "preview": table_metadata(mapped.records.head(20)),
    }
    if mapped.issues.height:
        meta["issues"] = table_metadata(mapped.issues.filter(pl.col("action") != "excluded").head(200))
    return meta


@asset(group_name="mapping", kinds={"polars"}, owners=OWNERS, code_version="1",
       description="Company business partners mapped to HubSpot company properties.")
def company_payloads(sap_customers: pl.DataFrame, sap_addresses: pl.DataFrame, panel: PanelResource) -> Output[Mapped]:
    mapped = mapping.map_companies(sap_customers, sap_addresses, panel.settings())
    return Output(mapped, metadata=_payload_metadata(mapped))


@asset(group_name="mapping", kinds={"polars"}, owners=OWNERS, code_version="1",
       description="Web customers, contact persons and private partners mapped to HubSpot contacts "
       "(roles filtered, emails normalized and de-duplicated, address from the panel's address source).")
def contact_payloads(sap_customers: pl.DataFrame, sap_addresses: pl.DataFrame, panel: PanelResource) -> Output[Mapped]:
    mapped = mapping.map_contacts(sap_customers, sap_addresses, panel.settings())
    return Output(mapped, metadata=_payload_metadata(mapped))


@asset(group_name="mapping", kinds={"polars"}, owners=OWNERS, code_version="1",
       description="Items (or each attribute combination) mapped to HubSpot products; empty below Professional.")
def product_payloads(sap_items: pl.DataFrame, web_stores: pl.DataFrame, panel: PanelResource) -> Output[Mapped]:
    mapped = mapping.map_products(sap_items, web_stores, panel.settings())
    return Output(mapped, metadata=_payload_metadata(mapped))


@asset(group_name="mapping", kinds={"polars"}, owners=OWNERS, code_version="1", ins=DEAL_INS,
       description="Orders and carts mapped to HubSpot deals (a cart and its order are one deal), "
       "stage from the panel's deal-stage mapping.")
def deal_payloads(
    sap_orders: pl.DataFrame,
    store_carts: pl.DataFrame,
    sap_customers: pl.DataFrame,
    contact_payloads: Mapped,
    company_payloads: Mapped,
    panel: PanelResource,
) -> Output[Mapped]:
    settings = panel.settings()
    mapped = mapping.map_deals(
        sap_orders, store_carts, sap_customers, contact_payloads, company_payloads, settings, datetime.now(UTC).replace(tzinfo=None)
    )
    return Output(mapped, metadata=_payload_metadata(mapped))


def _deferred(*names: str) -> dict[str, AssetIn]:
    """Inputs loaded only if the step needs them (``Stored.load``), the source frames without their lines."""
    projected = {name: dict(asset_in.metadata or {}) for name, asset_in in WITHOUT_LINES.items()}
    return {name: AssetIn(metadata={**projected.get(name, {}), "deferred": True}) for name in names}


@asset(group_name="mapping", kinds={"polars"}, owners=OWNERS, code_version="1",
       ins=_deferred("sap_orders", "store_carts", "sap_customers", "sap_addresses", "web_stores", "contact_payloads",
                     "company_payloads", "deal_payloads"),
       description="Orders mapped to HubSpot's native order objects (commerce.objects: orders_and_carts or both): "
       "stage from the deal-stage rules, totals, addresses, contact, company and (both) deal.")
def order_payloads(
    sap_orders: Stored,
    store_carts: Stored,
    sap_customers: Stored,
    sap_addresses: Stored,
    web_stores: Stored,
    contact_payloads: Stored,
    company_payloads: Stored,
    deal_payloads: Stored,
    panel: PanelResource,
) -> Output[Mapped]:
    settings = panel.settings()
    if not settings.commerce.sends_orders:  # what map_orders would return, without loading its inputs
        mapped = mapping.not_sent("orders")
    else:
        mapped = mapping.map_orders(
            sap_orders.load(), store_carts.load(), sap_customers.load(), sap_addresses.load(), web_stores.load(),
            contact_payloads.load(), company_payloads.load(), settings, datetime.now(UTC).replace(tzinfo=None),
            deal_payloads.load() if settings.commerce.sends_deals else None,
        )
    return Output(mapped, metadata=_payload_metadata(mapped))


@asset(group_name="mapping", kinds={"polars"}, owners=OWNERS, code_version="1",
       ins=_deferred("sap_orders", "store_carts", "sap_customers", "web_stores", "contact_payloads", "company_payloads",
                     "order_payloads"),
       description="Web carts mapped to HubSpot's native cart objects (commerce.objects: orders_and_carts or both): "
       "open / abandoned / ordered, linked to the order they became.")
def cart_payloads(
    sap_orders: Stored,
    store_carts: Stored,
    sap_customers: Stored,
    web_stores: Stored,
    contact_payloads: Stored,
    company_payloads: Stored,
    order_payloads: Stored,
    panel: PanelResource,
) -> Output[Mapped]:
    settings = panel.settings()
    if not settings.commerce.sends_orders:  # what map_carts would return, without loading its inputs
        mapped = mapping.not_sent("carts")
    else:
        mapped = mapping.map_carts(
            sap_orders.load(), store_carts.load(), sap_customers.load(), web_stores.load(), contact_payloads.load(),
            company_payloads.load(), order_payloads.load(), settings, datetime.now(UTC).replace(tzinfo=None),
        )
    return Output(mapped, metadata=_payload_metadata(mapped))


@asset(group_name="mapping", kinds={"polars"}, owners=OWNERS, code_version="1", ins=LINE_ITEM_INS,
       description="Order lines (and open cart lines) mapped to HubSpot line items of their deal, order or cart.")
def line_item_payloads(
    sap_orders: pl.DataFrame,
    store_carts: pl.DataFrame,
    product_payloads: Mapped,
    deal_payloads: Mapped,
    order_payloads: Mapped,
    cart_payloads: Mapped,
    panel: PanelResource,
) -> Output[Mapped]:
    mapped = mapping.map_line_items(
        sap_orders, store_carts, product_payloads, panel.settings(), deals=deal_payloads,
        order_records=order_payloads, cart_records=cart_payloads,
    )
    return Output(mapped, metadata=_payload_metadata(mapped))


payload_assets = [company_payloads, contact_payloads, product_payloads, deal_payloads, order_payloads, cart_payloads,
                  line_item_payloads]
