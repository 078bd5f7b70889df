"""Dagster resources: the SAP source, the state store and the HubSpot connection, configured from the
environment (``EnvVar``) with embedded defaults that run the demo out of the box."""

from __future__ import annotations

import os

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from fp_hubspot_assets.hubspot import endpoints as ep
from fp_hubspot_assets.hubspot.client import HubSpotClient
from fp_hubspot_assets.hubspot.oauth import OAuthTokens
from fp_hubspot_assets.hubspot.ratelimit import RateBudget
from fp_hubspot_assets.hubspot.secrets import clean_secret
from fp_hubspot_assets.panel import PanelSettings, load_panel
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets.state.store import StateStore

SANDBOX_URL_ENV = "FP_HUBSPOT_SANDBOX_URL"
DEFAULT_SANDBOX_URL = "http://127.0.0.1:8765"
SANDBOX_TOKEN = "sandbox-token"


def default_sap_url() -> str:
    home = os.environ.get("DAGSTER_HOME")
    return os.environ.get("FP_SAP_URL") or (f"sqlite:///{home}/../sap.db" if home else "sqlite:///.demo/sap.db")


class PanelResource(ConfigurableResource):
    """The panel options as a Dagster resource. ``path`` empty → $FP_PANEL_FILE or the defaults."""

    path: str = ""

    def settings(self) -> PanelSettings:
        return load_panel(self.path or None)


class SapSourceResource(ConfigurableResource):
    """Where SAP Business One + FocusPoint data is read from (any SQLAlchemy URL). Empty → $FP_SAP_URL."""

    url: str = ""

    def reader(self) -> SapReader:
        return SapReader(self.url or default_sap_url())


class StateStoreResource(ConfigurableResource):
    """The state store (ID map, hashes, log, cursors). Empty → $FP_STATE_URL or SQLite under $DAGSTER_HOME."""

    url: str = ""
    _store: StateStore | None = PrivateAttr(default=None)

    def store(self) -> StateStore:
        if self._store is None:
            self._store = StateStore(self.url or StateStore.default_url())
        return self._store

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None


def resolve_connection(settings: PanelSettings) -> tuple[str, str, bool]:
    """(API base URL, access token, is_sandbox). Real HubSpot when a token is configured, else the local sandbox.

    An explicit ``integration.base_url`` always wins (that is how the demo points at its sandbox). In
    ``public_app`` mode the token is "" here: the client gets OAuth tokens from the state store instead."""
    integration = settings.integration
    if integration.mode == "public_app":
        return integration.api_base_url, "", False
    token = clean_secret(os.environ.get(integration.access_token_env, ""), integration.access_token_env)
    if integration.base_url:
        return integration.base_url, token or SANDBOX_TOKEN, not token
    if token:
        return integration.api_base_url, token, False
    return os.environ.get(SANDBOX_URL_ENV, DEFAULT_SANDBOX_URL), SANDBOX_TOKEN, True


class HubSpotResource(ConfigurableResource):
    """The HubSpot connection for one run. ``dry_run`` computes and reports changes and writes nothing."""

    dry_run: bool = False
    max_workers: int = 4
    timeout_seconds: float = 30.0
    # A shortened rate window (same requests per second) for tests and benchmarks; 0 = HubSpot's 10 s.
    rate_window_seconds: float = 0.0
    # Nightly reconcile: also read what HubSpot holds now (list API) and write back records edited or
    # deleted there by hand. Off, only records whose payload changed since we last sent them are written.
    reconcile: bool = False
    # One rate budget per account for the whole run: every step's client spends the same rolling window.
    # (A fresh budget per step starts with an empty window while HubSpot's still holds the previous step's
    # requests, so the first burst of each step drew 429s — each costing a whole window of waiting.)
    _budgets: dict[tuple[str, str, float], RateBudget] = PrivateAttr(default_factory=dict)

    def client(self, settings: PanelSettings, store: StateStore | None = None) -> HubSpotClient:
        """The run's client. ``public_app`` mode reads (and refreshes) OAuth tokens in ``store`` (default: the
        environment's state store); the first request fails with NotAuthorized until `fp-hubspot authorize`."""
        base_url, token, _sandbox = resolve_connection(settings)
        integration = settings.integration
        provider, hint = None, f"check the access token in the environment variable {integration.access_token_env}"
        if integration.mode == "public_app":
            provider = OAuthTokens(settings, store or StateStore(StateStore.default_url()))
            hint = "run `fp-hubspot authorize` again to reconnect the HubSpot account (public app)"
        budget = self._budget(settings, base_url, token)
        return HubSpotClient(base_url, token, budget, timeout=self.timeout_seconds, token_provider=provider,
                             auth_hint=hint, api_version=integration.api_version)

    def _budget(self, settings: PanelSettings, base_url: str, token: str) -> RateBudget:
        per_window, daily = ep.budget_for(settings.tier.value, oauth=settings.integration.mode == "public_app")
        window = self.rate_window_seconds or ep.TEN_SECONDS
        key = (base_url, token or settings.integration.mode, window)
        if key not in self._budgets:
            self._budgets[key] = RateBudget(max(1, round(per_window * window / ep.TEN_SECONDS)), daily, window_seconds=window)
        return self._budgets[key]
