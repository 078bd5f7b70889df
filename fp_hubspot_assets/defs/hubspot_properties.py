"""``hubspot_properties``: what the sync needs in HubSpot before any record is written — the FocusPoint property
group, our unique id property per object type, the custom properties, the deal pipeline (and the order pipeline
when commerce.objects syncs orders). It is also the first HubSpot step of every run, so it runs the preflight."""

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from fp_hubspot_assets import mapping
from fp_hubspot_assets.defs.metadata import HUBSPOT_POOL, OWNERS, mark_dry_run
from fp_hubspot_assets.defs.resources import (
    HubSpotResource,
    PanelResource,
    SapSourceResource,
    StateStoreResource,
    resolve_connection,
)
from fp_hubspot_assets.hubspot.properties import run_setup
from fp_hubspot_assets.objects import synced_types
from fp_hubspot_assets.preflight import PreflightError, preflight


@asset(group_name="hubspot", kinds={"hubspot"}, owners=OWNERS, pool=HUBSPOT_POOL,
       description="What the sync needs in HubSpot: the FocusPoint property group, our unique id property per "
       "object type, the custom properties, and the e-commerce deal pipeline — plus the order pipeline when "
       "commerce.objects syncs orders (stage ids kept in the state store).")
def hubspot_properties(
    context: AssetExecutionContext, panel: PanelResource, hubspot: HubSpotResource, state: StateStoreResource,
    sap: SapSourceResource,
) -> MaterializeResult:
    # the first writer of every run: a broken set-up stops here, before anything is written anywhere
    try:
        preflight(panel.path or None, sap.url, state.url)
    except PreflightError as exc:
        raise Failure(description=str(exc)) from None
    settings = panel.settings()
    base_url, _token, sandbox = resolve_connection(settings)
    if hubspot.dry_run:
        return MaterializeResult(metadata={"dry_run": True, "hubspot": base_url, **mark_dry_run(context)})
    client = hubspot.client(settings, state.store())
    # only the types this commerce.objects mode syncs: the default (deals) never touches orders or carts
    types = synced_types(settings.commerce.objects)
    report = run_setup(client, state.store(), settings.tier.value, {t: mapping.custom_properties(t) for t in types})
    for note in report.notes:
        context.log.warning(note)
    return MaterializeResult(
        metadata={
            "hubspot": base_url,
            "sandbox": sandbox,
            "created_properties": MetadataValue.json(report.created_properties),
            "pipeline_id": report.pipeline_id,
            "stage_ids": MetadataValue.json(report.stage_ids),
            **({"order_pipeline_id": report.order_pipeline_id, "order_stage_ids": MetadataValue.json(report.order_stage_ids)}
               if "orders" in types else {}),
            "api_requests": client.total_requests,
        }
    )
