"""Bearer-token authentication and HubSpot's OAuth 2 authorization-code flow.

Static private-app tokens come from the command line. OAuth grants (codes, access and refresh tokens)
live in one store document so they survive restarts like real HubSpot tokens do."""

from __future__ import annotations

import html
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from .catalog import PORTAL_ID, SCOPES
from .errors import ApiError
from .store import Store

CODE_TTL = 600.0
DEFAULT_SCOPES = "oauth crm.objects.contacts.read crm.objects.contacts.write"


@dataclass(frozen=True)
class Principal:
    token: str
    oauth: bool
    client_id: str | None = None
    scopes: frozenset[str] | None = None  # None: a private-app token, which holds every scope


def _unauthorized(message: str, category: str = "INVALID_AUTHENTICATION") -> ApiError:
    return ApiError(401, category, message)


class Auth:
    def __init__(self, store: Store, static_tokens: list[str], client_id: str, client_secret: str,
                 token_ttl: float) -> None:
        self.store = store
        self.static_tokens = frozenset(static_tokens)
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        if "oauth" not in store.docs:
            store.set_doc("oauth", {"codes": {}, "access": {}, "refresh": {}})

    @property
    def _doc(self) -> dict[str, dict[str, Any]]:
        return self.store.docs["oauth"]

    def authenticate(self, header: str | None) -> Principal:
        if not header or not header.lower().startswith("bearer "):
            raise _unauthorized(
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
            )
        token = header[7:].strip()
        if token in self.static_tokens:
            return Principal(token, oauth=False)
        grant = self._doc["access"].get(token)
        if grant is None:
            raise _unauthorized("The access token provided is invalid or was revoked.")
        expired_for = time.time() - grant["expires_at"]
        if expired_for >= 0:
            raise _unauthorized(f"The OAuth token used to make this call expired {int(expired_for)} second(s) ago.",
                                "EXPIRED_AUTHENTICATION")
        return Principal(token, oauth=True, client_id=grant["client_id"], scopes=frozenset(grant["scopes"]))

    # ---- consent page -------------------------------------------------------------------------------
    def consent_page(self, params: dict[str, str]) -> tuple[int, str]:
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
        if client_id != self.client_id:
            return 400, _page("Authorization failed", f"<p>Unknown client_id {html.escape(client_id)!s}.</p>")
        if not redirect_uri.startswith(("http://", "https://")):
            return 400, _page("Authorization failed", "<p>A valid redirect_uri is required.</p>")
        asked = f"{params.get('scope') or ''} {params.get('optional_scope') or ''}".split()
        unknown = sorted({s for s in asked if s not in SCOPES})
        if unknown:  # HubSpot's install page refuses a scope it does not know
            return 400, _page("Authorization failed",
                              f"<p>Couldn't complete the connection: invalid scope(s) {html.escape(', '.join(unknown))}.</p>")
        hidden = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(params.get(k, ""), quote=True)}">'
            for k in ("client_id", "redirect_uri", "scope", "optional_scope", "state")
        )
        scopes = "".join(f"<li>{html.escape(s)}</li>" for s in (params.get("scope") or DEFAULT_SCOPES).split())
        body = (
            f"<p>The app <strong>{html.escape(client_id)}</strong> asks to connect to HubSpot sandbox portal "
            f"{PORTAL_ID} with these scopes:</p><ul>{scopes}</ul>"
            f'<form method="post" action="/oauth/authorize">{hidden}'
            '<button type="submit" name="decision" value="approve" id="approve">Approve</button> '
            '<button type="submit" name="decision" value="deny" id="deny">Deny</button></form>'
        )
        return 200, _page("Connect app", body)

    def decide(self, form: dict[str, str]) -> tuple[int, str]:
        """Handle the consent form: (status, redirect location or error page)."""
        status, page = self.consent_page(form)
        if status != 200:
            return status, page
        redirect = form["redirect_uri"]
        sep = "&" if "?" in redirect else "?"
        if form.get("decision") != "approve":
            return 302, redirect + sep + urlencode({"error": "access_denied", "state": form.get("state", "")})
        code = secrets.token_urlsafe(24)
        self._doc["codes"][code] = {"client_id": form["client_id"], "redirect_uri": redirect,
                                    # this portal has every feature: optional scopes are granted too
                                    "scopes": [*(form.get("scope") or DEFAULT_SCOPES).split(),
                                               *(form.get("optional_scope") or "").split()],
                                    "expires_at": time.time() + CODE_TTL}
        self.store.set_doc("oauth", self._doc)
        query = {"code": code} | ({"state": form["state"]} if form.get("state") else {})
        return 302, redirect + sep + urlencode(query)

    # ---- token endpoint -----------------------------------------------------------------------------
    def token(self, form: dict[str, str]) -> dict[str, Any]:
        if form.get("client_id") != self.client_id:
            raise ApiError(400, "BAD_CLIENT_ID", "missing or unknown client id")
        if form.get("client_secret") != self.client_secret:
            raise ApiError(400, "BAD_CLIENT_SECRET", "missing or invalid client secret")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            code = self._doc["codes"].pop(form.get("code", ""), None)
            self.store.set_doc("oauth", self._doc)
            if code is None or code["expires_at"] < time.time():
                raise ApiError(400, "BAD_AUTH_CODE", "missing or unknown auth code")
            if form.get("redirect_uri") != code["redirect_uri"]:
                raise ApiError(400, "BAD_REDIRECT_URI", "redirect_uri does not match the authorize request")
            refresh = "sbx-r-" + secrets.token_urlsafe(32)
            self._doc["refresh"][refresh] = {"client_id": code["client_id"], "scopes": code["scopes"]}
            return self._issue(refresh)
        if grant_type == "refresh_token":
            refresh = form.get("refresh_token", "")
            if refresh not in self._doc["refresh"]:
                raise ApiError(400, "BAD_REFRESH_TOKEN", "missing or unknown refresh token")
            return self._issue(refresh)
        raise ApiError(400, "BAD_GRANT_TYPE", f"unsupported grant_type {grant_type}")

    def _issue(self, refresh: str) -> dict[str, Any]:
        grant = self._doc["refresh"][refresh]
        access = "sbx-a-" + secrets.token_urlsafe(48)
        now = time.time()
        # forget expired access tokens so the document stays small
        self._doc["access"] = {t: g for t, g in self._doc["access"].items() if g["expires_at"] > now - 86_400}
        self._doc["access"][access] = {"client_id": grant["client_id"], "scopes": grant["scopes"],
                                       "expires_at": now + self.token_ttl, "refresh": refresh}
        self.store.set_doc("oauth", self._doc)
        return {"access_token": access, "refresh_token": refresh, "expires_in": int(self.token_ttl),
                "token_type": "bearer", "token_use": "access_token", "hub_id": PORTAL_ID, "user_id": 1,
                "app_id": 1, "hub_domain": "sandbox.hubspot.local", "scopes": grant["scopes"]}

    def token_info(self, token: str) -> dict[str, Any]:
        grant = self._doc["access"].get(token)
        if grant is None or grant["expires_at"] <= time.time():
            raise ApiError(404, "NOT_FOUND", "Access token not found or expired")
        return {"token": token, "hub_id": PORTAL_ID, "user_id": 1, "user": "sandbox@example.com",
                "hub_domain": "sandbox.hubspot.local", "app_id": 1, "scopes": grant["scopes"],
                "token_type": "access", "expires_in": int(grant["expires_at"] - time.time())}


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1>{body}</body></html>")
