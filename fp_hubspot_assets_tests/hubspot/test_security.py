"""Security: secrets never reach logs or exceptions, wrong and expired tokens are an authorization problem
(not a crash, also through a Dagster run), and source queries bind their values instead of formatting them."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import sqlalchemy as sa
from hubspot.crm.objects.exceptions import ApiException

from fp_hubspot_assets.hubspot.client import HubSpotAuthError, HubSpotClient, HubSpotError, redact
from fp_hubspot_assets.hubspot.ratelimit import RateBudget
from fp_hubspot_assets.runner import resource_config, run_sync
from fp_hubspot_assets.sap.fetch import Source
from fp_hubspot_assets.sap.reader import ENTITIES, SapReader
from fp_hubspot_assets_tests.fixtures_sync import SyncEnv
from hubspot_sandbox.testing import SandboxHandle, running_sandbox

TOKEN_TTL = 3  # seconds: long enough that the first call made with a fresh token never meets its expiry
SECRET = "pat-na1-0123abcd-4567-89ef-fedc-ba9876543210"


# ---------------------------------------------------------------- redaction
@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {SECRET}",
        f"HTTP response headers: HTTPHeaderDict({{'Authorization': 'Bearer {SECRET}'}})",
        f'{{"access_token": "{SECRET}", "expires_in": 1800}}',
        f"grant_type=refresh_token&refresh_token={SECRET}&client_id=x",
        f"{{'refresh_token': '{SECRET}'}}",
    ],
)
def test_redact_removes_tokens(text: str) -> None:
    assert SECRET not in redact(text)
    assert "[redacted]" in redact(text)


def test_the_sdk_exception_text_is_redacted_in_our_errors() -> None:
    """The SDK's ApiException prints headers and body; what we raise from it must not carry a token."""
    sdk_error = ApiException(status=400, reason="Bad Request")
    sdk_error.headers = {"Authorization": f"Bearer {SECRET}"}
    sdk_error.body = f'{{"message": "bad token Bearer {SECRET}", "category": "VALIDATION_ERROR"}}'
    assert SECRET in str(sdk_error)  # the SDK itself would leak it
    ours = HubSpotError(400, "VALIDATION_ERROR", str(sdk_error))
    assert SECRET not in str(ours) and SECRET not in ours.message


