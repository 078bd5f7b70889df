"""The production configuration (deploy/dagster.yaml) on this machine's real PostgreSQL.

One fresh database per module holds Dagster's storage (public schema) and the state stores (one schema per
test, as production keeps its state in the `fp_state` schema). The instance is built from deploy/dagster.yaml
in a temporary DAGSTER_HOME with its credentials in DAGSTER_PG_* variables, exactly as deploy/prod-up.sh does.
Skipped only outside CI when the server is down; with CI=true a missing server fails (fixtures_state).

Run with `python -m fp_hubspot_assets_tests.defs.test_production_instance READY GO CONFIG_JSON`, this module is
also the worker process of the pool test: it opens the instance from $DAGSTER_HOME, signals READY, waits for
GO and runs the main job in-process.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import InstigatorTick, TickStatus
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

from fp_demo_store.generate import generate
from fp_hubspot_assets.definitions import SYNC_JOB, defs
from fp_hubspot_assets.runner import resource_config, run_sync
from fp_hubspot_assets_tests.fixtures_sync import SyncEnv, assert_hubspot_matches
from hubspot_sandbox.testing import running_sandbox

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_YAML = ROOT / "deploy" / "dagster.yaml"
POOL = "hubspot"
# every step of the main job that writes to HubSpot, i.e. runs in the account's pool
WRITERS = frozenset(n.name for n in defs.resolve_job_def(SYNC_JOB).graph.nodes if n.definition.pool == POOL)
LOCATION = "fp_hubspot_assets"


@dataclass
class Prod:
    """The module's production set-up: a database, a DAGSTER_HOME with deploy/dagster.yaml, a demo SAP db."""

    home: Path
    db_url: sa.URL  # the module's database (admin credentials of the test server)
    sap_url: str

    def instance(self) -> DagsterInstance:
        """A new instance from $DAGSTER_HOME/dagster.yaml: new engines, nothing shared with earlier ones."""
        return DagsterInstance.from_config(str(self.home))

    def new_state_url(self) -> str:
        """A fresh schema in the module's database, selected through search_path like production's fp_state."""
        schema = f"fp_state_{uuid.uuid4().hex[:8]}"
        engine = sa.create_engine(self.db_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        return self.db_url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )


@pytest.fixture(scope="module")
def prod(pg_admin_engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prod]:
    name = f"fp_prod_{uuid.uuid4().hex[:10]}"
    with pg_admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    db_url = pg_admin_engine.url.set(database=name)
    root = tmp_path_factory.mktemp("prod")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
    sap_url = f"sqlite:///{root / 'sap.db'}"
    generate(sap_url, 120, seed=11)
    env = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_USERNAME": db_url.username or "",
        "DAGSTER_PG_PASSWORD": db_url.password or "",
        "DAGSTER_PG_HOST": db_url.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(db_url.port or 5432),
        "DAGSTER_PG_DB": name,
        "FP_SAP_URL": sap_url,
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield Prod(home, db_url, sap_url)
    with pg_admin_engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
def prod_env(prod: Prod, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SyncEnv]:
    """A SyncEnv whose Dagster instance and state store are the production ones on PostgreSQL."""
    state_url = prod.new_state_url()
    monkeypatch.setenv("FP_STATE_URL", state_url)
    with running_sandbox(tmp_path / "hubspot.db") as sandbox:
        instance = prod.instance()
        env = SyncEnv(tmp_path, prod.sap_url, state_url, tmp_path / "panel.yaml", sandbox, instance)
        env.write_panel()
        monkeypatch.setenv("FP_PANEL_FILE", str(env.panel_path))
        try:
            yield env
        finally:
            instance.dispose()


# ---------------------------------------------------------------- the configuration itself


def _env_only(node: Any) -> bool:
    return isinstance(node, dict) and set(node) == {"env"}


def test_deploy_config_reads_every_credential_from_the_environment_and_sets_the_pool() -> None:
    config = yaml.safe_load(DEPLOY_YAML.read_text(encoding="utf-8"))
    db = config["storage"]["postgres"]["postgres_db"]
    assert db.pop("scheme") == "postgresql+psycopg2"  # SQLAlchemy 2.1 would pick psycopg 3 otherwise
    assert db and all(_env_only(value) for value in db.values()), db
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    assert config["run_retries"]["enabled"] and config["run_retries"]["max_retries"] >= 1
    assert config["retention"]["schedule"]["purge_after_days"] > 0


def test_instance_from_deploy_config_uses_postgres_and_the_queued_coordinator(prod: Prod) -> None:
    instance = prod.instance()
    try:
        assert type(instance.run_storage).__module__.startswith("dagster_postgres")
        assert type(instance.event_log_storage).__module__.startswith("dagster_postgres")
        assert type(instance.schedule_storage).__module__.startswith("dagster_postgres")
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 30
        assert instance.run_retries_max_retries == 2
    finally:
        instance.dispose()


