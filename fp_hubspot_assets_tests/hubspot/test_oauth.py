"""OAuth (public_app): authorize URL per region, the `fp-hubspot authorize` flow end to end against the
sandbox's consent page (driven over HTTP like a browser: GET the page, POST its form, follow the redirect to
the loopback callback), a sync with the stored tokens across expiry, the refresh on a 401, and no secret in
Dagster's event log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from dagster import DagsterInstance

from fp_demo_store.generate import generate
from fp_hubspot_assets.hubspot.client import HubSpotClient
from fp_hubspot_assets.hubspot.oauth import (
    OAuthError,
    OAuthTokens,
    account_name,
    authorize,
    authorize_url,
    required_scopes,
)
from fp_hubspot_assets.hubspot.ratelimit import RateBudget
from fp_hubspot_assets.panel import PanelSettings, parse_panel
from fp_hubspot_assets.state.crypto import generate_key
from fp_hubspot_assets.state.store import StateStore
from fp_hubspot_assets_tests.fixtures_sync import SyncEnv
from hubspot_sandbox.testing import SandboxHandle, free_port, running_sandbox

CLIENT_ID, CLIENT_SECRET = "sandbox-client-id", "sandbox-client-secret"
TOKEN_TTL = 2  # seconds (the sandbox's minimum is 1): a sync of the small demo outlives an access token
REPO = Path(__file__).resolve().parents[2]


def _panel(base_url: str | None = None, region: str = "na1", tier: str = "professional", port: int = 8976) -> PanelSettings:
    integration = {"mode": "public_app", "client_id": CLIENT_ID, "region": region,
                   "redirect_uri": f"http://127.0.0.1:{port}/oauth-callback"}
    if base_url:
        integration["base_url"] = base_url
    return parse_panel({"tier": tier, "integration": integration})


def _panel_yaml(base_url: str, port: int) -> str:
    return (f"integration:\n  mode: public_app\n  base_url: {base_url}\n  client_id: {CLIENT_ID}\n"
            f"  redirect_uri: http://127.0.0.1:{port}/oauth-callback\n")


# ---------------------------------------------------------------------------------- URLs and scopes
@pytest.mark.parametrize(
    ("region", "base_url", "authorize_host", "api_host"),
    [
        ("na1", None, "https://app.hubspot.com", "https://api.hubapi.com"),
        ("eu1", None, "https://app-eu1.hubspot.com", "https://api-eu1.hubapi.com"),
        ("eu1", "http://127.0.0.1:9999", "http://127.0.0.1:9999", "http://127.0.0.1:9999"),
    ],
)
def test_region_picks_hosts_and_base_url_overrides_both(
    region: str, base_url: str | None, authorize_host: str, api_host: str
) -> None:
    settings = _panel(base_url, region)
    url = authorize_url(settings, "st4te")
    assert url.startswith(f"{authorize_host}/oauth/authorize?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["client_id"] == CLIENT_ID and query["state"] == "st4te"
    assert query["redirect_uri"] == "http://127.0.0.1:8976/oauth-callback"
    assert query["scope"].split() == required_scopes(settings)
    assert settings.integration.api_base_url == api_host


def test_scopes_follow_the_tier() -> None:
    pro = required_scopes(_panel(tier="professional"))
    free = required_scopes(_panel(tier="free"))
    assert "oauth" in free and "crm.objects.contacts.write" in free and "crm.schemas.deals.write" in free
    assert not [s for s in free if "products" in s or "line_items" in s]
    assert "crm.objects.line_items.write" in pro and "e-commerce" in pro
    query = parse_qs(urlsplit(authorize_url(_panel(tier="free"), "s")).query)
    assert "e-commerce" in query["optional_scope"][0].split()  # the panel lists it; free does not need it


def test_scopes_command_prints_the_minimal_list(tmp_path: Path) -> None:
    panel = tmp_path / "panel.yaml"
    panel.write_text("tier: starter\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "fp_hubspot_assets.cli", "authorize", "--scopes", "--panel", str(panel)],
                         capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.splitlines()[: len(required_scopes(parse_panel({"tier": "starter"})))] == required_scopes(
        parse_panel({"tier": "starter"})
    )


# ---------------------------------------------------------------------------------- the flow
@pytest.fixture
def oauth_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SyncEnv]:
    monkeypatch.setenv("FP_STATE_KEY", generate_key())
    monkeypatch.setenv("FP_HUBSPOT_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.delenv("FP_HUBSPOT_ACCESS_TOKEN", raising=False)
    sap_url = f"sqlite:///{tmp_path / 'sap.db'}"
    generate(sap_url, 120, seed=7)
    # Seeded slow answers stretch the sync well past one token lifetime, on any machine.
    slow = {"faults": "slow=0.1", "fault_seed": 3, "slow_seconds": 0.5}
    with running_sandbox(tmp_path / "hubspot.db", token_ttl=TOKEN_TTL, **slow) as sandbox, \
            DagsterInstance.ephemeral() as instance:
        env = SyncEnv(tmp_path, sap_url, f"sqlite:///{tmp_path / 'state.db'}", tmp_path / "panel.yaml", sandbox, instance)
        env.panel_path.write_text(_panel_yaml(sandbox.base_url, free_port()), encoding="utf-8")
        yield env


def _approve(url: str, decision: str = "approve") -> httpx.Response:
    """What a user's browser does: load the consent page, submit its form, follow the redirect back."""
    with httpx.Client(timeout=10.0, follow_redirects=True) as browser:
        page = browser.get(url)
        assert page.status_code == 200 and 'id="approve"' in page.text
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert action is not None
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        fields = {k: v.replace("&amp;", "&").replace("&quot;", '"') for k, v in fields.items()}
        return browser.post(httpx.URL(url).join(action.group(1)), data=fields | {"decision": decision})


