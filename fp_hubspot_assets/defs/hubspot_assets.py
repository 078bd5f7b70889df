"""Mapped payload assets (pure mapping of the source frames) and the HubSpot assets that write them.

Lineage reads SAP → payloads → HubSpot: ``sap_customers`` → ``contact_payloads`` → ``hubspot_contacts``.
Payload assets carry the blocking duplicate checks, so a corrupting batch never reaches HubSpot.
"""


import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
)

from fp_hubspot_assets import mapping
from fp_hubspot_assets.defs import incremental, run_storage
from fp_hubspot_assets.defs.automation import record_sync_cursor
from fp_hubspot_assets.defs.metadata import table_metadata
from fp_hubspot_assets.defs.resources import (
    HubSpotResource,
    SapSourceResource,
    StateStoreResource,
    default_sap_url,
    resolve_connection,
)
from fp_hubspot_assets.hubspot import removals
from fp_hubspot_assets.hubspot.setup import pipeline_from_state, run_setup
from fp_hubspot_assets.hubspot.sync import (
    SyncContext,
    SyncReport,
    sync_associations,
    sync_records,
)
from fp_hubspot_assets.mapping import Mapped
from fp_hubspot_assets.objects import SPECS, ObjectSpec, synced_types
from fp_hubspot_assets.panel import PanelResource
from fp_hubspot_assets.preflight import PreflightError, preflight
from fp_hubspot_assets.state.queries import log_new_source_problems
from fp_hubspot_assets.state.store import StateStore
from fp_hubspot_assets.tracing import tracing_page_url

OWNERS = ["team:data-engineering"]
HUBSPOT_POOL = "hubspot"


DRY_RUN_TAG = "fp/dry_run"
DRY_RUN_NOTE = "dry run — nothing written"


def mark_dry_run(context: AssetExecutionContext) -> dict[str, object]:
    """Tag the run as a dry run (so the run list shows it, however it was launched) and return the metadata
    that says so on the materialization."""
    if context.run.tags.get(DRY_RUN_TAG) != "true":
        context.instance.add_run_tags(context.run_id, {DRY_RUN_TAG: "true"})
    return {"note": DRY_RUN_NOTE}


def _payload_metadata(mapped: Mapped) -> dict[str, object]:
    counts = mapped.issues.group_by("action").len() if mapped.issues.height else None
    by_action = dict(counts.iter_rows()) if counts is not None else {}
    meta: dict[str, object] = {
        "dagster/row_count": mapped.records.height,
        "skipped": int(by_action.get("skipped", 0)),
        "repaired": int(by_action.get("repaired", 0)),
        "excluded": int(by_action.get("excluded", 0)),
        "preview": table_metadata(mapped.records.head(20)),
    }
    if mapped.issues.height:
        meta["issues"] = table_metadata(mapped.issues.filter(pl.col("action") != "excluded").head(200))
    return meta


# ---------------------------------------------------------------- mapped payloads (pure)
@asset(group_name="mapping", kinds={"polars"}, owners=OWNERS, code_version="1",
       description="Company business partners mapped to HubSpot company properties.")
def company_payloads(sap_customers: pl.DataFrame, sap_addresses: pl.DataFrame, panel: PanelResource) -> Output[Mapped]:
    mapped = mapping.map_companies(sap_customers, sap_addresses, panel.settings())
    return Output(mapped, metadata=_payload_metadata(mapped))


@asset(group_name="mapping", kinds={"polars"}, owners=OWNERS, code_version="1",
       description="Web customers, contact persons and private partners mapped to HubSpot contacts "
       "(roles filtered, emails normalized and de-duplicated, address from the panel's address source).")
def contact_payloads(sap_customers: pl.DataFrame, sap_addresses: pl.DataFrame, panel: PanelResource) -> Output[Mapped]:
    mapped = mapping.map_contacts(sap_customers, sap_addresses, panel.settings())
    return Output(mapped, metadata=_payload_metadata(mapped))


@asset(group_name="mapping", kinds={"polars"}, owners=OWNERS, code_version="1",
       description="Items (or each attribute combination) mapped to HubSpot products; empty below Professional.")
def product_payloads(sap_items: pl.DataFrame, web_stores: pl.DataFrame, panel: PanelResource) -> Output[Mapped]:
    mapped = mapping.map_products(sap_items, web_stores, panel.settings())
    return Output(mapped, metadata=_payload_metadata(mapped))