# ---------------------------------------------------------------- a real run


def test_main_job_materializes_every_asset_on_postgres(prod: Prod, prod_env: SyncEnv) -> None:
    summary = prod_env.run()
    assert summary.count("contacts", "created") > 0
    assert_hubspot_matches(prod_env)
    assert prod_env.run().writes == 0  # the state store on PostgreSQL remembers every hash

    job_keys = defs.resolve_job_def(SYNC_JOB).asset_layer.executable_asset_keys
    reopened = prod.instance()  # a "restart": nothing below comes from the first instance's memory
    try:
        record = reopened.get_run_record_by_id(summary.run_id)
        assert record is not None and record.dagster_run.status == DagsterRunStatus.SUCCESS
        for key in job_keys:
            latest = reopened.get_latest_materialization_event(key)
            assert latest is not None, f"{key.to_user_string()} was never materialized"
        info = reopened.event_log_storage.get_pool_limits()
        hubspot = next(p for p in info if p.name == POOL)
        assert hubspot.limit == 1
        assert reopened.event_log_storage.get_concurrency_info(POOL).active_slot_count == 0
    finally:
        reopened.dispose()


# ---------------------------------------------------------------- schedules and sensors across a restart


@pytest.fixture
def workspace(prod_env: SyncEnv) -> Iterator[WorkspaceProcessContext]:
    """The code location as the daemon sees it, loaded in-process against the production instance."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            executable_path=sys.executable, module_name="fp_hubspot_assets.definitions", working_directory=str(ROOT)
        ),
        location_name=LOCATION,
    )
    with WorkspaceProcessContext(prod_env.instance, InProcessWorkspaceLoadTarget(origin)) as context:
        yield context


def _repository(workspace: WorkspaceProcessContext) -> Any:
    location = workspace.create_request_context().get_code_location(LOCATION)
    (repository,) = location.get_repositories().values()
    return repository


def _tick_fields(ticks: list[InstigatorTick]) -> list[tuple[Any, ...]]:
    return [(t.tick_id, t.status, t.timestamp, tuple(t.run_ids), t.cursor) for t in ticks]


def test_schedule_ticks_persist_across_a_restart(prod: Prod, workspace: WorkspaceProcessContext) -> None:
    import dagster._daemon  # noqa: F401  (breaks an import cycle inside dagster._scheduler)
    from dagster._scheduler.scheduler import launch_scheduled_runs

    schedule = _repository(workspace).get_schedule("incremental_hubspot_sync")
    origin_id, selector_id = schedule.get_remote_origin_id(), schedule.selector_id
    log = logging.getLogger(__name__)
    # The scheduler daemon's own iteration: first sight records the running schedule, and after exactly one
    # quarter-hour boundary it is due (no sync has succeeded yet, so the tick requests the main job).
    now = datetime.now(UTC)
    quarter = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    list(launch_scheduled_runs(workspace, log, quarter + timedelta(minutes=1), {}))
    list(launch_scheduled_runs(workspace, log, quarter + timedelta(minutes=16), {}))
    before = workspace.instance.get_ticks(origin_id, selector_id)
    assert [t.status for t in before] == [TickStatus.SUCCESS], before
    (run_id,) = before[0].run_ids

    restarted = prod.instance()
    try:
        after = restarted.get_ticks(origin_id, selector_id)
        assert _tick_fields(after) == _tick_fields(before)
        state = restarted.get_instigator_state(origin_id, selector_id)
        assert state is not None and state.is_running
        run = restarted.get_run_by_id(run_id)
        assert run is not None and run.job_name == SYNC_JOB
        assert run.status == DagsterRunStatus.QUEUED  # waits for the daemon's run queue, as in production
    finally:
        restarted.dispose()


@pytest.mark.parametrize("sensor_name", [s.name for s in defs.sensors or []])
def test_sensor_cursor_and_ticks_persist_across_a_restart(
    prod: Prod, workspace: WorkspaceProcessContext, sensor_name: str
) -> None:
    from dagster._daemon.sensor import execute_sensor_iteration

    sensor = _repository(workspace).get_sensor(sensor_name)
    origin_id, selector_id = sensor.get_remote_origin_id(), sensor.selector_id
    # The sensor daemon's own iteration: evaluates every running sensor and stores tick + cursor.
    list(execute_sensor_iteration(workspace, logging.getLogger(__name__), None, None))
    before_ticks = workspace.instance.get_ticks(origin_id, selector_id)
    before_state = workspace.instance.get_instigator_state(origin_id, selector_id)
    assert before_ticks, f"{sensor_name} was not evaluated (is it RUNNING by default?)"
    assert before_ticks[0].status in (TickStatus.SUCCESS, TickStatus.SKIPPED), before_ticks[0].error
    assert before_state is not None and before_state.instigator_data.cursor, "the sensor stored no cursor"  # type: ignore[union-attr]

    restarted = prod.instance()
    try:
        assert _tick_fields(restarted.get_ticks(origin_id, selector_id)) == _tick_fields(before_ticks)
        state = restarted.get_instigator_state(origin_id, selector_id)
        assert state is not None and state.is_running
        assert state.instigator_data.cursor == before_state.instigator_data.cursor  # type: ignore[union-attr]
        for run_id in (run_id for tick in before_ticks for run_id in tick.run_ids):
            run = restarted.get_run_by_id(run_id)  # what the sensor requested waits in the queue
            assert run is not None and run.status == DagsterRunStatus.QUEUED
    finally:
        restarted.dispose()


# ---------------------------------------------------------------- the pool across processes


def _step_windows(instance: DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """Writer step key -> (start, end) wall-clock time from the run's stored events."""
    starts: dict[str, float] = {}
    windows: dict[str, tuple[float, float]] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.step_key not in WRITERS:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            windows[event.step_key] = (starts[event.step_key], record.timestamp)
    return windows


