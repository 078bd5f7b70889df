"""Our HubSpot client: a thin HTTP layer over HubSpot's wire paths plus the rate budget, retries, error
classification and batching.

Every URL comes from ``endpoints`` for the account's ``integration.api_version`` (date-versioned by default,
``legacy`` for the numbered v3/v4 paths): hubspot-api-client 12 hard-codes the old paths in its generated
modules, so we send requests ourselves (urllib3, the SDK's own transport) and keep the SDK for what it still
does well: its models serialize our request bodies and deserialize HubSpot's answers.

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
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import urllib3
from hubspot.crm.associations.v4 import ApiClient as AssociationsApiClient
from hubspot.crm.objects import (
    ApiClient as ObjectsApiClient,
)
from hubspot.crm.objects import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
)
from hubspot.crm.pipelines import ApiClient as PipelinesApiClient
from hubspot.crm.properties import ApiClient as PropertiesApiClient
from urllib3.exceptions import HTTPError as Urllib3Error

from fp_hubspot_assets.hubspot import endpoints as ep
from fp_hubspot_assets.hubspot.ratelimit import DailyLimitReached, RateBudget

log = logging.getLogger(__name__)

EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")
NON_UNIQUE = re.compile(r"non-unique", re.IGNORECASE)
# (base url, object type, id property) whose id property HubSpot does not hold unique: kept for the process
# so each run's clients skip the refused upsert.
_NON_UNIQUE: set[tuple[str, str, str]] = set()
# ... and those whose upsert HubSpot has accepted: unique there, so a repeated create cannot duplicate.
_UNIQUE: set[tuple[str, str, str]] = set()


class _NoUniqueProperty(Exception):
    """Upsert refused because the id property is not unique: switch to search + create/update."""
_TOKEN_LIKE = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+|((?:access|refresh)_token[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+")
USER_AGENT = "fp-hubspot-assets (hubspot-api-client models)"


def redact(text: str) -> str:
    """Remove bearer tokens and token fields from a message before it is logged or raised."""
    return _TOKEN_LIKE.sub(lambda m: (m.group(1) or m.group(2)) + "[redacted]", text)


class HubSpotError(RuntimeError):
    """A HubSpot answer we cannot retry: status, category and message as HubSpot gave them."""

    def __init__(self, status: int | None, category: str, message: str,
                 context: Mapping[str, Sequence[str]] | None = None) -> None:
        self.status, self.category, self.message = status, category, redact(message)
        self.context: dict[str, list[str]] = {k: [str(v) for v in vs] for k, vs in (context or {}).items()
                                              if isinstance(vs, list | tuple)}
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
    answer_lost: set[str] = field(default_factory=set)  # failed keys a create may have made (see batch_create)

    def merge(self, other: BatchOutcome) -> None:
        self.ok.update(other.ok)
        self.failed.update(other.failed)
        self.adopted.update(other.adopted)
        self.answer_lost.update(other.answer_lost)


ANSWER_LOST = "ANSWER_LOST"  # error category of a create whose answer never came (it may have landed)
_ANSWER_LOST = object()  # what a create's request returns instead of retrying


@dataclass(frozen=True)
class Answer:
    """One HTTP answer as our call loop sees it."""

    status: int
    headers: Mapping[str, str]
    data: bytes


class HttpStatusError(Exception):
    """A non-2xx answer, raised by a sender so ``_call`` classifies it (status, body, headers)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(f"HTTP {answer.status}")
        self.status, self.body, self.headers = answer.status, answer.data, answer.headers


