"""Helpers that turn frames into Dagster metadata (the grids admins read in the UI), and what every asset shares."""

from __future__ import annotations

import polars as pl
from dagster import AssetExecutionContext, MetadataValue, TableColumn, TableRecord, TableSchema
from dagster._core.definitions.metadata import RawMetadataValue

from fp_hubspot_assets.hubspot.object_sync import ObjectSyncResult
from fp_hubspot_assets.mapping import Mapped
from fp_hubspot_assets.state.read_markers import FULL, INCREMENTAL, SOURCES_OF
from fp_hubspot_assets.tracing import tracing_page_url

# What an asset's metadata holds (Dagster's own alias; the public API exports none).
Metadata = dict[str, RawMetadataValue]
GRID_ROWS = 500  # the UI grid shows the first rows; the integration log holds them all


def table_metadata(frame: pl.DataFrame, limit: int = GRID_ROWS) -> MetadataValue:
    """A polars frame as a Dagster table (rendered as a grid), at most ``limit`` rows, values as text."""
    head = frame.head(limit)
    schema = TableSchema(columns=[TableColumn(name=c, type="string") for c in head.columns])
    records = [
        TableRecord({k: ("" if v is None else str(v)[:300]) for k, v in row.items()}) for row in head.iter_rows(named=True)
    ]
    return MetadataValue.table(records=records, schema=schema)


OWNERS = ["team:data-engineering"]
HUBSPOT_POOL = "hubspot"
WRITERS = ["hubspot_companies", "hubspot_contacts", "hubspot_products", "hubspot_deals", "hubspot_line_items",
           "hubspot_orders", "hubspot_carts"]
DRY_RUN_TAG = "fp/dry_run"
DRY_RUN_NOTE = "dry run — nothing written"


def mark_dry_run(context: AssetExecutionContext) -> Metadata:
    """Tag the run as a dry run (so the run list shows it, however it was launched) and return the metadata
    that says so on the materialization."""
    if context.run.tags.get(DRY_RUN_TAG) != "true":
        context.instance.add_run_tags(context.run_id, {DRY_RUN_TAG: "true"})
    return {"note": DRY_RUN_NOTE}


def writer_metadata(
    context: AssetExecutionContext, object_type: str, mapped: Mapped, result: ObjectSyncResult,
    reconcile: bool, partial: bool,
) -> Metadata:
    """A writer's metadata: the panel's \"Tracing Integration\" view of one object type in one run."""
    report = result.report
    metadata: Metadata = {f"count_{k}": v for k, v in result.counts.items()}
    if report.dry_run:
        metadata |= {f"count_{k}": v for k, v in report.counts.items() if k.startswith("would_")}
        metadata |= mark_dry_run(context)
    metadata |= {
        "dagster/row_count": mapped.records.height,
        "dry_run": report.dry_run,
        "api_requests": report.requests,
        "api_write_requests": report.write_requests,
        "associations_created": report.associations_created,
        "associations_created_by_type": MetadataValue.json(result.associated),
        "duration_seconds": round(report.duration_s, 3),
        "records": table_metadata(report.touched_frame()),
        # the grid above holds this run's records only; every record, searchable: the tracing page
        "tracing_page": MetadataValue.url(tracing_page_url(f"/records/{object_type}")),
    }
    if object_type in SOURCES_OF:
        metadata["read_mode"] = INCREMENTAL if partial else FULL
    if result.baselined:
        metadata["count_baselined"] = result.baselined
    if report.counts["associations_removed"]:
        metadata["associations_removed"] = report.counts["associations_removed"]
    if reconcile:  # records edited / deleted by hand in HubSpot that this run wrote back
        metadata |= {"reconcile": True, "count_drifted": report.counts["drifted"], "count_missing": report.counts["missing"]}
    if result.why_nothing_sent:
        metadata["why_nothing_sent"] = result.why_nothing_sent
    return metadata
