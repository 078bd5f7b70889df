"""HubSpot's error shapes. One exception type carries everything a response body needs, so rule code
raises and the HTTP layer renders; batch endpoints turn the same exception into a 207 entry."""

from __future__ import annotations

import uuid
from typing import Any

import orjson


def correlation_id() -> str:
    return str(uuid.uuid4())


class ApiError(Exception):
    """A HubSpot error response: HTTP status, category, message and optional context/details."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        context: dict[str, list[str]] | None = None,
        errors: list[dict[str, Any]] | None = None,
        sub_category: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.context = context or {}
        self.errors = errors or []
        self.sub_category = sub_category
        self.extra = extra or {}  # top-level keys of special bodies (e.g. a 429's policyName)

    def body(self) -> dict[str, Any]:
        """The top-level error body of a failed request."""
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": correlation_id(),
            "category": self.category,
        }
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.context:
            body["context"] = self.context
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body

    def batch_entry(self, extra_context: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """One entry of a 207 response's `errors` (the SDK's StandardError needs every key)."""
        entry: dict[str, Any] = {
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": {**self.context, **(extra_context or {})},
            "errors": self.errors,
            "links": {},
        }
        if self.sub_category:
            entry["subCategory"] = self.sub_category
        return entry


def validation_error(message: str, **kw: Any) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message, **kw)


def not_found(message: str, ids: list[str] | None = None) -> ApiError:
    return ApiError(404, "OBJECT_NOT_FOUND", message, context={"ids": ids} if ids else None)


def property_errors(problems: list[dict[str, Any]]) -> ApiError:
    """HubSpot's "Property values were not valid" error, with one detail per bad property.

    `problems` entries are {"name", "error", "message"} as HubSpot embeds them in the message."""
    embedded = [{"isValid": False, "message": p["message"], "error": p["error"], "name": p["name"]} for p in problems]
    details = [
        {"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}} for p in problems
    ]
    return validation_error(
        "Property values were not valid: " + orjson.dumps(embedded).decode(), errors=details
    )
