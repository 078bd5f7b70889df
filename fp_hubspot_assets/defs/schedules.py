"""Schedules that keep HubSpot in sync without anyone pressing a button (docs/automation.md).

- ``incremental_hubspot_sync`` (every 15 minutes) compares SAP/FocusPoint change markers (the newest
  ``UpdatedAt`` / ``UpdateDate``+``UpdateTS`` per entity: a few indexed MAX queries) and the panel with what
  the last *successful* sync started from (``state/sync_cursor.py``), and requests ``sync_hubspot`` only when
  something changed (or rejected records wait for a retry). The run reads the rows changed since the last
  successful run and the rows their mapping needs beside them (``defs/incremental.py``), and writes only the
  records whose payload changed (hash diff). The run's final step (``integration_log``)
  stores the markers this tick read as the new cursor, so a change landing while the run works is newer
  than that cursor and triggers the next tick.
- ``nightly_hubspot_reconcile`` (02:30 UTC) runs ``sync_hubspot`` with a full read and ``hubspot.reconcile``: every
  record we own is read back from HubSpot and the ones edited or deleted by hand there are written again.
"""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from fp_hubspot_assets.defs.automation import TRIGGER_TAG, queued, report_future_markers
from fp_hubspot_assets.defs.jobs import SYNC_JOB, sync_hubspot
from fp_hubspot_assets.defs.resources import PanelResource, SapSourceResource, StateStoreResource
from fp_hubspot_assets.state.sync_cursor import (
    MARKED_ENTITIES,
    SOURCE_DIGEST_TAG,
    last_synced,
    pending_retries,
    read_source_state,
    source_tags,
)

INCREMENTAL_CRON = "*/15 * * * *"
RECONCILE_CRON = "30 2 * * *"  # UTC
CHANGED_TAG = "fp/changed"  # why the incremental tick requested the run, for people reading the run list
RECONCILE_RUN_CONFIG = {
    "resources": {"hubspot": {"config": {"reconcile": True}}, "sync_mode": {"config": {"mode": "full"}}}
}


def _failed_attempts(instance: DagsterInstance, digest: str) -> int:
    """Runs requested for this very source state that did not succeed; part of the run key, because Dagster
    never launches a run key twice and a failed run must be retried at the next tick."""
    return instance.get_runs_count(
        RunsFilter(tags={SOURCE_DIGEST_TAG: digest}, statuses=[DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED])
    )


@schedule(
    name="incremental_hubspot_sync",
    cron_schedule=INCREMENTAL_CRON,
    job=sync_hubspot,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes: runs sync_hubspot when SAP/FocusPoint change markers or the panel moved since "
    "the last successful sync (or rejected records wait for a retry); skips otherwise. See docs/automation.md.",
)
def incremental_hubspot_sync(
    context: ScheduleEvaluationContext, sap: SapSourceResource, state: StateStoreResource, panel: PanelResource
) -> RunRequest | SkipReason:
    with sap.reader() as reader:
        current = read_source_state(reader, panel.settings())
        report_future_markers(context, reader, MARKED_ENTITIES)
    store = state.store()
    reasons = current.changes_since(last_synced(store))
    retries = pending_retries(store)
    if retries:
        reasons.append("rejected records wait for a retry")
    if not reasons:
        return SkipReason("no SAP or FocusPoint change since the last successful sync")
    if queued(context.instance, SYNC_JOB):
        return SkipReason(f"{'; '.join(reasons)} — a queued {SYNC_JOB} run will read it")
    tags = source_tags(current, extra=f"retries={retries}")
    digest = tags[SOURCE_DIGEST_TAG]
    failed = _failed_attempts(context.instance, digest)
    key = f"incremental_hubspot_sync:{digest}" + (f":retry{failed}" if failed else "")
    return RunRequest(run_key=key, tags=tags | {TRIGGER_TAG: "incremental", CHANGED_TAG: "; ".join(reasons)})


@schedule(
    name="nightly_hubspot_reconcile",
    cron_schedule=RECONCILE_CRON,
    job=sync_hubspot,
    default_status=DefaultScheduleStatus.RUNNING,
    description="02:30 UTC: sync_hubspot with hubspot.reconcile on — reads every record we own back from HubSpot "
    "and writes only those edited or deleted there by hand (and any source change). See docs/automation.md.",
)
def nightly_hubspot_reconcile(
    context: ScheduleEvaluationContext, sap: SapSourceResource, panel: PanelResource
) -> RunRequest:
    with sap.reader() as reader:
        current = read_source_state(reader, panel.settings())
    day = (context.scheduled_execution_time or datetime.now(UTC)).strftime("%Y-%m-%d")
    tags = source_tags(current, extra="reconcile") | {TRIGGER_TAG: "reconcile"}
    return RunRequest(run_key=f"nightly_hubspot_reconcile:{day}", run_config=RECONCILE_RUN_CONFIG, tags=tags)


schedules: list[ScheduleDefinition] = [incremental_hubspot_sync, nightly_hubspot_reconcile]
