"""Asset checks: duplicates that would corrupt HubSpot block the writers; data smells only warn."""


import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetIn,
    AssetKey,
    ResourceParam,
    asset_check,
)

from fp_hubspot_assets.defs.metadata import table_metadata
from fp_hubspot_assets.defs.resources import PanelResource, StateStoreResource
from fp_hubspot_assets.defs.run_storage import RunScopedIOManager
from fp_hubspot_assets.mapping import Mapped, unmapped_statuses
from fp_hubspot_assets.mapping.common import keep_rows


def _duplicates(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    # the two columns first: the filter copies every column it keeps (4.1M line items at 1M customers)
    values = frame.select(*dict.fromkeys([column, "source_key"]))
    # only the repeated values are grouped: a group (and a list of keys) for each of 4.1M unique keys cost more
    # than the check's input; keep_rows does not copy when nothing is dropped
    values = keep_rows(values, pl.col(column).is_not_null() & (pl.col(column) != "") & pl.col(column).is_duplicated())
    return values.group_by(column).agg(pl.len().alias("copies"), pl.col("source_key").head(5).alias("keys")).filter(
        pl.col("copies") > 1
    )


def _result(dupes: pl.DataFrame, what: str, severity: AssetCheckSeverity) -> AssetCheckResult:
    sample = dupes.head(50).with_columns(pl.col("keys").list.join(", ")) if dupes.height else dupes
    return AssetCheckResult(
        passed=dupes.height == 0,
        severity=severity,
        description=f"{dupes.height} duplicated {what}" if dupes.height else f"no duplicated {what}",
        metadata={"duplicates": dupes.height, **({"sample": table_metadata(sample)} if dupes.height else {})},
    )


def _unique_check(asset_name: str, column: str, what: str, blocking: bool) -> AssetChecksDefinition:
    severity = AssetCheckSeverity.ERROR if blocking else AssetCheckSeverity.WARN

    @asset_check(
        asset=asset_name,
        name=f"unique_{column}",
        blocking=blocking,
        description=f"No two {asset_name} records share a {what}"
        + (" (blocks the HubSpot write: a duplicate would merge or overwrite records)." if blocking else "."),
    )
    def _check(context: AssetCheckExecutionContext, io_manager: ResourceParam[RunScopedIOManager]) -> AssetCheckResult:
        # the checked columns only: the whole payload of 4.1M line items is ~800 MiB
        columns = list(dict.fromkeys([column, "source_key"]))
        payload: Mapped = io_manager.load_columns(context.instance, context.run.run_id, AssetKey(asset_name), columns)
        return _result(_duplicates(payload.records, column), what, severity)

    return _check


payload_checks = [
    _unique_check("contact_payloads", "email", "normalized email", blocking=True),
    _unique_check("contact_payloads", "source_key", "source key", blocking=True),
    _unique_check("company_payloads", "source_key", "source key", blocking=True),
    _unique_check("product_payloads", "source_key", "source key", blocking=True),
    _unique_check("product_payloads", "hs_sku", "SKU", blocking=False),
    _unique_check("deal_payloads", "source_key", "source key", blocking=True),
    _unique_check("line_item_payloads", "source_key", "source key", blocking=True),
]


@asset_check(
    asset="sap_orders",
    additional_ins={"sap_customers": AssetIn("sap_customers"), "sap_items": AssetIn("sap_items")},
    description="Orders reference known customers and items (unknown ones still sync, without the link).",
)
def orders_reference_known_records(
    sap_orders: pl.DataFrame, sap_customers: pl.DataFrame, sap_items: pl.DataFrame
) -> AssetCheckResult:
    partners = sap_customers.filter(pl.col("kind") == "bp")["card_code"]
    unknown_customer = sap_orders.filter(~pl.col("card_code").is_in(partners.implode()))
    lines = sap_orders.select("order_key", "lines").explode("lines").unnest("lines")
    unknown_item = lines.filter(pl.col("item_code").is_not_null() & ~pl.col("item_code").is_in(sap_items["item_code"].implode()))
    problems = pl.concat(
        [
            unknown_customer.select("order_key", pl.format("unknown customer {}", pl.col("card_code")).alias("problem")),
            unknown_item.select("order_key", pl.format("unknown item {}", pl.col("item_code")).alias("problem")),
        ]
    )
    return AssetCheckResult(
        passed=problems.height == 0,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "orders_with_unknown_customer": unknown_customer.height,
            "lines_with_unknown_item": unknown_item.height,
            **({"sample": table_metadata(problems.head(50))} if problems.height else {}),
        },
    )


@asset_check(asset="hubspot_id_map", description="Each source key and each HubSpot id appears once per object type "
             "(counted in the state store, whose keys should make both impossible).")
def id_map_unique(state: StateStoreResource) -> AssetCheckResult:
    duplicates = state.store().id_map_duplicates()
    return AssetCheckResult(
        passed=not any(duplicates.values()),
        severity=AssetCheckSeverity.ERROR,
        metadata=duplicates,
    )


@asset_check(
    asset="sap_orders",
    description="Every order's status is selected by a rule of the panel's deal-stage mapping. Orders no rule "
    "matches still sync, in deal_stages.unmapped_order_stage (default Checkout Completed); this check names the "
    "status combinations so the mapping can be completed.",
)
def order_statuses_mapped(sap_orders: pl.DataFrame, panel: PanelResource) -> AssetCheckResult:
    mapping_ = panel.settings().deal_stages
    unmapped = unmapped_statuses(sap_orders, mapping_)
    combos = (
        unmapped.group_by("order_status", "shipment_status", "payment_status")
        .agg(pl.len().alias("orders"), pl.col("order_key").head(5).str.join(", ").alias("example_orders"))
        .sort("orders", descending=True)
    )
    stage = mapping_.unmapped_order_stage.label
    return AssetCheckResult(
        passed=unmapped.height == 0,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"{unmapped.height} order(s) match no deal-stage rule and are sent as {stage}"
            if unmapped.height
            else "every order status is mapped to a deal stage"
        ),
        metadata={
            "unmapped_orders": unmapped.height,
            "default_stage": stage,
            **({"status_combinations": table_metadata(combos)} if unmapped.height else {}),
        },
    )


all_checks = [*payload_checks, orders_reference_known_records, id_map_unique, order_statuses_mapped]
