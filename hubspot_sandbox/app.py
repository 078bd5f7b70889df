"""The sandbox as an ASGI application: Starlette routes for HubSpot's paths plus the /_sandbox inspection
routes, wrapped by fault injection and request statistics.

Every HubSpot route goes through one wrapper (`_api`) that authenticates, applies the rate budget, parses
JSON with orjson, runs the handler synchronously (so each request's mutations are atomic on the event
loop) and commits the touched rows to SQLite before answering."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Match, Route

from .associations import Associations
from .auth import Auth
from .catalog import (
    ACCOUNT_TIME_ZONE,
    ADDITIONAL_CURRENCIES,
    COMPANY_CURRENCY,
    PORTAL_ID,
    PUBLISHED_VERSIONS,
    canonical_type,
)
from .errors import ApiError, validation_error
from .faults import FaultInjector
from .limits import RateLimiter
from .objects import Objects, batch_inputs, batch_response
from .rules import Rules
from .schema import Schema
from .scopes import missing_scopes, needed
from .search import search
from .store import Store, now_ms
from .timefmt import iso

Json = dict[str, Any]
Result = tuple[int, Any]


class _ApiVersion(Convertor[str]):
    """HubSpot's date versions in paths, e.g. /crm/objects/2026-03/contacts."""

    regex = r"\d{4}-\d{2}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("apiver", _ApiVersion())


@dataclass
class SandboxConfig:
    state: Path | None = None
    tokens: list[str] = field(default_factory=lambda: ["sandbox-token"])
    tier: str = "professional"
    rate_limits: bool = False
    rate_window_seconds: float = 10.0
    daily_limit: int | None = None
    requests_per_ten_seconds: int | None = None  # overrides the tier's budget (benchmarks priming a big store)
    faults: str | None = None
    fault_seed: int | None = None
    slow_seconds: float = 2.0
    search_delay: float = 0.0
    token_ttl: float = 1800.0
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    # HubSpot's strictness by default; the lenient behaviours of earlier sandboxes stay available.
    batch_errors: str = "whole"  # whole: one bad input fails the batch (one error naming it); partial: 207
    lenient_values: bool = False  # accept "1_000"/"NaN" numbers, dates with a time, any currency, dangling products
    no_unique_on: tuple[str, ...] = ()  # object types refusing hasUniqueValue properties
    time_zone: str = ACCOUNT_TIME_ZONE


class Stats:
    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.requests: dict[str, dict[str, int]] = {}
        self.faults: dict[str, int] = {}

    def record(self, route: str, status: str, fault: str | None) -> None:
        by_status = self.requests.setdefault(route, {})
        by_status[status] = by_status.get(status, 0) + 1
        if fault:
            self.faults[fault] = self.faults.get(fault, 0) + 1


class Sandbox:
    """All state and services of one sandbox portal."""

    def __init__(self, cfg: SandboxConfig) -> None:
        self.cfg = cfg
        self.store = Store(cfg.state)
        self.schema = Schema(self.store, cfg.tier, no_unique_on=cfg.no_unique_on)
        self.rules = Rules(self.store, self.schema, strict=not cfg.lenient_values,
                           currencies=(COMPANY_CURRENCY, *ADDITIONAL_CURRENCIES))
        self.rules.build_indexes()
        self.objects = Objects(self.store, self.schema, self.rules, cfg.search_delay,
                               whole_batches=cfg.batch_errors == "whole")
        self.associations = Associations(self.store)
        self.auth = Auth(self.store, cfg.tokens, cfg.client_id, cfg.client_secret, cfg.token_ttl)
        self.limiter = RateLimiter(cfg.tier, cfg.rate_limits, cfg.rate_window_seconds, cfg.daily_limit,
                                   time_zone=cfg.time_zone, per_ten_seconds=cfg.requests_per_ten_seconds)
        self.stats = Stats()
        self.store.commit()


@dataclass
class Call:
    """What a handler sees of a request."""

    path: dict[str, str]
    query: QueryParams
    body: Any

    def types(self, key: str) -> str:
        return self.path[key]

    def csv(self, key: str) -> list[str] | None:
        values = [v for raw in self.query.getlist(key) for v in raw.split(",") if v]
        return values or None

    def flag(self, key: str) -> bool:
        return self.query.get(key, "false").lower() == "true"


Handler = Callable[[Sandbox, Call], Result]
_TYPE_PARAMS = ("objectType", "fromObjectType", "toObjectType")


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    if payload is None or status == 204:
        return Response(status_code=status, headers=headers)
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


