"""``fp-hubspot doctor``: the preflight a store runs against its HubSpot account before the first sync.

Read-only and a handful of requests: the token (and app) is accepted, hub id and data-hosting region, the
granted scopes against the ones the panel needs (public app), the tier's limits as HubSpot's headers report
them, the account's time zone and currencies, whether our unique id property exists (or can be created) on
each synced object type, the deal pipeline, and the configured API version answering. Each check is green
or red; any red makes the command exit non-zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from fp_hubspot_assets.hubspot import endpoints as ep
from fp_hubspot_assets.hubspot.client import HubSpotClient, HubSpotError
from fp_hubspot_assets.hubspot.oauth import required_scopes
from fp_hubspot_assets.hubspot.properties import NO_UNIQUE_FALLBACK, ORDER_PIPELINE_LABEL, PIPELINE_LABEL
from fp_hubspot_assets.hubspot.ratelimit import DailyLimitReached
from fp_hubspot_assets.mapping import ID_PROPERTY
from fp_hubspot_assets.objects import COMMERCE_TYPES
from fp_hubspot_assets.panel import PanelSettings

MAX_UNIQUE_PROPERTIES = 10  # HubSpot's limit of unique-value properties per object type


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def synced_types(settings: PanelSettings) -> list[str]:
    types = ["contacts", "companies", "deals"] if settings.commerce.sends_deals else ["contacts", "companies"]
    types += ["products", "line_items"] if settings.tier.sends_products else []
    return types + (list(COMMERCE_TYPES) if settings.commerce.sends_orders else [])


def _attempt(checks: list[Check], name: str, probe: Callable[[], Check]) -> bool:
    """Run one probe; a HubSpot refusal becomes a red check naming HubSpot's reason."""
    try:
        checks.append(probe())
    except (HubSpotError, DailyLimitReached) as exc:
        checks.append(Check(name, False, str(exc)))
        return False
    return checks[-1].ok


def run_checks(settings: PanelSettings, client: HubSpotClient) -> list[Check]:
    checks: list[Check] = []
    account: dict[str, Any] = {}

    def connection() -> Check:
        account.update(client.account_details())
        return Check("token and account", True, f"accepted; hub id {account.get('portalId')}, data hosted in "
                                                  f"{account.get('dataHostingLocation') or 'unknown'} "
                                                  f"(API host {client.base_url})")

    if not _attempt(checks, "token and account", connection):
        return checks  # nothing else can answer with a refused token
    zone, currency = account.get("timeZone"), account.get("companyCurrency")
    others = account.get("additionalCurrencies") or []
    checks.append(Check("time zone and currencies", bool(zone and currency),
                        f"time zone {zone or 'unknown'} (the daily limit resets at its midnight); currencies "
                        f"{', '.join([str(currency or '?'), *map(str, others)])}"))
    if settings.integration.mode == "public_app":
        _attempt(checks, "scopes", lambda: _scopes(settings, client))
    else:
        checks.append(Check("scopes", True, "private-app token or service key: its scopes are set in HubSpot; "
                                            "the reads below show they suffice to read"))
    _attempt(checks, "API version", lambda: _version(settings, client))
    headers = dict(client.last_headers)  # of a CRM answer: the account's limits
    for object_type in synced_types(settings):
        _attempt(checks, f"properties: {object_type}", partial(_id_property, client, object_type))
    checks.append(_limits(settings, headers))
    _attempt(checks, "commerce objects", lambda: _commerce(settings, client))
    _attempt(checks, "deal pipeline", lambda: _pipeline(settings, client))
    if settings.commerce.sends_orders:  # the default mode never reads order pipelines
        _attempt(checks, "order pipeline", lambda: _order_pipeline(settings, client))
    return checks


def _version(settings: PanelSettings, client: HubSpotClient) -> Check:
    version = settings.integration.api_version
    path = ep.OBJECTS_LIST.path_for(version).replace("{objectType}", "contacts")
    try:
        client.request(ep.OBJECTS_LIST, {"objectType": "contacts"}, query={"limit": 1})
    except HubSpotError as exc:
        if exc.status == 404:
            return Check("API version", False, f"{version}: {path} is not served ({exc.message}); set "
                                               "integration.api_version to a version HubSpot answers")
        raise
    return Check("API version", True, f"{version}: {path} answers")


def _scopes(settings: PanelSettings, client: HubSpotClient) -> Check:
    token = client.current_token()
    info = client.request(ep.OAUTH_TOKEN_INFO, {"token": token}) or {}
    granted = set(info.get("scopes") or [])
    missing = [s for s in required_scopes(settings) if s not in granted]
    if missing:
        return Check("scopes", False, f"missing {', '.join(missing)}: run `fp-hubspot authorize` again (the app "
                                      "must list them)")
    return Check("scopes", True, f"all {len(required_scopes(settings))} required scopes granted")


