"""Panel files are read strictly: a key written twice, a coerced value or an empty file is refused, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from fp_hubspot_assets.panel import PanelError, load_panel


def _load(tmp_path: Path, text: str) -> str:
    path = tmp_path / "panel.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PanelError) as caught:
        load_panel(path)
    return str(caught.value)


def test_a_key_written_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    error = _load(tmp_path, "tier: starter\nitems:\n  sync_sku: true\n  sync_sku: false\n")
    assert "option 'sync_sku' is written twice" in error and "line 4" in error and "first on line 3" in error


def test_a_top_level_key_written_twice_is_refused(tmp_path: Path) -> None:
    assert "option 'tier' is written twice" in _load(tmp_path, "tier: starter\ntier: professional\n")


@pytest.mark.parametrize(
    ("text", "field", "hint"),
    [
        ('items:\n  sync_sku: "yes"\n', "items.sync_sku", "must be true or false"),
        ("items:\n  sync_sku: yes\n", "items.sync_sku", None),  # YAML 1.1's yes is a real boolean: accepted
        ("items:\n  store_prefix: 1\n", "items.store_prefix", "must be true or false"),
        ("integration:\n  client_id: 12345\n  mode: public_app\n", "integration.client_id", "must be text"),
        ('abandoned_cart_hours: "12"\n', "abandoned_cart_hours", "must be a number"),
        ("customers: [Registered]\n", "customers", "must be a mapping"),
    ],
)
def test_values_are_never_coerced(tmp_path: Path, text: str, field: str, hint: str | None) -> None:
    path = tmp_path / "panel.yaml"
    path.write_text(text, encoding="utf-8")
    if hint is None:
        assert load_panel(path).items.sync_sku is True
        return
    error = _load(tmp_path, text)
    assert f"{field}: {hint}" in error, error


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_an_empty_file_is_refused(tmp_path: Path, text: str) -> None:
    assert "the panel file is empty" in _load(tmp_path, text)


def test_numbers_where_numbers_belong_still_load(tmp_path: Path) -> None:
    path = tmp_path / "panel.yaml"
    path.write_text("abandoned_cart_hours: 12\ntier: starter\n", encoding="utf-8")
    assert load_panel(path).abandoned_cart_hours == 12.0