_CONVERTOR = re.compile(r":\w+}")


def _route_key(method: str, path: str) -> str:
    return f"{method} {_CONVERTOR.sub('}', path)}"


def _api(sb: Sandbox, path: str, method: str, handler: Handler, kind: str = "crm") -> Route:
    """A HubSpot route: auth, rate budget (kind: crm | search | assoc), JSON in/out, commit."""
    key = _route_key(method, path)

    async def endpoint(request: Request) -> Response:
        # statistics name the concrete API version a request used (".../2026-03/{objectType}")
        version = request.path_params.get("version")
        request.scope["sandbox.route"] = key.replace("{version}", version) if version else key
        headers: dict[str, str] = {}
        try:
            principal = sb.auth.authenticate(request.headers.get("authorization"))
            params = dict(request.path_params)
            version = params.pop("version", None)
            if version is not None and version not in PUBLISHED_VERSIONS:
                raise ApiError(404, "OBJECT_NOT_FOUND",
                               f"API version {version} does not exist; published versions: {', '.join(PUBLISHED_VERSIONS)}")
            bucket = principal.client_id or principal.token
            decision = sb.limiter.check(f"oauth:{bucket}" if principal.oauth else bucket, principal.oauth,
                                        search=kind == "search")
            headers = decision.headers
            if decision.error is not None:
                raise decision.error
            for name in _TYPE_PARAMS:
                if name in params:
                    canonical = canonical_type(params[name])
                    if canonical is None:
                        raise validation_error(f"Unable to infer object type from: {params[name]}")
                    params[name] = canonical
            if principal.scopes is not None:
                obj_type = params.get("objectType") or params.get("fromObjectType")
                required = needed(path, method, obj_type)
                if required and not required & principal.scopes:
                    raise missing_scopes(required)
            raw = await request.body()
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                raise validation_error("Invalid input JSON on line 1") from None
            status, payload = handler(sb, Call(params, request.query_params, body))
        except ApiError as err:
            status, payload = err.status, err.body()
        finally:
            sb.store.commit()
        return _json(status, payload, headers)

    return Route(path, endpoint, methods=[method])


# ---- CRM object handlers ----------------------------------------------------------------------------
def _list(sb: Sandbox, c: Call) -> Result:
    limit = int(c.query.get("limit", "10"))
    return 200, sb.objects.list_page(c.types("objectType"), limit, c.query.get("after"), c.csv("properties"),
                                     c.csv("associations"), c.flag("archived"), c.csv("propertiesWithHistory"))


def _get(sb: Sandbox, c: Call) -> Result:
    t = c.types("objectType")
    rec = sb.objects.get(t, c.path["objectId"], c.query.get("idProperty"))
    return 200, sb.objects.render(t, rec, c.csv("properties"), associations=c.csv("associations"),
                                  history=c.csv("propertiesWithHistory"))


def _create(sb: Sandbox, c: Call) -> Result:
    return 201, sb.objects.create_one(c.types("objectType"), c.body)


def _update(sb: Sandbox, c: Call) -> Result:
    return 200, sb.objects.update_one(c.types("objectType"), c.path["objectId"], c.query.get("idProperty"), c.body)


def _archive(sb: Sandbox, c: Call) -> Result:
    sb.objects.archive_one(c.types("objectType"), c.path["objectId"])
    return 204, None


def _batch(op: str) -> Handler:
    def handler(sb: Sandbox, c: Call) -> Result:
        t = c.types("objectType")
        if op == "archive":
            sb.objects.batch_archive(t, c.body)
            return 204, None
        if op == "read":
            return sb.objects.batch_read(t, c.body, c.flag("archived"))
        return getattr(sb.objects, f"batch_{op}")(t, c.body)

    return handler


def _search(sb: Sandbox, c: Call) -> Result:
    return 200, search(sb.objects, c.types("objectType"), c.body)


# ---- associations v4 --------------------------------------------------------------------------------
def _assoc(op: str) -> Handler:
    def handler(sb: Sandbox, c: Call) -> Result:
        a, b = c.types("fromObjectType"), c.types("toObjectType")
        if op == "archive":
            sb.associations.archive(a, b, c.body)
            return 204, None
        return getattr(sb.associations, op)(a, b, c.body)

    return handler


def _assoc_list(sb: Sandbox, c: Call) -> Result:
    limit = int(c.query.get("limit", "500"))
    return 200, sb.associations.list_for(c.types("objectType"), c.path["objectId"], c.types("toObjectType"),
                                         limit, c.query.get("after"))