def test_a_rejected_token_never_appears_in_the_error_or_the_logs(
    sandbox: SandboxHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = HubSpotClient(sandbox.base_url, SECRET, RateBudget(1000, None))
    with pytest.raises(HubSpotAuthError) as err:
        client.list_properties("contacts")
    assert err.value.status == 401
    assert SECRET not in str(err.value)
    assert SECRET not in caplog.text


# ---------------------------------------------------------------- wrong and expired tokens
def test_a_wrong_token_is_an_authorization_error_not_a_crash(sandbox: SandboxHandle) -> None:
    client = HubSpotClient(sandbox.base_url, "wrong-token", RateBudget(1000, None))
    with pytest.raises(HubSpotAuthError, match="refused the access token"):
        client.batch_upsert("contacts", "email", [("k", {"email": "a@example.org"})])
    assert sum(client.retries.values()) == 0, "an auth failure is not retried"


def test_an_expired_oauth_token_is_an_authorization_error(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "hubspot.db", token_ttl=TOKEN_TTL) as sb:
        token = _oauth_access_token(sb)
        client = HubSpotClient(sb.base_url, token, RateBudget(1000, None))
        assert client.list_properties("contacts") is not None  # valid while fresh
        time.sleep(TOKEN_TTL + 0.2)  # only lets time pass: longer never changes the outcome
        with pytest.raises(HubSpotAuthError) as err:
            client.list_properties("contacts")
        assert err.value.category == "EXPIRED_AUTHENTICATION"
        assert token not in str(err.value)


def _oauth_access_token(sb: SandboxHandle) -> str:
    """Walk the sandbox's authorization-code flow: approve, take the code, exchange it."""
    redirect = "http://127.0.0.1:1/callback"
    with httpx.Client(base_url=sb.base_url, follow_redirects=False) as http:
        approved = http.post("/oauth/authorize", data={
            "client_id": "sandbox-client-id", "redirect_uri": redirect, "decision": "approve", "state": "s",
        })
        code = parse_qs(urlparse(approved.headers["location"]).query)["code"][0]
        tokens = http.post("/oauth/v1/token", data={
            "grant_type": "authorization_code", "client_id": "sandbox-client-id",
            "client_secret": "sandbox-client-secret", "redirect_uri": redirect, "code": code,
        }).raise_for_status().json()
    return str(tokens["access_token"])


def test_a_dagster_run_with_a_wrong_token_fails_with_a_clear_message(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FP_HUBSPOT_ACCESS_TOKEN", SECRET)  # the panel's access_token_env; the sandbox refuses it
    config = resource_config(panel=str(sync_env.panel_path), sap_url=sync_env.sap_url, state_url=sync_env.state_url)
    summary = run_sync(sync_env.instance, config)
    assert not summary.success
    assert summary.failed_steps == ["hubspot_properties"]  # the first HubSpot step stops the run
    failure = next(
        e.dagster_event.step_failure_data.error  # type: ignore[union-attr]
        for e in sync_env.instance.all_logs(summary.run_id)
        if e.dagster_event and e.dagster_event.is_step_failure
    )
    text = _error_chain(failure)
    assert "HubSpotAuthError" in text and "refused the access token" in text
    errors = [
        _error_chain(e.dagster_event.step_failure_data.error)  # type: ignore[union-attr]
        for e in sync_env.instance.all_logs(summary.run_id)
        if e.dagster_event and e.dagster_event.is_step_failure
    ]
    everything = " ".join(str(e.message) for e in sync_env.instance.all_logs(summary.run_id)) + " ".join(errors)
    assert SECRET not in everything
    assert sum(sync_env.sandbox.stats()["records"].values()) == 0


def _error_chain(error: Any) -> str:
    parts = []
    while error:
        parts.append(f"{error.cls_name}: {error.message} {''.join(error.stack)}")
        error = error.cause
    return " ".join(parts)


# ---------------------------------------------------------------- parameterized source queries
def test_source_queries_bind_values_and_never_format_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime

    from fp_demo_store.generate import generate

    url = f"sqlite:///{tmp_path / 'sap.db'}"
    generate(url, 100, seed=1)
    hostile = "x'); DROP TABLE \"OCRD\"; --"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text('UPDATE "FP_CUSTOMER" SET "FirstName" = :v WHERE "CustomerId" = 1'), {"v": hostile})
    seen: list[tuple[str, dict[str, object]]] = []
    original = Source.query

    def spy(self: Source, sql: str, params: dict[str, object] | None = None) -> Any:
        seen.append((sql, dict(params or {})))
        return original(self, sql, params)

    monkeypatch.setattr(Source, "query", spy)
    since = datetime(2024, 3, 5, 7, 8, 9)
    reader = SapReader(url)
    for entity in ENTITIES:
        reader.read(entity, since)
    assert seen
    for sql, params in seen:
        assert "2024-03-05" not in sql and "70809" not in sql, sql  # the cursor is bound, not formatted
        assert set(re.findall(r":(\w+)", sql)) <= set(params), sql  # every placeholder is bound
        assert not any(isinstance(v, str) and len(v) >= 4 and v in sql for v in params.values()), sql  # never inlined
    assert any(":since" in sql for sql, _ in seen), "the change markers are compared to a bound cursor"
    frame = reader.read("customers").frame
    assert hostile in frame["first_name"].to_list()  # read verbatim, as data
    with engine.connect() as conn:
        assert conn.execute(sa.text('SELECT COUNT(*) FROM "OCRD"')).scalar_one() > 0
    engine.dispose()


def test_the_state_database_file_is_readable_only_by_its_owner(tmp_path: Path) -> None:
    from fp_hubspot_assets.state.store import StateStore

    path = tmp_path / "state.db"
    with StateStore(f"sqlite:///{path}"):
        pass
    assert path.stat().st_mode & 0o777 == 0o600