@asset(group_name="mapping", kinds={"polars"}, owners=OWNERS, code_version="1",
       description="Orders and carts mapped to HubSpot deals (a cart and its order are one deal), "
       "stage from the panel's deal-stage mapping.")
def deal_payloads(
    sap_orders: pl.DataFrame,
    store_carts: pl.DataFrame,
    sap_customers: pl.DataFrame,
    contact_payloads: Mapped,
    company_payloads: Mapped,
    panel: PanelResource,
) -> Output[Mapped]:
    settings = panel.settings()
    mapped = mapping.map_deals(
        sap_orders, store_carts, sap_customers, contact_payloads, company_payloads, settings, datetime.now(UTC).replace(tzinfo=None)
    )
    return Output(mapped, metadata=_payload_metadata(mapped))


@asset(group_name="mapping", kinds={"polars"}, owners=OWNERS, code_version="1",
       description="Orders mapped to HubSpot's native order objects (commerce.objects: orders_and_carts or both): "
       "stage from the deal-stage rules, totals, addresses, contact, company and (both) deal.")
def order_payloads(
    sap_orders: pl.DataFrame,
    store_carts: pl.DataFrame,
    sap_customers: pl.DataFrame,
    sap_addresses: pl.DataFrame,
    web_stores: pl.DataFrame,
    contact_payloads: Mapped,
    company_payloads: Mapped,
    deal_payloads: Mapped,
    panel: PanelResource,
) -> Output[Mapped]:
    settings = panel.settings()
    mapped = mapping.map_orders(
        sap_orders, store_carts, sap_customers, sap_addresses, web_stores, contact_payloads, company_payloads, settings,
        datetime.now(UTC).replace(tzinfo=None), deal_payloads if settings.commerce.sends_deals else None,
    )
    return Output(mapped, metadata=_payload_metadata(mapped))


@asset(group_name="mapping", kinds={"polars"}, owners=OWNERS, code_version="1",
       description="Web carts mapped to HubSpot's native cart objects (commerce.objects: orders_and_carts or both): "
       "open / abandoned / ordered, linked to the order they became.")
def cart_payloads(
    sap_orders: pl.DataFrame,
    store_carts: pl.DataFrame,
    sap_customers: pl.DataFrame,
    web_stores: pl.DataFrame,
    contact_payloads: Mapped,
    company_payloads: Mapped,
    order_payloads: Mapped,
    panel: PanelResource,
) -> Output[Mapped]:
    mapped = mapping.map_carts(
        sap_orders, store_carts, sap_customers, web_stores, contact_payloads, company_payloads, order_payloads,
        panel.settings(), datetime.now(UTC).replace(tzinfo=None),
    )
    return Output(mapped, metadata=_payload_metadata(mapped))


@asset(group_name="mapping", kinds={"polars"}, owners=OWNERS, code_version="1",
       description="Order lines (and open cart lines) mapped to HubSpot line items of their deal, order or cart.")
def line_item_payloads(
    sap_orders: pl.DataFrame,
    store_carts: pl.DataFrame,
    product_payloads: Mapped,
    deal_payloads: Mapped,
    order_payloads: Mapped,
    cart_payloads: Mapped,
    panel: PanelResource,
) -> Output[Mapped]:
    mapped = mapping.map_line_items(
        sap_orders, store_carts, product_payloads, panel.settings(), deals=deal_payloads,
        order_records=order_payloads, cart_records=cart_payloads,
    )
    return Output(mapped, metadata=_payload_metadata(mapped))


# ---------------------------------------------------------------- HubSpot writers
@asset(group_name="hubspot", kinds={"hubspot"}, owners=OWNERS, pool=HUBSPOT_POOL,
       description="What the sync needs in HubSpot: the FocusPoint property group, our unique id property per "
       "object type, the custom properties, and the e-commerce deal pipeline (stage ids kept in the state store).")
def hubspot_schema(
    context: AssetExecutionContext, panel: PanelResource, hubspot: HubSpotResource, state: StateStoreResource,
    sap: SapSourceResource,
) -> MaterializeResult:
    # the first writer of every run: a broken set-up stops here, before anything is written anywhere
    try:
        preflight(panel.path or None, sap.url or default_sap_url(), state.url or StateStore.default_url())
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
            "api_requests": client.total_requests,
        }
    )


Resolver = Callable[[pl.DataFrame, StateStore], pl.DataFrame]


