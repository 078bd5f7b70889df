"""Source assets: SAP Business One + FocusPoint tables read into the canonical polars frames."""


import polars as pl
from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, MetadataValue, Output, asset

from fp_hubspot_assets.defs.incremental import SyncModeResource, run_reads
from fp_hubspot_assets.defs.metadata import Metadata, table_metadata
from fp_hubspot_assets.defs.resources import PanelResource, SapSourceResource, StateStoreResource
from fp_hubspot_assets.defs.setup_check import broken_setup_as_one_line
from fp_hubspot_assets.sap.keyed_windows import source_window
from fp_hubspot_assets.state.queries import log_new_source_problems
from fp_hubspot_assets.state.sync_cursor import panel_digest

OWNERS = ["team:data-engineering"]
SOURCE_ASSETS: dict[str, tuple[str, str]] = {
    # asset name: (canonical entity, description)
    "web_stores": ("stores", "FocusPoint web stores (FP_STORE): store code, currency and price list."),
    "sap_customers": (
        "customers",
        "Web customers (FP_CUSTOMER, with roles; guests included), SAP business partners (OCRD) and their "
        "contact persons (OCPR), one row per person or partner.",
    ),
    "sap_addresses": ("addresses", "Billing and shipping addresses from SAP (CRD1) and the web store (FP_ADDRESS)."),
    "sap_items": (
        "items",
        "Items (OITM/ITM1) and their attribute combinations (FP_ITEM_COMBINATION), one row per sellable variant.",
    ),
    "sap_orders": (
        "orders",
        "Sales orders (ORDR/RDR1) with order, shipment (ODLN/DLN1) and payment (OINV/INV1) status and nested lines.",
    ),
    "store_carts": ("carts", "FocusPoint shopping carts (FP_CART/FP_CART_LINE), linked to the order they became."),
}
# Read after these, in the same run: an incremental read of customers and items includes those of the orders
# and carts read, and addresses are read for the customers read (sap/keyed_windows.py).
READ_AFTER: dict[str, list[str]] = {
    "sap_customers": ["sap_orders", "store_carts"],
    "sap_items": ["sap_orders", "store_carts"],
    "sap_addresses": ["sap_customers"],
}


def _source_asset(name: str, entity: str, description: str) -> AssetsDefinition:
    @asset(
        name=name,
        group_name="sap_source",
        kinds={"sql", "polars"},
        owners=OWNERS,
        description=description,
        code_version="1",
        deps=[AssetKey(d) for d in READ_AFTER.get(name, [])],
    )
    def _read(
        context: AssetExecutionContext,
        sap: SapSourceResource,
        state: StateStoreResource,
        sync_mode: SyncModeResource,
        panel: PanelResource,
    ) -> Output[pl.DataFrame]:
        with broken_setup_as_one_line(panel.path or None, sap.url, state.url), sap.reader() as reader:
            digest = panel_digest(panel.settings(), "" if reader.source.zone.is_utc else reader.source.zone.name)
            def reads() -> dict[str, dict[str, str]]:  # asked only by the keyed entities
                return run_reads(context.instance, context.run_id)

            window = source_window(state.store(), reader, entity, sync_mode, context.run.tags, digest, reads)
            result = reader.read(entity, window.what)
        context.log.info(f"{entity}: {window.mode} read of {result.frame.height} row(s) — {window.why}")
        if result.rejects.height:  # the integration log is where admins trace every record that did not sync
            rows = result.rejects.select("source_key", pl.lit("skipped"), "reason").iter_rows()
            log_new_source_problems(state.store(), context.run_id, entity, rows)  # new or changed ones only
        for row in result.rejects.head(50).iter_rows(named=True):
            context.log.warning(f"{entity}: unreadable record {row['source_key']} skipped: {row['reason']}")
        if result.rejects.height > 50:
            context.log.warning(f"{entity}: {result.rejects.height - 50} more unreadable records skipped")
        metadata: Metadata = {
            "dagster/row_count": result.frame.height,
            "rejected": result.rejects.height,
            **window.metadata(),
            "columns": MetadataValue.md(", ".join(f"`{c}`" for c in result.frame.columns)),
        }
        if result.rejects.height:
            metadata["rejects"] = table_metadata(result.rejects.head(200))
        return Output(result.frame, metadata=metadata)

    return _read


sap_assets: list[AssetsDefinition] = [_source_asset(name, *spec) for name, spec in SOURCE_ASSETS.items()]

