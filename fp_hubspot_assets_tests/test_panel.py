"""Panel settings: the example file is the defaults, and every invalid value fails naming its field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fp_hubspot_assets.cli import main
from fp_hubspot_assets.panel import DealStage, PanelError, PanelSettings, Tier, load_panel, parse_panel

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "panel.example.yaml"


def test_example_file_documents_exactly_the_defaults() -> None:
    assert load_panel(EXAMPLE) == PanelSettings()
    text = EXAMPLE.read_text()
    for field in PanelSettings.model_fields:
        assert f"{field}:" in text, f"panel.example.yaml does not document {field}"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"tier": "gold"}, "tier"),
        ({"customers": {"roles": ["Wholesale"]}}, "customers.roles"),
        ({"customers": {"roles": []}}, "customers"),
        ({"abandoned_cart_hours": -1}, "abandoned_cart_hours"),
        ({"abandoned_cart_hours": "soon"}, "abandoned_cart_hours"),
        ({"address_source": "home"}, "address_source"),
        ({"deal_stages": {"checkout_shipped": {"field": "colour", "values": ["x"]}}}, "deal_stages.checkout_shipped.field"),
        ({"deal_stages": {"checkout_shipped": {"field": "shipment_status", "values": ["teleported"]}}}, "deal_stages.checkout_shipped"),
        ({"deal_stages": {"checkout_shipped": {"field": "shipment_status", "values": []}}}, "deal_stages.checkout_shipped.values"),
        ({"deal_stages": {"precedence": ["checkout_shipped"]}}, "deal_stages.precedence"),
        ({"deal_stages": {"unmapped_order_stage": "checkout_abandoned"}}, "deal_stages.unmapped_order_stage"),
        ({"integration": {"mode": "public_app"}}, "integration.client_id"),
        ({"integration": {"mode": "magic"}}, "integration.mode"),
        ({"integration": {"region": "ap1"}}, "integration.region"),
        ({"integration": {"base_url": "ftp://example"}}, "integration.base_url"),
        ({"integration": {"access_token": "pat-na1-secret"}}, "integration.access_token"),
        ({"integration": {"access_token_env": "pat-na1-123"}}, "integration.access_token_env"),
        ({"items": {"sync_sku": "maybe"}}, "items.sync_sku"),
        ({"first_setup": {"pull_everything": True}}, "first_setup.pull_everything"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_values_name_their_field(data: dict, field: str) -> None:
    with pytest.raises(PanelError) as caught:
        parse_panel(data, "panel.yaml")
    lines = str(caught.value).splitlines()
    assert lines[0] == "panel.yaml: invalid panel settings"
    assert any(line.strip().startswith(f"{field}:") for line in lines[1:]), str(caught.value)


def test_secrets_are_never_echoed_in_errors() -> None:
    with pytest.raises(PanelError) as caught:
        parse_panel({"integration": {"access_token": "pat-na1-very-secret"}})
    assert "very-secret" not in str(caught.value)


def test_valid_panel_round_trip(tmp_path: Path) -> None:
    panel = tmp_path / "panel.yaml"
    panel.write_text(
        "tier: starter\ncustomers: {roles: [Guest, Wholesale], client_roles: [Wholesale]}\n"
        "integration: {mode: public_app, client_id: abc, region: eu1}\n"
        "deal_stages: {checkout_shipped: {field: shipment_status, values: [shipped, partially_shipped]}}\n"
    )
    settings = load_panel(panel)
    assert settings.tier is Tier.starter and not settings.tier.sends_products
    assert settings.integration.api_base_url == "https://api-eu1.hubapi.com"
    assert settings.integration.authorize_base_url == "https://app-eu1.hubspot.com"
    assert settings.deal_stages.rules()[1] == (DealStage.checkout_shipped, settings.deal_stages.checkout_shipped)


def test_missing_and_unparseable_files_are_clear(tmp_path: Path) -> None:
    with pytest.raises(PanelError, match="not found"):
        load_panel(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tier: [unclosed\n")
    with pytest.raises(PanelError, match="not valid YAML"):
        load_panel(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(PanelError, match="mapping"):
        load_panel(scalar)


def test_cli_panel_check_accepts_example_and_rejects_broken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["panel", "check", str(EXAMPLE)]) == 0
    assert "valid" in capsys.readouterr().out
    broken = tmp_path / "broken.yaml"
    broken.write_text("tier: platinum\nabandoned_cart_hours: -3\n")
    assert main(["panel", "check", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "tier:" in err and "abandoned_cart_hours:" in err


def test_cli_panel_schema_is_json_schema() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fp_hubspot_assets.cli", "panel", "schema"], capture_output=True, text=True, check=True
    ).stdout
    schema = json.loads(out)
    assert {"tier", "integration", "customers", "items", "deal_stages"} <= set(schema["properties"])
