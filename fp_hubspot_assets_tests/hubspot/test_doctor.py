"""``fp-hubspot doctor`` against the sandbox, strict and lenient: green on a healthy account, red (exit 1)
naming the problem otherwise — read-only, a handful of requests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from fp_hubspot_assets.cli import main
from fp_hubspot_assets.hubspot.client import HubSpotClient
from fp_hubspot_assets.hubspot.doctor import run_checks
from fp_hubspot_assets.hubspot.properties import SetupReport, ensure_properties
from fp_hubspot_assets.hubspot.ratelimit import RateBudget
from fp_hubspot_assets.mapping import custom_properties
from fp_hubspot_assets.panel import parse_panel
from hubspot_sandbox.testing import SandboxHandle, running_sandbox

WRITES = ("POST", "PATCH", "PUT", "DELETE")


def _doctor(tmp_path: Path, sb: SandboxHandle, extra: str = "", capsys: pytest.CaptureFixture[str] | None = None,
            *args: str) -> tuple[int, dict]:
    panel = tmp_path / "panel.yaml"
    panel.write_text(f"integration:\n  base_url: {sb.base_url}\n{extra}", encoding="utf-8")
    assert capsys is not None
    capsys.readouterr()
    code = main(["doctor", "--panel", str(panel), "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def _by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


@pytest.mark.parametrize("lenient", [False, True])
def test_a_healthy_account_is_all_green_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lenient: bool
) -> None:
    options = {"rate_limits": True, "batch_errors": "partial", "lenient_values": True} if lenient else {"rate_limits": True}
    with running_sandbox(tmp_path / "h.db", **options) as sb:
        code, report = _doctor(tmp_path, sb, capsys=capsys)
        stats = sb.stats()
    assert code == 0 and report["ok"], report
    checks = _by_name(report)
    assert {"token and account", "time zone and currencies", "scopes", "API version", "tier and limits",
            "deal pipeline", "properties: contacts", "properties: line_items"} <= set(checks)
    assert "hub id 24681357" in checks["token and account"]["detail"]
    assert "Europe/Berlin" in checks["time zone and currencies"]["detail"] and "EUR" in checks["time zone and currencies"]["detail"]
    assert "190 requests per 10 s" in checks["tier and limits"]["detail"]
    assert "/crm/objects/2026-03/contacts" in checks["API version"]["detail"]
    assert not [r for r in stats["requests"] if r.startswith(WRITES)], "the preflight is read-only"
    assert stats["total_requests"] <= 10


def test_properties_and_pipeline_after_set_up_and_without_unique_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_sandbox(tmp_path / "h.db", no_unique_on="products,line_items") as sb:
        client = HubSpotClient(sb.base_url, sb.token, RateBudget(1000, None))
        ensure_properties(client, {t: custom_properties(t) for t in ("contacts", "products")}, SetupReport())
        code, report = _doctor(tmp_path, sb, capsys=capsys)
    checks = _by_name(report)
    assert code == 0
    assert "exists and is unique" in checks["properties: contacts"]["detail"]
    assert "created and mapped by id" in checks["properties: products"]["detail"]


def test_red_checks_exit_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with running_sandbox(tmp_path / "h.db", rate_limits=True, tier="starter") as sb:
        # the panel says enterprise; HubSpot's headers say 100 per 10 s
        code, report = _doctor(tmp_path, sb, "tier: enterprise\n", capsys=capsys)
        assert code == 1 and not report["ok"]
        assert not _by_name(report)["tier and limits"]["ok"]
        assert "check the panel's tier" in _by_name(report)["tier and limits"]["detail"]
        monkeypatch.setenv("FP_HUBSPOT_ACCESS_TOKEN", "not-a-token")
        code, report = _doctor(tmp_path, sb, capsys=capsys)
    assert code == 1 and [c["name"] for c in report["checks"]] == ["token and account"]
    assert "refused the access token" in report["checks"][0]["detail"]


def test_table_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_sandbox(tmp_path / "h.db") as sb:
        panel = tmp_path / "panel.yaml"
        panel.write_text(f"integration:\n  base_url: {sb.base_url}\n", encoding="utf-8")
        assert main(["doctor", "--panel", str(panel)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["CHECK", "STATUS", "DETAIL"]
    assert re.search(r"^deal pipeline\s+ok\s+", out, re.MULTILINE)


def test_an_oauth_token_missing_a_scope_is_named(tmp_path: Path) -> None:
    """A public app whose token lacks e-commerce (products on Professional): the scope check is red and
    names it, and so does the product properties check (HubSpot's 403 MISSING_SCOPES)."""
    with running_sandbox(tmp_path / "h.db") as sb:
        settings = parse_panel({"tier": "professional", "integration": {"mode": "public_app", "client_id": "sandbox-client-id",
                                                                         "base_url": sb.base_url}})
        scope = "oauth crm.objects.contacts.read crm.objects.contacts.write crm.objects.companies.read " \
                "crm.objects.deals.read crm.schemas.contacts.read crm.objects.line_items.read"
        page = httpx.get(f"{sb.base_url}/oauth/authorize", params={
            "client_id": "sandbox-client-id", "redirect_uri": "http://localhost/cb", "scope": scope})
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        redirect = httpx.post(f"{sb.base_url}/oauth/authorize", data={**fields, "decision": "approve"})
        code = parse_qs(urlparse(redirect.headers["location"]).query)["code"][0]
        token = httpx.post(f"{sb.base_url}/oauth/v1/token", data={
            "grant_type": "authorization_code", "client_id": "sandbox-client-id", "client_secret": "sandbox-client-secret",
            "code": code, "redirect_uri": "http://localhost/cb"}).json()["access_token"]
        client = HubSpotClient(sb.base_url, "", RateBudget(1000, None), token_provider=lambda _rejected: token)
        checks = {c.name: c for c in run_checks(settings, client)}
    assert not checks["scopes"].ok and "e-commerce" in checks["scopes"].detail
    assert not checks["properties: products"].ok and "e-commerce" in checks["properties: products"].detail
    assert checks["properties: contacts"].ok
