"""Every HubSpot endpoint we call, its batch rule and its rate bucket — the one place that names them.

Each endpoint has two wire paths: HubSpot's date-versioned one (``/crm/objects/2026-03/...``, the default,
``integration.api_version``) and the legacy numbered one (``/crm/v3``, ``/crm/v4`` associations, retired
on 2027-03-30 and in September 2027). The client builds every URL from here (``Endpoint.path_for``);
request and response bodies are the same in both families for the operations we use.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

LEGACY = "legacy"
# Date versions HubSpot has published; the sandbox refuses any other.
PUBLISHED_VERSIONS = ("2025-09", "2026-03", "2026-09")
DEFAULT_API_VERSION = "2026-03"
API_VERSIONS = (*PUBLISHED_VERSIONS, LEGACY)


class Bucket(StrEnum):
    """Which HubSpot rate budget a request spends."""

    standard = "standard"  # the 10-second rolling + daily budget
    search = "search"  # ~5 requests/s per account, outside the 10-second bucket
    # Association batches: no HubSpot document exempts them from the 10-second limit, so they spend it too
    # (kept as a name of its own for the request statistics).
    associations = "associations"
    oauth = "oauth"  # token endpoint: not rate limited for us


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    legacy_path: str
    dated_path: str  # with a {version} placeholder
    batch_limit: int | None = None
    bucket: Bucket = Bucket.standard
    writes: bool = False

    def path_for(self, api_version: str) -> str:
        """The path template (still holding {objectType} etc.) for an ``integration.api_version``."""
        if api_version == LEGACY:
            return self.legacy_path
        if api_version not in PUBLISHED_VERSIONS:
            raise ValueError(f"unknown HubSpot API version {api_version!r}; use one of {', '.join(API_VERSIONS)}")
        return self.dated_path.replace("{version}", api_version)

    @property
    def batch_size(self) -> int:
        """The batch limit of a batch endpoint (an error for one that takes no batch)."""
        if self.batch_limit is None:
            raise ValueError(f"{self.name} is not a batch endpoint")
        return self.batch_limit


_FAMILIES = {
    "objects": ("/crm/v3/objects", "/crm/objects/{version}"),
    "properties": ("/crm/v3/properties", "/crm/properties/{version}"),
    "pipelines": ("/crm/v3/pipelines", "/crm/pipelines/{version}"),
    "associations": ("/crm/v4/associations", "/crm/associations/{version}"),
}


def _ep(name: str, method: str, family: str, tail: str, limit: int | None = None,
        bucket: Bucket = Bucket.standard) -> Endpoint:
    legacy, dated = _FAMILIES[family]
    writes = method != "GET" and "read" not in name and "search" not in name
    return Endpoint(name, method, legacy + tail, dated + tail, limit, bucket, writes)


OBJECTS_LIST = _ep("objects.list", "GET", "objects", "/{objectType}")
OBJECTS_BATCH_UPSERT = _ep("objects.batch.upsert", "POST", "objects", "/{objectType}/batch/upsert", 100)
OBJECTS_BATCH_UPDATE = _ep("objects.batch.update", "POST", "objects", "/{objectType}/batch/update", 100)
OBJECTS_BATCH_CREATE = _ep("objects.batch.create", "POST", "objects", "/{objectType}/batch/create", 100)
OBJECTS_BATCH_READ = _ep("objects.batch.read", "POST", "objects", "/{objectType}/batch/read", 100)
OBJECTS_BATCH_ARCHIVE = _ep("objects.batch.archive", "POST", "objects", "/{objectType}/batch/archive", 100)
OBJECTS_SEARCH = _ep("objects.search", "POST", "objects", "/{objectType}/search", 200, Bucket.search)
PROPERTIES_LIST = _ep("properties.list", "GET", "properties", "/{objectType}")
PROPERTIES_CREATE = _ep("properties.create", "POST", "properties", "/{objectType}")
PROPERTY_GROUPS_LIST = _ep("properties.groups.list", "GET", "properties", "/{objectType}/groups")
PROPERTY_GROUPS_CREATE = _ep("properties.groups.create", "POST", "properties", "/{objectType}/groups")
PIPELINES_LIST = _ep("pipelines.list", "GET", "pipelines", "/{objectType}")
PIPELINES_CREATE = _ep("pipelines.create", "POST", "pipelines", "/{objectType}")
_ASSOC = "/{fromObjectType}/{toObjectType}/batch"
ASSOCIATIONS_BATCH_DEFAULT = _ep("associations.batch.default", "POST", "associations", _ASSOC + "/associate/default",
                                 100, Bucket.associations)
ASSOCIATIONS_BATCH_CREATE = _ep("associations.batch.create", "POST", "associations", _ASSOC + "/create", 100,
                                Bucket.associations)
ASSOCIATIONS_BATCH_ARCHIVE = _ep("associations.batch.archive", "POST", "associations", _ASSOC + "/archive", 100,
                                 Bucket.associations)
# Account details (time zone, currencies, hub id, data-hosting region): not a CRM API, no date version.
ACCOUNT_DETAILS = Endpoint("account.details", "GET", "/account-info/v3/details", "/account-info/v3/details")
OAUTH_TOKEN_INFO = Endpoint("oauth.token.info", "GET", "/oauth/v1/access-tokens/{token}",
                            "/oauth/v1/access-tokens/{token}", bucket=Bucket.oauth)

LIST_PAGE_LIMIT = 100  # GET list: at most 100 per page, cursor in paging.next.after

# HubSpot-defined association type ids (from → to) of the unlabeled (default) association.
ASSOCIATION_TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 279,
    ("deals", "contacts"): 3,
    ("deals", "companies"): 341,
    ("line_items", "deals"): 20,
    ("deals", "line_items"): 19,
    # HubSpot's native commerce objects (orders and carts guides; docs/commerce-objects.md)
    ("orders", "contacts"): 507,
    ("orders", "companies"): 509,
    ("orders", "deals"): 512,
    ("orders", "line_items"): 513,
    ("line_items", "orders"): 514,
    ("carts", "contacts"): 586,
    ("carts", "line_items"): 590,
    ("line_items", "carts"): 591,
    ("carts", "orders"): 592,
}
# The "Primary" label: the customer's company is the primary company of its contacts (1) and deals (5);
# without it HubSpot's company card may show no primary company.
PRIMARY_ASSOCIATION_TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 1,
    ("deals", "companies"): 5,
}

# Rate budgets per tier: (requests per 10 s per app, requests per day per account). OAuth apps: 110 / 10 s.
TIER_BUDGETS: dict[str, tuple[int, int]] = {
    "free": (100, 250_000),
    "starter": (100, 250_000),
    "professional": (190, 625_000),
    "enterprise": (190, 1_000_000),
}
OAUTH_APP_TEN_SECOND_LIMIT = 110
SEARCH_REQUESTS_PER_SECOND = 5
TEN_SECONDS = 10.0


def budget_for(tier: str, oauth: bool) -> tuple[int, int]:
    """(per-10-second, per-day) request budget for a tier and app type."""
    ten_second, daily = TIER_BUDGETS[tier]
    return (min(ten_second, OAUTH_APP_TEN_SECOND_LIMIT) if oauth else ten_second), daily