def _stored(env: SyncEnv) -> StateStore:
    return StateStore(env.state_url)


def _token_requests(sandbox: SandboxHandle) -> int:
    return sum(sandbox.stats()["requests"].get("POST /oauth/v1/token", {}).values())


def test_authorize_command_then_a_sync_across_token_expiry(oauth_env: SyncEnv) -> None:
    env = oauth_env
    cmd = [sys.executable, "-m", "fp_hubspot_assets.cli", "authorize", "--no-browser", "--timeout", "30",
           "--panel", str(env.panel_path), "--state-url", env.state_url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "FORCE_COLOR": "1"})
    try:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:
            if line.startswith("http"):
                url = line.strip()
                break
        assert "/oauth/authorize?" in url and "state=" in url
        callback = _approve(url)
        assert callback.status_code == 200 and "Connected" in callback.text
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "\033[32mConnected to HubSpot" in out  # the green line
    tokens = _stored(env).load_tokens(account_name(parse_panel({"integration": {"mode": "public_app", "client_id": CLIENT_ID}}).integration))
    assert tokens is not None and tokens.refresh_token.startswith("sbx-r-")
    assert tokens.refresh_token not in out + err and (tokens.access_token or "-") not in out + err
    first_access = tokens.access_token

    run = env.run()  # outlives an access token: the refresh count below is what proves it
    contacts = env.hubspot("contacts")
    assert len(contacts) > 50 and run.metadata["hubspot_contacts"]["count_created"] == len(contacts)
    assert _token_requests(env.sandbox) >= 2  # the code exchange plus at least one refresh during the run
    after = _stored(env).load_tokens(tokens.account)
    assert after is not None and after.access_token != first_access

    # No token or secret in Dagster's event log (messages, metadata, errors).
    secrets_ = {after.refresh_token, after.access_token, first_access, CLIENT_SECRET, os.environ["FP_STATE_KEY"]}
    events = "\n".join(repr(entry) for entry in env.instance.all_logs(run.run_id))
    assert "hubspot_contacts" in events
    leaked = [s for s in secrets_ if s and s in events]
    assert not leaked, "a secret appears in the Dagster event log"


