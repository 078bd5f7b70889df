"""The one Definitions object: assets, checks, jobs, schedules, sensors and resources."""

from __future__ import annotations

from dagster import Definitions

from fp_hubspot_assets.defs import automation, first_setup
from fp_hubspot_assets.defs.checks import all_checks
from fp_hubspot_assets.defs.hubspot_assets import hubspot_assets, payload_assets
from fp_hubspot_assets.defs.incremental import SyncModeResource
from fp_hubspot_assets.defs.jobs import SYNC_JOB, jobs
from fp_hubspot_assets.defs.resources import (
    HubSpotResource,
    PanelResource,
    SapSourceResource,
    StateStoreResource,
)
from fp_hubspot_assets.defs.run_storage import RunScopedIOManager
from fp_hubspot_assets.defs.sap_assets import sap_assets

__all__ = ["SYNC_JOB", "build_resources", "defs"]


def build_resources() -> dict[str, object]:
    """Every resource reads its location from the environment at run time (see README → Configuration)."""
    return {
        "panel": PanelResource(),
        "sap": SapSourceResource(),
        "state": StateStoreResource(),
        "hubspot": HubSpotResource(),
        "sync_mode": SyncModeResource(),
        # one directory of asset values per run: concurrent runs never read each other's frames (defs/run_storage.py)
        "io_manager": RunScopedIOManager(),
    }


defs = Definitions(
    assets=[*sap_assets, *payload_assets, *hubspot_assets, *first_setup.assets],
    asset_checks=all_checks,
    jobs=[*jobs, *first_setup.jobs],
    schedules=automation.schedules,
    sensors=automation.sensors,
    resources=build_resources(),
)
