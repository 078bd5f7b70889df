"""Our HubSpot client: the official SDK plus the rate budget, retries, error classification and batching.

Every call goes through ``HubSpotClient._call``: it waits for the shared budget, retries what is safe to
retry (5xx, timeouts, dropped connections, TEN_SECONDLY 429s — batch upserts and updates are idempotent, so
POSTs are retried too), stops cleanly on a DAILY 429, and counts requests per endpoint.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import hubspot
import urllib3
from hubspot.crm.associations.v4 import (
    BatchInputPublicDefaultAssociationMultiPost,
    PublicDefaultAssociationMultiPost,
)
from hubspot.crm.objects import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
)
from urllib3.exceptions import HTTPError as Urllib3Error

from fp_hubspot_assets.hubspot import endpoints as ep
from fp_hubspot_assets.hubspot.ratelimit import DailyLimitReached, RateBudget

log = logging.getLogger(__name__)

EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")
_TOKEN_LIKE = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+|((?:access|refresh)_token[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+")


def redact(text: str) -> str:
    """Remove bearer tokens and token fields from a message before it is logged or raised."""
    return _TOKEN_LIKE.sub(lambda m: (m.group(1) or m.group(2)) + "[redacted]", text)


class HubSpotError(RuntimeError):
    """A HubSpot answer we cannot retry: status, category and message as HubSpot gave them."""

    def __init__(self, status: int | None, category: str, message: str) -> None:
        self.status, self.category, self.message = status, category, redact(message)
        super().__init__(f"HubSpot {status or 'request'} {category}: {self.message}")


class HubSpotRequestError(RuntimeError):
    """A request failed before HubSpot answered, for a reason on our side; the message is redacted."""


class HubSpotAuthError(HubSpotError):
    """401/403: the token is wrong, expired or lacks a scope — a configuration problem, not a crash."""


@dataclass
class BatchOutcome:
    """Per-record result of a batch write, keyed by our source key."""

    ok: dict[str, tuple[str, bool]] = field(default_factory=dict)  # key -> (hubspot id, created?)
    failed: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (category, message)
    adopted: set[str] = field(default_factory=set)  # keys whose existing HubSpot record we took over

    def merge(self, other: BatchOutcome) -> None:
        self.ok.update(other.ok)
        self.failed.update(other.failed)
        self.adopted.update(other.adopted)


def _body_json(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return {"message": str(body)[:500]}
    return parsed if isinstance(parsed, dict) else {"message": str(parsed)[:500]}


class HubSpotClient:
    """Thread-safe: one instance serves every worker thread of a run."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        budget: RateBudget,
        *,
        timeout: float = 30.0,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        max_rate_limit_waits: int = 20,
        token_provider: Callable[[str | None], str] | None = None,
        auth_hint: str = "",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self.timeout, self.max_attempts = timeout, max_attempts
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.max_rate_limit_waits = max_rate_limit_waits
        # OAuth (public_app): returns a valid access token; given the token HubSpot just rejected, a new one.
        self.token_provider = token_provider
        # What a refused token (401/403) tells the admin to do: a public app re-authorizes, a private app
        # fixes the token in its environment variable (the resource passes the variable's name).
        self.auth_hint = auth_hint or (
            "run `fp-hubspot authorize` again to reconnect the HubSpot account"
            if token_provider is not None
            else "check the access token's environment variable (panel integration.access_token_env)"
        )
        # Our loop retries; urllib3's own retries are off so a POST is never repeated behind our back.
        self.sdk = hubspot.Client.create(
            access_token=access_token,
            host=self.base_url,
            base_url=self.base_url,
            retry=urllib3.Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False),
        )
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()

    # ------------------------------------------------------------------ the one call path
    @property
    def write_requests(self) -> int:
        return sum(n for name, n in self.requests.items() if _ENDPOINTS[name].writes)

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def _count(self, counter: Counter[str], name: str) -> None:
        with self._lock:
            counter[name] += 1

    def _call(
        self,
        endpoint: ep.Endpoint,
        fn: Callable[..., Any],
        *args: Any,
        landed: Callable[[], Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """One request with the budget, retries and error classification.

        ``landed`` makes a non-idempotent create safe to retry: after a failure that may have reached HubSpot
        (timeout, dropped connection, 5xx) or a 409 on a retry, it looks the object up and returns it when
        the earlier attempt did create it, instead of creating it a second time."""
        attempts = rate_waits = 0
        reauthorized = False
        while True:
            self._use_current_token(fn)
            self.budget.acquire(endpoint.bucket)
            self._count(self.requests, endpoint.name)
            try:
                data, _status, headers = fn(
                    *args, _return_http_data_only=False, _request_timeout=self.timeout, **kwargs
                )
                self.budget.observe(headers)
                return data
            except (Urllib3Error, OSError, TimeoutError) as exc:
                problem = type(exc).__name__
            except Exception as exc:
                if type(exc).__name__ not in _SDK_ERRORS:  # each SDK package has its own ApiException class
                    # not HubSpot's answer (a header the HTTP library refuses, an encoding error…): its text
                    # may quote the request, token included; never let the original reach a log
                    raise HubSpotRequestError(f"{endpoint.name}: {type(exc).__name__}: {redact(str(exc))}") from None
                status = getattr(exc, "status", None)
                self.budget.observe(getattr(exc, "headers", None))
                body = _body_json(getattr(exc, "body", None))
                category = str(body.get("category") or body.get("errorType") or "ERROR")
                message = str(body.get("message") or getattr(exc, "reason", "") or "")
                if status == 429:
                    if str(body.get("policyName", "")).upper() == "DAILY":
                        raise DailyLimitReached(message) from None
                    rate_waits += 1
                    if rate_waits > self.max_rate_limit_waits:
                        raise HubSpotError(status, category, f"still rate limited after {rate_waits} waits") from None
                    self._count(self.retries, endpoint.name + ":429")
                    self.budget.penalize(endpoint.bucket)
                    continue
                if status == 401 and self.token_provider is not None and not reauthorized:
                    reauthorized = True  # refresh once per request; a second 401 is a real auth problem
                    self._use_current_token(fn, after_401=True)
                    continue
                if status in (401, 403):
                    raise HubSpotAuthError(
                        status,
                        category,
                        f"{message} — HubSpot refused the access token; {self.auth_hint}",
                    ) from None
                if status is None or status >= 500 or status == 0:
                    problem = f"HTTP {status}"
                elif status == 409 and landed is not None and attempts > 0 and (found := landed()) is not None:
                    return found  # our earlier attempt created it; its answer was lost
                else:
                    raise HubSpotError(status, category, message) from None
            if landed is not None and (found := landed()) is not None:
                return found
            attempts += 1
            self._count(self.retries, endpoint.name)
            if attempts >= self.max_attempts:
                raise HubSpotError(None, "UNAVAILABLE", f"{endpoint.name} failed {attempts} times ({problem})")
            delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
            log.debug("retrying %s after %s in %.2fs", endpoint.name, problem, delay)
            time.sleep(delay)

    def _use_current_token(self, fn: Callable[..., Any], after_401: bool = False) -> None:
        """Point the SDK (and the API object ``fn`` is bound to, built before the call) at the provider's
        token; after a 401 the token this call sent is passed back so the provider replaces it (once, even
        when several threads were refused at the same moment)."""
        if self.token_provider is None:
            return
        config = getattr(getattr(getattr(fn, "__self__", None), "api_client", None), "configuration", None)
        sent = getattr(config, "access_token", None) or self.sdk.access_token
        token = self.token_provider(sent if after_401 else None)
        self.sdk.access_token = token
        if config is not None:
            config.access_token = token

    # ------------------------------------------------------------------ objects
    def batch_upsert(
        self, object_type: str, id_property: str, records: Sequence[tuple[str, dict[str, str]]]
    ) -> BatchOutcome:
        """Upsert ≤100 records by our unique property; a rejected record never blocks the others."""
        _check_batch(ep.OBJECTS_BATCH_UPSERT, records)
        body = BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(id_property=id_property, id=key, properties=props)
                for key, props in records
            ]
        )
        return self._batch_write(
            ep.OBJECTS_BATCH_UPSERT,
            records,
            lambda: self._call(
                ep.OBJECTS_BATCH_UPSERT, self.sdk.crm.objects.batch_api.upsert_with_http_info, object_type, body
            ),
            id_property,
            lambda sub: self.batch_upsert(object_type, id_property, sub),
        )

    def batch_update(self, object_type: str, records: Sequence[tuple[str, str, dict[str, str]]]) -> BatchOutcome:
        """Update ≤100 records by HubSpot id: (our key, hubspot id, properties)."""
        _check_batch(ep.OBJECTS_BATCH_UPDATE, records)
        body = BatchInputSimplePublicObjectBatchInput(
            inputs=[SimplePublicObjectBatchInput(id=hs_id, properties=props) for _key, hs_id, props in records]
        )
        by_id = {hs_id: key for key, hs_id, _ in records}
        pairs = [(key, props) for key, _hs, props in records]

        def run() -> Any:
            return self._call(
                ep.OBJECTS_BATCH_UPDATE, self.sdk.crm.objects.batch_api.update_with_http_info, object_type, body
            )

        def split(sub: Sequence[tuple[str, dict[str, str]]]) -> BatchOutcome:
            keys = {k for k, _ in sub}
            return self.batch_update(object_type, [r for r in records if r[0] in keys])

        return self._batch_write(ep.OBJECTS_BATCH_UPDATE, pairs, run, None, split, by_id)

    def _batch_write(
        self,
        endpoint: ep.Endpoint,
        records: Sequence[tuple[str, dict[str, str]]],
        run: Callable[[], Any],
        id_property: str | None,
        split: Callable[[Sequence[tuple[str, dict[str, str]]]], BatchOutcome],
        key_by_hubspot_id: dict[str, str] | None = None,
    ) -> BatchOutcome:
        outcome = BatchOutcome()
        try:
            response = run()
        except HubSpotAuthError:
            raise
        except HubSpotError as exc:
            if exc.status is None or exc.status >= 500 or exc.status == 429:
                raise
            # A 4xx for the whole batch (one bad record poisons it): bisect to find the bad ones.
            if len(records) == 1:
                outcome.failed[records[0][0]] = (exc.category, exc.message)
                return outcome
            half = len(records) // 2
            outcome.merge(split(records[:half]))
            outcome.merge(split(records[half:]))
            return outcome
        keys = [key for key, _ in records]
        for i, result in enumerate(response.results or []):
            props = result.properties or {}
            key = None
            if id_property and props.get(id_property) in set(keys):
                key = props[id_property]
            elif key_by_hubspot_id is not None:
                key = key_by_hubspot_id.get(str(result.id))
            elif len(response.results) == len(keys):
                key = keys[i]
            if key is not None:
                outcome.ok[key] = (str(result.id), bool(getattr(result, "new", False)))
        errors = getattr(response, "errors", None) or []
        unattributed: list[tuple[str, str]] = []
        for err in errors:
            ids = [i for values in (err.context or {}).values() for i in values]
            matched = [i for i in ids if i in keys] or [key_by_hubspot_id[i] for i in ids if key_by_hubspot_id and i in key_by_hubspot_id]
            for key in matched:
                outcome.failed[key] = (str(err.category), str(err.message))
            if not matched:
                unattributed.append((str(err.category), str(err.message)))
        missing = [key for key in keys if key not in outcome.ok and key not in outcome.failed]
        for key in missing:
            category, message = unattributed[0] if len(unattributed) == 1 else ("ERROR", "; ".join(m for _, m in unattributed) or "no result returned")
            outcome.failed[key] = (category, message)
        return outcome

    def batch_archive(self, object_type: str, hubspot_ids: Sequence[str]) -> None:
        """Archive ≤100 records by HubSpot id (archiving an already archived record is not an error)."""
        _check_batch(ep.OBJECTS_BATCH_ARCHIVE, hubspot_ids)
        body = BatchInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=i) for i in hubspot_ids])
        self._call(ep.OBJECTS_BATCH_ARCHIVE, self.sdk.crm.objects.batch_api.archive_with_http_info, object_type, body)

    def list_all(self, object_type: str, properties: Sequence[str]) -> Iterator[Any]:
        """Every record of a type through the list API (100 per page), not search."""
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": ep.LIST_PAGE_LIMIT, "properties": list(properties), "archived": False}
            if after:
                kwargs["after"] = after
            page = self._call(ep.OBJECTS_LIST, self.sdk.crm.objects.basic_api.get_page_with_http_info, object_type, **kwargs)
            yield from page.results or []
            nxt = page.paging.next if page.paging else None
            if not nxt or not nxt.after:
                return
            after = nxt.after

    # ------------------------------------------------------------------ associations
    def associate_default(self, from_type: str, to_type: str, pairs: Sequence[tuple[str, str]]) -> list[tuple[int, str, str]]:
        """Default-associate ≤100 (from id, to id) pairs; returns the failed pairs' indexes with reasons."""
        _check_batch(ep.ASSOCIATIONS_BATCH_DEFAULT, pairs)
        body = BatchInputPublicDefaultAssociationMultiPost(
            inputs=[PublicDefaultAssociationMultiPost(_from={"id": a}, to={"id": b}) for a, b in pairs]
        )
        try:
            response = self._call(
                ep.ASSOCIATIONS_BATCH_DEFAULT,
                self.sdk.crm.associations.v4.batch_api.create_default_with_http_info,
                from_type,
                to_type,
                body,
            )
        except HubSpotAuthError:
            raise
        except HubSpotError as exc:
            if exc.status is None or exc.status >= 500:
                raise
            if len(pairs) == 1:
                return [(0, exc.category, exc.message)]
            half = len(pairs) // 2
            first = self.associate_default(from_type, to_type, pairs[:half])
            second = self.associate_default(from_type, to_type, pairs[half:])
            return first + [(i + half, c, m) for i, c, m in second]
        failed: list[tuple[int, str, str]] = []
        index = {a: i for i, (a, _b) in enumerate(pairs)}
        for err in getattr(response, "errors", None) or []:
            for values in (err.context or {}).values():
                for value in values:
                    if value in index:
                        failed.append((index[value], str(err.category), str(err.message)))
        return failed

    # ------------------------------------------------------------------ schema: properties, groups, pipelines
    def list_properties(self, object_type: str) -> list[Any]:
        return self._call(ep.PROPERTIES_LIST, self.sdk.crm.properties.core_api.get_all_with_http_info, object_type).results

    def create_property(self, object_type: str, definition: Any) -> Any:
        def landed() -> Any:
            return next((p for p in self.list_properties(object_type) if p.name == definition.name), None)

        return self._call(
            ep.PROPERTIES_CREATE, self.sdk.crm.properties.core_api.create_with_http_info, object_type, definition,
            landed=landed,
        )

    def list_property_groups(self, object_type: str) -> list[Any]:
        return self._call(ep.PROPERTY_GROUPS_LIST, self.sdk.crm.properties.groups_api.get_all_with_http_info, object_type).results

    def create_property_group(self, object_type: str, definition: Any) -> Any:
        def landed() -> Any:
            return next((g for g in self.list_property_groups(object_type) if g.name == definition.name), None)

        return self._call(
            ep.PROPERTY_GROUPS_CREATE, self.sdk.crm.properties.groups_api.create_with_http_info, object_type,
            definition, landed=landed,
        )

    def list_pipelines(self, object_type: str) -> list[Any]:
        return self._call(ep.PIPELINES_LIST, self.sdk.crm.pipelines.pipelines_api.get_all_with_http_info, object_type).results

    def create_pipeline(self, object_type: str, definition: Any) -> Any:
        """Pipeline labels are not unique in HubSpot: a blind retry of a create that landed makes a second
        pipeline, so a retry first looks for one with this label."""

        def landed() -> Any:
            return next((p for p in self.list_pipelines(object_type) if p.label == definition.label), None)

        return self._call(
            ep.PIPELINES_CREATE, self.sdk.crm.pipelines.pipelines_api.create_with_http_info, object_type, definition,
            landed=landed,
        )


_SDK_ERRORS = {"ApiException", "NotFoundException", "UnauthorizedException", "ForbiddenException", "ServiceException"}
_ENDPOINTS: dict[str, ep.Endpoint] = {e.name: e for e in vars(ep).values() if isinstance(e, ep.Endpoint)}


def _check_batch(endpoint: ep.Endpoint, items: Sequence[Any]) -> None:
    if endpoint.batch_limit is not None and len(items) > endpoint.batch_limit:
        raise ValueError(f"{endpoint.name} takes at most {endpoint.batch_limit} inputs, got {len(items)}")
