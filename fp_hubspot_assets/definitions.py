"""The one Definitions object: assets, checks, jobs, schedules, sensors and resources."""

from __future__ import annotations

from dagster import Definitions, EnvVar

from fp_hubspot_assets.defs import automation, first_setup, schedules
from fp_hubspot_assets.defs.checks import all_checks
from fp_hubspot_assets.defs.hubspot_assets import hubspot_assets
from fp_hubspot_assets.defs.incremental import SyncModeResource
from fp_hubspot_assets.defs.jobs import SYNC_JOB, jobs
from fp_hubspot_assets.defs.log_assets import log_assets
from fp_hubspot_assets.defs.payload_assets import payload_assets
from fp_hubspot_assets.defs.resources import (
    HubSpotResource,
    PanelResource,
    SapSourceResource,
    StateStoreResource,
)
from fp_hubspot_assets.defs.run_storage import RunScopedIOManager
from fp_hubspot_assets.defs.sap_assets import sap_assets
from fp_hubspot_assets.preflight import sap_time_zone_from_env

__all__ = ["SYNC_JOB", "build_resources", "defs"]


def build_resources() -> dict[str, object]:
    """Where data comes from, read from the environment at run time (``EnvVar``: the UI's resource page names
    the variables; README → Configuration). A run config can still set each one."""
    return {
        "panel": PanelResource(),  # path empty: $FP_PANEL_FILE, else the embedded defaults (panel.example.yaml)
        # the zone is read when the code loads: an unknown name stops the load naming $FP_SAP_TIME_ZONE
        "sap": SapSourceResource(url=EnvVar("FP_SAP_URL"), time_zone=sap_time_zone_from_env()),
        "state": StateStoreResource(url=EnvVar("FP_STATE_URL")),
        "hubspot": HubSpotResource(),
        "sync_mode": SyncModeResource(),
        # one directory of asset values per run: concurrent runs never read each other's frames (defs/run_storage.py)
        "io_manager": RunScopedIOManager(),
    }


defs = Definitions(
    assets=[*sap_assets, *payload_assets, *hubspot_assets, *log_assets, *first_setup.assets],
    asset_checks=all_checks,
    jobs=jobs,
    schedules=schedules.schedules,
    sensors=automation.sensors,
    resources=build_resources(),
)
