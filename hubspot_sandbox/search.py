"""CRM search: filterGroups (OR of ANDs), one sort, free-text query, limit ≤ 200 and HubSpot's 10,000
result paging ceiling. Records written within the configured search delay show their previous version
(or nothing, when new), as HubSpot's search index lags behind writes."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

from .catalog import QUERY_PROPERTIES
from .errors import validation_error
from .objects import Json, Objects
from .store import now_ms
from .timefmt import parse_ms

MAX_LIMIT = 200
MAX_RESULTS = 10_000
Predicate = Callable[[dict[str, str]], bool]
_TOKEN_SPLIT = re.compile(r"[\s@.,;:/\\_\-]+")


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return parse_ms(value) if value[:1].isdigit() else None


def _compare(a: str, b: str) -> int:
    """Numbers (and dates) compare as numbers, everything else as case-insensitive text."""
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return (na > nb) - (na < nb)
    la, lb = a.lower(), b.lower()
    return (la > lb) - (la < lb)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _filter(f: dict[str, Any]) -> Predicate:
    name, op = f.get("propertyName"), f.get("operator", "EQ")
    if not name:
        raise validation_error("Each filter needs a propertyName")
    value = _text(f["value"]) if f.get("value") is not None else None
    values = [_text(v) for v in f.get("values") or []]
    if op in ("EQ", "NEQ", "GT", "GTE", "LT", "LTE", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN") and value is None:
        raise validation_error(f"Operator {op} needs a value")
    text = value or ""  # the value of the single-value operators (checked above)
    if op == "HAS_PROPERTY":
        return lambda p: bool(p.get(name))
    if op == "NOT_HAS_PROPERTY":
        return lambda p: not p.get(name)
    if op in ("EQ", "NEQ"):
        negate = op == "NEQ"
        return lambda p: (name in p and _compare(p[name], text) == 0) != negate
    if op in ("IN", "NOT_IN"):
        lowered = {v.lower() for v in values}
        negate = op == "NOT_IN"
        return lambda p: (name in p and p[name].lower() in lowered) != negate
    tests = {"GT": lambda c: c > 0, "GTE": lambda c: c >= 0, "LT": lambda c: c < 0, "LTE": lambda c: c <= 0}
    if op in tests:
        test = tests[op]
        return lambda p: name in p and test(_compare(p[name], text))
    if op == "BETWEEN":
        high = _text(f.get("highValue")) if f.get("highValue") is not None else None
        if value is None or high is None:
            raise validation_error("BETWEEN needs value and highValue")
        return lambda p: name in p and _compare(p[name], value) >= 0 and _compare(p[name], high) <= 0
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = text.lower()
        negate = op == "NOT_CONTAINS_TOKEN"

        def contains(p: dict[str, str]) -> bool:
            text = p.get(name, "").lower()
            tokens = [text, *_TOKEN_SPLIT.split(text)]
            return any(fnmatch.fnmatchcase(t, pattern) for t in tokens)

        return lambda p: contains(p) != negate
    raise validation_error(f"Unsupported filter operator {op}")


def _compile(groups: Any) -> Predicate | None:
    if not groups:
        return None
    if not isinstance(groups, list) or len(groups) > 5:
        raise validation_error("A search may have at most 5 filterGroups")
    compiled: list[list[Predicate]] = []
    total = 0
    for group in groups:
        filters = group.get("filters") or []
        if len(filters) > 6:
            raise validation_error("A filterGroup may have at most 6 filters")
        total += len(filters)
        compiled.append([_filter(f) for f in filters])
    if total > 18:
        raise validation_error("A search may have at most 18 filters in total")
    return lambda p: any(all(f(p) for f in fs) for fs in compiled)


def _sort_key(name: str) -> Callable[[tuple[Any, dict[str, str]]], tuple[int, float, str]]:
    def key(item: tuple[Any, dict[str, str]]) -> tuple[int, float, str]:
        raw = item[1].get(name)
        if raw is None:
            return (2, 0.0, "")
        number = _number(raw)
        return (0, number, "") if number is not None else (1, 0.0, raw.lower())

    return key


def search(objects: Objects, obj_type: str, body: Any) -> Json:
    body = body or {}
    limit = int(body.get("limit") or 10)
    if not 1 <= limit <= MAX_LIMIT:
        raise validation_error(f"limit must be between 1 and {MAX_LIMIT}")
    after = int(body.get("after") or 0)
    if after < 0 or after >= MAX_RESULTS:
        raise validation_error(f"Paging past {MAX_RESULTS} results is not supported; narrow the filters instead")
    predicate = _compile(body.get("filterGroups"))
    words = [w.lower() for w in str(body.get("query") or "").split()]
    query_props = QUERY_PROPERTIES[obj_type]
    now = now_ms()
    matches = []
    for rec in objects.store.iter_live(obj_type):
        props = objects.visible_props(rec, now)
        if props is None or (predicate is not None and not predicate(props)):
            continue
        if words:
            haystack = [t for n in query_props for t in _TOKEN_SPLIT.split(props.get(n, "").lower()) if t]
            if not all(any(t.startswith(w) for t in haystack) for w in words):
                continue
        matches.append((rec, props))
    sorts = body.get("sorts") or []
    if sorts:
        first = sorts[0]
        if isinstance(first, str):
            name, descending = first.lstrip("-"), first.startswith("-")
        else:
            name, descending = first.get("propertyName"), first.get("direction", "ASCENDING") == "DESCENDING"
        matches.sort(key=_sort_key(name), reverse=descending)
    page = matches[after:after + limit]
    wanted = body.get("properties") or None
    out: Json = {
        "total": len(matches),
        "results": [objects.render(obj_type, rec, wanted, props=props) for rec, props in page],
    }
    if after + limit < min(len(matches), MAX_RESULTS):
        out["paging"] = {"next": {"after": str(after + limit), "link": ""}}
    return out
