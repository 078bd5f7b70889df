"""Jobs: the main sync job (every asset)."""

from dagster import AssetSelection, define_asset_job

SYNC_JOB = "sync_hubspot"

sync_hubspot = define_asset_job(
    SYNC_JOB,
    selection=AssetSelection.all(),
    description="The main job: read SAP + FocusPoint, map, and write every changed record to HubSpot.",
)

jobs = [sync_hubspot]
