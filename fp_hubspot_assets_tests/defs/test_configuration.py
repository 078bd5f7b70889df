"""Production configuration: nothing falls back to the demo's sandbox or databases."""

from __future__ import annotations

import pytest

from fp_hubspot_assets.defs.resources import SANDBOX_TOKEN, NotConfigured, resolve_connection
from fp_hubspot_assets.panel import PanelSettings
from fp_hubspot_assets.preflight import PreflightError, check_token, sap_url_from_env


def test_no_hubspot_configured_stops_with_one_line_naming_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FP_HUBSPOT_ACCESS_TOKEN", raising=False)
    with pytest.raises(NotConfigured) as raised:
        resolve_connection(PanelSettings())
    assert "FP_HUBSPOT_ACCESS_TOKEN" in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(PreflightError, match="HubSpot is not configured"):
        check_token(PanelSettings())


def test_a_token_means_real_hubspot_and_a_base_url_means_that_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FP_HUBSPOT_ACCESS_TOKEN", "pat-eu1-0123456789")
    assert resolve_connection(PanelSettings()) == ("https://api.hubapi.com", "pat-eu1-0123456789", False)
    monkeypatch.delenv("FP_HUBSPOT_ACCESS_TOKEN")
    sandbox = PanelSettings.model_validate({"integration": {"base_url": "http://127.0.0.1:9999"}})
    assert resolve_connection(sandbox) == ("http://127.0.0.1:9999", SANDBOX_TOKEN, True)


def test_an_unset_sap_url_is_an_error_not_a_guess(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.delenv("FP_SAP_URL", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with pytest.raises(PreflightError, match="FP_SAP_URL is not set"):
        sap_url_from_env()