def _assoc_put_default(sb: Sandbox, c: Call) -> Result:
    return sb.associations.put_default(c.types("fromObjectType"), c.path["fromObjectId"], c.types("toObjectType"),
                                       c.path["toObjectId"])


# ---- properties, groups, pipelines ------------------------------------------------------------------
def _results(items: list[Json]) -> Result:
    return 200, {"results": items}


def _no_content(action: Callable[[Call], None]) -> Handler:
    def handler(sb: Sandbox, c: Call) -> Result:
        action(c)
        return 204, None

    return handler


def _property_batch_create(sb: Sandbox, c: Call) -> Result:
    started, results, errors = iso(now_ms()), [], []
    for raw in batch_inputs(c.body):
        try:
            results.append(sb.schema.create_property(c.types("objectType"), raw))
        except ApiError as err:
            errors.append(err.batch_entry({"propertyName": [str(raw.get("name"))]}))
    return (207 if errors else 201), batch_response(results, errors, started)


def _property_batch_read(sb: Sandbox, c: Call) -> Result:
    props = {p["name"]: p for p in sb.schema.list_properties(c.types("objectType"))}
    names = [str(i.get("name")) for i in batch_inputs(c.body)]
    return 200, batch_response([props[n] for n in names if n in props], [], iso(now_ms()))


def _schema_routes(sb: Sandbox, prefix: str, pprefix: str) -> list[Route]:
    s = sb.schema
    t = "objectType"
    return [
        _api(sb, f"{prefix}/{{objectType}}/groups", "GET", lambda sb, c: _results(s.list_groups(c.types(t)))),
        _api(sb, f"{prefix}/{{objectType}}/groups", "POST", lambda sb, c: (201, s.create_group(c.types(t), c.body or {}))),
        _api(sb, f"{prefix}/{{objectType}}/groups/{{groupName}}", "GET",
             lambda sb, c: (200, s.get_group(c.types(t), c.path["groupName"]))),
        _api(sb, f"{prefix}/{{objectType}}/groups/{{groupName}}", "PATCH",
             lambda sb, c: (200, s.update_group(c.types(t), c.path["groupName"], c.body or {}))),
        _api(sb, f"{prefix}/{{objectType}}/batch/create", "POST", _property_batch_create),
        _api(sb, f"{prefix}/{{objectType}}/batch/read", "POST", _property_batch_read),
        _api(sb, f"{prefix}/{{objectType}}", "GET", lambda sb, c: _results(s.list_properties(c.types(t)))),
        _api(sb, f"{prefix}/{{objectType}}", "POST", lambda sb, c: (201, s.create_property(c.types(t), c.body or {}))),
        _api(sb, f"{prefix}/{{objectType}}/{{propertyName}}", "GET",
             lambda sb, c: (200, s.get_property(c.types(t), c.path["propertyName"]))),
        _api(sb, f"{prefix}/{{objectType}}/{{propertyName}}", "PATCH",
             lambda sb, c: (200, s.update_property(c.types(t), c.path["propertyName"], c.body or {}))),
        _api(sb, f"{prefix}/{{objectType}}/{{propertyName}}", "DELETE",
             _no_content(lambda c: s.archive_property(c.types(t), c.path["propertyName"]))),
        _api(sb, f"{pprefix}/{{objectType}}", "GET", lambda sb, c: _results(s.list_pipelines(c.types(t)))),
        _api(sb, f"{pprefix}/{{objectType}}", "POST", lambda sb, c: (201, s.create_pipeline(c.types(t), c.body or {}))),
        _api(sb, f"{pprefix}/{{objectType}}/{{pipelineId}}", "GET",
             lambda sb, c: (200, s.get_pipeline(c.types(t), c.path["pipelineId"]))),
        _api(sb, f"{pprefix}/{{objectType}}/{{pipelineId}}", "PATCH",
             lambda sb, c: (200, s.update_pipeline(c.types(t), c.path["pipelineId"], c.body or {}))),
        _api(sb, f"{pprefix}/{{objectType}}/{{pipelineId}}", "DELETE",
             _no_content(lambda c: s.archive_pipeline(c.types(t), c.path["pipelineId"]))),
        _api(sb, f"{pprefix}/{{objectType}}/{{pipelineId}}/stages", "GET",
             lambda sb, c: _results(s.get_pipeline(c.types(t), c.path["pipelineId"])["stages"])),
        _api(sb, f"{pprefix}/{{objectType}}/{{pipelineId}}/stages", "POST",
             lambda sb, c: (201, s.create_stage(c.types(t), c.path["pipelineId"], c.body or {}))),
    ]


