"""HubSpot OAuth for ``integration.mode: public_app``: the "Authorize" flow and access-token refresh.

The flow (``fp-hubspot authorize``): a one-shot HTTP server listens on the loopback ``redirect_uri``; the
user opens the authorize URL (client id, redirect URI, scopes, a random ``state``) and approves; HubSpot
redirects the browser to the loopback server with ``code`` and ``state``; the state is compared in constant
time, the code is exchanged at ``POST /oauth/v1/token``, and the refresh token (plus the first access token
and its expiry) is stored in the state store, encrypted with ``FP_STATE_KEY`` (state/crypto.py).

At run time ``OAuthTokens`` hands the HubSpot client a valid access token: it refreshes shortly before the
token expires and, once per request, when HubSpot answers 401 anyway (revoked, clock skew). Tokens never
appear in logs or exception messages (``redact``).
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from fp_hubspot_assets.hubspot.client import redact
from fp_hubspot_assets.hubspot.secrets import clean_secret
from fp_hubspot_assets.objects import COMMERCE_TYPES, SPECS
from fp_hubspot_assets.panel import Integration, PanelSettings
from fp_hubspot_assets.state.store import StateStore

AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/v1/token"
MAX_REFRESH_MARGIN_S = 300.0  # refresh this long before expiry (less for very short-lived tokens)
CALLBACK_TIMEOUT_S = 300.0


class OAuthError(RuntimeError):
    """An OAuth step failed; the message is HubSpot's (or ours), never containing a token."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class NotAuthorized(OAuthError):
    """public_app mode without stored tokens: the admin has not run ``fp-hubspot authorize`` yet."""


def required_scopes(settings: PanelSettings) -> list[str]:
    """The minimal scopes for what the settings enable: ``oauth`` (HubSpot's mandatory base scope), then the
    scopes of every object type the tier sends, from the registry (``objects.ObjectSpec.scopes``)."""
    scopes = ["oauth"]
    for spec in SPECS.values():
        if spec.needs_products_tier and not settings.tier.sends_products:
            continue
        if spec.name in COMMERCE_TYPES and not settings.commerce.sends_orders:
            continue  # HubSpot's native orders and carts only when commerce.objects sends them
        scopes += [s for s in spec.scopes if s not in scopes]
    return scopes


def optional_scopes(settings: PanelSettings) -> list[str]:
    """Scopes listed in the panel beyond the minimal ones: asked for as ``optional_scope`` so an account
    without them (e.g. products on Starter) can still install the app."""
    required = set(required_scopes(settings))
    return [s for s in settings.integration.scopes if s not in required]


def account_name(integration: Integration) -> str:
    """The state-store key of the tokens: one installation per OAuth app (client id)."""
    return f"oauth:{integration.client_id}"


def client_secret(integration: Integration) -> str:
    secret = clean_secret(os.environ.get(integration.client_secret_env, ""), integration.client_secret_env)
    if not secret:
        raise OAuthError(
            f"the OAuth client secret is not set: put it in the environment variable "
            f"{integration.client_secret_env} (panel integration.client_secret_env)"
        )
    return secret


def authorize_url(settings: PanelSettings, state: str, redirect_uri: str | None = None) -> str:
    """The consent URL on the region's app host (or the base URL override)."""
    integration = settings.integration
    query = {
        "client_id": integration.client_id or "",
        "redirect_uri": redirect_uri or integration.redirect_uri,
        "scope": " ".join(required_scopes(settings)),
        "state": state,
    }
    if optional := optional_scopes(settings):
        query["optional_scope"] = " ".join(optional)
    return f"{integration.authorize_base_url}{AUTHORIZE_PATH}?{urlencode(query)}"


# ---------------------------------------------------------------------------------- token endpoint
@dataclass(frozen=True)
class TokenGrant:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime


def _token_request(settings: PanelSettings, form: dict[str, str], http: httpx.Client | None = None) -> TokenGrant:
    integration = settings.integration
    body = {"client_id": integration.client_id or "", "client_secret": client_secret(integration), **form}
    url = integration.api_base_url + TOKEN_PATH
    try:
        if http is not None:
            response = http.post(url, data=body)
        else:
            with httpx.Client(timeout=30.0) as own:
                response = own.post(url, data=body)
    except httpx.HTTPError as exc:
        raise OAuthError(f"cannot reach HubSpot's token endpoint {url}: {type(exc).__name__}") from None
    try:
        payload: dict[str, Any] = response.json()
    except ValueError:
        payload = {"message": response.text[:300]}
    if response.status_code != 200 or "access_token" not in payload:
        message = payload.get("message") or payload.get("error_description") or response.reason_phrase
        category = payload.get("status") or payload.get("category") or payload.get("error") or "ERROR"
        raise OAuthError(f"HubSpot refused the token request ({response.status_code} {category}): {message}")
    expires_in = float(payload.get("expires_in") or 1800)
    return TokenGrant(
        access_token=str(payload["access_token"]),
        refresh_token=str(payload.get("refresh_token") or form.get("refresh_token", "")),
        expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
    )


def exchange_code(settings: PanelSettings, code: str, redirect_uri: str, http: httpx.Client | None = None) -> TokenGrant:
    return _token_request(
        settings, {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}, http
    )


def refresh(settings: PanelSettings, refresh_token: str, http: httpx.Client | None = None) -> TokenGrant:
    return _token_request(settings, {"grant_type": "refresh_token", "refresh_token": refresh_token}, http)


