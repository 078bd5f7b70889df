"""Sensors that request ``sync_carts`` when the store's carts change (docs/automation.md; the schedules are in
``defs/schedules.py``).

- ``new_carts`` watches FP_CART.UpdatedAt and requests ``sync_carts`` when carts were added or changed.
- ``cart_abandonment`` requests ``sync_carts`` when open carts crossed the panel's abandonment threshold
  since its last tick, so their deals move to Checkout Abandoned within minutes.

Both sensors only probe an index range of FP_CART (``SapReader.cart_changes`` / ``newest_cart_change``):
a tick costs the same on a thousand or a million carts. The run they request reads the carts (and orders)
changed since the last successful run, whatever the sensor saw; run keys derived from the change markers
make a tick that is evaluated twice request one run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from fp_hubspot_assets.defs.jobs import CART_JOB, sync_carts
from fp_hubspot_assets.defs.resources import PanelResource, SapSourceResource, StateStoreResource
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets.state.read_markers import CARTS_SINCE_TAG
from fp_hubspot_assets.state.sync_cursor import (
    abandonment_threshold,
    parse_stamp,
    stamp,
    synced_abandonment,
    synced_carts,
)

NEW_CARTS_INTERVAL_SECONDS = 60
ABANDONMENT_INTERVAL_SECONDS = 300
TRIGGER_TAG = "fp/trigger"
CARTS_TAG = "fp/carts"

# The clock the abandonment sensor reads (naive UTC, like the source markers); a module attribute so tests
# can pin "now" to check the threshold edges.
utcnow: Callable[[], datetime] = lambda: datetime.now(UTC).replace(tzinfo=None)  # noqa: E731

def report_future_markers(
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


def queued(instance: DagsterInstance, job_name: str) -> bool:
    """A run of ``job_name`` that has not started yet reads the source when it starts, so it will see
    whatever this tick saw: no need to queue a second one behind it."""
    waiting = instance.get_run_records(
        RunsFilter(job_name=job_name, statuses=[DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED]), limit=1
    )
    return bool(waiting)


def _request(
    context: SensorEvaluationContext, trigger: str, key: str, carts: int, cursor: str, extra: Mapping[str, str] | None = None
) -> SensorResult:
    if queued(context.instance, CART_JOB):
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
    since = parse_stamp(context.cursor) or synced_carts(state.store())
    with sap.reader() as reader:
        report_future_markers(context, reader, ("carts",))
        if since is None:  # first tick: one run brings every cart in (the diff skips what is already there)
            newest = reader.newest_cart_change()
            changed = 1 if newest is not None else 0
        else:
            changed, newest = reader.cart_changes(since)
    if newest is None:
        return SensorResult(skip_reason="no new or changed carts", cursor=context.cursor)
    return _request(context, "changed", f"new_carts:{stamp(newest)}", changed, stamp(newest))


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
    checked_until = parse_stamp(context.cursor) or synced_abandonment(state.store(), hours)
    with sap.reader() as reader:
        if checked_until is None:  # first tick: is any open cart past the threshold at all? (one index probe)
            newest = reader.newest_cart_change(until=threshold, open_only=True)
            crossed = 1 if newest is not None else 0
        elif threshold <= checked_until:  # the panel's hours grew: nothing new can have crossed
            crossed, newest = 0, None
        else:
            crossed, newest = reader.cart_changes(checked_until, until=threshold, open_only=True)
    cursor = stamp(max(threshold, checked_until) if checked_until else threshold)
    if newest is None:
        return SensorResult(skip_reason="no open cart crossed the abandonment threshold", cursor=cursor)
    key = f"cart_abandonment:{context.cursor or 'first'}:{stamp(newest)}"
    # Crossing the threshold changes no marker: the run must read these carts whatever its cursor says.
    since = {CARTS_SINCE_TAG: stamp(checked_until) if checked_until else ""}
    return _request(context, "abandoned", key, crossed, cursor, since)


sensors: list[SensorDefinition] = [new_carts, cart_abandonment]
