"""What HubSpot holds and what a run did: the ID map and the integration log, both read from the state store.

``integration_log`` is the last step of a sync run, reached only when every writer succeeded: it advances the
incremental cursors and prunes earlier runs' stored values."""

import json
from collections.abc import Iterator

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from fp_hubspot_assets.defs import incremental, run_storage
from fp_hubspot_assets.defs.metadata import GRID_ROWS, OWNERS, WRITERS, Metadata, mark_dry_run, table_metadata
from fp_hubspot_assets.defs.resources import HubSpotResource, StateStoreResource
from fp_hubspot_assets.state.read_markers import FULL, MODE
from fp_hubspot_assets.state.sync_cursor import record_sync_cursor
from fp_hubspot_assets.tracing import tracing_page_url


@asset(group_name="hubspot", kinds={"hubspot", "sql"}, owners=OWNERS, deps=[AssetKey(w) for w in WRITERS],
       output_required=False,
       description="Source key ↔ HubSpot id for every object type: the state store's table fp_id_map (search it "
       "on the tracing page). The materialization shows the counts per type and the first rows; it is refreshed "
       "by full runs (and when materialized on its own). An incremental run leaves it as it was: the run's own "
       "changes are in integration_log.")
def hubspot_id_map(context: AssetExecutionContext, state: StateStoreResource) -> Iterator[MaterializeResult]:
    partial = sorted(e for e, read in incremental.run_reads(context.instance, context.run_id).items() if read.get(MODE) != FULL)
    if partial:
        context.log.info(f"not refreshed: this run read {', '.join(partial)} incrementally (a full run refreshes it; "
                         "integration_log lists this run's changes)")  # fmt: skip
        return
    store = state.store()
    # counted and sampled in SQL: the map has a row per synced record (7M at 1M customers), which a frame of
    # it held in memory at the end of every full run (and stored again as the asset's value)
    counts = store.id_map_counts()
    metadata: Metadata = {
        "dagster/row_count": sum(counts.values()),
        "dagster/table_name": "fp_id_map",
        "sample": table_metadata(store.id_map_all(limit=100)),
        **{f"count_{t}": n for t, n in counts.items()},
        "tracing_page": MetadataValue.url(tracing_page_url("/")),
    }
    yield MaterializeResult(metadata=metadata)


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