def _resolve_deals(records: pl.DataFrame, store: StateStore) -> pl.DataFrame:
    pipeline = pipeline_from_state(store)
    return records.with_columns(
        pl.col("dealstage").replace_strict(pipeline["stages"], default=None).alias("dealstage"),
        pl.lit(pipeline["pipeline_id"]).alias("pipeline"),
    )


def _resolve_line_items(records: pl.DataFrame, store: StateStore) -> pl.DataFrame:
    ids = store.hubspot_ids("products", records["product_key"].drop_nulls().unique().to_list())
    return records.with_columns(
        pl.col("product_key").replace_strict(ids, default=None, return_dtype=pl.String).fill_null("").alias("hs_product_id")
    )


def write_object_type(
    context: AssetExecutionContext,
    spec: ObjectSpec,
    mapped: Mapped,
    panel: PanelResource,
    hubspot: HubSpotResource,
    state: StateStoreResource,
    resolve: Resolver | None = None,
    baseline_column: str | None = None,
) -> MaterializeResult:
    """Sync one object type and its associations; the metadata is the panel's "Tracing Integration" view.

    ``baseline_column`` names the deal key column: deals recorded by "Ignore existing deals" (first set-up)
    are left out and counted as excluded. A child type (``spec.parent``: line items → deal) has the
    children of a synced parent that the source no longer has archived; other types follow the panel's
    ``deletes`` policy when their source record vanishes (docs/identity.md)."""
    object_type, children = spec.name, spec.parent is not None
    settings = panel.settings()
    store = state.store()
    client = hubspot.client(settings, store)
    ctx = SyncContext(
        client=None if hubspot.dry_run else client,
        reader=client if hubspot.dry_run else None,
        state=store,
        run_id=context.run_id,
        dry_run=hubspot.dry_run,
        max_workers=hubspot.max_workers,
        progress=context.log.info,
        reconcile=hubspot.reconcile,
    )
    requests_before, writes_before = client.total_requests, client.write_requests
    records, baselined = _without_baseline(mapped.records, store, baseline_column, spec.name)
    if resolve is not None and records.height:
        try:
            records = resolve(records, store)
        except RuntimeError:
            if not hubspot.dry_run:  # a dry run before set-up reports stage names instead of stage ids
                raise
    report = SyncReport(object_type, dry_run=ctx.dry_run)
    present = mapped.present_keys()
    # An incremental read leaves out every unchanged record: absence means "not read", never "deleted".
    partial = incremental.read_partially(context.instance, context.run_id, object_type)
    # a type this commerce.objects mode does not sync is left as HubSpot has it: nothing vanished, nothing removed
    synced = object_type in synced_types(settings.commerce.objects)
    gone = None if children or partial or not synced else removals.vanished(ctx, object_type, present)
    if gone is not None:  # before any write: a suspicious mass deletion stops the asset untouched
        removals.guard_deletes(ctx, object_type, gone, settings.deletes, settings.deletes_max_share)
    if object_type == "deals":
        removals.merge_late_links(ctx, mapped.aliases, report)
    sync_records(ctx, object_type, spec.id_property, records, report)
    associated: dict[str, int] = {}  # per associated type: each is its own endpoint, so its own batches
    for ref in spec.references:
        if ref.column in records.columns:
            before = report.associations_created
            sync_associations(ctx, object_type, ref.to_type, records.select("source_key", ref.column).iter_rows(), report)
            associated[ref.to_type] = report.associations_created - before
    if children:
        removals.archive_removed_children(ctx, object_type, records, mapped.parents, present, report)
    elif gone is not None:
        removals.apply_deletes(ctx, object_type, gone, settings.deletes, report)
    report.requests = client.total_requests - requests_before
    report.write_requests = client.write_requests - writes_before
    issues = mapped.issues.filter(pl.col("action") != "excluded")
    if not hubspot.dry_run and issues.height:
        # logged when a problem appears or changes; the counts below still include every current one
        log_new_source_problems(store, context.run_id, object_type, issues.select("source_key", "action", "reason").iter_rows())
    excluded = mapped.issues.height - issues.height + baselined
    counts = report.summary() | {
        "skipped": report.counts["skipped"] + issues.filter(pl.col("action") == "skipped").height,
        "repaired": issues.filter(pl.col("action") == "repaired").height,
        "excluded": excluded,
    }
    why_nothing_sent = str(mapped.issues["reason"][0]) if excluded and not mapped.records.height else None
    if not synced:
        why_nothing_sent = f"commerce.objects is {settings.commerce.objects}: {object_type} are not synced"
    if why_nothing_sent:
        context.log.info(f"{object_type}: nothing sent — {why_nothing_sent}")
    context.log.info(f"{object_type}: " + ", ".join(f"{k}={v}" for k, v in counts.items() if v))
    metadata: dict[str, object] = {f"count_{k}": v for k, v in counts.items()}
    if report.dry_run:
        metadata |= {f"count_{k}": v for k, v in report.counts.items() if k.startswith("would_")}
        metadata |= mark_dry_run(context)
    metadata |= {
        "dagster/row_count": mapped.records.height,
        "dry_run": report.dry_run,
        "api_requests": report.requests,
        "api_write_requests": report.write_requests,
        "associations_created": report.associations_created,
        "associations_created_by_type": MetadataValue.json(associated),
        "duration_seconds": round(report.duration_s, 3),
        "records": table_metadata(report.touched_frame()),
        # the grid above holds this run's records only; every record, searchable: the tracing page
        "tracing_page": MetadataValue.url(tracing_page_url(f"/records/{object_type}")),
    }
    if object_type in incremental.SOURCES_OF:
        metadata["read_mode"] = incremental.INCREMENTAL if partial else incremental.FULL
    if baselined:
        metadata["count_baselined"] = baselined
    if report.counts["associations_removed"]:
        metadata["associations_removed"] = report.counts["associations_removed"]
    if hubspot.reconcile:  # records edited / deleted by hand in HubSpot that this run wrote back
        metadata |= {"reconcile": True, "count_drifted": report.counts["drifted"], "count_missing": report.counts["missing"]}
    if why_nothing_sent:
        metadata["why_nothing_sent"] = why_nothing_sent
    return MaterializeResult(metadata=metadata)


