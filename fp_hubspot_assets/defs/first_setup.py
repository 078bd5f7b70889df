"""First set-up (Pull Contacts / Pull Companies / Ignore existing deals) as a Dagster asset.

``hubspot_first_setup`` sits between ``hubspot_properties`` (our id properties must exist before they are
stamped) and the writers (which must see the stamped records and the baseline). In the ``first_setup`` job
(`fp-hubspot setup`) it always runs the panel's options, behind the guard; in the sync jobs only once, before
anything was synced (``hubspot.first_setup.why_not_run`` says when and why not). The ``no_ambiguous_matches``
check reports HubSpot duplicates that made a match ambiguous.
"""
# No `from __future__ import annotations`: Dagster reads the Config annotation at definition time.
from collections.abc import Iterator
from typing import Any

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from fp_hubspot_assets.defs.jobs import FIRST_SETUP_JOB
from fp_hubspot_assets.defs.metadata import table_metadata
from fp_hubspot_assets.defs.resources import HubSpotResource, PanelResource, StateStoreResource
from fp_hubspot_assets.hubspot.first_setup import (
    FirstSetupRefused,
    FirstSetupReport,
    run_first_setup,
    why_not_run,
)
from fp_hubspot_assets.mapping import Mapped

ASSET_NAME = "hubspot_first_setup"
CHECK_NAME = "no_ambiguous_matches"


class FirstSetupConfig(Config):
    """``force``: run the options even after data was synced (the "manual attempt"; logged)."""

    force: bool = False


def _check(report: FirstSetupReport | None) -> AssetCheckResult:
    ambiguous = report.ambiguous_frame() if report is not None else None
    if ambiguous is None or not ambiguous.height:
        return AssetCheckResult(check_name=CHECK_NAME, passed=True, metadata={"ambiguous": 0})
    return AssetCheckResult(
        check_name=CHECK_NAME,
        passed=False,
        severity=AssetCheckSeverity.WARN,
        description="Existing HubSpot duplicates (or shared emails/domains) made these matches ambiguous; "
        "they were not stamped. Merge the duplicates in HubSpot, then run `fp-hubspot setup` again.",
        metadata={"ambiguous": ambiguous.height, "cases": table_metadata(ambiguous.head(200))},
    )


def _skipped(status: str, reason: str) -> MaterializeResult:
    return MaterializeResult(
        metadata={"status": status, "reason": reason}, check_results=[_check(None)]
    )


@asset(
    name=ASSET_NAME,
    ins={
        "contact_payloads": AssetIn("contact_payloads"),
        "company_payloads": AssetIn("company_payloads"),
        "sap_orders": AssetIn("sap_orders"),
        "store_carts": AssetIn("store_carts"),
    },
    deps=[AssetKey("hubspot_properties")],
    check_specs=[
        AssetCheckSpec(CHECK_NAME, asset=ASSET_NAME, description="No pulled contact or company was ambiguous.")
    ],
    group_name="hubspot",
    kinds={"hubspot"},
    owners=["team:data-engineering"],
    pool="hubspot",
    description="First set-up: Pull Contacts / Pull Companies (match existing HubSpot records by email / "
    "domain and stamp our id on them) and Ignore existing deals (baseline today's orders). Runs only before "
    "anything was synced, unless forced. Never writes to SAP.",
)
def hubspot_first_setup(
    context: AssetExecutionContext,
    config: FirstSetupConfig,
    contact_payloads: Mapped,
    company_payloads: Mapped,
    sap_orders: pl.DataFrame,
    store_carts: pl.DataFrame,
    panel: PanelResource,
    hubspot: HubSpotResource,
    state: StateStoreResource,
) -> Iterator[MaterializeResult]:
    settings = panel.settings()
    options = settings.first_setup
    store = state.store()
    explicit = context.job_name == FIRST_SETUP_JOB
    skipped = why_not_run(store, options, explicit=explicit)
    if skipped is not None:
        status, reason = skipped
        if status == "refused":
            context.log.warning(reason)
        yield _skipped(status, reason)
        return
    force = explicit and (config.force or options.force)
    client = hubspot.client(settings, store)
    try:
        # A dry run reads HubSpot (to count the matches) but stamps and records nothing.
        report = run_first_setup(
            client,
            store,
            options,
            contacts=contact_payloads,
            companies=company_payloads,
            orders=sap_orders,
            carts=store_carts,
            run_id=context.run_id,
            force=force,
            dry_run=hubspot.dry_run,
        )
    except FirstSetupRefused as exc:
        raise Failure(description=str(exc), metadata={"status": "refused"}) from None
    if report.forced:
        context.log.warning("first set-up was FORCED after data had been synced (the manual attempt)")
    context.log.info(report.summary_line())
    yield MaterializeResult(metadata=_metadata(report, client.total_requests), check_results=[_check(report)])


def _metadata(report: FirstSetupReport, requests: int) -> dict[str, Any]:
    counts = report.counts()
    metadata: dict[str, Any] = {f"count_{k}": v for k, v in counts.items()}
    metadata |= {
        "status": "dry run" if report.dry_run else "done",
        "forced": report.forced,
        "options": MetadataValue.json(report.options),
        "baseline_total": report.baseline_total,
        "api_requests": requests,
        "summary": report.summary_line(),
    }
    ambiguous = report.ambiguous_frame()
    if ambiguous.height:
        metadata["ambiguous"] = table_metadata(ambiguous.head(200))
    return metadata


assets: list[AssetsDefinition] = [hubspot_first_setup]
