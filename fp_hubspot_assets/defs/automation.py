"""Schedules and sensors that keep HubSpot in sync without anyone pressing a button.

- ``hourly_hubspot_sync`` runs the main job: every asset, diffed against the state store, so a quiet hour
  costs a few read requests and no writes. It is also the safety net for anything a sensor cannot see (a
  row written with a back-dated marker, a source without change markers). A second nightly "full" schedule
  would run the very same diff and is therefore not defined (docs/panel-options.md → Continuous sync).
- ``new_carts`` watches FP_CART.UpdatedAt and requests ``sync_carts`` when carts were added or changed.
- ``cart_abandonment`` requests ``sync_carts`` when open carts crossed the panel's abandonment threshold
  since its last tick, so their deals move to Checkout Abandoned within minutes, not at the next hour.

Both sensors only probe an index range of FP_CART (``SapReader.cart_changes`` / ``newest_cart_change``):
a tick costs the same on a thousand or a million carts. The run they request reads and diffs every cart,
which keeps it correct whatever the sensor saw; run keys derived from the change markers make a tick that
is evaluated twice request one run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dagster import (
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from fp_hubspot_assets.defs.jobs import CART_JOB, sync_carts, sync_hubspot
from fp_hubspot_assets.defs.resources import SapSourceResource
from fp_hubspot_assets.panel import PanelResource

NEW_CARTS_INTERVAL_SECONDS = 60
ABANDONMENT_INTERVAL_SECONDS = 300
TRIGGER_TAG = "fp/trigger"
CARTS_TAG = "fp/carts"

# The clock the abandonment sensor reads (naive UTC, like the source markers); a module attribute so tests
# can pin "now" to check the threshold edges.
utcnow: Callable[[], datetime] = lambda: datetime.now(UTC).replace(tzinfo=None)  # noqa: E731

hourly_sync = ScheduleDefinition(
    name="hourly_hubspot_sync",
    job=sync_hubspot,
    cron_schedule="17 * * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Full diff sync every hour; only changed records cost API requests.",
)


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _parse(cursor: str | None) -> datetime | None:
    return datetime.fromisoformat(cursor) if cursor else None


def _queued_cart_run(context: SensorEvaluationContext) -> bool:
    """A ``sync_carts`` run that has not started yet reads the carts when it starts, so it will see
    whatever this tick saw: no need to queue a second one behind it."""
    waiting = context.instance.get_run_records(
        RunsFilter(job_name=CART_JOB, statuses=[DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED]), limit=1
    )
    return bool(waiting)


def _request(context: SensorEvaluationContext, trigger: str, key: str, carts: int, cursor: str) -> SensorResult:
    if _queued_cart_run(context):
        return SensorResult(skip_reason=f"{carts} cart(s) {trigger}; a queued {CART_JOB} run will sync them",
                            cursor=cursor)
    tags = {TRIGGER_TAG: trigger, CARTS_TAG: str(carts)}
    return SensorResult(run_requests=[RunRequest(run_key=key, tags=tags)], cursor=cursor)


@sensor(
    name="new_carts",
    job=sync_carts,
    minimum_interval_seconds=NEW_CARTS_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests sync_carts when FocusPoint carts are added or changed (cursor: newest FP_CART.UpdatedAt).",
)
def new_carts(context: SensorEvaluationContext, sap: SapSourceResource) -> SensorResult:
    since = _parse(context.cursor)
    with sap.reader() as reader:
        if since is None:  # first tick: one run brings every cart in (the diff skips what is already there)
            newest = reader.newest_cart_change()
            changed = 1 if newest is not None else 0
        else:
            changed, newest = reader.cart_changes(since)
    if newest is None:
        return SensorResult(skip_reason="no new or changed carts", cursor=context.cursor)
    return _request(context, "changed", f"new_carts:{_stamp(newest)}", changed, _stamp(newest))


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
def cart_abandonment(context: SensorEvaluationContext, sap: SapSourceResource, panel: PanelResource) -> SensorResult:
    threshold = abandonment_threshold(utcnow(), panel.settings().abandoned_cart_hours)
    checked_until = _parse(context.cursor)
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
    return _request(context, "abandoned", key, crossed, cursor)


schedules: list[ScheduleDefinition] = [hourly_sync]
sensors: list[SensorDefinition] = [new_carts, cart_abandonment]
