"""What the sync needs to exist in HubSpot before it writes, created idempotently.

A "FocusPoint" property group per object type, our unique id property per type (``hasUniqueValue``, the
idProperty of every upsert), the custom ``fp_*`` properties the mapping writes, and a deal pipeline with the
six e-commerce stages whose generated ids are read back and kept in the state store — and, when the panel's
``commerce.objects`` syncs orders, an order pipeline with the same six stages. Each step reads what exists
first and creates only what is missing, so re-running set-up costs a few GETs and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hubspot.crm.pipelines import PipelineInput, PipelineStageInput
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

from fp_hubspot_assets.hubspot.client import HubSpotClient, HubSpotError
from fp_hubspot_assets.mapping.commerce import order_stage_label
from fp_hubspot_assets.panel import DealStage
from fp_hubspot_assets.state.store import StateStore

GROUP_NAME = "focuspoint"
GROUP_LABEL = "FocusPoint"
PIPELINE_LABEL = "FocusPoint E-commerce"
PIPELINE_STATE_KEY = "deal_pipeline"
ORDER_PIPELINE_LABEL = "FocusPoint Orders"
ORDER_PIPELINE_STATE_KEY = "order_pipeline"
STAGE_PROBABILITY: dict[DealStage, float] = {
    DealStage.checkout_pending: 0.2,
    DealStage.checkout_completed: 0.6,
    DealStage.checkout_processed: 0.8,
    DealStage.checkout_shipped: 1.0,
    DealStage.checkout_canceled: 0.0,
    DealStage.checkout_abandoned: 0.1,
}
# Free accounts cannot add a pipeline: the stages then land in the default pipeline's closest stages.
DEFAULT_PIPELINE_FALLBACK: dict[DealStage, str] = {
    DealStage.checkout_pending: "appointmentscheduled",
    DealStage.checkout_completed: "qualifiedtobuy",
    DealStage.checkout_processed: "contractsent",
    DealStage.checkout_shipped: "closedwon",
    DealStage.checkout_canceled: "closedlost",
    DealStage.checkout_abandoned: "closedlost",
}


@dataclass
class SetupReport:
    created_groups: list[str] = field(default_factory=list)
    created_properties: list[str] = field(default_factory=list)
    pipeline_id: str = ""
    pipeline_created: bool = False
    stage_ids: dict[str, str] = field(default_factory=dict)
    order_pipeline_id: str = ""  # empty: orders keep HubSpot's default pipeline (free tier)
    order_stage_ids: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# Object types whose unique-value properties HubSpot does not document: the sync works without one.
NO_UNIQUE_FALLBACK = frozenset({"products", "line_items"})


class PropertySpec(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def unique(self) -> bool: ...
    @property
    def kind(self) -> str: ...  # "string" (single-line text) or "date"


def ensure_properties(client: HubSpotClient, properties: Mapping[str, Sequence[PropertySpec]], report: SetupReport) -> None:
    """Create the FocusPoint group and every missing custom property; the unique id one with hasUniqueValue."""
    for object_type, specs in properties.items():
        groups = {g.name for g in client.list_property_groups(object_type)}
        if GROUP_NAME not in groups:
            client.create_property_group(
                object_type, PropertyGroupCreate(name=GROUP_NAME, label=GROUP_LABEL, display_order=-1)
            )
            report.created_groups.append(object_type)
        existing = {p.name: p for p in client.list_properties(object_type)}
        for spec in specs:
            if spec.name in existing:
                if spec.unique and not getattr(existing[spec.name], "has_unique_value", False):
                    if object_type in NO_UNIQUE_FALLBACK:
                        report.notes.append(_fallback_note(object_type, spec.name))
                        continue
                    raise HubSpotError(
                        None,
                        "SETUP",
                        f"{object_type}.{spec.name} exists in HubSpot without hasUniqueValue, so upserts cannot use it. "
                        "Delete that property in HubSpot (Settings → Properties) and run set-up again.",
                    )
                continue
            try:
                client.create_property(object_type, _definition(spec, spec.unique))
            except HubSpotError as exc:
                if not (spec.unique and object_type in NO_UNIQUE_FALLBACK and exc.status == 400):
                    raise
                # This account refuses unique-value properties on the type: a plain one, and the client
                # creates and maps records by id (finding earlier creates by searching our key).
                client.create_property(object_type, _definition(spec, False))
                report.notes.append(_fallback_note(object_type, spec.name))
            report.created_properties.append(f"{object_type}.{spec.name}")


def _definition(spec: PropertySpec, unique: bool) -> PropertyCreate:
    return PropertyCreate(
        name=spec.name,
        label=spec.label,
        type=spec.kind,
        field_type="date" if spec.kind == "date" else "text",
        group_name=GROUP_NAME,
        has_unique_value=unique,
        description="Written by the FocusPoint sync (fp-hubspot-assets).",
    )


def _fallback_note(object_type: str, name: str) -> str:
    return (f"{object_type}.{name} is not unique in this HubSpot account (it refuses hasUniqueValue there): "
            "records are created and mapped by HubSpot id; a create a killed run may have made is found by searching "
            "our key")


def _find_or_create(
    client: HubSpotClient, object_type: str, label: str, stages: list[PipelineStageInput], tier: str,
    report: SetupReport, without: str,
) -> tuple[list[Any], Any | None, bool]:
    """(all pipelines of the type, ours or None, created now). Ours is found by label; it is created (Starter
    and above) when missing; a refusal becomes a note ending in ``without`` (what happens instead)."""
    pipelines = client.list_pipelines(object_type)
    ours = next((p for p in pipelines if p.label == label), None)
    if ours is not None or tier == "free":
        return pipelines, ours, False
    try:
        definition = PipelineInput(label=label, display_order=99, stages=stages)
        return pipelines, client.create_pipeline(object_type, definition), True
    except HubSpotError as exc:
        report.notes.append(f"could not create the {object_type[:-1]} pipeline ({exc.message}); {without}")
        return pipelines, None, False


def _stage_ids(pipeline: Any, label: str, stage_labels: Mapping[DealStage, str]) -> dict[str, str]:
    """{DealStage value: stage id} of our pipeline, matched by stage label; every stage must be there."""
    by_label = {s.label: s.id for s in pipeline.stages}
    missing = [stage_labels[s] for s in DealStage if stage_labels[s] not in by_label]
    if missing:
        raise HubSpotError(None, "SETUP", f"pipeline {label!r} lacks stages {missing}; add them in HubSpot")
    return {stage.value: by_label[stage_labels[stage]] for stage in DealStage}


def ensure_deal_pipeline(client: HubSpotClient, state: StateStore, tier: str, report: SetupReport) -> dict[str, str]:
    """The e-commerce pipeline with six stages; returns {DealStage value: stage id} and stores it."""
    stages = [
        PipelineStageInput(label=stage.label, display_order=i, metadata={"probability": str(STAGE_PROBABILITY[stage])})
        for i, stage in enumerate(DealStage)
    ]
    pipelines, ours, report.pipeline_created = _find_or_create(
        client, "deals", PIPELINE_LABEL, stages, tier, report, "using the default pipeline"
    )
    if ours is not None:
        stage_ids = _stage_ids(ours, PIPELINE_LABEL, {s: s.label for s in DealStage})
        pipeline_id = str(ours.id)
    else:
        default = next((p for p in pipelines if p.id == "default"), pipelines[0] if pipelines else None)
        if default is None:
            raise HubSpotError(None, "SETUP", "HubSpot has no deal pipeline at all")
        present = {s.id for s in default.stages}
        first = default.stages[0].id
        stage_ids = {s.value: (DEFAULT_PIPELINE_FALLBACK[s] if DEFAULT_PIPELINE_FALLBACK[s] in present else first) for s in DealStage}
        pipeline_id = str(default.id)
        report.notes.append("deals use the default pipeline (free tier): stages mapped to its closest stages")
    state.set_setup(PIPELINE_STATE_KEY, {"pipeline_id": pipeline_id, "stages": stage_ids})
    report.pipeline_id, report.stage_ids = pipeline_id, stage_ids
    return stage_ids


def ensure_order_pipeline(client: HubSpotClient, state: StateStore, tier: str, report: SetupReport) -> dict[str, str]:
    """Our order pipeline with the six stages (labels without "Checkout "); returns {DealStage value: stage id}
    and stores it with the pipeline id. Adding a pipeline needs Starter or above, and the stage ids of HubSpot's
    default order pipeline are not documented: without our pipeline the stored pipeline id is empty and orders
    carry their stage in ``fp_order_stage`` only."""
    labels = {s: order_stage_label(s) for s in DealStage}
    stages = [PipelineStageInput(label=labels[s], display_order=i, metadata={}) for i, s in enumerate(DealStage)]
    _pipelines, ours, _created = _find_or_create(
        client, "orders", ORDER_PIPELINE_LABEL, stages, tier, report,
        "orders keep HubSpot's default pipeline and their stage in fp_order_stage",
    )
    stage_ids: dict[str, str] = {}
    pipeline_id = ""
    if ours is not None:
        stage_ids = _stage_ids(ours, ORDER_PIPELINE_LABEL, labels)
        pipeline_id = str(ours.id)
    elif tier == "free":
        report.notes.append("free tier: orders keep HubSpot's default order pipeline; their stage is in fp_order_stage")
    state.set_setup(ORDER_PIPELINE_STATE_KEY, {"pipeline_id": pipeline_id, "stages": stage_ids})
    report.order_pipeline_id, report.order_stage_ids = pipeline_id, stage_ids
    return stage_ids


def run_setup(
    client: HubSpotClient,
    state: StateStore,
    tier: str,
    properties: Mapping[str, Sequence[PropertySpec]],
) -> SetupReport:
    """``properties`` holds the object types this ``commerce.objects`` mode syncs: the order pipeline is
    ensured only when orders are among them (the default mode never reads or writes order pipelines)."""
    report = SetupReport()
    ensure_properties(client, properties, report)
    ensure_deal_pipeline(client, state, tier, report)
    if "orders" in properties:
        ensure_order_pipeline(client, state, tier, report)
    state.set_setup("schema_ready", True)
    return report


def pipeline_from_state(state: StateStore, key: str = PIPELINE_STATE_KEY) -> dict[str, Any]:
    """The pipeline set-up kept under ``key`` (deals by default, ``ORDER_PIPELINE_STATE_KEY`` for orders)."""
    value = state.get_setup(key)
    if not value:
        raise RuntimeError("HubSpot set-up has not run yet: materialize hubspot_properties (or run `make demo` / `fp-hubspot sync`) first")
    return value
