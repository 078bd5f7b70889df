"""Every HubSpot endpoint we call, its batch rule and its rate bucket — the one place that names them.

Paths are the ones the official SDK (hubspot-api-client 12) sends; when HubSpot retires a version
(``/crm/v4`` associations on 2027-03-30) this module and the SDK pin are what change.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Bucket(StrEnum):
    """Which HubSpot rate budget a request spends."""

    standard = "standard"  # the 10-second rolling + daily budget
    search = "search"  # ~5 requests/s per account, outside the 10-second bucket
    associations = "associations"  # v4 batch endpoints: outside the 10-second bucket (still count daily)
    oauth = "oauth"  # token endpoint: not rate limited for us


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    batch_limit: int | None = None
    bucket: Bucket = Bucket.standard
    writes: bool = False


def _ep(name: str, method: str, path: str, limit: int | None = None, bucket: Bucket = Bucket.standard) -> Endpoint:
    return Endpoint(name, method, path, limit, bucket, writes=method != "GET" and "read" not in name)


OBJECTS_LIST = _ep("objects.list", "GET", "/crm/v3/objects/{objectType}")
OBJECTS_BATCH_UPSERT = _ep("objects.batch.upsert", "POST", "/crm/v3/objects/{objectType}/batch/upsert", 100)
OBJECTS_BATCH_UPDATE = _ep("objects.batch.update", "POST", "/crm/v3/objects/{objectType}/batch/update", 100)
OBJECTS_BATCH_CREATE = _ep("objects.batch.create", "POST", "/crm/v3/objects/{objectType}/batch/create", 100)
OBJECTS_BATCH_READ = _ep("objects.batch.read", "POST", "/crm/v3/objects/{objectType}/batch/read", 100)
OBJECTS_BATCH_ARCHIVE = _ep("objects.batch.archive", "POST", "/crm/v3/objects/{objectType}/batch/archive", 100)
OBJECTS_SEARCH = _ep("objects.search", "POST", "/crm/v3/objects/{objectType}/search", 200, Bucket.search)
PROPERTIES_LIST = _ep("properties.list", "GET", "/crm/v3/properties/{objectType}")
PROPERTIES_CREATE = _ep("properties.create", "POST", "/crm/v3/properties/{objectType}")
PROPERTY_GROUPS_LIST = _ep("properties.groups.list", "GET", "/crm/v3/properties/{objectType}/groups")
PROPERTY_GROUPS_CREATE = _ep("properties.groups.create", "POST", "/crm/v3/properties/{objectType}/groups")
PIPELINES_LIST = _ep("pipelines.list", "GET", "/crm/v3/pipelines/{objectType}")
PIPELINES_CREATE = _ep("pipelines.create", "POST", "/crm/v3/pipelines/{objectType}")
ASSOCIATIONS_BATCH_DEFAULT = _ep(
    "associations.batch.default",
    "POST",
    "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/associate/default",
    100,
    Bucket.associations,
)
ASSOCIATIONS_BATCH_ARCHIVE = _ep(
    "associations.batch.archive",
    "POST",
    "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/archive",
    100,
    Bucket.associations,
)
ASSOCIATIONS_BATCH_READ = _ep(
    "associations.batch.read",
    "POST",
    "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read",
    1000,
    Bucket.associations,
)
OAUTH_TOKEN = _ep("oauth.token", "POST", "/oauth/v1/token", bucket=Bucket.oauth)

LIST_PAGE_LIMIT = 100  # GET list: at most 100 per page, cursor in paging.next.after

# HubSpot-defined association type ids (from → to), used when we need a specific (primary) label.
ASSOCIATION_TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 279,
    ("deals", "contacts"): 3,
    ("deals", "companies"): 341,
    ("line_items", "deals"): 20,
    ("deals", "line_items"): 19,
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
