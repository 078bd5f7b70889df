"""CRM object operations (single and batch) with HubSpot's batch semantics.

- batch create is all-or-nothing unless every input carries a distinct `objectWriteTraceId`, in which
  case it answers 207 with one error per failed input (HubSpot's multi-status rule);
- batch update/upsert: by default (``whole_batches``, HubSpot's observed behaviour) one invalid or
  conflicting input fails the whole request with one error naming it (context ``ids``) and nothing is
  written; with ``--batch-errors partial`` they answer 207 with per-input errors and keep the good inputs;
- batch read answers 207 with the missing ids;
- more than 100 inputs, duplicate ids or a non-unique `idProperty` fail the whole request with 400.

Every answer carries the standard properties (hs_object_id, createdate, last modified date)."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from .catalog import (
    ASSOCIATION_TYPES,
    DEFAULT_READ_PROPERTIES,
    MODIFIED_PROPERTY,
    PIPELINE_PROPERTIES,
    SINGULAR,
    canonical_type,
)
from .errors import ApiError, not_found, validation_error
from .rules import Rules, as_id, normalize_properties
from .schema import Schema
from .store import Record, Store, now_ms, unique_key
from .timefmt import iso

MAX_BATCH = 100
SYSTEM_READ = ("hs_object_id", "createdate")

Json = dict[str, Any]
Staged = dict[tuple[str, str], int] | None
Prepare = Callable[[Json, Staged], Callable[[], Json]]


def _naming(raw: Json) -> dict[str, list[str]]:
    """The context naming one batch input: its id (and write trace id)."""
    named = {"ids": [str(raw.get("id"))]}
    if raw.get("objectWriteTraceId"):
        named["objectWriteTraceId"] = [str(raw["objectWriteTraceId"])]
    return named


def batch_inputs(body: Any, limit: int = MAX_BATCH) -> list[Json]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise validation_error("Request body must be an object with an `inputs` array")
    inputs = body["inputs"]
    if len(inputs) > limit:
        raise validation_error(f"Batch input size {len(inputs)} exceeds the limit of {limit} inputs")
    if not all(isinstance(i, dict) for i in inputs):
        raise validation_error("Every batch input must be an object")
    return inputs


def batch_response(results: list[Json], errors: list[Json], started: str) -> Json:
    body: Json = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": iso(now_ms())}
    if errors:
        body["errors"] = errors
        body["numErrors"] = len(errors)
    return body


class Objects:
    def __init__(self, store: Store, schema: Schema, rules: Rules, search_delay: float,
                 whole_batches: bool = True) -> None:
        self.whole_batches = whole_batches
        self.store = store
        self.schema = schema
        self.rules = rules
        self.search_delay_ms = int(search_delay * 1000)

    # ---- rendering ----------------------------------------------------------------------------------
    def render(self, obj_type: str, rec: Record, wanted: list[str] | None = None, *, everything: bool = False,
               associations: list[str] | None = None, history: list[str] | None = None,
               props: dict[str, str] | None = None) -> Json:
        source = rec.props if props is None else props
        if everything:
            shown: dict[str, str | None] = dict(source)
        else:
            names = (*(wanted or DEFAULT_READ_PROPERTIES[obj_type]), *SYSTEM_READ, MODIFIED_PROPERTY[obj_type])
            shown = {n: source.get(n) for n in names}
        out: Json = {"id": str(rec.id), "properties": shown, "createdAt": iso(rec.created),
                     "updatedAt": iso(rec.updated), "archived": rec.archived}
        if rec.archived:
            out["archivedAt"] = iso(rec.archived_at)
        if history:
            out["propertiesWithHistory"] = {
                n: [{"value": source[n], "timestamp": iso(rec.updated), "sourceType": "API"}]
                for n in history if n in source
            }
        if associations:
            out["associations"] = self._inline_associations(obj_type, rec.id, associations)
        return out

    def _inline_associations(self, obj_type: str, rec_id: int, to_types: list[str]) -> Json:
        found: Json = {}
        for name in to_types:
            to_type = canonical_type(name)
            if to_type is None:
                continue
            rows = []
            for other_id, type_ids in self.store.associations_of((obj_type, rec_id), to_type):
                for tid in sorted(type_ids):
                    label = ASSOCIATION_TYPES[tid].label
                    kind = f"{SINGULAR[obj_type]}_to_{SINGULAR[to_type]}" + (f"_{label.lower()}" if label else "")
                    rows.append({"id": str(other_id), "type": kind})
            if rows:
                found[name] = {"results": rows}
        return found

    # ---- lookups ------------------------------------------------------------------------------------
    def resolve(self, obj_type: str, id_value: Any, id_property: str | None, verb: str = "update") -> Record | None:
        prop = id_property or "hs_object_id"
        self.rules.require_unique(obj_type, prop, verb)
        rec_id = self.rules.find_by(obj_type, prop, str(id_value))
        return self.store.get_live(obj_type, rec_id) if rec_id is not None else None

    def get(self, obj_type: str, id_value: str, id_property: str | None) -> Record:
        rec = self.resolve(obj_type, id_value, id_property, "read")
        if rec is None:
            raise not_found("Object not found.  objectId are usually numeric.", [id_value])
        return rec

    # ---- writes -------------------------------------------------------------------------------------
    def _check_associations(self, obj_type: str, specs: Any) -> list[tuple[str, int, int]]:
        """Validate inline associations of a create: [(to_type, to_id, type_id)]."""
        if not specs:
            return []
        links = []
        for spec in specs:
            try:
                to_id = as_id(spec["to"]["id"])
                types = spec["types"]
            except (KeyError, TypeError):
                raise validation_error("Each association needs `to.id` and `types`") from None
            for t in types:
                assoc = ASSOCIATION_TYPES.get(int(t.get("associationTypeId", -1)))
                if assoc is None or assoc.from_type != obj_type:
                    raise validation_error(
                        f"{t.get('associationTypeId')} is not a valid association type id from {SINGULAR[obj_type]}",
                        sub_category="crm.associations.INVALID_ASSOCIATION_TYPE",
                    )
                if to_id is None or self.store.get_live(assoc.to_type, to_id) is None:
                    raise validation_error(
                        f"{SINGULAR[assoc.to_type]} {spec['to']['id']} does not exist; cannot associate",
                        sub_category="crm.associations.INVALID_OBJECT_IDS",
                    )
                links.append((assoc.to_type, to_id, assoc.type_id))
        return links

    def prepare_create(self, obj_type: str, raw: Any, staged: dict[tuple[str, str], int] | None = None) -> tuple[dict[str, str | None], list[tuple[str, int, int]]]:
        if not isinstance(raw, dict):
            raise validation_error("Each input must be an object with `properties`")
        props = normalize_properties(obj_type, raw.get("properties"))
        self.rules.check_values(obj_type, props, None)
        self.rules.check_conflicts(obj_type, props, None, staged)
        return props, self._check_associations(obj_type, raw.get("associations"))

    def apply_create(self, obj_type: str, props: dict[str, str | None], links: list[tuple[str, int, int]]) -> Record:
        now = now_ms()
        rec_id = self.store.next_id()
        stamp = iso(now)
        values = {k: v for k, v in props.items() if v}
        values.setdefault("createdate", stamp)
        values["hs_createdate"] = values["createdate"]
        values.update({"hs_object_id": str(rec_id), MODIFIED_PROPERTY[obj_type]: stamp})
        if obj_type in PIPELINE_PROPERTIES:  # HubSpot puts a record without a pipeline in the default one
            values.setdefault(PIPELINE_PROPERTIES[obj_type][0], "default")
        rec = Record(rec_id, values, now, now)
        if self.search_delay_ms:
            rec.visible_at = now + self.search_delay_ms
        self.store.add(obj_type, rec)
        self.rules.reindex(obj_type, rec_id, {}, values)
        for to_type, to_id, type_id in links:
            self.store.associate((obj_type, rec_id), (to_type, to_id), type_id)
        return rec

    def prepare_update(self, obj_type: str, rec: Record, raw_props: Any,
                       staged: dict[tuple[str, str], int] | None = None) -> dict[str, str | None]:
        props = normalize_properties(obj_type, raw_props)
        self.rules.check_values(obj_type, props, rec.props)
        self.rules.check_conflicts(obj_type, props, rec.id, staged)
        return props

    def apply_update(self, obj_type: str, rec: Record, props: dict[str, str | None]) -> Record:
        now = now_ms()
        old = rec.props
        new = dict(old)
        for k, v in props.items():
            if v:
                new[k] = v
            else:
                new.pop(k, None)
        new[MODIFIED_PROPERTY[obj_type]] = iso(now)
        if self.search_delay_ms:
            if rec.visible_at <= now:
                rec.prev = old  # the version search keeps showing until the delay passes
            rec.visible_at = now + self.search_delay_ms
        rec.props = new
        rec.updated = now
        self.rules.reindex(obj_type, rec.id, old, new)
        self.store.touched(obj_type, rec)
        return rec

    def archive(self, obj_type: str, rec: Record) -> None:
        self.rules.reindex(obj_type, rec.id, rec.props, None)
        self.store.archive(obj_type, rec)

    # ---- single-object endpoints --------------------------------------------------------------------
    def create_one(self, obj_type: str, body: Any) -> Json:
        props, links = self.prepare_create(obj_type, body)
        return self.render(obj_type, self.apply_create(obj_type, props, links), everything=True)

    def update_one(self, obj_type: str, id_value: str, id_property: str | None, body: Any) -> Json:
        rec = self.get(obj_type, id_value, id_property)
        props = self.prepare_update(obj_type, rec, (body or {}).get("properties"))
        return self.render(obj_type, self.apply_update(obj_type, rec, props), everything=True)

    def archive_one(self, obj_type: str, id_value: str) -> None:
        rec = self.resolve(obj_type, id_value, None, "archive")
        if rec is not None:
            self.archive(obj_type, rec)

    def list_page(self, obj_type: str, limit: int, after: str | None, wanted: list[str] | None,
                  associations: list[str] | None, archived: bool, history: list[str] | None) -> Json:
        if not 1 <= limit <= 100:
            raise validation_error("limit must be between 1 and 100")
        order, recs = self.store.order[obj_type], self.store.records[obj_type]
        start = bisect_left(order, as_id(after) or 0) if after else 0
        page: list[Record] = []
        nxt: int | None = None
        for rec_id in order[start:]:
            rec = recs[rec_id]
            if rec.archived != archived:
                continue
            if len(page) == limit:
                nxt = rec_id
                break
            page.append(rec)
        body: Json = {"results": [self.render(obj_type, r, wanted, associations=associations, history=history) for r in page]}
        if nxt is not None:
            body["paging"] = {"next": {"after": str(nxt), "link": f"?after={nxt}"}}
        return body

    # ---- batch endpoints ----------------------------------------------------------------------------
    def batch_create(self, obj_type: str, body: Any) -> tuple[int, Json]:
        inputs = batch_inputs(body)
        started = iso(now_ms())
        traces = [i.get("objectWriteTraceId") for i in inputs]
        multi_status = all(traces) and len(set(traces)) == len(traces)
        results, errors = [], []
        if multi_status:
            for raw, trace in zip(inputs, traces, strict=True):
                try:
                    rec = self.apply_create(obj_type, *self.prepare_create(obj_type, raw))
                except ApiError as err:
                    errors.append(err.batch_entry({"objectWriteTraceId": [str(trace)]}))
                    continue
                results.append(self.render(obj_type, rec, everything=True) | {"objectWriteTraceId": trace})
        else:
            staged: dict[tuple[str, str], int] = {}
            prepared = [self.prepare_create(obj_type, raw, staged) for raw in inputs]  # first error fails all
            for raw, (props, links) in zip(inputs, prepared, strict=True):
                out = self.render(obj_type, self.apply_create(obj_type, props, links), everything=True)
                if raw.get("objectWriteTraceId"):
                    out["objectWriteTraceId"] = raw["objectWriteTraceId"]
                results.append(out)
        return (207 if errors else 201), batch_response(results, errors, started)

    def _check_duplicate_ids(self, inputs: list[Json], default_prop: str | None) -> None:
        seen: set[tuple[str, str]] = set()
        dupes: list[str] = []
        for raw in inputs:
            prop = raw.get("idProperty") or default_prop or "hs_object_id"
            key = (prop, unique_key(prop, str(raw.get("id", ""))))
            if key in seen:
                dupes.append(str(raw.get("id")))
            seen.add(key)
        if dupes:
            raise validation_error(f"Duplicate IDs found in batch input: {dupes}. IDs must be unique")

    def _per_input(self, inputs: list[Json], prepare: Prepare) -> tuple[list[Json], list[Json]]:
        """Validate then write each input: whole batches validate every input first and fail the request
        on the first bad one (nothing written); partial batches keep the good inputs."""
        if self.whole_batches:
            staged: dict[tuple[str, str], int] = {}
            plans = []
            for raw in inputs:
                try:
                    plans.append(prepare(raw, staged))
                except ApiError as err:
                    err.context = {**err.context, **_naming(raw)}
                    raise
            return [apply() for apply in plans], []
        results, errors = [], []
        for raw in inputs:
            try:
                results.append(prepare(raw, None)())
            except ApiError as err:
                errors.append(err.batch_entry(_naming(raw)))
        return results, errors

    def batch_update(self, obj_type: str, body: Any) -> tuple[int, Json]:
        inputs = batch_inputs(body)
        started = iso(now_ms())
        for raw in inputs:
            if raw.get("idProperty"):
                self.rules.require_unique(obj_type, raw["idProperty"], "update")
        self._check_duplicate_ids(inputs, None)

        def update(raw: Json, staged: Staged) -> Callable[[], Json]:
            rec = self.resolve(obj_type, raw.get("id"), raw.get("idProperty"))
            if rec is None:
                raise not_found(f"Could not find {SINGULAR[obj_type]} {raw.get('id')}", [str(raw.get("id"))])
            props = self.prepare_update(obj_type, rec, raw.get("properties"), staged)
            return lambda: self.render(obj_type, self.apply_update(obj_type, rec, props), everything=True)

        results, errors = self._per_input(inputs, update)
        return (207 if errors else 200), batch_response(results, errors, started)

    def batch_upsert(self, obj_type: str, body: Any) -> tuple[int, Json]:
        inputs = batch_inputs(body)
        started = iso(now_ms())
        for raw in inputs:
            self.rules.require_unique(obj_type, raw.get("idProperty") or "hs_object_id", "upsert")
        self._check_duplicate_ids(inputs, None)

        def upsert(raw: Json, staged: Staged) -> Callable[[], Json]:
            prop = raw.get("idProperty") or "hs_object_id"
            id_value = raw.get("id")
            if id_value is None or id_value == "":
                raise validation_error("Each upsert input needs an `id`")
            rec_id = self.rules.find_by(obj_type, prop, str(id_value))
            rec = self.store.get_live(obj_type, rec_id) if rec_id is not None else None
            if rec is not None:
                found = rec
                props = self.prepare_update(obj_type, found, raw.get("properties"), staged)
                return lambda: self.render(obj_type, self.apply_update(obj_type, found, props), everything=True) | {"new": False}
            if prop == "hs_object_id":
                raise not_found(f"Could not find {SINGULAR[obj_type]} {id_value}", [str(id_value)])
            properties = dict(raw.get("properties") or {})
            properties[prop] = id_value
            created = self.prepare_create(obj_type, {"properties": properties}, staged)
            return lambda: self.render(obj_type, self.apply_create(obj_type, *created), everything=True) | {"new": True}

        results, errors = self._per_input(inputs, upsert)
        return (207 if errors else 200), batch_response(results, errors, started)

    def batch_read(self, obj_type: str, body: Any, archived: bool) -> tuple[int, Json]:
        inputs = batch_inputs(body)
        started = iso(now_ms())
        id_property = body.get("idProperty")
        if id_property:
            self.rules.require_unique(obj_type, id_property, "read")
        wanted = body.get("properties") or None
        history = body.get("propertiesWithHistory") or None
        results, missing = [], []
        for raw in inputs:
            rec_id = self.rules.find_by(obj_type, id_property or "hs_object_id", str(raw.get("id")))
            rec = self.store.records[obj_type].get(rec_id) if rec_id is not None else None
            if rec is None or rec.archived != archived:
                missing.append(str(raw.get("id")))
                continue
            results.append(self.render(obj_type, rec, wanted, history=history))
        errors = []
        if missing:
            err = not_found(f"Could not get some {obj_type.upper()} objects, they may be deleted or not exist. "
                            "Check that ids are valid.", missing)
            errors.append(err.batch_entry())
        return (207 if errors else 200), batch_response(results, errors, started)

    def batch_archive(self, obj_type: str, body: Any) -> None:
        for raw in batch_inputs(body):
            rec = self.resolve(obj_type, raw.get("id"), None, "archive")
            if rec is not None:
                self.archive(obj_type, rec)

    def visible_props(self, rec: Record, now: int | None = None) -> dict[str, str] | None:
        """The version of a record that search sees (None: not indexed yet)."""
        if not self.search_delay_ms or rec.visible_at <= (now if now is not None else time.time_ns() // 1_000_000):
            return rec.props
        return rec.prev
