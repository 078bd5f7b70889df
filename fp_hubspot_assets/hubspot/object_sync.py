"""Sync one object type: resolve its columns, write its records and associations, then remove what the source
no longer has (docs/identity.md). The Dagster writer assets call ``sync_object_type`` and render its result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from fp_hubspot_assets.hubspot import removals
from fp_hubspot_assets.hubspot.properties import ORDER_PIPELINE_STATE_KEY, pipeline_from_state
from fp_hubspot_assets.hubspot.sync import SyncContext, SyncReport, sync_associations, sync_records
from fp_hubspot_assets.mapping import Mapped
from fp_hubspot_assets.objects import ObjectSpec, synced_types
from fp_hubspot_assets.panel import PanelSettings
from fp_hubspot_assets.state.queries import log_new_source_problems
from fp_hubspot_assets.state.store import StateStore

Resolver = Callable[[pl.DataFrame, StateStore], pl.DataFrame]


def _resolve_deals(records: pl.DataFrame, store: StateStore) -> pl.DataFrame:
    pipeline = pipeline_from_state(store)
    return records.with_columns(
        pl.col("dealstage").replace_strict(pipeline["stages"], default=None).alias("dealstage"),
        pl.lit(pipeline["pipeline_id"]).alias("pipeline"),
    )


def _resolve_orders(records: pl.DataFrame, store: StateStore) -> pl.DataFrame:
    pipeline = pipeline_from_state(store, ORDER_PIPELINE_STATE_KEY)
    if not pipeline["pipeline_id"]:  # no pipeline of ours (free tier): HubSpot's default, stage in fp_order_stage
        return records.drop("hs_pipeline_stage")
    return records.with_columns(
        pl.col("hs_pipeline_stage").replace_strict(pipeline["stages"], default=None).alias("hs_pipeline_stage"),
        pl.lit(pipeline["pipeline_id"]).alias("hs_pipeline"),
    )


def _resolve_line_items(records: pl.DataFrame, store: StateStore) -> pl.DataFrame:
    ids = store.hubspot_ids("products", records["product_key"].drop_nulls().unique().to_list())
    return records.with_columns(
        pl.col("product_key").replace_strict(ids, default=None, return_dtype=pl.String).fill_null("").alias("hs_product_id")
    )


# Columns resolved from the state store just before writing: the deal and order stage ids of our pipelines,
# the HubSpot id of a line item's product.
RESOLVERS: dict[str, Resolver] = {"deals": _resolve_deals, "orders": _resolve_orders, "line_items": _resolve_line_items}
# "Ignore existing deals" (first set-up) records the deals and orders that existed then; they are left out.
# Per object type: the column naming a baselined record (its own key, or a line item's deal / order).
BASELINE_COLUMNS: dict[str, tuple[str, ...]] = {
    "deals": ("source_key",), "orders": ("source_key",), "line_items": ("assoc_deals", "assoc_orders"),
}
# Which baseline a column is checked against.
BASELINE_OF: dict[str, str] = {"assoc_deals": "deals", "assoc_orders": "orders"}


@dataclass
class ObjectSyncResult:
    report: SyncReport
    counts: dict[str, int]  # the report's summary plus the mapping's skipped / repaired / excluded
    baselined: int  # records of baselined deals and orders left out
    why_nothing_sent: str | None  # the reason, when every record was excluded or the type is not synced
    associated: dict[str, int]  # associations created per associated type (each its own endpoint and batches)


def sync_object_type(
    spec: ObjectSpec, mapped: Mapped, ctx: SyncContext, settings: PanelSettings, *, partial: bool
) -> ObjectSyncResult:
    """Sync one object type and its associations.

    ``partial``: the sources were read incrementally, so a record missing from the payload was not read
    rather than deleted; vanished-record detection and the deletion guard are skipped. A child type
    (``spec.parent``: line items → deal) has the children of a synced parent that the source no longer has
    archived; other types follow the panel's ``deletes`` policy when their source record vanishes."""
    object_type, children = spec.name, spec.parent is not None
    client = ctx.client or ctx.reader
    requests_before = client.total_requests if client else 0
    writes_before = client.write_requests if client else 0
    records, baselined = _without_baseline(mapped.records, ctx.state, object_type)
    resolve = RESOLVERS.get(object_type)
    if resolve is not None and records.height:
        try:
            records = resolve(records, ctx.state)
        except RuntimeError:
            if not ctx.dry_run:  # a dry run before set-up reports stage names instead of stage ids
                raise
    report = SyncReport(object_type, dry_run=ctx.dry_run)
    present = mapped.present_keys()
    # a type this commerce.objects mode does not sync is left as HubSpot has it: nothing vanished, nothing removed
    synced = object_type in synced_types(settings.commerce.objects)
    gone = None if children or partial or not synced else removals.vanished(ctx, object_type, present)
    if gone is not None:  # before any write: a suspicious mass deletion stops the asset untouched
        removals.guard_deletes(ctx, object_type, gone, settings.deletes, settings.deletes_max_share)
    if object_type == "deals":
        removals.merge_late_links(ctx, mapped.aliases, report)
    sync_records(ctx, object_type, spec.id_property, records, report)
    associated: dict[str, int] = {}
    for ref in spec.references:
        if ref.column in records.columns:
            before = report.associations_created
            sync_associations(ctx, object_type, ref.to_type, records.select("source_key", ref.column), report)
            associated[ref.to_type] = report.associations_created - before
    if children:
        removals.archive_removed_children(ctx, object_type, records, mapped.parents, present, report)
    elif gone is not None:
        removals.apply_deletes(ctx, object_type, gone, settings.deletes, report)
    if client:
        report.requests = client.total_requests - requests_before
        report.write_requests = client.write_requests - writes_before
    issues = mapped.issues.filter(pl.col("action") != "excluded")
    if not ctx.dry_run and issues.height:
        # logged when a problem appears or changes; the counts below still include every current one
        log_new_source_problems(ctx.state, ctx.run_id, object_type, issues.select("source_key", "action", "reason").iter_rows())
    excluded = mapped.issues.height - issues.height + baselined
    counts = report.summary() | {
        "skipped": report.counts["skipped"] + issues.filter(pl.col("action") == "skipped").height,
        "repaired": issues.filter(pl.col("action") == "repaired").height,
        "excluded": excluded,
    }
    why_nothing_sent = str(mapped.issues["reason"][0]) if excluded and not mapped.records.height else None
    if not synced:
        why_nothing_sent = f"commerce.objects is {settings.commerce.objects}: {object_type} are not synced"
    return ObjectSyncResult(report, counts, baselined, why_nothing_sent, associated)


def _without_baseline(records: pl.DataFrame, store: StateStore, object_type: str) -> tuple[pl.DataFrame, int]:
    """Drop records of baselined deals and orders (those that existed at first set-up) and the line items of
    either; returns (kept, how many dropped)."""
    columns = [c for c in BASELINE_COLUMNS.get(object_type, ()) if c in records.columns]
    if not columns or not records.height:
        return records, 0
    dropped = pl.lit(False)
    for column in columns:
        baseline = store.baseline(object_type if column == "source_key" else BASELINE_OF[column])
        if baseline:
            dropped = dropped | pl.col(column).is_in(sorted(baseline)).fill_null(False)
    kept = records.filter(~dropped)
    return kept, records.height - kept.height
