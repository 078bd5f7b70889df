"""What HubSpot holds and what a run did: the ID map and the integration log, both read from the state store.

``integration_log`` is the last step of a sync run, reached only when every writer succeeded: it advances the
incremental cursors and prunes earlier runs' stored values."""

import json
from collections.abc import Iterator

import polars as pl
from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, Output, asset

from fp_hubspot_assets.defs import incremental, run_storage
from fp_hubspot_assets.defs.metadata import GRID_ROWS, OWNERS, WRITERS, Metadata, mark_dry_run, table_metadata
from fp_hubspot_assets.defs.resources import HubSpotResource, StateStoreResource
from fp_hubspot_assets.state.read_markers import FULL, MODE
from fp_hubspot_assets.state.sync_cursor import record_sync_cursor
from fp_hubspot_assets.tracing import tracing_page_url


@asset(group_name="hubspot", kinds={"hubspot", "sql"}, owners=OWNERS, deps=[AssetKey(w) for w in WRITERS],
       output_required=False,
       description="Source key ↔ HubSpot id for every object type, from the state store. Refreshed by full runs "
       "(and when materialized on its own); an incremental run leaves it as it was: it reads every synced "
       "record (7M at 1M customers, ~20 s), and the run's own changes are in integration_log.")
def hubspot_id_map(context: AssetExecutionContext, state: StateStoreResource) -> Iterator[Output[pl.DataFrame]]:
    partial = sorted(e for e, read in incremental.run_reads(context.instance, context.run_id).items() if read.get(MODE) != FULL)
    if partial:
        context.log.info(f"not refreshed: this run read {', '.join(partial)} incrementally (a full run refreshes it; "
                         "integration_log lists this run's changes)")  # fmt: skip
        return
    frame = state.store().id_map_all()
    per_type = frame.group_by("object_type").len().sort("object_type") if frame.height else None
    metadata: Metadata = {"dagster/row_count": frame.height, "sample": table_metadata(frame.head(100))}
    if per_type is not None:
        metadata |= {f"count_{t}": int(n) for t, n in per_type.iter_rows()}
    yield Output(frame, metadata=metadata)


@asset(group_name="hubspot", kinds={"sql"}, owners=OWNERS, deps=[AssetKey(w) for w in WRITERS],
       description="The integration log of this run: one row per record written, adopted, skipped or failed. "
       "The rows live in the state store (fp_integration_log; searchable with `fp-hubspot log` and "
       "on the tracing page); the materialization shows the counts and the newest rows.")
def integration_log(
    context: AssetExecutionContext, state: StateStoreResource, hubspot: HubSpotResource
) -> MaterializeResult:
    store = state.store()
    # counted and sampled in SQL: a first sync at 1M customers logs 7M rows, which a frame of the whole log
    # held in memory (and stored again as the asset's value, which nothing read)
    counts = store.log_counts(context.run_id)
    metadata: Metadata = {
        "dagster/row_count": sum(n for actions in counts.values() for n in actions.values()),
        "counts": MetadataValue.json(counts),
        "log": table_metadata(store.log_frame(run_id=context.run_id, limit=GRID_ROWS)),
        "tracing_page": MetadataValue.url(tracing_page_url(f"/log?run={context.run_id}")),
    }
    # The last step, reached only when every writer succeeded: the incremental schedule's cursor advances
    # to the source markers this run was requested with (docs/automation.md).
    cursor = None if hubspot.dry_run else record_sync_cursor(store, context.run.tags)
    if hubspot.dry_run:
        metadata |= mark_dry_run(context)
    if cursor is not None:
        metadata["sync_cursor"] = MetadataValue.json(json.loads(cursor.to_json()))
    # Per entity, the change marker the next incremental read starts from (docs/automation.md).
    markers = {} if hubspot.dry_run else incremental.advance_markers(store, context.instance, context.run_id)
    if markers:
        metadata["read_markers"] = MetadataValue.json(markers)
    pruned = run_storage.prune(context.instance)  # earlier runs' stored frames nobody will read again
    if pruned:
        context.log.info(f"deleted the stored values of {len(pruned)} finished run(s)")
    return MaterializeResult(metadata=metadata)


log_assets = [hubspot_id_map, integration_log]
