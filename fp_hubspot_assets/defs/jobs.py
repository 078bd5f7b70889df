"""Jobs: the main sync job (every asset) and the cart job the sensors request."""

from dagster import AssetSelection, define_asset_job

SYNC_JOB = "sync_hubspot"
CART_JOB = "sync_carts"
# Dagster's console logger defaults to DEBUG: thousands of engine lines per run in the `make dev` terminal.
# INFO by default; a run's config can still ask for DEBUG.
INFO_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

sync_hubspot = define_asset_job(
    SYNC_JOB,
    selection=AssetSelection.all(),
    description="The main job: read SAP + FocusPoint, map, and write every changed record to HubSpot.",
    config=INFO_LOGS,
)

# Deals and their line items plus everything they need to be correct: their contacts and companies (a new cart
# may come from a new customer) and products (line items point at them). Only changed records are written
# (hash diff), so on a quiet store this run costs a handful of API requests. The ID map asset is left out:
# it only republishes the state store and is refreshed by the main job.
sync_carts = define_asset_job(
    CART_JOB,
    selection=AssetSelection.assets("hubspot_deals", "hubspot_line_items").upstream()
    | AssetSelection.assets("integration_log"),
    description="Requested by the new_carts and cart_abandonment sensors: syncs new and changed carts' deals "
    "(Checkout Pending / Abandoned / the order's stage), their line items, and any contact or company missing.",
    config=INFO_LOGS,
)

jobs = [sync_hubspot, sync_carts]