def _id_property(client: HubSpotClient, object_type: str) -> Check:
    name = f"properties: {object_type}"
    prop = ID_PROPERTY[object_type]
    props = {p.name: p for p in client.list_properties(object_type)}
    unique_count = sum(1 for p in props.values() if getattr(p, "has_unique_value", False))
    existing = props.get(prop)
    if existing is not None and getattr(existing, "has_unique_value", False):
        return Check(name, True, f"{prop} exists and is unique")
    if existing is not None:
        if object_type in NO_UNIQUE_FALLBACK:
            return Check(name, True, f"{prop} exists without unique values: records are created and mapped by id")
        return Check(name, False, f"{prop} exists without unique values, so upserts cannot use it: delete it in "
                                  "HubSpot (Settings → Properties) and run set-up again")
    if unique_count >= MAX_UNIQUE_PROPERTIES:
        return Check(name, False, f"{prop} is missing and {object_type} already has {unique_count} unique-value "
                                  "properties (HubSpot allows 10)")
    fallback = " (a plain one if HubSpot refuses unique values here)" if object_type in NO_UNIQUE_FALLBACK else ""
    return Check(name, True, f"{prop} is missing; set-up creates it{fallback}")


def _commerce(settings: PanelSettings, client: HubSpotClient) -> Check:
    """Whether the account has HubSpot's order and cart objects and the token may use them: one property read
    per type (``crm.objects.{orders,carts}.*`` / ``crm.schemas.*``). Only asked when commerce.objects needs them."""
    if not settings.commerce.sends_orders:
        return Check("commerce objects", True, "not used (commerce.objects: deals)")
    problems = []
    for object_type in COMMERCE_TYPES:
        try:
            client.list_properties(object_type)
        except HubSpotError as exc:
            if exc.status == 403:
                problems.append(f"{object_type}: token lacks its scopes (crm.objects.{object_type}.read/write, "
                                f"crm.schemas.{object_type}.read/write) — {exc.message}")
            elif exc.status == 404:
                problems.append(f"{object_type}: this account has no {object_type} object ({exc.message})")
            else:
                raise
    if problems:
        return Check("commerce objects", False, "; ".join(problems) + ": grant the scopes or set commerce.objects: deals")
    return Check("commerce objects", True, f"orders and carts available (commerce.objects: {settings.commerce.objects})")


def _limits(settings: PanelSettings, headers: Mapping[str, str]) -> Check:
    lower = {k.lower(): v for k, v in headers.items()}
    oauth = settings.integration.mode == "public_app"
    expected, daily = ep.budget_for(settings.tier.value, oauth=oauth)
    most, day = lower.get("x-hubspot-ratelimit-max"), lower.get("x-hubspot-ratelimit-daily")
    interval = lower.get("x-hubspot-ratelimit-interval-milliseconds")
    if most is None:
        return Check("tier and limits", True, f"tier {settings.tier.value}: HubSpot sent no rate headers; "
                                              f"budgeting {expected} per 10 s, {daily} per day")
    seconds = int(interval) / 1000 if interval and interval.isdigit() else ep.TEN_SECONDS
    per_ten = round(int(most) * ep.TEN_SECONDS / seconds) if most.isdigit() else 0
    detail = f"HubSpot reports {per_ten} requests per 10 s" + (f", {day} per day" if day else "")
    if per_ten < expected or (day and day.isdigit() and int(day) < daily):
        return Check("tier and limits", False, f"{detail}, below tier {settings.tier.value} ({expected} per 10 s, "
                                               f"{daily} per day): check the panel's tier")
    return Check("tier and limits", True, f"{detail}; tier {settings.tier.value} fits")


def _pipeline(settings: PanelSettings, client: HubSpotClient) -> Check:
    pipelines = client.list_pipelines("deals")
    ours = next((p for p in pipelines if p.label == PIPELINE_LABEL), None)
    if ours is not None:
        return Check("deal pipeline", True, f"'{PIPELINE_LABEL}' exists (id {ours.id})")
    if settings.tier.value == "free":
        return Check("deal pipeline", True, "free tier: deals go to the default pipeline")
    return Check("deal pipeline", True, f"'{PIPELINE_LABEL}' is missing; set-up creates it "
                                        f"({len(pipelines)} pipeline(s) now)")


def _order_pipeline(settings: PanelSettings, client: HubSpotClient) -> Check:
    ours = next((p for p in client.list_pipelines("orders") if p.label == ORDER_PIPELINE_LABEL), None)
    if ours is not None:
        return Check("order pipeline", True, f"'{ORDER_PIPELINE_LABEL}' exists (id {ours.id})")
    if settings.tier.value == "free":
        return Check("order pipeline", True, "free tier: orders keep the default pipeline, their stage in fp_order_stage")
    return Check("order pipeline", True, f"'{ORDER_PIPELINE_LABEL}' is missing; set-up creates it")


def as_json(checks: list[Check]) -> dict[str, Any]:
    return {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}


def table(checks: list[Check], color: Callable[[str, bool], str]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'CHECK'.ljust(width)}  STATUS  DETAIL"]
    for c in checks:
        lines.append(f"{c.name.ljust(width)}  {color('ok    ' if c.ok else 'FAILED', c.ok)}  {c.detail}")
    return "\n".join(lines)
