"""Dagster resources: the SAP source, the state store and the HubSpot connection.

``definitions.build_resources`` configures them from the environment with ``EnvVar`` (shown on the UI's
resource page). Nothing falls back to the demo: the demo, ``make dev`` and the tests name their sandbox and
databases explicitly, and a production run with no HubSpot configured stops with one line saying what to set."""

from __future__ import annotations

import os

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr, field_validator

from fp_hubspot_assets.hubspot import endpoints as ep
from fp_hubspot_assets.hubspot.client import HubSpotClient
from fp_hubspot_assets.hubspot.oauth import OAuthTokens
from fp_hubspot_assets.hubspot.ratelimit import RateBudget
from fp_hubspot_assets.hubspot.secrets import clean_secret
from fp_hubspot_assets.panel import PanelSettings, load_panel
from fp_hubspot_assets.sap.fetch import SourceZone
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets.state.store import StateStore

SANDBOX_TOKEN = "sandbox-token"  # what the local sandbox accepts when the panel's base_url points at it


class NotConfigured(ValueError):
    """Something a run needs is not configured (the message says what to set)."""


class PanelResource(ConfigurableResource):
    """The panel options as a Dagster resource. ``path`` empty → $FP_PANEL_FILE or the defaults."""

    path: str = ""

    def settings(self) -> PanelSettings:
        return load_panel(self.path or None)


class SapSourceResource(ConfigurableResource):
    """Where SAP Business One + FocusPoint data is read from."""

    url: str = Field(description="SQLAlchemy URL of the SAP Business One + FocusPoint database ($FP_SAP_URL)")
    time_zone: str = Field(
        default="UTC",
        description="IANA time zone SAP Business One stamps its rows in: the server's, or the company's with "
        "Manage Company Time ($FP_SAP_TIME_ZONE, default UTC)",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        SourceZone(value)  # raises naming $FP_SAP_TIME_ZONE and what to give
        return value

    def reader(self) -> SapReader:
        return SapReader(self.url, time_zone=self.time_zone)


class StateStoreResource(ConfigurableResource):
    """The state store (ID map, hashes, log, cursors): opened once per run, here, and shared by every step."""

    url: str = Field(description="SQLAlchemy URL of the state store ($FP_STATE_URL)")
    _store: StateStore | None = PrivateAttr(default=None)

    def store(self) -> StateStore:
        if self._store is None:
            self._store = StateStore(self.url)
        return self._store

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None


def resolve_connection(settings: PanelSettings) -> tuple[str, str, bool]:
    """(API base URL, access token, is_sandbox).

    An explicit ``integration.base_url`` always wins (that is how the demo and the tests point at a sandbox;
    without a token it is sent the sandbox's token). In ``public_app`` mode the token is "" here: the client
    gets OAuth tokens from the state store instead. Otherwise the token is required: NotConfigured."""
    integration = settings.integration
    if integration.mode == "public_app":
        return integration.api_base_url, "", False
    token = clean_secret(os.environ.get(integration.access_token_env, ""), integration.access_token_env)
    if integration.base_url:
        return integration.base_url, token or SANDBOX_TOKEN, not token
    if token:
        return integration.api_base_url, token, False
    raise NotConfigured(
        f"HubSpot is not configured: set {integration.access_token_env} to a private-app access token (or set "
        "integration.mode: public_app and run `fp-hubspot authorize`; integration.base_url for a sandbox)"
    )


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
        """The run's client. ``public_app`` mode reads (and refreshes) OAuth tokens in ``store``, the run's state
        store (required in that mode); the first request fails with NotAuthorized until `fp-hubspot authorize`."""
        base_url, token, _sandbox = resolve_connection(settings)
        integration = settings.integration
        provider, hint = None, f"check the access token in the environment variable {integration.access_token_env}"
        if integration.mode == "public_app":
            if store is None:
                raise ValueError("public_app mode keeps its OAuth tokens in the state store: pass the run's store")
            provider = OAuthTokens(settings, store)
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
