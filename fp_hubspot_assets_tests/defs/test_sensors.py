"""The new_carts and cart_abandonment sensors and the cart job they request: ticks on a real demo SAP
database with ``build_sensor_context``, and one sensor-requested run into the sandbox. (The schedules:
test_schedules.py.)"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    SensorResult,
    build_sensor_context,
)

from fp_demo_store import simulate
from fp_demo_store.generate import generate
from fp_hubspot_assets.definitions import defs
from fp_hubspot_assets.defs import automation
from fp_hubspot_assets.defs.automation import cart_abandonment, new_carts
from fp_hubspot_assets.defs.jobs import CART_JOB
from fp_hubspot_assets.defs.resources import PanelResource, SapSourceResource, StateStoreResource
from fp_hubspot_assets.hubspot.properties import pipeline_from_state
from fp_hubspot_assets.panel import PanelSettings
from fp_hubspot_assets.runner import resource_config
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets.state import sync_cursor
from fp_hubspot_assets.state.read_markers import CARTS_SINCE_TAG
from fp_hubspot_assets_tests.fixtures_sync import SyncEnv

NOW = datetime.now(UTC).replace(tzinfo=None).replace(microsecond=0)


@pytest.fixture
def sap_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'sap.db'}"
    generate(url, 100, seed=3)
    return url


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as inst:
        yield inst


def _panel(tmp_path: Path, hours: float = 24.0) -> PanelResource:
    path = tmp_path / "panel.yaml"
    path.write_text(f"abandoned_cart_hours: {hours}\n", encoding="utf-8")
    return PanelResource(path=str(path))


def _web_customer(sap_url: str) -> int:
    db = sap_url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as con:
        return int(con.execute('SELECT MIN("CustomerId") FROM "FP_CUSTOMER" WHERE "IsGuest" = 0').fetchone()[0])


def _item(sap_url: str) -> str:
    with SapReader(sap_url) as reader:
        items = reader.read("items").frame
    return str(items.filter(items["combination_id"].is_null() & items["active"])["item_code"][0])


def _add_cart(sap_url: str, at: datetime) -> int:
    return simulate.add_cart(sap_url, _web_customer(sap_url), [(_item(sap_url), 2.0)], now=at)


def _state(sap_url: str) -> StateStoreResource:
    """The state store beside the test's SAP database (no successful sync recorded unless a test writes one)."""
    return StateStoreResource(url=sap_url.replace("sap.db", "state.db"))


def _tick_new(sap_url: str, instance: DagsterInstance, cursor: str | None) -> SensorResult:
    resources = {"sap": SapSourceResource(url=sap_url), "state": _state(sap_url)}
    with build_sensor_context(cursor=cursor, instance=instance, resources=resources) as ctx:
        result = new_carts(ctx)
    assert isinstance(result, SensorResult)
    return result


def _tick_abandon(
    sap_url: str, instance: DagsterInstance, panel: PanelResource, cursor: str | None
) -> SensorResult:
    resources = {"sap": SapSourceResource(url=sap_url), "panel": panel, "state": _state(sap_url)}
    with build_sensor_context(cursor=cursor, instance=instance, resources=resources) as ctx:
        result = cart_abandonment(ctx)
    assert isinstance(result, SensorResult)
    return result


def _requests(result: SensorResult) -> list[RunRequest]:
    return list(result.run_requests or [])


# ── new_carts ───────────────────────────────────────────────────────────────────────────────────────


def test_new_carts_first_tick_requests_one_run_then_follows_its_cursor(sap_url: str, instance: DagsterInstance) -> None:
    first = _tick_new(sap_url, instance, None)
    assert len(_requests(first)) == 1
    newest = SapReader(sap_url).newest_cart_change()
    assert first.cursor == sync_cursor.stamp(newest)

    quiet = _tick_new(sap_url, instance, first.cursor)
    assert _requests(quiet) == [] and quiet.cursor == first.cursor
    assert quiet.skip_reason is not None

    at = NOW + timedelta(seconds=5)
    _add_cart(sap_url, at)
    _add_cart(sap_url, at + timedelta(seconds=1))
    changed = _tick_new(sap_url, instance, first.cursor)
    [request] = _requests(changed)
    assert changed.cursor == sync_cursor.stamp(at + timedelta(seconds=1))
    assert request.tags[automation.CARTS_TAG] == "2"
    assert request.tags[automation.TRIGGER_TAG] == "changed"
    assert _requests(_tick_new(sap_url, instance, changed.cursor)) == []


