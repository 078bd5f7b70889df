"""Which OAuth scope each sandbox operation needs, as HubSpot's reference pages list them (any one of the
listed scopes grants the operation). Private-app tokens given on the command line hold every scope."""

from __future__ import annotations

from .catalog import ECOMMERCE_TYPES
from .errors import ApiError

_READ_SUFFIXES = ("/batch/read", "/search")


def needed(path: str, method: str, obj_type: str | None) -> frozenset[str]:
    """Any-of scope set for one request to route template ``path`` (empty: no scope needed)."""
    if obj_type is None:
        return frozenset()
    access = "read" if method == "GET" or path.endswith(_READ_SUFFIXES) else "write"
    commerce = obj_type in ECOMMERCE_TYPES
    if "/properties" in path:
        if access == "write":
            return frozenset({"e-commerce"} if commerce else {f"crm.schemas.{obj_type}.write"})
        return frozenset({f"crm.schemas.{obj_type}.read", f"crm.objects.{obj_type}.read",
                          *(("e-commerce",) if commerce else ())})
    scopes = {f"crm.objects.{obj_type}.{access}"}
    if commerce:
        scopes.add("e-commerce")
    return frozenset(scopes)


def missing_scopes(required: frozenset[str]) -> ApiError:
    """HubSpot's 403 for a token without the operation's scope, naming the scopes that would grant it."""
    names = sorted(required)
    return ApiError(
        403, "MISSING_SCOPES",
        "This app hasn't been granted all required scopes to make this call. Read more about required scopes "
        f"here: https://developers.hubspot.com/scopes. Required (any of): {', '.join(names)}",
        errors=[{"message": "One or more of the following scopes are required.",
                 "context": {"requiredGranularScopes": names}}],
    )
