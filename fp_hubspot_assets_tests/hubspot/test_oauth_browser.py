"""The OAuth "Authorize" flow end to end in a real headless browser (Debian's Chromium via chromedriver).

`fp-hubspot authorize --no-browser` runs as the admin would run it; the browser opens the URL it prints,
clicks Approve on the sandbox's consent page and is redirected to the command's loopback callback; the
command prints its green line and stores the tokens. A sync through Dagster then outlives the sandbox's
2-second access token and succeeds across the refreshes. A tampered `state` is refused and nothing is
stored. No token or secret shows in the pages, the command's output or Dagster's event log.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from fp_hubspot_assets.hubspot.oauth import account_name
from fp_hubspot_assets.panel import load_panel
from fp_hubspot_assets.state.store import StateStore, TokenRecord
from fp_hubspot_assets_tests.fixtures_browser import Browser
from fp_hubspot_assets_tests.fixtures_sync import SyncEnv
from fp_hubspot_assets_tests.hubspot import test_oauth

REPO = test_oauth.REPO
GREEN, RED = "\033[32m", "\033[31m"

# The same environment as test_oauth.py (demo SAP data, a sandbox with a 2-second token lifetime and seeded
# slow answers, an ephemeral Dagster instance, FP_STATE_KEY and the client secret in the environment).
oauth_env = test_oauth.oauth_env


@dataclass
class Authorize:
    """A running `fp-hubspot authorize` and the authorize URL it printed."""

    proc: subprocess.Popen[str]
    url: str

    @property
    def state(self) -> str:
        return parse_qs(urlsplit(self.url).query)["state"][0]

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, self.url + "\n" + out, err


@contextmanager
def authorize_command(env: SyncEnv) -> Iterator[Authorize]:
    cmd = [sys.executable, "-m", "fp_hubspot_assets.cli", "authorize", "--no-browser", "--timeout", "30",
           "--panel", str(env.panel_path), "--state-url", env.state_url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "FORCE_COLOR": "1"})
    try:
        assert proc.stdout is not None
        url = next((line.strip() for line in proc.stdout if line.startswith("http")), "")
        assert "/oauth/authorize?" in url, f"no authorize URL printed: {proc.stderr.read() if proc.stderr else ''}"
        yield Authorize(proc, url)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def approve_in_browser(browser: Browser, url: str, redirect_uri: str) -> str:
    """Open the consent page, click Approve, wait for the loopback callback; the callback page's text."""
    browser.open(url)
    consent = browser.text()
    assert "Connect app" in consent and test_oauth.CLIENT_ID in consent and "crm.objects.deals.write" in consent
    browser.click("#approve")
    browser.wait_until(lambda b: b.url().startswith(redirect_uri))
    return consent + "\n" + browser.text()


def stored_tokens(env: SyncEnv) -> TokenRecord | None:
    with StateStore(env.state_url) as store:
        return store.load_tokens(account_name(load_panel(env.panel_path).integration))


def secrets_of(*records: TokenRecord | None) -> set[str]:
    values = {test_oauth.CLIENT_SECRET, os.environ["FP_STATE_KEY"]}
    for record in records:
        if record is not None:
            values |= {record.refresh_token, record.access_token or ""}
    return {v for v in values if v}


def test_browser_authorizes_then_a_sync_succeeds_across_a_refresh(oauth_env: SyncEnv, browser: Browser) -> None:
    env = oauth_env
    redirect_uri = load_panel(env.panel_path).integration.redirect_uri
    with authorize_command(env) as command:
        pages = approve_in_browser(browser, command.url, redirect_uri)
        landed = urlsplit(browser.url())
        code, out, err = command.finish()
    assert code == 0, err
    assert f"{GREEN}Connected to HubSpot" in out  # the green line
    assert "Connected" in browser.text() and "close this window" in browser.text()
    callback = parse_qs(landed.query)
    assert f"{landed.scheme}://{landed.netloc}{landed.path}" == redirect_uri
    assert callback["state"] == [command.state] and callback["code"]
    tokens = stored_tokens(env)
    assert tokens is not None and tokens.refresh_token.startswith("sbx-r-") and tokens.access_token
    first_access = tokens.access_token

    run = env.run()  # outlives an access token: the refresh count below is what proves it
    contacts = env.hubspot("contacts")
    assert len(contacts) > 50 and run.count("contacts", "created") == len(contacts)
    assert test_oauth._token_requests(env.sandbox) >= 2  # the code exchange, then a refresh during the run
    after = stored_tokens(env)
    assert after is not None and after.access_token != first_access

    events = "\n".join(repr(entry) for entry in env.instance.all_logs(run.run_id))
    assert "hubspot_contacts" in events
    everything = {"browser pages": pages + browser.source(), "command output": out + err, "Dagster event log": events}
    for secret in secrets_of(tokens, after) | {first_access}:
        for where, text in everything.items():
            assert secret not in text, f"a token or secret appears in the {where}"


def _flip(state: str) -> str:
    return ("A" if state[0] != "A" else "B") + state[1:]


@pytest.mark.parametrize("tamper", ["authorize_url", "callback_url"])
def test_a_tampered_state_is_refused_and_nothing_is_stored(oauth_env: SyncEnv, browser: Browser, tamper: str) -> None:
    """``authorize_url``: the state in the address bar is edited before approving, so a genuine code comes
    back with the wrong state. ``callback_url``: a forged redirect is typed straight at the callback."""
    env = oauth_env
    redirect_uri = load_panel(env.panel_path).integration.redirect_uri
    with authorize_command(env) as command:
        forged = _flip(command.state)
        if tamper == "authorize_url":
            approve_in_browser(browser, command.url.replace(f"state={command.state}", f"state={forged}"), redirect_uri)
            assert parse_qs(urlsplit(browser.url()).query)["state"] == [forged]
        else:
            browser.open(f"{redirect_uri}?{urlencode({'code': 'forged-code', 'state': forged})}")
        assert "Authorization failed" in browser.text() and "Connected" not in browser.text()
        code, out, err = command.finish()
    assert code == 1
    assert f"{RED}Authorization failed: the callback's state does not match" in err
    assert "Connected to HubSpot" not in out
    assert stored_tokens(env) is None
    assert test_oauth._token_requests(env.sandbox) == 0  # refused before any code exchange