# Baselined keys ("Ignore existing deals") per object type, and which payload column names them.
BASELINE_COLUMNS: dict[str, tuple[str, ...]] = {"deals": ("assoc_deals",), "orders": ("assoc_orders",)}


def _without_baseline(
    records: pl.DataFrame, store: StateStore, column: str | None, object_type: str = "deals"
) -> tuple[pl.DataFrame, int]:
    """Drop records of baselined deals and orders (those that existed at first set-up); returns (kept, how many
    dropped). ``column`` is ``source_key`` for deals and orders themselves; for line items, any reference column
    naming a baselined deal or order drops the line."""
    if column is None or not records.height:
        return records, 0
    if column == "source_key":
        checks = [(object_type, "source_key")] if object_type in BASELINE_COLUMNS else []
    else:
        checks = [(t, c) for t, names in BASELINE_COLUMNS.items() for c in names if c in records.columns]
    dropped = pl.lit(False)
    for baseline_type, name in checks:
        baseline = store.baseline(baseline_type)
        if baseline:
            dropped = dropped | pl.col(name).is_in(sorted(baseline)).fill_null(False)
    kept = records.filter(~dropped)
    return kept, records.height - kept.height


def _writer(
    object_type: str,
    payload_asset: str,
    deps: Sequence[str],
    description: str,
    resolve: Resolver | None = None,
    baseline_column: str | None = None,
) -> AssetsDefinition:
    """One writer asset per object type; its associations and parent come from the registry."""
    spec = SPECS[object_type]

    @asset(
        name=f"hubspot_{object_type}",
        ins={"payload": AssetIn(payload_asset)},
        deps=[AssetKey(d) for d in deps],
        group_name="hubspot",
        kinds={"hubspot"},
        owners=OWNERS,
        pool=HUBSPOT_POOL,
        description=description,
    )
    def _write(
        context: AssetExecutionContext,
        payload: Mapped,
        panel: PanelResource,
        hubspot: HubSpotResource,
        state: StateStoreResource,
    ) -> MaterializeResult:
        return write_object_type(context, spec, payload, panel, hubspot, state, resolve, baseline_column)

    return _write


