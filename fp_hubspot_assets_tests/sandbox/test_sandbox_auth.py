"""Bearer tokens and the OAuth authorization-code flow of the sandbox."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import orjson
import pytest
from hubspot.crm.contacts import ApiException as ContactsApiException
from hubspot.oauth import ApiException as OAuthApiException

from hubspot_sandbox.testing import SandboxHandle, running_sandbox

REDIRECT = "http://localhost:3000/oauth/callback"
TOKEN_TTL = 3  # seconds: long enough that the first call made with a fresh token never meets its expiry


SCOPE = "oauth crm.objects.contacts.read crm.objects.contacts.write"


def approve(
    sb: SandboxHandle, decision: str = "approve", client_id: str = "sandbox-client-id", scope: str = SCOPE
) -> httpx.Response:
    """Load the consent page and submit its form the way a browser would."""
    page = httpx.get(
        f"{sb.base_url}/oauth/authorize",
        params={"client_id": client_id, "redirect_uri": REDIRECT, "state": "st-42", "scope": scope},
    )
    assert page.status_code == 200 and "Approve" in page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    return httpx.post(sb.base_url + action, data={**fields, "decision": decision}, follow_redirects=False)


def exchange(sb: SandboxHandle, **form: str):
    return sb.client().oauth.tokens_api.create(
        client_id="sandbox-client-id", client_secret="sandbox-client-secret", **form
    )


def test_missing_and_wrong_tokens_get_401(sandbox_session: SandboxHandle) -> None:
    plain = httpx.get(f"{sandbox_session.base_url}/crm/v3/objects/contacts")
    assert plain.status_code == 401 and plain.json()["category"] == "INVALID_AUTHENTICATION"
    assert "correlationId" in plain.json()
    with pytest.raises(ContactsApiException) as exc:
        sandbox_session.client(access_token="not-a-token").crm.contacts.basic_api.get_page()
    assert exc.value.status == 401


def test_repeatable_static_tokens(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "h.db", tokens=["tok-a", "tok-b"]) as sb:
        for token in ("tok-a", "tok-b"):
            assert sb.client(access_token=token).crm.contacts.basic_api.get_page().results == []
        with pytest.raises(ContactsApiException):
            sb.client(access_token="sandbox-token").crm.contacts.basic_api.get_page()


def test_consent_page_code_exchange_and_refresh(sandbox_session: SandboxHandle) -> None:
    redirect = approve(sandbox_session)
    assert redirect.status_code == 302
    target = urlparse(redirect.headers["location"])
    query = parse_qs(target.query)
    assert f"{target.scheme}://{target.netloc}{target.path}" == REDIRECT and query["state"] == ["st-42"]
    tokens = exchange(
        sandbox_session, grant_type="authorization_code", code=query["code"][0], redirect_uri=REDIRECT
    )
    assert tokens.token_type == "bearer" and tokens.expires_in == 1800 and len(tokens.access_token) <= 300
    oauth_client = sandbox_session.client(access_token=tokens.access_token)
    assert oauth_client.crm.contacts.basic_api.get_page().results == []
    with pytest.raises(OAuthApiException):  # a code works once
        exchange(
            sandbox_session, grant_type="authorization_code", code=query["code"][0], redirect_uri=REDIRECT
        )
    refreshed = exchange(sandbox_session, grant_type="refresh_token", refresh_token=tokens.refresh_token)
    assert refreshed.access_token != tokens.access_token
    assert sandbox_session.client(access_token=refreshed.access_token).crm.contacts.basic_api.get_page().results == []


def test_token_answer_is_complete_and_a_missing_scope_is_named(sandbox_session: SandboxHandle) -> None:
    code = parse_qs(urlparse(approve(sandbox_session).headers["location"]).query)["code"][0]
    answer = httpx.post(f"{sandbox_session.base_url}/oauth/v1/token", data={
        "grant_type": "authorization_code", "client_id": "sandbox-client-id", "code": code,
        "client_secret": "sandbox-client-secret", "redirect_uri": REDIRECT}).json()
    assert {"access_token", "refresh_token", "expires_in", "token_type", "token_use", "hub_id", "scopes"} <= set(answer)
    assert answer["scopes"] == SCOPE.split()
    # The token holds contact scopes only: companies answer 403 MISSING_SCOPES naming the scope needed.
    refused = httpx.get(f"{sandbox_session.base_url}/crm/objects/2026-03/companies",
                        headers={"Authorization": f"Bearer {answer['access_token']}"})
    body = refused.json()
    assert refused.status_code == 403 and body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.companies.read"]
    assert "crm.objects.companies.read" in body["message"]
    products = httpx.post(f"{sandbox_session.base_url}/crm/properties/2026-03/products",
                          headers={"Authorization": f"Bearer {answer['access_token']}"}, json={})
    assert products.status_code == 403 and "e-commerce" in products.json()["message"]


@pytest.mark.parametrize("scope", ["crm.schemas.products.write", "crm.schemas.line_items.write", "crm.objects.widgets.read"])
def test_consent_refuses_a_scope_hubspot_does_not_have(sandbox_session: SandboxHandle, scope: str) -> None:
    page = httpx.get(f"{sandbox_session.base_url}/oauth/authorize", params={
        "client_id": "sandbox-client-id", "redirect_uri": REDIRECT, "scope": f"{SCOPE} {scope}"})
    assert page.status_code == 400 and scope in page.text


def test_denied_consent_and_bad_client(sandbox_session: SandboxHandle) -> None:
    denied = approve(sandbox_session, decision="deny")
    assert parse_qs(urlparse(denied.headers["location"]).query)["error"] == ["access_denied"]
    bad = httpx.get(
        f"{sandbox_session.base_url}/oauth/authorize",
        params={"client_id": "someone-else", "redirect_uri": REDIRECT},
    )
    assert bad.status_code == 400
    with pytest.raises(OAuthApiException) as exc:
        sandbox_session.client().oauth.tokens_api.create(
            grant_type="refresh_token",
            refresh_token="x",
            client_id="sandbox-client-id",
            client_secret="wrong",
        )
    assert exc.value.status == 400 and orjson.loads(exc.value.body)["status"] == "BAD_CLIENT_SECRET"


def test_access_tokens_expire(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "h.db", token_ttl=TOKEN_TTL) as sb:
        code = parse_qs(urlparse(approve(sb).headers["location"]).query)["code"][0]
        tokens = exchange(sb, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
        api = sb.client(access_token=tokens.access_token).crm.contacts.basic_api
        assert api.get_page().results == []
        time.sleep(TOKEN_TTL + 0.2)  # only lets time pass: longer never changes the outcome
        with pytest.raises(ContactsApiException) as exc:
            api.get_page()
        assert (
            exc.value.status == 401 and orjson.loads(exc.value.body)["category"] == "EXPIRED_AUTHENTICATION"
        )


def test_oauth_grants_survive_restart(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "h.db") as sb:
        code = parse_qs(urlparse(approve(sb).headers["location"]).query)["code"][0]
        tokens = exchange(sb, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
        sb.restart()
        assert sb.client(access_token=tokens.access_token).crm.contacts.basic_api.get_page().results == []
        assert exchange(sb, grant_type="refresh_token", refresh_token=tokens.refresh_token).access_token
