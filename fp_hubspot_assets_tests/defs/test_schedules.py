"""The incremental and nightly schedules: tick evaluation with ``build_schedule_context`` on a test instance
against a real demo SAP database and state store, and the cursor written by the run's last step."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    build_schedule_context,
    instance_for_test,
    validate_run_config,
)

from fp_demo_store import simulate
from fp_demo_store.generate import generate
from fp_hubspot_assets.definitions import defs
from fp_hubspot_assets.defs import automation, schedules
from fp_hubspot_assets.defs.jobs import SYNC_JOB
from fp_hubspot_assets.defs.resources import PanelResource, SapSourceResource, StateStoreResource
from fp_hubspot_assets.defs.schedules import incremental_hubspot_sync, nightly_hubspot_reconcile
from fp_hubspot_assets.runner import resource_config
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets.state import sync_cursor
from fp_hubspot_assets.state.store import StateStore
from fp_hubspot_assets.state.sync_cursor import SYNC_CURSOR, SourceState, record_sync_cursor
from fp_hubspot_assets_tests.fixtures_sync import SyncEnv

LATER = datetime.now(UTC).replace(tzinfo=None, microsecond=0) + timedelta(minutes=5)


class Env:
    """A demo SAP database, a state store and a Dagster instance: all a tick reads."""

    def __init__(self, root: Path, instance: DagsterInstance, sap_url: str, state_url: str, panel: Path) -> None:
        self.root, self.instance, self.sap_url, self.state_url, self.panel = root, instance, sap_url, state_url, panel

    def resources(self) -> dict[str, Any]:
        return {
            "sap": SapSourceResource(url=self.sap_url),
            "state": StateStoreResource(url=self.state_url),
            "panel": PanelResource(path=str(self.panel)),
        }

    def tick(self) -> tuple[RunRequest | None, str | None]:
        """(the run requested, or None; the skip message)."""
        with build_schedule_context(
            instance=self.instance, resources=self.resources(), scheduled_execution_time=LATER
        ) as ctx:  # a context manager: the state-store resource is torn down (its engine disposed) after the tick
            data = incremental_hubspot_sync.evaluate_tick(ctx)
        requests = list(data.run_requests or [])
        assert len(requests) <= 1
        return (requests[0] if requests else None), data.skip_message

    def store(self) -> StateStore:
        return StateStore(self.state_url)

    def succeeded(self, request: RunRequest) -> None:
        """What the last step of a successful run does."""
        with self.store() as store:
            assert record_sync_cursor(store, request.tags) is not None

    def web_customer(self) -> int:
        with sqlite3.connect(self.sap_url.removeprefix("sqlite:///")) as con:
            return int(con.execute('SELECT MIN("CustomerId") FROM "FP_CUSTOMER" WHERE "IsGuest" = 0').fetchone()[0])

    def item(self) -> str:
        with SapReader(self.sap_url) as reader:
            items = reader.read("items").frame
        return str(items.filter(items["combination_id"].is_null() & items["active"])["item_code"][0])

    def add_cart(self, at: datetime = LATER) -> int:
        return simulate.add_cart(self.sap_url, self.web_customer(), [(self.item(), 1.0)], now=at)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("schedules") / "sap.db"
    generate(f"sqlite:///{path}", 100, seed=5)
    return path


@pytest.fixture
def env(tmp_path: Path, demo_db: Path) -> Iterator[Env]:
    sap = tmp_path / "sap.db"
    sap.write_bytes(demo_db.read_bytes())
    panel = tmp_path / "panel.yaml"
    panel.write_text("abandoned_cart_hours: 24\n", encoding="utf-8")
    with instance_for_test() as instance:  # an instance with a ref: schedule contexts need one
        yield Env(tmp_path, instance, f"sqlite:///{sap}", f"sqlite:///{tmp_path / 'state.db'}", panel)


# ── incremental: when does a tick request a run ─────────────────────────────────────────────────────


def test_first_tick_requests_the_main_job_then_skips_once_it_succeeded(env: Env) -> None:
    request, _ = env.tick()
    assert request is not None
    assert request.tags[schedules.CHANGED_TAG] == "no successful sync recorded yet"
    assert incremental_hubspot_sync.job_name == SYNC_JOB
    again, _ = env.tick()
    assert again is not None and again.run_key == request.run_key, "a re-evaluated tick: same run key"

    env.succeeded(request)
    quiet, reason = env.tick()
    assert quiet is None
    assert reason == "no SAP or FocusPoint change since the last successful sync"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: e.add_cart(), "carts changed"),
        (lambda e: simulate.set_customer_email(e.sap_url, f"W{e.web_customer()}", "new@example.com", now=LATER),
         "customers changed"),
        (lambda e: simulate.set_item_price(e.sap_url, e.item(), 12.34, now=LATER), "items changed"),
        (lambda e: e.panel.write_text("abandoned_cart_hours: 48\n", encoding="utf-8"), "panel settings changed"),
    ],
    ids=["cart", "customer", "item price", "panel"],
)
def test_a_change_requests_a_run(env: Env, change: Any, reason: str) -> None:
    first, _ = env.tick()
    assert first is not None
    env.succeeded(first)
    change(env)
    request, _ = env.tick()
    assert request is not None, "the change was not seen"
    assert reason in request.tags[schedules.CHANGED_TAG].split("; ")
    assert request.run_key != first.run_key
    env.succeeded(request)
    assert env.tick()[0] is None


def test_a_change_during_the_run_is_not_lost(env: Env) -> None:
    """The cursor is what the *tick* read, before the run read anything: a change that lands while the run
    works is newer than the cursor, so the next tick requests another run even if this run saw it."""
    first, _ = env.tick()
    assert first is not None
    env.succeeded(first)
    env.add_cart(LATER)
    request, _ = env.tick()
    assert request is not None
    env.add_cart(LATER + timedelta(seconds=1))  # lands while the requested run is working
    env.succeeded(request)
    follow_up, _ = env.tick()
    assert follow_up is not None and "carts changed" in follow_up.tags[schedules.CHANGED_TAG]


def test_cursor_never_moves_backwards(env: Env) -> None:
    old, _ = env.tick()
    assert old is not None
    env.add_cart(LATER)
    new, _ = env.tick()
    assert new is not None
    env.succeeded(new)
    env.succeeded(old)  # an older run finishing last
    with env.store() as store:
        cursor = SourceState.from_json(store.get_cursor(SYNC_CURSOR))
    assert cursor is not None
    assert cursor.markers["carts"] == sync_cursor.stamp(LATER)
    assert env.tick()[0] is None


def test_a_queued_sync_run_covers_the_tick(env: Env) -> None:
    config = resource_config(panel=str(env.panel), sap_url=env.sap_url, state_url=env.state_url)
    env.instance.create_run_for_job(defs.resolve_job_def(SYNC_JOB), run_config=config, status=DagsterRunStatus.NOT_STARTED)
    request, reason = env.tick()
    assert request is None
    assert reason is not None and "queued sync_hubspot run" in reason


def test_records_waiting_for_a_retry_request_runs_until_they_give_up(env: Env) -> None:
    first, _ = env.tick()
    assert first is not None
    env.succeeded(first)
    with env.store() as store:
        store.record_failures("contacts", [("W1", "hash", "VALIDATION_ERROR", "bad email")])
    keys = []
    for _attempt in range(2):  # rejected once, twice: retried each time with a new run key
        request, _ = env.tick()
        assert request is not None and "rejected records wait for a retry" in request.tags[schedules.CHANGED_TAG]
        keys.append(request.run_key)
        env.succeeded(request)
        with env.store() as store:
            store.record_failures("contacts", [("W1", "hash", "VALIDATION_ERROR", "bad email")])
    assert len(set(keys)) == 2
    assert env.tick()[0] is None, "three rejections of the same payload: left alone until its data changes"


def test_tick_reads_markers_only(env: Env) -> None:
    """A tick must not read rows: it runs the change-marker queries and nothing else."""
    queries: list[str] = []
    original = SapReader.__init__

    def spying_init(self: SapReader, url: str, *args: Any, **kwargs: Any) -> None:
        original(self, url, *args, **kwargs)
        query = self.source.query

        def spy(sql: str, params: dict | None = None) -> Any:
            queries.append(sql)
            return query(sql, params)

        self.source.query = spy  # type: ignore[method-assign]

    mp = pytest.MonkeyPatch()
    mp.setattr(SapReader, "__init__", spying_init)
    try:
        env.tick()
    finally:
        mp.undo()
    # MAX() markers, and the bounded probe for rows with a marker in the future (reported, never a full read)
    assert queries and all("MAX(" in q or "LIMIT 20" in q for q in queries), queries


# ── nightly reconcile ──────────────────────────────────────────────────────────────────────────────


def test_nightly_reconcile_requests_a_reconcile_run_once_a_day(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    night = datetime(2025, 3, 4, 2, 30, tzinfo=UTC)
    with build_schedule_context(instance=env.instance, resources=env.resources(), scheduled_execution_time=night) as ctx:
        [request] = nightly_hubspot_reconcile.evaluate_tick(ctx).run_requests or []
    assert request.run_key == "nightly_hubspot_reconcile:2025-03-04"
    assert request.run_config == {
        "resources": {"hubspot": {"config": {"reconcile": True}}, "sync_mode": {"config": {"mode": "full"}}}
    }, "the reconcile reads the source in full"
    assert request.tags[automation.TRIGGER_TAG] == "reconcile"
    assert sync_cursor.SOURCE_STATE_TAG in request.tags, "a successful reconcile advances the incremental cursor"
    # the run starts where the code location runs, with the databases named in its environment
    monkeypatch.setenv("FP_SAP_URL", env.sap_url)
    monkeypatch.setenv("FP_STATE_URL", env.state_url)
    assert validate_run_config(defs.resolve_job_def(SYNC_JOB), request.run_config)
    assert nightly_hubspot_reconcile.cron_schedule == "30 2 * * *"
    assert {s.name: s.default_status.value for s in schedules.schedules} == {
        "incremental_hubspot_sync": "RUNNING",
        "nightly_hubspot_reconcile": "RUNNING",
    }


# ── the real job: the cursor advances only when the run succeeds ───────────────────────────────────


def _execute(env: Env, request: RunRequest, sap_url: str | None = None) -> bool:
    config = resource_config(panel=str(env.panel), sap_url=sap_url or env.sap_url, state_url=env.state_url)
    result = defs.resolve_job_def(SYNC_JOB).execute_in_process(
        run_config=config, instance=env.instance, tags=request.tags, raise_on_error=False
    )
    return result.success


def test_cursor_advances_only_after_a_successful_run(sync_env: SyncEnv) -> None:
    with instance_for_test() as instance:
        env = Env(sync_env.root, instance, sync_env.sap_url, sync_env.state_url, sync_env.panel_path)
        _incremental_runs(sync_env, env)


def _incremental_runs(sync_env: SyncEnv, env: Env) -> None:
    request, _ = env.tick()
    assert request is not None

    broken = f"sqlite:///{sync_env.root / 'missing' / 'sap.db'}"  # SAP unreachable during the run
    assert not _execute(env, request, sap_url=broken)
    assert sync_env.state().get_cursor(SYNC_CURSOR) is None
    retry, _ = env.tick()
    assert retry is not None and retry.run_key == f"{request.run_key}:retry1", "a failed run is retried"

    assert _execute(env, retry)
    with env.store() as store:
        cursor = SourceState.from_json(store.get_cursor(SYNC_CURSOR))
    assert cursor == SourceState.from_json(retry.tags[sync_cursor.SOURCE_STATE_TAG])
    assert env.tick()[0] is None

    cart_id = env.add_cart(datetime.now(UTC).replace(tzinfo=None))
    request, _ = env.tick()
    assert request is not None
    assert _execute(env, request)
    assert f"C{cart_id}" in sync_env.hubspot("deals")
    assert env.tick()[0] is None


# ── the live demo's feed: `fp-demo simulate --every --rounds` ──────────────────────────────


def test_demo_simulate_rounds_are_fresh_changes_the_schedule_sees(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    from fp_demo_store.cli import main

    first, _ = env.tick()
    assert first is not None
    env.succeeded(first)
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    assert main(["simulate", "--url", env.sap_url, "--every", "0.01", "--rounds", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["round", "1"], ["round", "2"]]
    assert all("carts_added=20" in line for line in lines)
    with SapReader(env.sap_url) as reader:
        newest = reader.newest_cart_change()
    assert newest is not None and newest >= before, "new carts carry the current time"
    request, _ = env.tick()
    assert request is not None
    assert {"carts changed", "customers changed", "orders changed"} <= set(request.tags[schedules.CHANGED_TAG].split("; "))