def test_new_carts_same_tick_twice_has_the_same_run_key(sap_url: str, instance: DagsterInstance) -> None:
    cursor = _tick_new(sap_url, instance, None).cursor
    _add_cart(sap_url, NOW + timedelta(seconds=3))
    keys = {r.run_key for _ in range(2) for r in _requests(_tick_new(sap_url, instance, cursor))}
    assert len(keys) == 1


def test_new_carts_waits_for_a_queued_cart_run(sap_url: str, instance: DagsterInstance) -> None:
    cursor = _tick_new(sap_url, instance, None).cursor
    config = resource_config(sap_url=sap_url, state_url=sap_url.replace("sap.db", "state.db"))
    instance.create_run_for_job(defs.resolve_job_def(CART_JOB), run_config=config, status=DagsterRunStatus.NOT_STARTED)
    _add_cart(sap_url, NOW + timedelta(seconds=3))
    result = _tick_new(sap_url, instance, cursor)
    assert _requests(result) == []
    assert result.cursor == sync_cursor.stamp(NOW + timedelta(seconds=3)), "the queued run will read this cart"


def test_tick_probes_use_the_updated_at_index(sap_url: str) -> None:
    """A tick must not scan FP_CART: every probe is an index range on UpdatedAt (1M carts: bench/sensor_tick.py)."""
    reader = SapReader(sap_url)
    captured: list[tuple[str, dict]] = []
    original = reader.source.query

    def spy(sql: str, params: dict | None = None):  # noqa: ANN202 - same as Source.query
        captured.append((sql, params or {}))
        return original(sql, params)

    reader.source.query = spy  # type: ignore[method-assign]
    reader.newest_cart_change()
    reader.newest_cart_change(until=NOW, open_only=True)
    reader.cart_changes(NOW - timedelta(days=1), until=NOW, open_only=True)
    db = sap_url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as con:
        for sql, params in captured:
            plan = " ".join(str(row[-1]) for row in con.execute("EXPLAIN QUERY PLAN " + sql, params))
            assert "ix_FP_CART_UpdatedAt" in plan, plan  # an ordered walk that stops at LIMIT 1, or a range
            if "COUNT(*)" in sql:
                assert plan.startswith("SEARCH t USING") and "UpdatedAt>?" in plan, plan


# ── cart_abandonment ────────────────────────────────────────────────────────────────────────────────