def _blocked_messages(instance: DagsterInstance, run_id: str) -> list[str]:
    return [
        r.user_message
        for r in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)
        if f"blocked by limit for pool {POOL}" in r.user_message
    ]


def test_two_runs_started_together_are_serialized_by_the_pool(prod: Prod, prod_env: SyncEnv) -> None:
    config = resource_config(panel=str(prod_env.panel_path), sap_url=prod.sap_url, state_url=prod_env.state_url)
    storage = prod_env.instance.event_log_storage
    # The test holds the pool's only slot while both runs start, so both must queue on it (contention is
    # certain, not a matter of timing); once it is released they may only take turns.
    holder = f"test-holder-{uuid.uuid4().hex[:8]}"
    if storage.get_concurrency_info(POOL).slot_count == 0:  # first use of the pool in this database
        storage.initialize_concurrency_limit_to_default(POOL)  # as a run's first claim does: the yaml's limit
    assert storage.get_concurrency_info(POOL).slot_count == 1
    assert storage.claim_concurrency_slot(POOL, holder, "hold").is_claimed
    go = prod_env.root / "go"
    workers = []
    for n in range(2):
        ready = prod_env.root / f"ready-{n}"
        command = [sys.executable, "-m", __name__, str(ready), str(go), json.dumps(config)]
        workers.append((ready, subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)))
    try:
        _wait_for(lambda: all(ready.exists() for ready, _ in workers), workers, "workers to start")
        go.touch()  # both processes start the job at the same instant
        _wait_for(lambda: len(storage.get_concurrency_info(POOL).pending_run_ids) == 2, workers,
                  "both runs to wait for the hubspot pool")
    finally:
        released = time.time()
        storage.free_concurrency_slots_for_run(holder)
    results = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for _, p in workers]
    assert all(r["success"] for r in results), results

    instance = prod_env.instance
    windows = [(r["run_id"], key, w) for r in results for key, w in _step_windows(instance, r["run_id"]).items()]
    assert len(WRITERS) >= 6 and len(windows) == 2 * len(WRITERS), sorted(WRITERS)
    assert all(start >= released for _, _, (start, _end) in windows), "a writer ran while the slot was held"
    for run_a, key_a, (start_a, end_a) in windows:
        for run_b, key_b, (start_b, end_b) in windows:
            if run_a < run_b:
                assert end_a <= start_b or end_b <= start_a, f"{key_a} of {run_a} overlapped {key_b} of {run_b}"
    assert all(_blocked_messages(instance, r["run_id"]) for r in results)
    assert storage.get_concurrency_info(POOL).active_slot_count == 0
    # serialized writers see each other's state: together they created each record once, no duplicates
    created = sum(int(m.get("count_created", 0)) for r in results for m in r["metadata"].values())
    assert created == sum(len(prod_env.sandbox.objects(t)) for t in ("companies", "contacts", "products", "deals",
                                                                        "line_items"))
    assert_hubspot_matches(prod_env)


def _wait_for(condition: Callable[[], bool], workers: list[tuple[Path, subprocess.Popen[str]]], what: str) -> None:
    deadline = time.monotonic() + 180
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        assert all(p.poll() is None for _, p in workers), f"a worker exited while waiting for {what}"
        time.sleep(0.1)


def _worker(ready: Path, go: Path, config_json: str) -> None:
    with DagsterInstance.get() as instance:
        ready.touch()
        while not go.exists():
            time.sleep(0.02)
        summary = run_sync(instance, json.loads(config_json))
    metadata = {k: {m: v for m, v in md.items() if m.startswith("count_")} for k, md in summary.metadata.items()}
    print(json.dumps({"run_id": summary.run_id, "success": summary.success, "metadata": metadata}, default=str))


if __name__ == "__main__":
    _worker(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
