"""Schedules and sensors that keep HubSpot in sync without anyone pressing a button (docs/automation.md).

- ``incremental_hubspot_sync`` (every 15 minutes) compares SAP/FocusPoint change markers (the newest
  ``UpdatedAt`` / ``UpdateDate``+``UpdateTS`` per entity: a few indexed MAX queries) and the panel with what
  the last *successful* sync started from, and requests ``sync_hubspot`` only when something changed (or
  rejected records wait for a retry). The run reads orders and carts changed since the last successful
  run (``defs/incremental.py``) and the other entities in full (cross-record rules need them), and writes
  only the records whose payload changed (hash diff). The run's final step (``integration_log``)
  stores the markers this tick read as the new cursor, so a change landing while the run works is newer
  than that cursor and triggers the next tick.
- ``nightly_hubspot_reconcile`` (02:30 UTC) runs ``sync_hubspot`` with a full read and ``hubspot.reconcile``: every
  record we own is read back from HubSpot and the ones edited or deleted by hand there are written again.
- ``new_carts`` watches FP_CART.UpdatedAt and requests ``sync_carts`` when carts were added or changed.
- ``cart_abandonment`` requests ``sync_carts`` when open carts crossed the panel's abandonment threshold
  since its last tick, so their deals move to Checkout Abandoned within minutes.

Both sensors only probe an index range of FP_CART (``SapReader.cart_changes`` / ``newest_cart_change``):
a tick costs the same on a thousand or a million carts. The run they request reads the carts (and orders)
changed since the last successful run, whatever the sensor saw; run keys derived from the change markers
make a tick that is evaluated twice request one run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    schedule,
    sensor,
)

from fp_hubspot_assets import mapping
from fp_hubspot_assets.defs.incremental import CARTS_SINCE_TAG
from fp_hubspot_assets.defs.jobs import CART_JOB, SYNC_JOB, sync_carts, sync_hubspot
from fp_hubspot_assets.defs.resources import PanelResource, SapSourceResource, StateStoreResource
from fp_hubspot_assets.hubspot.sync import MAX_FAILED_ATTEMPTS
from fp_hubspot_assets.panel import PanelSettings
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets.state.queries import cursor_updated_at
from fp_hubspot_assets.state.store import StateStore

NEW_CARTS_INTERVAL_SECONDS = 60
ABANDONMENT_INTERVAL_SECONDS = 300
TRIGGER_TAG = "fp/trigger"
CARTS_TAG = "fp/carts"

# The clock the abandonment sensor reads (naive UTC, like the source markers); a module attribute so tests
# can pin "now" to check the threshold edges.
utcnow: Callable[[], datetime] = lambda: datetime.now(UTC).replace(tzinfo=None)  # noqa: E731

def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _parse(cursor: str | None) -> datetime | None:
    return datetime.fromisoformat(cursor) if cursor else None


def _report_future_markers(
    context: SensorEvaluationContext | ScheduleEvaluationContext, reader: SapReader, entities: tuple[str, ...]
) -> list[str]:
    """Rows whose change marker lies in the future are left out of the cursor (``marker_horizon``); name them
    in the tick's log so someone fixes the source's clock or data."""
    rows = [row for entity in entities for row in reader.future_markers(entity)]
    if rows:
        context.log.warning(
            f"{len(rows)} source row(s) carry a change marker in the future, ignored for change detection "
            f"(markers are capped at now + a few minutes): {', '.join(rows[:20])}"
        )
    return rows


def _queued(instance: DagsterInstance, job_name: str) -> bool:
    """A run of ``job_name`` that has not started yet reads the source when it starts, so it will see
    whatever this tick saw: no need to queue a second one behind it."""
    waiting = instance.get_run_records(
        RunsFilter(job_name=job_name, statuses=[DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED]), limit=1
    )
    return bool(waiting)


def _request(
    context: SensorEvaluationContext, trigger: str, key: str, carts: int, cursor: str, extra: Mapping[str, str] | None = None
) -> SensorResult:
    if _queued(context.instance, CART_JOB):
        return SensorResult(skip_reason=f"{carts} cart(s) {trigger}; a queued {CART_JOB} run will sync them",
                            cursor=cursor)
    tags = {TRIGGER_TAG: trigger, CARTS_TAG: str(carts), **(extra or {})}
    return SensorResult(run_requests=[RunRequest(run_key=key, tags=tags)], cursor=cursor)


@sensor(
    name="new_carts",
    job=sync_carts,
    minimum_interval_seconds=NEW_CARTS_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests sync_carts when FocusPoint carts are added or changed (cursor: newest FP_CART.UpdatedAt).",
)
def new_carts(context: SensorEvaluationContext, sap: SapSourceResource, state: StateStoreResource) -> SensorResult:
    since = _parse(context.cursor) or _synced_carts(state.store())
    with sap.reader() as reader:
        _report_future_markers(context, reader, ("carts",))
        if since is None:  # first tick: one run brings every cart in (the diff skips what is already there)
            newest = reader.newest_cart_change()
            changed = 1 if newest is not None else 0
        else:
            changed, newest = reader.cart_changes(since)
    if newest is None:
        return SensorResult(skip_reason="no new or changed carts", cursor=context.cursor)
    return _request(context, "changed", f"new_carts:{_stamp(newest)}", changed, _stamp(newest))


def _synced_carts(store: StateStore) -> datetime | None:
    """A first tick after a successful sync (a CLI run, `make demo`) starts from the carts that sync saw,
    instead of requesting a run that finds nothing to write."""
    last = SourceState.from_json(store.get_cursor(SYNC_CURSOR))
    return _parse(last.markers.get("carts")) if last else None


def _synced_abandonment(store: StateStore, hours: float) -> datetime | None:
    """The threshold the last successful sync already applied (its deals were mapped with the clock of that
    run), less SYNC_CLOCK_MARGIN for the time between mapping and recording it; None: no sync yet."""
    synced_at = cursor_updated_at(store, SYNC_CURSOR)
    if synced_at is None:
        return None
    return abandonment_threshold(synced_at.astimezone(UTC).replace(tzinfo=None) - SYNC_CLOCK_MARGIN, hours)


def abandonment_threshold(now: datetime, hours: float) -> datetime:
    """Open carts last changed at or before this moment are abandoned."""
    return now - timedelta(hours=hours)


@sensor(
    name="cart_abandonment",
    job=sync_carts,
    minimum_interval_seconds=ABANDONMENT_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests sync_carts when open carts passed the panel's abandoned_cart_hours since the last tick, "
    "so their deals move to Checkout Abandoned (cursor: the threshold checked last).",
)
def cart_abandonment(
    context: SensorEvaluationContext, sap: SapSourceResource, panel: PanelResource, state: StateStoreResource
) -> SensorResult:
    hours = panel.settings().abandoned_cart_hours
    threshold = abandonment_threshold(utcnow(), hours)
    checked_until = _parse(context.cursor) or _synced_abandonment(state.store(), hours)
    with sap.reader() as reader:
        if checked_until is None:  # first tick: is any open cart past the threshold at all? (one index probe)
            newest = reader.newest_cart_change(until=threshold, open_only=True)
            crossed = 1 if newest is not None else 0
        elif threshold <= checked_until:  # the panel's hours grew: nothing new can have crossed
            crossed, newest = 0, None
        else:
            crossed, newest = reader.cart_changes(checked_until, until=threshold, open_only=True)
    cursor = _stamp(max(threshold, checked_until) if checked_until else threshold)
    if newest is None:
        return SensorResult(skip_reason="no open cart crossed the abandonment threshold", cursor=cursor)
    key = f"cart_abandonment:{context.cursor or 'first'}:{_stamp(newest)}"
    # Crossing the threshold changes no marker: the run must read these carts whatever its cursor says.
    since = {CARTS_SINCE_TAG: _stamp(checked_until) if checked_until else ""}
    return _request(context, "abandoned", key, crossed, cursor, since)


# ---------------------------------------------------------------- schedules

INCREMENTAL_CRON = "*/15 * * * *"
RECONCILE_CRON = "30 2 * * *"  # UTC
SYNC_CURSOR = "incremental_hubspot_sync"  # the state-store cursor: SourceState of the last successful sync
SYNC_CLOCK_MARGIN = timedelta(minutes=15)  # longest expected gap between a run's mapping and its last step
SOURCE_STATE_TAG = "fp/source_state"  # the SourceState (JSON) a run started from
SOURCE_DIGEST_TAG = "fp/source_digest"  # its digest (plus pending retries): the run key, and a tag to find runs by
CHANGED_TAG = "fp/changed"  # why the incremental tick requested the run, for people reading the run list
# Entities with change markers (``SapReader.max_updated_at``). Web stores have none: a store change is
# picked up by the next run for another reason, at the latest by the nightly reconcile.
MARKED_ENTITIES = ("customers", "addresses", "items", "orders", "carts")
RECONCILE_RUN_CONFIG = {
    "resources": {"hubspot": {"config": {"reconcile": True}}, "sync_mode": {"config": {"mode": "full"}}}
}


@dataclass(frozen=True)
class SourceState:
    """What a sync reads from: the newest change marker per source entity and the panel settings' digest."""

    markers: Mapping[str, str | None]  # entity -> newest marker (ISO, microseconds) or None (empty table)
    panel: str

    def to_json(self) -> str:
        return json.dumps({"markers": dict(sorted(self.markers.items())), "panel": self.panel}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> SourceState | None:
        if not text:
            return None
        raw = json.loads(text)
        return cls(dict(raw.get("markers", {})), str(raw.get("panel", "")))

    def changes_since(self, last: SourceState | None) -> list[str]:
        """Why a sync is due: the entities with a marker newer than ``last``'s, and a changed panel."""
        if last is None:
            return ["no successful sync recorded yet"]
        changed = [e for e, m in sorted(self.markers.items()) if m is not None and (last.markers.get(e) or "") < m]
        reasons = [f"{e} changed" for e in changed]
        if self.panel != last.panel:
            reasons.append("panel settings changed")
        return reasons

    def merged_after(self, earlier: SourceState | None) -> SourceState:
        """The cursor after a successful run that started from ``self``: markers never move backwards (a run
        that started earlier may finish after a later one)."""
        if earlier is None:
            return self
        markers = dict(earlier.markers)
        for entity, marker in self.markers.items():
            markers[entity] = max((m for m in (marker, markers.get(entity)) if m), default=None)
        return SourceState(markers, self.panel)


def panel_digest(settings: PanelSettings) -> str:
    return hashlib.blake2b(settings.model_dump_json().encode(), digest_size=8).hexdigest()


def read_source_state(reader: SapReader, settings: PanelSettings) -> SourceState:
    """The current markers: one or a few indexed MAX queries per entity, never a read of the rows."""
    markers = {}
    for entity in MARKED_ENTITIES:
        newest = reader.max_updated_at(entity)
        markers[entity] = _stamp(newest) if newest is not None else None
    return SourceState(markers, panel_digest(settings))


def pending_retries(store: StateStore) -> int:
    """Rejected records that the next run will send again (fewer than MAX_FAILED_ATTEMPTS rejections): the
    sum of their attempts, so it changes after every run that retried them."""
    total = 0
    for object_type in mapping.OBJECT_TYPES:
        attempts = store.failures(object_type)["attempts"]
        total += int(attempts.filter(attempts < MAX_FAILED_ATTEMPTS).sum() or 0)
    return total


def source_tags(current: SourceState, extra: str = "") -> dict[str, str]:
    text = current.to_json()
    digest = hashlib.blake2b((text + extra).encode(), digest_size=8).hexdigest()
    return {SOURCE_STATE_TAG: text, SOURCE_DIGEST_TAG: digest}


def record_sync_cursor(store: StateStore, tags: Mapping[str, str]) -> SourceState | None:
    """Called by the last step of a sync run (``integration_log``, which runs only when every writer
    succeeded): the SourceState the run was requested with becomes the cursor. Runs without the tag (the
    CLI, a run launched by hand) leave the cursor alone; the next tick then finds the changes and runs once
    more, writing nothing that is already in HubSpot."""
    started_from = SourceState.from_json(tags.get(SOURCE_STATE_TAG))
    if started_from is None:
        return None
    cursor = started_from.merged_after(SourceState.from_json(store.get_cursor(SYNC_CURSOR)))
    store.set_cursor(SYNC_CURSOR, cursor.to_json())
    return cursor


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
        _report_future_markers(context, reader, MARKED_ENTITIES)
    store = state.store()
    reasons = current.changes_since(SourceState.from_json(store.get_cursor(SYNC_CURSOR)))
    retries = pending_retries(store)
    if retries:
        reasons.append("rejected records wait for a retry")
    if not reasons:
        return SkipReason("no SAP or FocusPoint change since the last successful sync")
    if _queued(context.instance, SYNC_JOB):
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
sensors: list[SensorDefinition] = [new_carts, cart_abandonment]