hubspot_companies = _writer(
    "companies", "company_payloads", ["hubspot_schema", "hubspot_first_setup"],
    "HubSpot companies for company business partners, upserted by fp_company_id.",
)
hubspot_contacts = _writer(
    "contacts", "contact_payloads", ["hubspot_schema", "hubspot_companies", "hubspot_first_setup"],
    "HubSpot contacts, upserted by fp_customer_id; an existing contact with the same email is adopted. "
    "Associated with their company.",
)
hubspot_products = _writer(
    "products", "product_payloads", ["hubspot_schema"],
    "HubSpot products (one per item or per attribute combination), upserted by fp_product_id.",
)
hubspot_deals = _writer(
    "deals", "deal_payloads", ["hubspot_schema", "hubspot_contacts", "hubspot_companies", "hubspot_first_setup"],
    "HubSpot deals for orders and carts in the FocusPoint pipeline, upserted by fp_deal_id; associated with "
    "their contact and company.",
    resolve=_resolve_deals,
    baseline_column="source_key",
)
hubspot_line_items = _writer(
    "line_items", "line_item_payloads", ["hubspot_deals", "hubspot_products", "hubspot_orders", "hubspot_carts"],
    "HubSpot line items of each deal (hs_product_id set), upserted by fp_line_item_id; associated with their deal.",
    resolve=_resolve_line_items,
    baseline_column="assoc_deals",
)
hubspot_orders = _writer(
    "orders", "order_payloads", ["hubspot_schema", "hubspot_contacts", "hubspot_companies", "hubspot_deals",
                                 "hubspot_first_setup"],
    "HubSpot's native orders (commerce.objects: orders_and_carts or both), upserted by fp_order_id; associated "
    "with their contact, company and (both) deal. Nothing is sent in the default deals mode.",
    baseline_column="source_key",
)
hubspot_carts = _writer(
    "carts", "cart_payloads", ["hubspot_schema", "hubspot_contacts", "hubspot_orders"],
    "HubSpot's native carts (commerce.objects: orders_and_carts or both), upserted by fp_cart_id; associated with "
    "their contact and the order they became. Nothing is sent in the default deals mode.",
)
WRITERS = ["hubspot_companies", "hubspot_contacts", "hubspot_products", "hubspot_deals", "hubspot_line_items",
           "hubspot_orders", "hubspot_carts"]


@asset(group_name="hubspot", kinds={"hubspot", "sql"}, owners=OWNERS, deps=[AssetKey(w) for w in WRITERS],
       description="Source key ↔ HubSpot id for every object type, from the state store.")
def hubspot_id_map(state: StateStoreResource) -> Output[pl.DataFrame]:
    frame = state.store().id_map_all()
    per_type = frame.group_by("object_type").len().sort("object_type") if frame.height else None
    metadata: dict[str, object] = {"dagster/row_count": frame.height, "sample": table_metadata(frame.head(100))}
    if per_type is not None:
        metadata |= {f"count_{t}": int(n) for t, n in per_type.iter_rows()}
    return Output(frame, metadata=metadata)


@asset(group_name="hubspot", kinds={"sql"}, owners=OWNERS, deps=[AssetKey(w) for w in WRITERS],
       description="The integration log of this run: one row per record written, adopted, skipped or failed.")
def integration_log(
    context: AssetExecutionContext, state: StateStoreResource, hubspot: HubSpotResource
) -> Output[pl.DataFrame]:
    store = state.store()
    frame = store.log_frame(run_id=context.run_id)
    counts = store.log_counts(context.run_id)
    metadata: dict[str, object] = {
        "dagster/row_count": frame.height,
        "counts": MetadataValue.json(counts),
        "log": table_metadata(frame),
        "tracing_page": MetadataValue.url(tracing_page_url(f"/log?run={context.run_id}")),
    }
    # The last step, reached only when every writer succeeded: the incremental schedule's cursor advances
    # to the source markers this run was requested with (docs/automation.md).
    cursor = None if hubspot.dry_run else record_sync_cursor(store, context.run.tags)
    if hubspot.dry_run:
        metadata |= mark_dry_run(context)
    if cursor is not None:
        metadata["sync_cursor"] = MetadataValue.json(json.loads(cursor.to_json()))
    # Per entity, the change marker the next incremental read starts from (docs/automation.md).
    markers = {} if hubspot.dry_run else incremental.advance_markers(store, context.instance, context.run_id)
    if markers:
        metadata["read_markers"] = MetadataValue.json(markers)
    pruned = run_storage.prune(context.instance)  # earlier runs' stored frames nobody will read again
    if pruned:
        context.log.info(f"deleted the stored values of {len(pruned)} finished run(s)")
    return Output(frame, metadata=metadata)


payload_assets = [company_payloads, contact_payloads, product_payloads, deal_payloads, order_payloads, cart_payloads,
                  line_item_payloads]
hubspot_assets = [hubspot_schema, hubspot_companies, hubspot_contacts, hubspot_products, hubspot_deals,
                  hubspot_orders, hubspot_carts, hubspot_line_items, hubspot_id_map, integration_log]