def test_abandonment_threshold_edges(
    sap_url: str, instance: DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    panel = _panel(tmp_path, hours=2)
    changed_at = NOW + timedelta(minutes=1)
    _add_cart(sap_url, changed_at)
    cursor = sync_cursor.stamp(changed_at - timedelta(minutes=1))

    monkeypatch.setattr(automation, "utcnow", lambda: changed_at + timedelta(hours=2) - timedelta(seconds=1))
    before = _tick_abandon(sap_url, instance, panel, cursor)
    assert _requests(before) == [], "one second short of the threshold: not abandoned yet"
    assert before.cursor == sync_cursor.stamp(changed_at - timedelta(seconds=1))

    monkeypatch.setattr(automation, "utcnow", lambda: changed_at + timedelta(hours=2))
    at = _tick_abandon(sap_url, instance, panel, before.cursor)
    [request] = _requests(at)
    # the run reads the carts changed since the threshold checked last, whatever its read marker says
    assert request.tags == {automation.TRIGGER_TAG: "abandoned", automation.CARTS_TAG: "1",
                            CARTS_SINCE_TAG: before.cursor}  # fmt: skip
    assert at.cursor == sync_cursor.stamp(changed_at)
    again = _tick_abandon(sap_url, instance, panel, before.cursor)
    assert [r.run_key for r in _requests(again)] == [request.run_key], "re-evaluated tick: same run key"

    monkeypatch.setattr(automation, "utcnow", lambda: changed_at + timedelta(hours=5))
    assert _requests(_tick_abandon(sap_url, instance, panel, at.cursor)) == [], "crossed once, requested once"


def test_abandonment_ignores_ordered_carts(
    sap_url: str, instance: DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed_at = NOW + timedelta(minutes=1)
    cart_id = _add_cart(sap_url, changed_at - timedelta(seconds=1))
    simulate.complete_cart(sap_url, cart_id, now=changed_at)
    monkeypatch.setattr(automation, "utcnow", lambda: changed_at + timedelta(hours=30))
    cursor = sync_cursor.stamp(changed_at - timedelta(minutes=1))
    assert _requests(_tick_abandon(sap_url, instance, _panel(tmp_path), cursor)) == []


def test_abandonment_first_tick_and_growing_hours(
    sap_url: str, instance: DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(automation, "utcnow", lambda: NOW)
    first = _tick_abandon(sap_url, instance, _panel(tmp_path, hours=24), None)
    assert len(_requests(first)) == 1, "the demo has open carts older than a day"
    longer = _tick_abandon(sap_url, instance, _panel(tmp_path, hours=48), first.cursor)
    assert _requests(longer) == [] and longer.cursor == first.cursor


# ── defaults ────────────────────────────────────────────────────────────────────────────────────────


def test_sensors_run_by_default() -> None:
    assert {s.name: s.default_status.value for s in automation.sensors} == {
        "new_carts": "RUNNING",
        "cart_abandonment": "RUNNING",
    }


# ── a sensor-requested run, end to end ──────────────────────────────────────────────────────────────


def _run_requested(env: SyncEnv, request: RunRequest) -> None:
    config = resource_config(panel=str(env.panel_path), sap_url=env.sap_url, state_url=env.state_url)
    result = defs.resolve_job_def(CART_JOB).execute_in_process(
        run_config=config, instance=env.instance, tags=request.tags, raise_on_error=False
    )
    assert result.success


def _backdate_cart(sap_url: str, cart_id: int, at: datetime) -> None:
    """Time passing for a cart nobody touches: its markers move into the past (the sensor reads markers)."""
    with sqlite3.connect(sap_url.removeprefix("sqlite:///")) as con:
        stamp = at.strftime("%Y-%m-%d %H:%M:%S.%f")
        con.execute('UPDATE "FP_CART" SET "CreatedAt" = ?, "UpdatedAt" = ? WHERE "CartId" = ?', (stamp, stamp, cart_id))


def test_sensor_requested_runs_sync_a_new_cart_then_abandon_then_order_it(sync_env: SyncEnv) -> None:
    sync_env.run()
    stages = pipeline_from_state(sync_env.state())["stages"]
    cursor = _tick_new(sync_env.sap_url, sync_env.instance, None).cursor

    # a new cart: new_carts requests a run, and the run creates its deal (pending) and line item
    cart_id = _add_cart(sync_env.sap_url, datetime.now(UTC).replace(tzinfo=None))
    new = _tick_new(sync_env.sap_url, sync_env.instance, cursor)
    [request] = _requests(new)
    _run_requested(sync_env, request)
    deal = sync_env.hubspot("deals")[f"C{cart_id}"]
    assert deal["properties"]["dealstage"] == stages["checkout_pending"]
    assert f"C{cart_id}:L0" in sync_env.hubspot("line_items")

    # 25 hours later, untouched: the abandonment sensor requests a run that moves the same deal
    now = datetime.now(UTC).replace(tzinfo=None)
    _backdate_cart(sync_env.sap_url, cart_id, now - timedelta(hours=25))
    panel = PanelResource(path=str(sync_env.panel_path))
    [abandon] = _requests(_tick_abandon(sync_env.sap_url, sync_env.instance, panel, sync_cursor.stamp(now - timedelta(hours=26))))
    _run_requested(sync_env, abandon)
    abandoned = sync_env.hubspot("deals")[f"C{cart_id}"]
    assert (abandoned["id"], abandoned["properties"]["dealstage"]) == (deal["id"], stages["checkout_abandoned"])

    # completed after all: the same deal moves to the order's stage (open, unpaid → Checkout Completed)
    doc_entry = simulate.complete_cart(sync_env.sap_url, cart_id)
    [ordered] = _requests(_tick_new(sync_env.sap_url, sync_env.instance, new.cursor))
    _run_requested(sync_env, ordered)
    deals = sync_env.hubspot("deals")
    assert (deals[f"C{cart_id}"]["id"], deals[f"C{cart_id}"]["properties"]["dealstage"]) == (
        deal["id"],
        stages["checkout_completed"],
    )
    assert f"O{doc_entry}" not in deals


def test_first_ticks_after_a_successful_sync_start_from_it(
    sap_url: str, instance: DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make demo` (or any CLI sync) then `make dev`: the sensors' first ticks find nothing the sync did not
    already write, so no run starts; a cart added afterwards still gets one."""
    monkeypatch.setattr(automation, "utcnow", lambda: NOW)
    with SapReader(sap_url) as reader:
        synced = sync_cursor.read_source_state(reader, PanelSettings())
    with _state(sap_url).store() as store:
        store.set_cursor(sync_cursor.SYNC_CURSOR, synced.to_json())
    monkeypatch.setattr(sync_cursor, "cursor_updated_at", lambda _store, _name: NOW.replace(tzinfo=UTC))
    assert _requests(_tick_new(sap_url, instance, None)) == []
    assert _requests(_tick_abandon(sap_url, instance, _panel(tmp_path, hours=24), None)) == []
    _add_cart(sap_url, NOW + timedelta(seconds=5))
    assert len(_requests(_tick_new(sap_url, instance, None))) == 1
