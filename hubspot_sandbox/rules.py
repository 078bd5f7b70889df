"""HubSpot's write rules: property existence and types, email format, non-negative line-item prices,
deal and order pipeline/stage consistency, and unique property values (contact email without regard to case).

Strict (the default) adds what HubSpot enforces and earlier sandboxes forgave: numbers are plain decimals
("1_000", "NaN", "1e3" refused), a date property holds midnight UTC only, a currency code must be one the
account has enabled, and a line item's hs_product_id must name a live product."""

from __future__ import annotations

import re
from typing import Any

from .catalog import PIPELINE_PROPERTIES, SINGULAR
from .errors import ApiError, property_errors, validation_error
from .schema import Schema
from .store import Store, unique_key
from .timefmt import parse_ms

PLAIN_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
DAY_MS = 86_400_000
CURRENCY_PROPERTIES = frozenset({"deal_currency_code", "hs_line_item_currency_code", "hs_currency_code"})
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_TRUE_FALSE = frozenset({"true", "false"})


def as_text(value: Any) -> str | None:
    """HubSpot stores every property value as a string; JSON numbers and booleans are accepted."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise validation_error(f"Property values must be strings, numbers or booleans, got {type(value).__name__}")


def normalize_properties(obj_type: str, raw: Any) -> dict[str, str | None]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise validation_error("properties must be an object")
    props = {name: as_text(value) for name, value in raw.items()}
    if obj_type == "contacts" and (email := props.get("email")):
        props["email"] = email.strip().lower()  # HubSpot keeps contact emails lower-case
    return props


class Rules:
    def __init__(self, store: Store, schema: Schema, strict: bool = True,
                 currencies: tuple[str, ...] = ()) -> None:
        self.store = store
        self.schema = schema
        self.strict = strict
        self.currencies = frozenset(currencies)

    # ---- property values ----------------------------------------------------------------------------
    def check_values(self, obj_type: str, props: dict[str, str | None], current: dict[str, str] | None) -> None:
        """Raise one VALIDATION_ERROR listing every bad property of one input."""
        infos = self.schema.info[obj_type]
        problems: list[dict[str, str]] = []
        for name, value in props.items():
            info = infos.get(name)
            if info is None:
                problems.append({"name": name, "error": "PROPERTY_DOESNT_EXIST", "message": f'Property "{name}" does not exist'})
                continue
            if info.read_only:
                problems.append({"name": name, "error": "READ_ONLY_VALUE", "message": f"{name} is a read only property; its value cannot be set."})
                continue
            if not value:
                continue  # empty or null clears the property
            problem = self._check_value(obj_type, name, value, info.kind, info.options)
            if problem:
                problems.append({"name": name, "error": problem[0], "message": problem[1]})
        pipeline_props = PIPELINE_PROPERTIES.get(obj_type)
        if pipeline_props and any(p in props for p in pipeline_props):
            problems.extend(self._check_stage(obj_type, props, current or {}))
        if problems:
            raise property_errors(problems)

    def _check_value(self, obj_type: str, name: str, value: str, kind: str, options: frozenset[str]) -> tuple[str, str] | None:
        if name == "email" and obj_type == "contacts" and not EMAIL_RE.match(value):
            return "INVALID_EMAIL", f"Email address {value} is invalid"
        if self.strict and (problem := self._check_strict(obj_type, name, value, kind)):
            return problem
        if kind == "number":
            try:
                number = float(value)
            except ValueError:
                return "INVALID_LONG", f"{value} was not a valid number."
            if name == "price" and obj_type == "line_items" and number < 0:
                return "INVALID_PRICE", f"Line item price must not be negative, got {value}"
        elif kind == "enumeration" and options and any(v not in options for v in value.split(";")):
            return "INVALID_OPTION", f"{value} was not one of the allowed options: {sorted(options)}"
        elif kind == "bool" and value.lower() not in _TRUE_FALSE:
            return "INVALID_BOOLEAN", f"{value} is not a valid boolean (true or false)"
        elif kind in ("date", "datetime") and parse_ms(value) is None:
            return "INVALID_DATE", f"{value} is not a valid date"
        return None

    def _check_strict(self, obj_type: str, name: str, value: str, kind: str) -> tuple[str, str] | None:
        if kind == "number" and not PLAIN_DECIMAL.match(value):
            return "INVALID_DECIMAL", f"{value} was not a valid number: use a plain decimal like 1234.5"
        if kind == "date" and (ms := parse_ms(value)) is not None and ms % DAY_MS:
            return "INVALID_DATE", f"{value} is not midnight UTC: date properties hold a day (e.g. 2026-03-01)"
        if name in CURRENCY_PROPERTIES and self.currencies and value not in self.currencies:
            return "INVALID_CURRENCY", (f"{value} is not a currency of this account "
                                        f"(enabled: {', '.join(sorted(self.currencies))})")
        if obj_type == "line_items" and name == "hs_product_id":
            rec_id = as_id(value)
            if rec_id is None or self.store.get_live("products", rec_id) is None:
                return "INVALID_OBJECT_ID", f"hs_product_id {value} does not refer to an existing product"
        return None

    def _check_stage(self, obj_type: str, props: dict[str, str | None], current: dict[str, str]) -> list[dict[str, str]]:
        """A stage must belong to the record's pipeline (the one written now, else its current one, else the
        default), as HubSpot refuses a deal's or an order's stage id from another pipeline."""
        pipeline_prop, stage_prop = PIPELINE_PROPERTIES[obj_type]
        pipeline = props.get(pipeline_prop) or current.get(pipeline_prop) or "default"
        stages = self.schema.pipeline_stages[obj_type].get(pipeline)
        if stages is None:
            return [{"name": pipeline_prop, "error": "INVALID_OPTION", "message": f"{pipeline} is not a valid pipeline"}]
        stage = props.get(stage_prop) or current.get(stage_prop)
        if stage and stage not in stages:
            return [{"name": stage_prop, "error": "INVALID_OPTION",
                     "message": f"{stage} is not a valid {stage_prop} for pipeline {pipeline}"}]
        return []

    # ---- unique values ------------------------------------------------------------------------------
    def index(self, obj_type: str, prop: str) -> dict[str, int]:
        """value -> id for one unique property, built on first use (and after a schema change)."""
        idx = self.store.unique[obj_type].get(prop)
        if idx is None:
            idx = {}
            for rec in self.store.iter_live(obj_type):
                value = rec.props.get(prop)
                if value:
                    idx[unique_key(prop, value)] = rec.id
            self.store.unique[obj_type][prop] = idx
        return idx

    def build_indexes(self) -> None:
        """Every unique property's index, at start: built on the first request instead, the first upsert of a
        type after a restart paid for all its records (3 s for 4.1M line items), which HubSpot never does."""
        for obj_type in self.store.unique:
            for prop in self.schema.unique_properties(obj_type):
                self.index(obj_type, prop)

    def require_unique(self, obj_type: str, prop: str, verb: str) -> None:
        info = self.schema.info[obj_type].get(prop)
        if prop == "hs_object_id":
            return
        if info is None:
            raise validation_error(f'Property "{prop}" does not exist')
        if not info.unique:
            raise validation_error(f"Unable to perform {verb} by non-unique {prop} property")

    def find_by(self, obj_type: str, prop: str, value: str) -> int | None:
        if prop == "hs_object_id":
            rec_id = as_id(value)
            return rec_id if rec_id is not None and self.store.get_live(obj_type, rec_id) else None
        return self.index(obj_type, prop).get(unique_key(prop, value))

    def check_conflicts(self, obj_type: str, props: dict[str, str | None], self_id: int | None,
                        staged: dict[tuple[str, str], int] | None = None) -> None:
        """409 when a unique value already belongs to another live record (or to an earlier input of the
        same all-or-nothing batch, passed as `staged`)."""
        for prop in self.schema.unique_properties(obj_type):
            value = props.get(prop)
            if not value:
                continue
            key = unique_key(prop, value)
            owner = self.index(obj_type, prop).get(key)
            if owner is not None and owner != self_id:
                raise conflict(obj_type, prop, value, owner)
            if staged is not None:
                if (prop, key) in staged:
                    raise validation_error(f"Duplicate value {value} for unique property {prop} in batch input")
                staged[(prop, key)] = 1

    def reindex(self, obj_type: str, rec_id: int, old: dict[str, str], new: dict[str, str] | None) -> None:
        """Move a record's unique values in the indexes (new=None when it is archived)."""
        for prop, idx in self.store.unique[obj_type].items():
            before, after = old.get(prop), (new or {}).get(prop)
            if before == after:
                continue
            if before and idx.get(unique_key(prop, before)) == rec_id:
                del idx[unique_key(prop, before)]
            if after:
                idx[unique_key(prop, after)] = rec_id


def conflict(obj_type: str, prop: str, value: str, owner: int) -> ApiError:
    if obj_type == "contacts" and prop == "email":
        message = f"Contact already exists. Existing ID: {owner}"
    else:
        message = f"A {SINGULAR[obj_type]} with {prop}={value} already exists. Existing ID: {owner}"
    return ApiError(409, "CONFLICT", message, context={"existingId": [str(owner)]})


def as_id(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None

