"""Associations v4: batch associate-default, batch create with type ids, batch read (≤ 1,000 ids), batch
archive and the per-object list. Every association is stored in both directions (see Store.associate)."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

from .catalog import ASSOCIATION_TYPES, DEFAULT_ASSOCIATION, OBJECT_TYPE_IDS, SINGULAR
from .errors import ApiError, not_found, validation_error
from .objects import Json, batch_inputs, batch_response
from .rules import as_id
from .store import Store, now_ms
from .timefmt import iso

MAX_READ = 1000


def _spec(type_id: int) -> Json:
    return {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}


def _labelled(type_ids: AbstractSet[int]) -> list[Json]:
    return [{"category": "HUBSPOT_DEFINED", "typeId": t, "label": ASSOCIATION_TYPES[t].label} for t in sorted(type_ids)]


class Associations:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _live_id(self, obj_type: str, raw: Any) -> int:
        rec_id = as_id(raw)
        if rec_id is None or self.store.get_live(obj_type, rec_id) is None:
            raise ApiError(400, "VALIDATION_ERROR", f"{SINGULAR[obj_type]} {raw} does not exist",
                           sub_category="crm.associations.INVALID_OBJECT_IDS", context={"ids": [str(raw)]})
        return rec_id

    def _pair_ids(self, from_type: str, to_type: str, raw: Json) -> tuple[int, int]:
        try:
            return self._live_id(from_type, raw["from"]["id"]), self._live_id(to_type, raw["to"]["id"])
        except (KeyError, TypeError):
            raise validation_error("Each input needs `from.id` and `to.id`") from None

    def associate_default(self, from_type: str, to_type: str, body: Any) -> tuple[int, Json]:
        type_id = DEFAULT_ASSOCIATION.get((from_type, to_type))
        if type_id is None:
            raise validation_error(f"No default association exists from {from_type} to {to_type}")
        inputs = batch_inputs(body, MAX_READ)
        started = iso(now_ms())
        pairs = [self._pair_ids(from_type, to_type, raw) for raw in inputs]  # all-or-nothing
        results = []
        inverse = ASSOCIATION_TYPES[type_id].inverse
        for a, b in pairs:
            self.store.associate((from_type, a), (to_type, b), type_id)
            results.append({"from": {"id": str(a)}, "to": {"id": str(b)}, "associationSpec": _spec(type_id)})
            results.append({"from": {"id": str(b)}, "to": {"id": str(a)}, "associationSpec": _spec(inverse)})
        return 200, batch_response(results, [], started)

    def create(self, from_type: str, to_type: str, body: Any) -> tuple[int, Json]:
        inputs = batch_inputs(body, MAX_READ)
        started = iso(now_ms())
        results, errors = [], []
        for raw in inputs:
            try:
                a, b = self._pair_ids(from_type, to_type, raw)
                type_ids = [self._type_id(from_type, to_type, t) for t in raw.get("types") or []]
                if not type_ids:
                    raise validation_error("Each input needs at least one association type")
            except ApiError as err:
                errors.append(err.batch_entry())
                continue
            for tid in type_ids:
                self.store.associate((from_type, a), (to_type, b), tid)
            labels = [ASSOCIATION_TYPES[t].label for t in type_ids if ASSOCIATION_TYPES[t].label]
            results.append({"fromObjectTypeId": OBJECT_TYPE_IDS[from_type], "fromObjectId": a,
                            "toObjectTypeId": OBJECT_TYPE_IDS[to_type], "toObjectId": b, "labels": labels})
        return (207 if errors else 201), batch_response(results, errors, started)

    @staticmethod
    def _type_id(from_type: str, to_type: str, spec: Json) -> int:
        try:
            type_id = int(spec["associationTypeId"])
        except (KeyError, TypeError, ValueError):
            raise validation_error("Each type needs an associationTypeId") from None
        assoc = ASSOCIATION_TYPES.get(type_id)
        if assoc is None or (assoc.from_type, assoc.to_type) != (from_type, to_type):
            raise validation_error(f"associationTypeId {type_id} is not valid from {from_type} to {to_type}",
                                   sub_category="crm.associations.INVALID_ASSOCIATION_TYPE")
        return type_id

    def read(self, from_type: str, to_type: str, body: Any) -> tuple[int, Json]:
        inputs = batch_inputs(body, MAX_READ)
        started = iso(now_ms())
        results, errors = [], []
        for raw in inputs:
            rec_id = as_id(raw.get("id"))
            links = self.store.associations_of((from_type, rec_id), to_type) if rec_id is not None else []
            if not links:
                err = not_found(f"No {SINGULAR[to_type]} is associated with {SINGULAR[from_type]} {raw.get('id')}.",
                                [str(raw.get("id"))])
                err.sub_category = "crm.associations.NO_ASSOCIATIONS_FOUND"
                errors.append(err.batch_entry())
                continue
            results.append({"from": {"id": str(rec_id)},
                            "to": [{"toObjectId": oid, "associationTypes": _labelled(t)} for oid, t in links]})
        return (207 if errors else 200), batch_response(results, errors, started)

    def archive(self, from_type: str, to_type: str, body: Any) -> None:
        for raw in batch_inputs(body, 2000):
            a = as_id((raw.get("from") or {}).get("id"))
            for to in raw.get("to") or []:
                b = as_id(to.get("id"))
                if a is not None and b is not None:
                    self.store.unassociate((from_type, a), (to_type, b))

    def list_for(self, from_type: str, rec_id: str, to_type: str, limit: int, after: str | None) -> Json:
        rid = as_id(rec_id)
        if rid is None or self.store.get_live(from_type, rid) is None:
            raise not_found(f"{SINGULAR[from_type]} {rec_id} not found", [rec_id])
        links = self.store.associations_of((from_type, rid), to_type)
        start = int(after or 0)
        page = links[start:start + limit]
        out: Json = {"results": [{"toObjectId": oid, "associationTypes": _labelled(t)} for oid, t in page]}
        if start + limit < len(links):
            out["paging"] = {"next": {"after": str(start + limit), "link": ""}}
        return out

    def put_default(self, from_type: str, rec_id: str, to_type: str, to_id: str) -> tuple[int, Json]:
        return self.associate_default(from_type, to_type, {"inputs": [{"from": {"id": rec_id}, "to": {"id": to_id}}]})