def _object_routes(sb: Sandbox, prefix: str) -> list[Route]:
    base = f"{prefix}/{{objectType}}"
    routes = [_api(sb, f"{base}/batch/{op}", "POST", _batch(op)) for op in ("create", "read", "update", "upsert", "archive")]
    return [
        *routes,
        _api(sb, f"{base}/search", "POST", _search, kind="search"),
        _api(sb, base, "GET", _list),
        _api(sb, base, "POST", _create),
        _api(sb, f"{base}/{{objectId}}", "GET", _get),
        _api(sb, f"{base}/{{objectId}}", "PATCH", _update),
        _api(sb, f"{base}/{{objectId}}", "DELETE", _archive),
    ]


def _association_routes(sb: Sandbox, prefix: str, object_prefix: str) -> list[Route]:
    base = f"{prefix}/{{fromObjectType}}/{{toObjectType}}/batch"
    return [
        _api(sb, f"{base}/associate/default", "POST", _assoc("associate_default"), kind="assoc"),
        _api(sb, f"{base}/create", "POST", _assoc("create"), kind="assoc"),
        _api(sb, f"{base}/read", "POST", _assoc("read"), kind="assoc"),
        _api(sb, f"{base}/archive", "POST", _assoc("archive"), kind="assoc"),
        _api(sb, f"{object_prefix}/{{objectType}}/{{objectId}}/associations/{{toObjectType}}", "GET", _assoc_list),
        _api(sb, f"{object_prefix}/{{fromObjectType}}/{{fromObjectId}}/associations/default/{{toObjectType}}/{{toObjectId}}",
             "PUT", _assoc_put_default),
    ]


# ---- account info -----------------------------------------------------------------------------------
def _account_details(sb: Sandbox, c: Call) -> Result:
    offset = sb.limiter.utc_offset()
    return 200, {"portalId": PORTAL_ID, "accountType": "STANDARD", "timeZone": sb.cfg.time_zone,
                 "companyCurrency": COMPANY_CURRENCY, "additionalCurrencies": list(ADDITIONAL_CURRENCIES),
                 "utcOffset": offset, "utcOffsetMilliseconds": sb.limiter.utc_offset_ms(),
                 "uiDomain": "app.hubspot.com", "dataHostingLocation": "na1"}