def _body_json(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return {"message": str(body)[:500]}
    return parsed if isinstance(parsed, dict) else {"message": str(parsed)[:500]}


def _missing_scopes(body: Mapping[str, Any]) -> list[str]:
    """The scopes a 403 MISSING_SCOPES answer names (HubSpot puts them in errors[].context)."""
    found: list[str] = []
    for err in body.get("errors") or []:
        context = err.get("context") if isinstance(err, dict) else None
        for key in ("requiredGranularScopes", "requiredScopes"):
            found += [str(s) for s in ((context or {}).get(key) or []) if str(s) not in found]
    return found


class _Raw:
    """What the SDK's deserializer reads: an object with ``.data``."""

    def __init__(self, data: bytes) -> None:
        self.data = data


# Each SDK package deserializes its own models.
_MODEL_CLIENTS: dict[str, Any] = {}


def _model_client(package: str) -> Any:
    if package not in _MODEL_CLIENTS:
        sdk = {"objects": ObjectsApiClient, "properties": PropertiesApiClient, "pipelines": PipelinesApiClient,
               "associations": AssociationsApiClient}[package]
        _MODEL_CLIENTS[package] = type(f"Iso{sdk.__name__}", (_IsoDatetimes, sdk), {})()
    return _MODEL_CLIENTS[package]


class _IsoDatetimes:
    """Mixed into each SDK ApiClient: HubSpot's timestamps are ISO 8601, which ``datetime.fromisoformat`` reads
    ~40 times faster than the SDK's ``dateutil.parser.parse`` — that parse was a fifth of a sync's CPU (two
    timestamps per record in every batch answer, bench/README.md §1). Anything else still goes to dateutil."""

    def _ApiClient__deserialize_datetime(self, string: str) -> Any:  # the SDK's private (name-mangled) hook
        try:
            return datetime.fromisoformat(string)
        except (TypeError, ValueError):
            return super()._ApiClient__deserialize_datetime(string)  # type: ignore[misc]


def to_json(body: Any) -> Any:
    """A request body as JSON data: SDK models through their own attribute map, plain data as is."""
    return _model_client("objects").sanitize_for_serialization(body)


def decode(data: bytes, model: tuple[str, str] | None) -> Any:
    """An answer body as the SDK model ``(package, class name)``; a batch answer carrying ``errors`` (a 207,
    or the 2026-09 shape: errors inside a 200) becomes the model's ``…WithErrors`` variant."""
    if not data:
        return None
    if model is None:
        return json.loads(data)
    package, name = model
    client = _model_client(package)
    if name.startswith("Batch") and b'"errors"' in data:
        parsed = json.loads(data)
        if parsed.get("errors"):
            name += "WithErrors"
    return client.deserialize(_Raw(data), name)


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
        api_version: str = ep.DEFAULT_API_VERSION,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self.timeout, self.max_attempts = timeout, max_attempts
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.max_rate_limit_waits = max_rate_limit_waits
        ep.OBJECTS_LIST.path_for(api_version)  # an unknown version fails here, not on the first request
        self.api_version = api_version
        self.access_token = access_token
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
        self._http = urllib3.PoolManager(num_pools=4, maxsize=16, retries=False)
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.last_headers: Mapping[str, str] = {}  # of the latest answer (the preflight reads the limits there)

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

    def url(self, endpoint: ep.Endpoint, params: Mapping[str, str] | None = None,
            query: Mapping[str, Any] | None = None) -> str:
        """The full URL of an endpoint for this client's API version."""
        path = endpoint.path_for(self.api_version)
        for name, value in (params or {}).items():
            path = path.replace("{" + name + "}", quote(str(value), safe=""))
        qs = urlencode({k: v for k, v in (query or {}).items() if v is not None}, doseq=True)
        return self.base_url + path + (f"?{qs}" if qs else "")

    def request(
        self,
        endpoint: ep.Endpoint,
        params: Mapping[str, str] | None = None,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        model: tuple[str, str] | None = None,
        landed: Callable[[], Any] | None = None,
    ) -> Any:
        """Send one request to ``endpoint`` (budget, retries, classification) and decode its answer into
        the SDK model ``(package, class)`` (plain JSON data without one, None for an empty answer)."""
        url = self.url(endpoint, params, query)
        payload = None if body is None else json.dumps(to_json(body)).encode()

        def send(token: str) -> Answer:
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "User-Agent": USER_AGENT}
            if payload is not None:
                headers["Content-Type"] = "application/json"
            response = self._http.request(endpoint.method, url, body=payload, headers=headers,
                                          timeout=urllib3.Timeout(total=self.timeout), preload_content=True)
            answer = Answer(response.status, dict(response.headers), response.data)
            if response.status >= 300:
                raise HttpStatusError(answer)
            return answer

        answer = self._call(endpoint, send, landed=landed)
        if not isinstance(answer, Answer):
            return answer  # what ``landed`` found: an earlier attempt's create
        return decode(answer.data, model)

    def current_token(self) -> str:
        """The access token the next request sends (refreshed by the provider when one is set)."""
        return self.token_provider(None) if self.token_provider is not None else self.access_token

    def _call(self, endpoint: ep.Endpoint, send: Callable[[str], Answer],
              landed: Callable[[], Any] | None = None) -> Any:
        """One request with the budget, retries and error classification.

        ``landed`` makes a non-idempotent create safe to retry: after a failure that may have reached HubSpot
        (timeout, dropped connection, 5xx) or a 409 on a retry, it looks the object up and returns it when
        the earlier attempt did create it, instead of creating it a second time."""
        attempts = rate_waits = 0
        reauthorized = False
        while True:
            token = self.current_token()
            started = self.budget.acquire(endpoint.bucket)
            self._count(self.requests, endpoint.name)
            try:
                answer = send(token)
                self.budget.observe(answer.headers, started)
                self.last_headers = answer.headers
                if endpoint is not ep.ACCOUNT_DETAILS and self.budget.wants_time_zone():
                    self.read_time_zone()
                return answer
            except HttpStatusError as exc:
                status = exc.status
                self.budget.observe(exc.headers, started, refused=status == 429)
                body = _body_json(exc.body)
                category = str(body.get("category") or body.get("errorType") or "ERROR")
                message = str(body.get("message") or "")
                if status == 429:
                    if str(body.get("policyName", "")).upper() == "DAILY":
                        raise DailyLimitReached(message, self.budget.time_zone) from None
                    rate_waits += 1
                    if rate_waits > self.max_rate_limit_waits:
                        raise HubSpotError(status, category, f"still rate limited after {rate_waits} waits") from None
                    self._count(self.retries, endpoint.name + ":429")
                    self.budget.penalize(endpoint.bucket, exc.headers)
                    continue
                if status == 401 and self.token_provider is not None and not reauthorized:
                    reauthorized = True  # refresh once per request; a second 401 is a real auth problem
                    self.token_provider(token)
                    continue
                if status in (401, 403):
                    if scopes := _missing_scopes(body):
                        message = f"{message} Missing scope(s): {', '.join(scopes)}."
                    raise HubSpotAuthError(
                        status, category, f"{message} — HubSpot refused the access token; {self.auth_hint}",
                    ) from None
                if status >= 500:
                    problem = f"HTTP {status}"
                elif status == 409 and landed is not None and (found := landed()) is not None:
                    # it exists: our earlier attempt created it (its answer was lost), or another run's
                    # set-up did at the same moment (two runs' check-then-create race)
                    return found
                else:
                    raise HubSpotError(status, category, message, body.get("context")) from None
            except (Urllib3Error, OSError, TimeoutError) as exc:
                problem = type(exc).__name__
            except (HubSpotError, DailyLimitReached):
                raise  # ours, already classified and redacted
            except Exception as exc:
                # not HubSpot's answer (a header the HTTP library refuses, an encoding error…): its text may
                # quote the request, token included; never let the original reach a log
                raise HubSpotRequestError(f"{endpoint.name}: {type(exc).__name__}: {redact(str(exc))}") from None
            if landed is not None and (found := landed()) is not None:
                return found
            attempts += 1
            self._count(self.retries, endpoint.name)
            if attempts >= self.max_attempts:
                raise HubSpotError(
                    None, "UNAVAILABLE",
                    f"{endpoint.name} at {self.base_url} failed {attempts} times ({problem}); check that the host is "
                    "reachable from this machine (integration.region / integration.base_url in the panel)",
                )
            delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
            log.debug("retrying %s after %s in %.2fs", endpoint.name, problem, delay)
            time.sleep(delay)

    # ------------------------------------------------------------------ objects
    def batch_upsert(
        self,
        object_type: str,
        id_property: str,
        records: Sequence[tuple[str, dict[str, str]]],
        may_exist: Callable[[Sequence[str]], Collection[str]] | None = None,
    ) -> BatchOutcome:
        """Upsert ≤100 records by our unique property; a rejected record never blocks the others.

        Where HubSpot refuses unique-value properties (unconfirmed for products and line items), the id
        property is a plain one and upsert answers "non-unique": the client then finds by search the keys
        that may already have a record (an earlier run's create, even one whose answer a crash lost), updates
        those by id and creates the rest. ``may_exist(keys)`` names those keys (the caller knows what it
        created and what a killed run sent); without it every key is searched, one search request per batch."""
        _check_batch(ep.OBJECTS_BATCH_UPSERT, records)
        if (self.base_url, object_type, id_property) in _NON_UNIQUE:
            return self._upsert_by_search(object_type, id_property, records, may_exist)
        body = BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(id_property=id_property, id=key, properties=props)
                for key, props in records
            ]
        )

        def run() -> Any:
            try:
                response = self.request(ep.OBJECTS_BATCH_UPSERT, {"objectType": object_type}, body=body,
                                        model=("objects", "BatchResponseSimplePublicUpsertObject"))
                _UNIQUE.add((self.base_url, object_type, id_property))
                return response
            except HubSpotError as exc:
                if exc.status == 400 and NON_UNIQUE.search(exc.message):
                    _NON_UNIQUE.add((self.base_url, object_type, id_property))
                    raise _NoUniqueProperty from None
                raise

        try:
            return self._batch_write(records, run, id_property,
                                     lambda sub: self.batch_upsert(object_type, id_property, sub, may_exist))
        except _NoUniqueProperty:
            log.info("%s.%s is not a unique property in HubSpot: creating and mapping by id", object_type, id_property)
            return self._upsert_by_search(object_type, id_property, records, may_exist)

    def upserts_by(self, object_type: str, id_property: str) -> bool:
        """Whether HubSpot has accepted an upsert of ``object_type`` by ``id_property`` (so it holds it unique)."""
        return (self.base_url, object_type, id_property) in _UNIQUE

    def _upsert_by_search(
        self,
        object_type: str,
        id_property: str,
        records: Sequence[tuple[str, dict[str, str]]],
        may_exist: Callable[[Sequence[str]], Collection[str]] | None,
    ) -> BatchOutcome:
        keys = [key for key, _ in records]
        if may_exist is None:
            unsure = keys
        else:
            maybe = set(may_exist(keys))
            unsure = [key for key in keys if key in maybe]
        found: dict[str, str] = {}
        for record in self.search_by(object_type, id_property, unsure, []) if unsure else []:
            key = (record.properties or {}).get(id_property)
            if key and (key not in found or int(record.id) < int(found[key])):
                found[key] = str(record.id)  # the oldest, should a key ever exist twice
        outcome = BatchOutcome()
        updates = [(key, found[key], props) for key, props in records if key in found]
        creates = [(key, {**props, id_property: key}) for key, props in records if key not in found]
        if updates:
            outcome.merge(self.batch_update(object_type, updates))
        if creates:
            outcome.merge(self.batch_create(object_type, creates))
        return outcome

    def batch_update(self, object_type: str, records: Sequence[tuple[str, str, dict[str, str]]]) -> BatchOutcome:
        """Update ≤100 records by HubSpot id: (our key, hubspot id, properties)."""
        _check_batch(ep.OBJECTS_BATCH_UPDATE, records)
        body = BatchInputSimplePublicObjectBatchInput(
            inputs=[SimplePublicObjectBatchInput(id=hs_id, properties=props) for _key, hs_id, props in records]
        )
        by_id = {hs_id: key for key, hs_id, _ in records}
        pairs = [(key, props) for key, _hs, props in records]

        def run() -> Any:
            return self.request(ep.OBJECTS_BATCH_UPDATE, {"objectType": object_type}, body=body,
                                model=("objects", "BatchResponseSimplePublicObject"))

        def split(sub: Sequence[tuple[str, dict[str, str]]]) -> BatchOutcome:
            keys = {k for k, _ in sub}
            return self.batch_update(object_type, [r for r in records if r[0] in keys])

        return self._batch_write(pairs, run, None, split, by_id)

    def batch_create(self, object_type: str, records: Sequence[tuple[str, dict[str, str]]]) -> BatchOutcome:
        """Create ≤100 records (for object types without a unique property of ours): results come back in
        input order, keyed by our source key.

        A create is never retried blind: after a failure that may have reached HubSpot (5xx, timeout, dropped
        connection) a second attempt could make every record twice, and search lags too far behind writes to
        check at once. The batch's keys fail with ANSWER_LOST instead (``answer_lost``); the caller keeps them
        noted as sent, so the next run looks them up before creating them."""
        _check_batch(ep.OBJECTS_BATCH_CREATE, records)
        body = {"inputs": [{"properties": props, "associations": []} for _key, props in records]}
        return self._batch_write(
            records,
            lambda: self.request(ep.OBJECTS_BATCH_CREATE, {"objectType": object_type}, body=body,
                                 model=("objects", "BatchResponseSimplePublicObject"), landed=lambda: _ANSWER_LOST),
            None,
            lambda sub: self.batch_create(object_type, sub),
        )

    def search_by(self, object_type: str, prop: str, values: Sequence[str], properties: Sequence[str]) -> list[Any]:
        """Live records whose ``prop`` is one of ``values`` (≤100), through search (its own rate limit).
        Search lags behind writes: use it only to find what an earlier, interrupted run may have written."""
        body = {"filterGroups": [{"filters": [{"propertyName": prop, "operator": "IN", "values": list(values)}]}],
                "properties": [prop, *properties], "limit": ep.OBJECTS_SEARCH.batch_limit}
        page = self.request(ep.OBJECTS_SEARCH, {"objectType": object_type}, body=body,
                            model=("objects", "CollectionResponseWithTotalSimplePublicObjectForwardPaging"))
        return list(page.results or [])

    def count_having(self, object_type: str, prop: str) -> int:
        """How many live records of ``object_type`` have ``prop`` set (one search request; search lags
        behind writes by seconds, so a record created moments ago may not be counted yet)."""
        body = {"filterGroups": [{"filters": [{"propertyName": prop, "operator": "HAS_PROPERTY"}]}],
                "properties": [prop], "limit": 1}
        page = self.request(ep.OBJECTS_SEARCH, {"objectType": object_type}, body=body,
                            model=("objects", "CollectionResponseWithTotalSimplePublicObjectForwardPaging"))
        return int(page.total or 0)

    def _batch_write(
        self,
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
            # A 4xx for the whole batch: one bad record fails it (HubSpot answers with one error).
            if len(records) == 1:
                outcome.failed[records[0][0]] = (exc.category, exc.message)
                return outcome
            for part in isolate(records, exc, key_by_hubspot_id):
                outcome.merge(split(part))
            return outcome
        keys = [key for key, _ in records]
        if response is _ANSWER_LOST:
            message = ("HubSpot's answer to this create was lost (5xx, timeout or dropped connection) and it may have "
                       "been created: the next run looks it up by our key before creating it")
            outcome.failed.update((key, (ANSWER_LOST, message)) for key in keys)
            outcome.answer_lost.update(keys)
            return outcome
        key_set = set(keys)
        results = response.results or []
        creates = id_property is None and key_by_hubspot_id is None  # batch create: every result is new
        for i, result in enumerate(results):
            props = result.properties or {}
            key = None
            if id_property and props.get(id_property) in key_set:
                key = props[id_property]
            elif key_by_hubspot_id is not None:
                key = key_by_hubspot_id.get(str(result.id))
            elif len(results) == len(keys):
                key = keys[i]
            if key is not None:
                outcome.ok[key] = (str(result.id), bool(getattr(result, "new", creates)))
        errors = getattr(response, "errors", None) or []
        unattributed: list[tuple[str, str]] = []
        for err in errors:
            ids = [i for values in (err.context or {}).values() for i in values]
            matched = [i for i in ids if i in key_set] or [key_by_hubspot_id[i] for i in ids if key_by_hubspot_id and i in key_by_hubspot_id]
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
        self.request(ep.OBJECTS_BATCH_ARCHIVE, {"objectType": object_type}, body=body)

    def batch_read(self, object_type: str, hubspot_ids: Sequence[str], properties: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Current property values of ≤100 records by HubSpot id; ids HubSpot does not have are left out."""
        _check_batch(ep.OBJECTS_BATCH_READ, hubspot_ids)
        body = {"inputs": [{"id": i} for i in hubspot_ids], "properties": list(properties)}
        answer = self.request(ep.OBJECTS_BATCH_READ, {"objectType": object_type}, body=body,
                              model=("objects", "BatchResponseSimplePublicObject"))
        return {str(r.id): dict(r.properties or {}) for r in answer.results or []}

    def list_all(self, object_type: str, properties: Sequence[str]) -> Iterator[Any]:
        """Every record of a type through the list API (100 per page), not search."""
        after: str | None = None
        while True:
            query = {"limit": ep.LIST_PAGE_LIMIT, "properties": ",".join(properties), "archived": "false",
                     "after": after}
            page = self.request(ep.OBJECTS_LIST, {"objectType": object_type}, query=query,
                                model=("objects", "CollectionResponseSimplePublicObjectWithAssociationsForwardPaging"))
            yield from page.results or []
            nxt = page.paging.next if page.paging else None
            if not nxt or not nxt.after:
                return
            after = nxt.after

    # ------------------------------------------------------------------ associations
    def associate_default(self, from_type: str, to_type: str, pairs: Sequence[tuple[str, str]]) -> list[tuple[int, str, str]]:
        """Associate ≤100 (from id, to id) pairs; returns the failed pairs' indexes with reasons.

        Pairs with a primary label (contact → company, deal → company: the customer's company) are created
        with both the unlabeled type and the "Primary" label; the others with HubSpot's default type."""
        _check_batch(ep.ASSOCIATIONS_BATCH_DEFAULT, pairs)
        primary = ep.PRIMARY_ASSOCIATION_TYPE_IDS.get((from_type, to_type))
        params = {"fromObjectType": from_type, "toObjectType": to_type}
        if primary is None:
            endpoint, model = ep.ASSOCIATIONS_BATCH_DEFAULT, ("associations", "BatchResponsePublicDefaultAssociation")
            body: dict[str, Any] = {"inputs": [{"from": {"id": a}, "to": {"id": b}} for a, b in pairs]}
        else:
            endpoint, model = ep.ASSOCIATIONS_BATCH_CREATE, ("associations", "BatchResponseLabelsBetweenObjectPair")
            types = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": t}
                     for t in (ep.ASSOCIATION_TYPE_IDS[(from_type, to_type)], primary)]
            body = {"inputs": [{"from": {"id": a}, "to": {"id": b}, "types": types} for a, b in pairs]}
        return self._associations_write(endpoint, params, body, model, pairs,
                                        lambda sub: self.associate_default(from_type, to_type, sub))

    def archive_associations(self, from_type: str, to_type: str, pairs: Sequence[tuple[str, str]]) -> list[tuple[int, str, str]]:
        """Remove every association between ≤100 (from id, to id) pairs of HubSpot ids (all labels);
        returns the failed pairs' indexes with reasons. Removing an association that does not exist is not
        an error, so a retry after a crash is harmless."""
        _check_batch(ep.ASSOCIATIONS_BATCH_ARCHIVE, pairs)
        grouped: dict[str, list[str]] = {}
        for a, b in pairs:
            grouped.setdefault(a, []).append(b)
        body = {"inputs": [{"from": {"id": a}, "to": [{"id": b} for b in bs]} for a, bs in grouped.items()]}
        params = {"fromObjectType": from_type, "toObjectType": to_type}
        return self._associations_write(ep.ASSOCIATIONS_BATCH_ARCHIVE, params, body, None, pairs,
                                        lambda sub: self.archive_associations(from_type, to_type, sub))

    def _associations_write(
        self,
        endpoint: ep.Endpoint,
        params: dict[str, str],
        body: Any,
        model: tuple[str, str] | None,
        pairs: Sequence[tuple[str, str]],
        again: Callable[[Sequence[tuple[str, str]]], list[tuple[int, str, str]]],
    ) -> list[tuple[int, str, str]]:
        try:
            response = self.request(endpoint, params, body=body, model=model)
        except HubSpotAuthError:
            raise
        except HubSpotError as exc:
            if exc.status is None or exc.status >= 500 or exc.status == 429:
                raise
            if len(pairs) == 1:
                return [(0, exc.category, exc.message)]
            failed: list[tuple[int, str, str]] = []
            position = {pair: i for i, pair in enumerate(pairs)}
            as_records = [(f"{a}\x1f{b}", {"from": a, "to": b}) for a, b in pairs]
            by_from = {a: f"{a}\x1f{b}" for a, b in pairs}
            for part in isolate(as_records, exc, by_from):
                sub = [(r["from"], r["to"]) for _k, r in part]
                failed += [(position[sub[i]], c, m) for i, c, m in again(sub)]
            return failed
        failed = []
        index = {a: i for i, (a, _b) in enumerate(pairs)}
        for err in getattr(response, "errors", None) or []:
            for values in (err.context or {}).values():
                for value in values:
                    if value in index:
                        failed.append((index[value], str(err.category), str(err.message)))
        return failed

    # ------------------------------------------------------------------ schema: properties, groups, pipelines
    def list_properties(self, object_type: str) -> list[Any]:
        return self.request(ep.PROPERTIES_LIST, {"objectType": object_type},
                            model=("properties", "CollectionResponsePropertyNoPaging")).results

    def create_property(self, object_type: str, definition: Any) -> Any:
        def landed() -> Any:
            return next((p for p in self.list_properties(object_type) if p.name == definition.name), None)

        return self.request(ep.PROPERTIES_CREATE, {"objectType": object_type}, body=definition,
                            model=("properties", "ModelProperty"), landed=landed)

    def list_property_groups(self, object_type: str) -> list[Any]:
        return self.request(ep.PROPERTY_GROUPS_LIST, {"objectType": object_type},
                            model=("properties", "CollectionResponsePropertyGroupNoPaging")).results

    def create_property_group(self, object_type: str, definition: Any) -> Any:
        def landed() -> Any:
            return next((g for g in self.list_property_groups(object_type) if g.name == definition.name), None)

        return self.request(ep.PROPERTY_GROUPS_CREATE, {"objectType": object_type}, body=definition,
                            model=("properties", "PropertyGroup"), landed=landed)

    def list_pipelines(self, object_type: str) -> list[Any]:
        return self.request(ep.PIPELINES_LIST, {"objectType": object_type},
                            model=("pipelines", "CollectionResponsePipelineNoPaging")).results

    def create_pipeline(self, object_type: str, definition: Any) -> Any:
        """Pipeline labels are not unique in HubSpot: a blind retry of a create that landed makes a second
        pipeline, so a retry first looks for one with this label."""

        def landed() -> Any:
            return next((p for p in self.list_pipelines(object_type) if p.label == definition.label), None)

        return self.request(ep.PIPELINES_CREATE, {"objectType": object_type}, body=definition,
                            model=("pipelines", "Pipeline"), landed=landed)

    # ------------------------------------------------------------------ account
    def account_details(self) -> dict[str, Any]:
        """The account's details: portalId, timeZone, companyCurrency, additionalCurrencies, dataHostingLocation…"""
        return dict(self.request(ep.ACCOUNT_DETAILS) or {})

    def read_time_zone(self) -> tzinfo:
        """The account's time zone (its daily limit resets at its midnight), read once per budget; UTC when
        HubSpot does not say."""
        if self.budget.time_zone_read:
            return self.budget.time_zone
        zone: tzinfo = UTC
        try:
            name = self.account_details().get("timeZone")
            zone = ZoneInfo(str(name)) if name else UTC
        except (HubSpotError, DailyLimitReached, ZoneInfoNotFoundError, ValueError) as exc:
            log.warning("could not read the HubSpot account's time zone, assuming UTC: %s", exc)
        self.budget.set_time_zone(zone)
        return zone


def isolate(
    records: Sequence[tuple[str, Any]], exc: HubSpotError, key_by_hubspot_id: Mapping[str, str] | None = None
) -> list[list[tuple[str, Any]]]:
    """How to re-send a batch HubSpot refused as a whole: the record its error names goes alone (so its
    failure is HubSpot's verdict, never our guess) and the others together — 2 requests per bad record.
    An error naming no record (or several) falls back to halves."""
    keys = [key for key, _ in records]
    named = {v for values in exc.context.values() for v in values}
    culprits = [k for k in keys if k in named]
    if not culprits and key_by_hubspot_id:
        culprits = [key_by_hubspot_id[v] for v in named if v in key_by_hubspot_id]
    if not culprits:  # HubSpot's message quotes the offending value (an email, a number, an option)
        culprits = [k for k, props in records if _quoted_in(exc.message, props)]
    if len(culprits) == 1:
        return [[r for r in records if r[0] == culprits[0]], [r for r in records if r[0] != culprits[0]]]
    half = len(records) // 2
    return [list(records[:half]), list(records[half:])]


def _quoted_in(message: str, props: Any) -> bool:
    values = props.values() if isinstance(props, Mapping) else []
    return any(isinstance(v, str) and len(v) >= 4 and v in message for v in values)


_ENDPOINTS: dict[str, ep.Endpoint] = {e.name: e for e in vars(ep).values() if isinstance(e, ep.Endpoint)}


def _check_batch(endpoint: ep.Endpoint, items: Sequence[Any]) -> None:
    if endpoint.batch_limit is not None and len(items) > endpoint.batch_limit:
        raise ValueError(f"{endpoint.name} takes at most {endpoint.batch_limit} inputs, got {len(items)}")