def store_grant(store: StateStore, settings: PanelSettings, grant: TokenGrant) -> None:
    store.save_tokens(account_name(settings.integration), grant.refresh_token, grant.access_token, grant.expires_at)


# ---------------------------------------------------------------------------------- run time
def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)  # SQLite hands naive UTC back


class OAuthTokens:
    """A valid access token for the HubSpot client: ``tokens(rejected=None)`` is the client's token provider.

    Thread-safe. Refreshes when the token is within ``min(300 s, 10% of its lifetime)`` of expiry, and when
    called with the token HubSpot just rejected (unless another thread already replaced it). Every refresh
    is saved back to the state store (HubSpot may rotate the refresh token)."""

    def __init__(self, settings: PanelSettings, store: StateStore, http: httpx.Client | None = None) -> None:
        self.settings, self.store, self.http = settings, store, http
        self.account = account_name(settings.integration)
        self._lock = threading.Lock()
        self._access: str | None = None
        self._refresh_at = 0.0
        self._refresh_token: str | None = None
        self.refreshes = 0

    def _load(self) -> None:
        record = self.store.load_tokens(self.account)
        if record is None:
            raise NotAuthorized(
                f"no OAuth tokens for client id {self.settings.integration.client_id}: "
                "run `fp-hubspot authorize` once to connect the HubSpot account"
            )
        self._refresh_token = record.refresh_token
        expires_at = _aware(record.expires_at)
        if record.access_token and expires_at is not None:
            self._access = record.access_token
            self._refresh_at = self._refresh_deadline(expires_at, record.updated_at)

    @staticmethod
    def _refresh_deadline(expires_at: datetime, issued_at: datetime | None) -> float:
        issued = _aware(issued_at) or datetime.now(UTC)
        lifetime = max(0.0, (expires_at - issued).total_seconds())
        return expires_at.timestamp() - min(MAX_REFRESH_MARGIN_S, lifetime * 0.1)

    def _refresh(self) -> None:
        assert self._refresh_token is not None
        issued = datetime.now(UTC)
        grant = refresh(self.settings, self._refresh_token, self.http)
        store_grant(self.store, self.settings, grant)
        self._access, self._refresh_token = grant.access_token, grant.refresh_token
        self._refresh_at = self._refresh_deadline(grant.expires_at, issued)
        self.refreshes += 1

    def __call__(self, rejected: str | None = None) -> str:
        with self._lock:
            if self._refresh_token is None:
                self._load()
            stale = rejected is not None and rejected == self._access
            if self._access is None or stale or time.time() >= self._refresh_at:
                self._refresh()
            assert self._access is not None
            return self._access


# ---------------------------------------------------------------------------------- loopback callback
@dataclass
class Callback:
    code: str | None = None
    state: str | None = None
    error: str | None = None


_RESULT_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
    "<body><h1>{title}</h1><p>{text}</p></body></html>"
)


class LoopbackServer:
    """One-shot HTTP server on the redirect URI's loopback host/port that captures HubSpot's redirect."""

    def __init__(self, redirect_uri: str, expected_state: str | None = None) -> None:
        parts = urlsplit(redirect_uri)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise OAuthError(
                f"redirect_uri {redirect_uri} is not a loopback http:// address; `fp-hubspot authorize` "
                "needs one such as http://127.0.0.1:8976/oauth-callback (register it in the HubSpot app)"
            )
        self.path = parts.path or "/"
        self.result: Callback | None = None
        self._done = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urlsplit(self.path)
                if url.path != outer.path:
                    self.send_error(404)
                    return
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                outer.result = Callback(query.get("code"), query.get("state"), query.get("error"))
                state_ok = expected_state is None or hmac.compare_digest(outer.result.state or "", expected_state)
                ok = outer.result.code is not None and outer.result.error is None and state_ok
                title = "Connected" if ok else "Authorization failed"
                text = "You can close this window and return to the terminal." if ok else "See the terminal."
                page = _RESULT_PAGE.format(title=title, text=text).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                outer._done.set()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the query holds the code
                return

        self._server = HTTPServer((parts.hostname or "127.0.0.1", parts.port or 80), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self, timeout: float) -> Callback:
        if not self._done.wait(timeout):
            raise OAuthError(f"no answer from HubSpot on the callback within {int(timeout)} s")
        assert self.result is not None
        return self.result


def authorize(
    settings: PanelSettings,
    store: StateStore,
    show_url: Callable[[str], None],
    *,
    timeout: float = CALLBACK_TIMEOUT_S,
    http: httpx.Client | None = None,
) -> TokenGrant:
    """Run the whole Authorize flow: serve the callback, show the URL, verify state, exchange, store."""
    integration = settings.integration
    if integration.mode != "public_app":
        raise OAuthError("integration.mode is private_app: the access token comes from "
                         f"{integration.access_token_env}; there is nothing to authorize")
    client_secret(integration)  # fail before the user clicks anything
    state = secrets.token_urlsafe(24)
    with LoopbackServer(integration.redirect_uri, expected_state=state) as server:
        show_url(authorize_url(settings, state))
        answer = server.wait(timeout)
    if answer.error:
        raise OAuthError(f"HubSpot did not authorize the app: {answer.error}")
    if not answer.state or not hmac.compare_digest(answer.state, state):
        raise OAuthError("the callback's state does not match this request (a stale or forged redirect); "
                         "nothing was stored — run `fp-hubspot authorize` again")
    if not answer.code:
        raise OAuthError("the callback carried no authorization code")
    grant = exchange_code(settings, answer.code, integration.redirect_uri, http)
    store_grant(store, settings, grant)
    return grant
