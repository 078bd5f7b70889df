"""The tracing views know HubSpot's orders and carts: after a real sync in ``commerce.objects: both`` (demo SAP
database → sandbox over HTTP), `fp-hubspot trace` tells an order's and an order line's story, and the tracing
page has an orders and a carts tab whose grids list every order and cart with its HubSpot id and stage;
in the default ``deals`` mode it has neither."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from fp_hubspot_assets import cli
from fp_hubspot_assets.panel import load_panel
from fp_hubspot_assets.tracing_page import create_app
from fp_hubspot_assets_tests.fixtures_browser import serving
from fp_hubspot_assets_tests.fixtures_sync import SyncEnv


@contextmanager
def _tracing_page(env: SyncEnv) -> Iterator[httpx.Client]:
    """The tracing page served on a local port with the panel as it is now; a client for it."""
    with serving(create_app(env.state(), env.sap_url, load_panel(env.panel_path))) as url, httpx.Client(base_url=url) as client:
        yield client


def _cli_env(env: SyncEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in (("DAGSTER_HOME", str(tmp_path)), ("FP_STATE_URL", env.state_url),
                        ("FP_SAP_URL", env.sap_url), ("FP_PANEL_FILE", str(env.panel_path))):
        monkeypatch.setenv(name, value)


def test_trace_and_tracing_page_show_orders_and_carts(
    sync_env: SyncEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sync_env.write_panel("commerce:\n  objects: both\n")
    sync_env.run()
    with sync_env.state() as store:
        orders, carts = store.id_map("orders"), store.id_map("carts")
    assert orders.height and carts.height
    order = orders.row(0, named=True)
    line_key = next(k for k in sync_env.hubspot("line_items") if k.startswith(f"order/{order['source_key']}:L"))

    _cli_env(sync_env, monkeypatch, tmp_path)
    capsys.readouterr()
    assert cli.main(["trace", order["source_key"], "--json"]) == 0
    story = json.loads(capsys.readouterr().out)
    hubspot = {m["object_type"]: m for m in story["hubspot"]}
    assert hubspot["orders"]["hubspot_id"] == order["hubspot_id"]
    assert hubspot["orders"]["url"].endswith(f"/_sandbox/objects/orders?id={order['hubspot_id']}")
    assert story["payloads"]["orders"]["record"]["fp_order_stage"]
    assert any(s["entity"] == "orders" for s in story["source"])
    assert cli.main(["trace", line_key, "--json"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert any(s["entity"] == "orders" for s in line["source"]), "an order line's story shows its order's source row"

    held = sync_env.hubspot("orders")[order["source_key"]]["properties"]
    cart = carts.row(0, named=True)
    with _tracing_page(sync_env) as page:
        grid = page.get("/records/orders", params={"q": order["hubspot_id"]}).text
        assert 'href="/records/orders"' in grid and 'href="/records/carts"' in grid
        row = next(r for r in grid.split("<tr>") if f'>{order["hubspot_id"]}</a>' in r)
        assert f'>{order["source_key"]}</a>' in row and f'<td>{held["fp_order_stage"]}</td>' in row, row
        assert f'>{cart["hubspot_id"]}</a>' in page.get("/records/carts", params={"q": cart["hubspot_id"]}).text

    sync_env.write_panel("")  # the default deals mode: no orders or carts tab
    with _tracing_page(sync_env) as page:
        contacts = page.get("/records/contacts").text
        assert 'href="/records/deals"' in contacts and 'href="/records/orders"' not in contacts
        assert "orders are not synced" in page.get("/records/orders").text
