"""Properties, property groups and pipelines of the sandbox portal (HubSpot's schema side).

The whole schema is one small document in the store, rewritten on every change: schema writes are rare,
and keeping it one document makes reset-to-defaults trivial."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .catalog import (
    BUILTIN_UNIQUE,
    DEFAULT_DEAL_STAGES,
    DEFAULT_ORDER_STAGES,
    DEFAULT_PROPERTIES,
    GROUP_NAMES,
    MAX_UNIQUE_PROPERTIES,
    OBJECT_TYPE_IDS,
    PIPELINE_PROPERTIES,
    READ_ONLY,
    SINGULAR,
    SYSTEM_PROPERTIES,
    TIERS,
)
from .errors import ApiError, not_found, validation_error
from .store import Store, now_ms
from .timefmt import iso

PROPERTY_TYPES = {"string", "number", "date", "datetime", "enumeration", "bool", "phone_number"}
FIELD_TYPES = {"text", "textarea", "number", "date", "select", "radio", "checkbox", "booleancheckbox", "phonenumber", "html", "file", "calculation_equation"}
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class PropInfo:
    """What write validation needs to know about one property."""

    kind: str
    options: frozenset[str]
    unique: bool
    read_only: bool


def _property(obj_type: str, name: str, kind: str, field: str, options: tuple[str, ...] | list[dict[str, Any]],
              group: str, label: str | None = None, unique: bool = False, hubspot: bool = True, order: int = -1,
              description: str = "") -> dict[str, Any]:
    stamp = iso(now_ms())
    opts = [
        o if isinstance(o, dict) else {"label": o, "value": o, "displayOrder": i, "hidden": False, "description": ""}
        for i, o in enumerate(options)
    ]
    return {
        "name": name, "label": label or name.replace("_", " ").title(), "type": kind, "fieldType": field,
        "groupName": group, "description": description, "options": opts, "displayOrder": order,
        "hasUniqueValue": unique, "hidden": False, "formField": not hubspot, "calculated": False,
        "externalOptions": False, "hubspotDefined": hubspot, "archived": False, "createdAt": stamp,
        "updatedAt": stamp,
        "modificationMetadata": {"archivable": not hubspot, "readOnlyDefinition": hubspot,
                                 "readOnlyValue": name in READ_ONLY},
    }


def _stage(stage_id: str, label: str, order: int, metadata: dict[str, str]) -> dict[str, Any]:
    stamp = iso(now_ms())
    return {"id": stage_id, "label": label, "displayOrder": order, "metadata": metadata, "createdAt": stamp,
            "updatedAt": stamp, "archived": False, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"}


def default_schema() -> dict[str, Any]:
    properties: dict[str, dict[str, Any]] = {}
    groups: dict[str, dict[str, Any]] = {}
    for obj_type in OBJECT_TYPE_IDS:
        group = GROUP_NAMES[obj_type]
        groups[obj_type] = {group: {"name": group, "label": group.replace("information", " information").title(),
                                    "displayOrder": 0, "archived": False}}
        props = {}
        for name, kind, field, options in (*DEFAULT_PROPERTIES[obj_type], *SYSTEM_PROPERTIES):
            props[name] = _property(obj_type, name, kind, field, options, group,
                                    unique=name in BUILTIN_UNIQUE.get(obj_type, ()))
        properties[obj_type] = props
    stages = [
        _stage(sid, label, i, {"probability": prob, "isClosed": str(closed).lower()})
        for i, (sid, label, prob, closed) in enumerate(DEFAULT_DEAL_STAGES)
    ]
    order_stages = [_stage(sid, label, i, {}) for i, (sid, label) in enumerate(DEFAULT_ORDER_STAGES)]
    stamp = iso(now_ms())
    pipelines = {
        obj_type: {"default": {"id": "default", "label": label, "displayOrder": 0, "stages": pipeline_stages,
                               "createdAt": stamp, "updatedAt": stamp, "archived": False}}
        for obj_type, label, pipeline_stages in (("deals", "Sales Pipeline", stages),
                                                 ("orders", "Orders Pipeline", order_stages))
    }
    return {"properties": properties, "groups": groups, "pipelines": pipelines}


class Schema:
    """Reads and writes the schema document; keeps a compiled view for fast write validation."""

    def __init__(self, store: Store, tier: str, no_unique_on: tuple[str, ...] = ()) -> None:
        self.store = store
        self.tier = tier
        self.no_unique_on = frozenset(no_unique_on)
        if "schema" not in store.docs:
            store.set_doc("schema", default_schema())
        self._compile()

    @property
    def doc(self) -> dict[str, Any]:
        return self.store.docs["schema"]

    def reset(self) -> None:
        self.store.set_doc("schema", default_schema())
        self._compile()

    def _changed(self) -> None:
        self.store.set_doc("schema", self.doc)
        self._compile()

    def _compile(self) -> None:
        self.info: dict[str, dict[str, PropInfo]] = {}
        # per object type with pipelines: pipeline id → its live stage ids
        self.pipeline_stages: dict[str, dict[str, frozenset[str]]] = {t: {} for t in PIPELINE_PROPERTIES}
        for obj_type, props in self.doc["properties"].items():
            self.info[obj_type] = {
                name: PropInfo(p["type"], frozenset(o["value"] for o in p["options"]), p["hasUniqueValue"],
                               p["modificationMetadata"]["readOnlyValue"])
                for name, p in props.items() if not p["archived"]
            }
        for obj_type, by_id in self.pipeline_stages.items():
            for pid, pipeline in self.doc["pipelines"].get(obj_type, {}).items():
                by_id[pid] = frozenset(s["id"] for s in pipeline["stages"] if not s["archived"])

    def unique_properties(self, obj_type: str) -> list[str]:
        return [name for name, info in self.info[obj_type].items() if info.unique]

    # ---- properties ---------------------------------------------------------------------------------
    def list_properties(self, obj_type: str) -> list[dict[str, Any]]:
        return [p for p in self.doc["properties"][obj_type].values() if not p["archived"]]

    def get_property(self, obj_type: str, name: str) -> dict[str, Any]:
        prop = self.doc["properties"][obj_type].get(name)
        if prop is None or prop["archived"]:
            raise not_found(f"Unable to find property {name} on object type {obj_type}")
        return prop

    def create_property(self, obj_type: str, body: dict[str, Any]) -> dict[str, Any]:
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise validation_error(f"Missing required fields: {', '.join(missing)}")
        name, kind, field = body["name"], body["type"], body["fieldType"]
        if not _NAME_RE.match(name) or name.startswith("hs_"):
            raise validation_error(f"Property name '{name}' is invalid: use lowercase letters, digits and underscores, not starting with hs_")
        if kind not in PROPERTY_TYPES:
            raise validation_error(f"Invalid property type '{kind}'")
        if field not in FIELD_TYPES:
            raise validation_error(f"Invalid fieldType '{field}'")
        if kind == "enumeration" and not body.get("options"):
            raise validation_error("Enumeration properties need at least one option")
        if body["groupName"] not in self.doc["groups"][obj_type]:
            raise validation_error(f"Property group {body['groupName']} does not exist")
        existing = self.doc["properties"][obj_type].get(name)
        if existing is not None and not existing["archived"]:
            raise ApiError(409, "OBJECT_ALREADY_EXISTS", f"Property named '{name}' already exists.")
        unique = bool(body.get("hasUniqueValue", False))
        if unique and obj_type in self.no_unique_on:
            raise validation_error(f"hasUniqueValue is not supported for {obj_type} properties")
        if unique:
            custom_unique = [n for n in self.unique_properties(obj_type) if n not in BUILTIN_UNIQUE.get(obj_type, ())]
            if len(custom_unique) >= MAX_UNIQUE_PROPERTIES:
                raise validation_error(
                    f"Object type {obj_type} already has {MAX_UNIQUE_PROPERTIES} unique value properties, the maximum allowed"
                )
        options = [
            {"label": o.get("label", o["value"]), "value": o["value"], "displayOrder": o.get("displayOrder", i),
             "hidden": o.get("hidden", False), "description": o.get("description", "")}
            for i, o in enumerate(body.get("options") or [])
        ]
        prop = _property(obj_type, name, kind, field, options, body["groupName"], label=body["label"],
                         unique=unique, hubspot=False, order=body.get("displayOrder", -1),
                         description=body.get("description", ""))
        prop["hidden"] = bool(body.get("hidden", False))
        prop["formField"] = bool(body.get("formField", False))
        self.doc["properties"][obj_type][name] = prop
        self.store.unique[obj_type].pop(name, None)
        self._changed()
        return prop

    def update_property(self, obj_type: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        prop = self.get_property(obj_type, name)
        if prop["hubspotDefined"]:
            raise validation_error(f"Property {name} is HubSpot-defined and cannot be changed")
        if "hasUniqueValue" in body and bool(body["hasUniqueValue"]) != prop["hasUniqueValue"]:
            raise validation_error("hasUniqueValue can only be set when a property is created")
        for key in ("label", "description", "groupName", "displayOrder", "hidden", "formField", "fieldType"):
            if key in body:
                prop[key] = body[key]
        if "options" in body:
            prop["options"] = [{"label": o.get("label", o["value"]), "value": o["value"], "displayOrder": i,
                                "hidden": False, "description": ""} for i, o in enumerate(body["options"])]
        prop["updatedAt"] = iso(now_ms())
        self._changed()
        return prop

    def archive_property(self, obj_type: str, name: str) -> None:
        prop = self.get_property(obj_type, name)
        if prop["hubspotDefined"]:
            raise validation_error(f"Property {name} is HubSpot-defined and cannot be archived")
        prop["archived"] = True
        prop["archivedAt"] = iso(now_ms())
        self.store.unique[obj_type].pop(name, None)
        self._changed()

    # ---- groups -------------------------------------------------------------------------------------
    def list_groups(self, obj_type: str) -> list[dict[str, Any]]:
        return [g for g in self.doc["groups"][obj_type].values() if not g["archived"]]

    def get_group(self, obj_type: str, name: str) -> dict[str, Any]:
        group = self.doc["groups"][obj_type].get(name)
        if group is None or group["archived"]:
            raise not_found(f"Unable to find property group {name}")
        return group

    def create_group(self, obj_type: str, body: dict[str, Any]) -> dict[str, Any]:
        name, label = body.get("name"), body.get("label")
        if not name or not label:
            raise validation_error("Property groups need a name and a label")
        if not _NAME_RE.match(name):
            raise validation_error(f"Property group name '{name}' is invalid")
        existing = self.doc["groups"][obj_type].get(name)
        if existing is not None and not existing["archived"]:
            raise ApiError(409, "OBJECT_ALREADY_EXISTS", f"Property group named '{name}' already exists.")
        group = {"name": name, "label": label, "displayOrder": body.get("displayOrder", -1), "archived": False}
        self.doc["groups"][obj_type][name] = group
        self._changed()
        return group

    def update_group(self, obj_type: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        group = self.get_group(obj_type, name)
        for key in ("label", "displayOrder"):
            if key in body:
                group[key] = body[key]
        self._changed()
        return group

    # ---- pipelines ----------------------------------------------------------------------------------
    def list_pipelines(self, obj_type: str) -> list[dict[str, Any]]:
        pipelines = self.doc["pipelines"].get(obj_type, {}).values()
        return sorted((p for p in pipelines if not p["archived"]), key=lambda p: (p["displayOrder"], p["label"]))

    def get_pipeline(self, obj_type: str, pipeline_id: str) -> dict[str, Any]:
        pipeline = self.doc["pipelines"].get(obj_type, {}).get(pipeline_id)
        if pipeline is None or pipeline["archived"]:
            raise not_found(f"Unable to find pipeline {pipeline_id}")
        return pipeline

    def _stage_from(self, obj_type: str, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("label") or "displayOrder" not in body:
            raise validation_error("Pipeline stages need a label and a displayOrder")
        metadata = {k: str(v) for k, v in (body.get("metadata") or {}).items()}
        if obj_type == "deals":
            if "probability" not in metadata:
                raise validation_error(f"Deal stage '{body['label']}' needs metadata.probability")
            try:
                probability = float(metadata["probability"])
            except ValueError:
                probability = -1.0
            if not 0.0 <= probability <= 1.0:
                raise validation_error("metadata.probability must be a number between 0.0 and 1.0")
        return _stage(str(self.store.next_id()), body["label"], int(body["displayOrder"]), metadata)

    def create_pipeline(self, obj_type: str, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("label") or "displayOrder" not in body or not body.get("stages"):
            raise validation_error("Pipelines need label, displayOrder and at least one stage")
        existing = self.list_pipelines(obj_type)
        if obj_type in PIPELINE_PROPERTIES and len(existing) >= TIERS[self.tier].max_deal_pipelines:
            raise validation_error(
                f"This portal's {self.tier} subscription allows at most "
                f"{TIERS[self.tier].max_deal_pipelines} {SINGULAR[obj_type]} pipeline(s)"
            )
        if any(p["label"] == body["label"] for p in existing):
            raise ApiError(409, "CONFLICT", f"A pipeline with label '{body['label']}' already exists")
        stages = [self._stage_from(obj_type, s) for s in body["stages"]]
        stamp = iso(now_ms())
        pipeline = {"id": str(self.store.next_id()), "label": body["label"], "displayOrder": int(body["displayOrder"]),
                    "stages": stages, "createdAt": stamp, "updatedAt": stamp, "archived": False}
        self.doc["pipelines"].setdefault(obj_type, {})[pipeline["id"]] = pipeline
        self._changed()
        return pipeline

    def update_pipeline(self, obj_type: str, pipeline_id: str, body: dict[str, Any]) -> dict[str, Any]:
        pipeline = self.get_pipeline(obj_type, pipeline_id)
        for key in ("label", "displayOrder"):
            if key in body:
                pipeline[key] = body[key]
        pipeline["updatedAt"] = iso(now_ms())
        self._changed()
        return pipeline

    def archive_pipeline(self, obj_type: str, pipeline_id: str) -> None:
        pipeline = self.get_pipeline(obj_type, pipeline_id)
        pipeline["archived"] = True
        self._changed()

    def create_stage(self, obj_type: str, pipeline_id: str, body: dict[str, Any]) -> dict[str, Any]:
        pipeline = self.get_pipeline(obj_type, pipeline_id)
        stage = self._stage_from(obj_type, body)
        pipeline["stages"].append(stage)
        self._changed()
        return stage
