"""Jobs: the main sync job (every asset), the cart job the sensors request and the first set-up."""

from dagster import AssetSelection, define_asset_job, in_process_executor

SYNC_JOB = "sync_hubspot"
CART_JOB = "sync_carts"
FIRST_SETUP_JOB = "first_setup"
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
# may come from a new customer; an association whose end is missing would wait for the nightly full read,
# because an incremental run does not read that deal again) and products (line items point at them). Orders
# and carts are read incrementally (only the changed ones and their partners), customers and items those of
# the deals read and the changed ones (see defs/incremental.py); the rest is a hash diff that writes nothing
# on a quiet store. The ID map asset is left out: it only republishes the state store and is refreshed by
# the main job's full runs. Every step runs in the run's own process: a subprocess
# per step cost seconds of start-up each (the cart → deal latency), and the steps are small.
sync_carts = define_asset_job(
    CART_JOB,
    selection=AssetSelection.assets("hubspot_deals", "hubspot_line_items").upstream()
    | AssetSelection.assets("integration_log"),
    executor_def=in_process_executor,
    description="Requested by the new_carts and cart_abandonment sensors: syncs new and changed carts' deals "
    "(Checkout Pending / Abandoned / the order's stage), their line items, and any contact or company missing. "
    "Reads only changed carts and orders (sync_mode resource); runs in one process.",
    config=INFO_LOGS,
)

first_setup_job = define_asset_job(
    FIRST_SETUP_JOB,
    # sap_items too: the checks on sap_orders (which come along) read it.
    selection=AssetSelection.assets("hubspot_first_setup").upstream() | AssetSelection.assets("sap_items"),
    description="First set-up: the schema, then Pull Contacts / Pull Companies / Ignore existing deals as the "
    "panel's first_setup options say (what `fp-hubspot setup` runs). Refused after a sync unless forced.",
)

jobs = [sync_hubspot, sync_carts, first_setup_job]