# ---- OAuth ------------------------------------------------------------------------------------------
async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (parsed here: python-multipart is not a dependency)."""
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


def _oauth_routes(sb: Sandbox) -> list[Route]:
    def tag(request: Request, key: str) -> None:
        request.scope["sandbox.route"] = key

    async def authorize(request: Request) -> Response:
        tag(request, "GET /oauth/authorize")
        status, page = sb.auth.consent_page(dict(request.query_params))
        return HTMLResponse(page, status)

    async def decide(request: Request) -> Response:
        tag(request, "POST /oauth/authorize")
        status, target = sb.auth.decide(await _form(request))
        sb.store.commit()
        return RedirectResponse(target, 302) if status == 302 else HTMLResponse(target, status)

    async def token(request: Request) -> Response:
        tag(request, "POST /oauth/v1/token")
        form = await _form(request)
        try:
            status, payload = 200, sb.auth.token(form)
        except ApiError as err:
            status, payload = err.status, {**err.body(), "status": err.category}
        finally:
            sb.store.commit()
        return _json(status, payload)

    async def token_info(request: Request) -> Response:
        tag(request, "GET /oauth/v1/access-tokens/{token}")
        try:
            return _json(200, sb.auth.token_info(request.path_params["token"]))
        except ApiError as err:
            return _json(err.status, err.body())

    return [
        Route("/oauth/authorize", authorize, methods=["GET"]),
        Route("/oauth/authorize", decide, methods=["POST"]),
        Route("/oauth/v1/token", token, methods=["POST"]),
        Route("/oauth/v1/access-tokens/{token}", token_info, methods=["GET"]),
    ]


# ---- inspection (no auth: a local test server; never exposed beyond 127.0.0.1 by default) -----------
INSPECT_PAGE, INSPECT_PAGE_MAX = 100, 1000  # records per page of the /_sandbox/objects inspection route


def _inspection_routes(sb: Sandbox, faults: FaultInjector) -> list[Route]:
    async def health(request: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def stats(request: Request) -> Response:
        total = sum(n for by in sb.stats.requests.values() for n in by.values())
        return _json(200, {"requests": sb.stats.requests, "total_requests": total, "faults": sb.stats.faults,
                           "rate_limited": sb.limiter.rejected, "records": dict(sb.store.live)})

    async def reset(request: Request) -> Response:
        sb.stats.clear()
        sb.limiter.reset()
        faults.reseed()
        wiped = request.query_params.get("data", "0").lower() in ("1", "true")
        if wiped:
            sb.store.wipe(keep_docs=("oauth",))
            sb.schema.reset()
            sb.store.commit()
        return _json(200, {"reset": True, "data": wiped})

    async def objects(request: Request) -> Response:
        obj_type = canonical_type(request.path_params["objectType"])
        if obj_type is None:
            return _json(404, {"message": f"unknown object type {request.path_params['objectType']}"})
        # paged like HubSpot's list API (?limit=, ?after=), or one record by ?id=: all deals at once are megabytes
        query = request.query_params
        try:
            limit = min(max(int(query.get("limit", INSPECT_PAGE)), 1), INSPECT_PAGE_MAX)
            after = max(int(query.get("after", 0)), 0)
        except ValueError:
            return _json(400, {"message": "limit and after must be integers"})
        wanted = query.get("id")
        live = [rec for rec in sb.store.iter_live(obj_type) if wanted is None or str(rec.id) == wanted]
        # deals: the stage's label beside its id, so a person reading this sees "Checkout Abandoned", not 1234
        labels = {st["id"]: st["label"] for pl in sb.schema.list_pipelines("deals") for st in pl["stages"]}
        out = []
        for rec in live[after : after + limit]:
            links: dict[str, list[Json]] = {}
            for (to_type, to_id), types in sorted(sb.store.assoc.get((obj_type, rec.id), {}).items()):
                links.setdefault(to_type, []).append({"id": str(to_id), "types": sorted(types)})
            item: dict[str, Any] = {"id": str(rec.id), "properties": rec.props, "createdAt": rec.created,
                                    "updatedAt": rec.updated, "associations": links}
            if obj_type == "deals" and rec.props.get("dealstage") in labels:
                item["dealstageLabel"] = labels[rec.props["dealstage"]]
            out.append(item)
        body: dict[str, Any] = {"total": len(live), "results": out}
        if after + limit < len(live):
            body["paging"] = {"next": {"after": str(after + limit)}}
        return _json(200, body)

    return [
        Route("/_sandbox/health", health, methods=["GET"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/objects/{objectType}", objects, methods=["GET"]),
    ]


class StatsLayer:
    """Outermost ASGI layer: counts every HubSpot-path request by route template and status."""

    def __init__(self, app: Any, sb: Sandbox, router_app: Starlette) -> None:
        self.app = app
        self.sb = sb
        self.router_app = router_app

    def _template(self, scope: dict[str, Any]) -> str:
        for route in self.router_app.router.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL and isinstance(route, Route):
                return _route_key(scope["method"], route.path)
        return f"{scope['method']} UNMATCHED"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        scope["sandbox.raw_send"] = send
        status: list[int] = []

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            fault = scope.get("sandbox.fault")
            label = "dropped" if fault == "drop" else str(status[0] if status else 500)
            self.sb.stats.record(scope.get("sandbox.route") or self._template(scope), label, fault)


def build_app(cfg: SandboxConfig) -> Any:
    """The complete ASGI application for one sandbox portal."""
    sb = Sandbox(cfg)
    routes: list[Route] = []
    for objects, assoc, props, pipes, obj_for_assoc in (
        ("/crm/v3/objects", "/crm/v4/associations", "/crm/v3/properties", "/crm/v3/pipelines", "/crm/v4/objects"),
        ("/crm/objects/{version:apiver}", "/crm/associations/{version:apiver}", "/crm/properties/{version:apiver}",
         "/crm/pipelines/{version:apiver}", "/crm/objects/{version:apiver}"),
    ):
        routes += _association_routes(sb, assoc, obj_for_assoc)
        routes += _object_routes(sb, objects)
        routes += _schema_routes(sb, props, pipes)
    routes.append(_api(sb, "/account-info/v3/details", "GET", _account_details))
    routes += _oauth_routes(sb)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        sb.store.close()  # clean shutdown: everything is on disk

    starlette = Starlette(routes=routes, lifespan=lifespan)
    faults = FaultInjector(starlette, cfg.faults, cfg.fault_seed, cfg.slow_seconds)
    starlette.router.routes.extend(_inspection_routes(sb, faults))
    app = StatsLayer(faults, sb, starlette)
    app.sandbox = sb  # type: ignore[attr-defined]
    return app


__all__ = ["Sandbox", "SandboxConfig", "build_app"]
