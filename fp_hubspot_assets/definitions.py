"""The one Definitions object: assets, checks, jobs, schedules, sensors and resources."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    Definitions,
    ScheduleDefinition,
    define_asset_job,
)

from fp_hubspot_assets.defs.checks import all_checks
from fp_hubspot_assets.defs.hubspot_assets import hubspot_assets, payload_assets
from fp_hubspot_assets.defs.resources import HubSpotResource, SapSourceResource, StateStoreResource
from fp_hubspot_assets.defs.sap_assets import sap_assets
from fp_hubspot_assets.panel import PanelResource

SYNC_JOB = "sync_hubspot"

sync_hubspot = define_asset_job(
    SYNC_JOB,
    selection=AssetSelection.all(),
    description="The main job: read SAP + FocusPoint, map, and write every changed record to HubSpot.",
    tags={"dagster/max_retries": "1"},
)

hourly_sync = ScheduleDefinition(
    name="hourly_hubspot_sync",
    job=sync_hubspot,
    cron_schedule="17 * * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Full diff sync every hour; only changed records cost API requests.",
)


def build_resources() -> dict[str, object]:
    """Every resource reads its location from the environment at run time (see README → Configuration)."""
    return {
        "panel": PanelResource(),
        "sap": SapSourceResource(),
        "state": StateStoreResource(),
        "hubspot": HubSpotResource(),
    }


defs = Definitions(
    assets=[*sap_assets, *payload_assets, *hubspot_assets],
    asset_checks=all_checks,
    jobs=[sync_hubspot],
    schedules=[hourly_sync],
    resources=build_resources(),
)