def _authorize_in_thread(settings: PanelSettings, store: StateStore) -> tuple[threading.Thread, list[str], list[BaseException]]:
    urls: list[str] = []
    errors: list[BaseException] = []
    ready = threading.Event()

    def show(url: str) -> None:
        urls.append(url)
        ready.set()

    def work() -> None:
        try:
            authorize(settings, store, show, timeout=15)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    assert ready.wait(10)
    return thread, urls, errors


def test_a_wrong_state_is_refused_and_nothing_is_stored(oauth_env: SyncEnv) -> None:
    env = oauth_env
    from fp_hubspot_assets.panel import load_panel

    settings = load_panel(env.panel_path)
    with _stored(env) as store:
        thread, urls, errors = _authorize_in_thread(settings, store)
        redirect = settings.integration.redirect_uri
        # A forged redirect: a real code, but not our state.
        forged = _approve(urls[0].replace("state=", "state=forged"))
        assert forged.status_code == 200
        thread.join(15)
        assert errors and isinstance(errors[0], OAuthError) and "state does not match" in str(errors[0])
        assert store.load_tokens(account_name(settings.integration)) is None
        assert redirect.startswith("http://127.0.0.1:")


def test_a_denied_consent_prints_red_with_the_reason(oauth_env: SyncEnv) -> None:
    env = oauth_env
    cmd = [sys.executable, "-m", "fp_hubspot_assets.cli", "authorize", "--no-browser", "--timeout", "30",
           "--panel", str(env.panel_path), "--state-url", env.state_url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "FORCE_COLOR": "1"})
    try:
        assert proc.stdout is not None
        url = next(line.strip() for line in proc.stdout if line.startswith("http"))
        _approve(url, decision="deny")
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert "\033[31mAuthorization failed: HubSpot did not authorize the app: access_denied" in err


def test_a_401_refreshes_once_and_the_call_succeeds(oauth_env: SyncEnv) -> None:
    env = oauth_env
    from fp_hubspot_assets.panel import load_panel

    settings = load_panel(env.panel_path)
    with _stored(env) as store:
        thread, urls, errors = _authorize_in_thread(settings, store)
        _approve(urls[0])
        thread.join(15)
        assert not errors
        record = store.load_tokens(account_name(settings.integration))
        assert record is not None
        # HubSpot revoked the access token although it has not expired by our clock.
        store.save_tokens(record.account, record.refresh_token, "sbx-a-revoked", datetime.now(UTC) + timedelta(hours=1))
        provider = OAuthTokens(settings, store)
        client = HubSpotClient(env.sandbox.base_url, "", RateBudget(100, 250_000), token_provider=provider)
        assert list(client.list_all("contacts", ["email"])) == []
        assert provider.refreshes == 1
        assert store.load_tokens(record.account).access_token not in (None, "sbx-a-revoked")  # type: ignore[union-attr]

        # A refresh token HubSpot no longer knows: a clear OAuthError with HubSpot's message, no token in it.
        store.save_tokens(record.account, "sbx-r-unknown", "sbx-a-revoked", datetime.now(UTC) + timedelta(hours=1))
        broken = HubSpotClient(env.sandbox.base_url, "", RateBudget(100, 250_000),
                               token_provider=OAuthTokens(settings, store))
        with pytest.raises(OAuthError, match="missing or unknown refresh token") as caught:
            list(broken.list_all("contacts", ["email"]))
        assert "sbx-r-unknown" not in str(caught.value)


def test_public_app_without_tokens_says_how_to_authorize(oauth_env: SyncEnv) -> None:
    env = oauth_env
    from dagster import DagsterEventType

    from fp_hubspot_assets.runner import resource_config, run_sync

    config = resource_config(panel=str(env.panel_path), sap_url=env.sap_url, state_url=env.state_url)
    summary = run_sync(env.instance, config)
    assert not summary.success
    failures = [e for e in env.instance.all_logs(summary.run_id, of_type=DagsterEventType.STEP_FAILURE)]
    assert any("fp-hubspot authorize" in repr(e) for e in failures)
