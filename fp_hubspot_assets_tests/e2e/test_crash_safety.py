"""Crash safety in small: bench/crash_safety.py kills `fp-hubspot sync` with SIGKILL three times on a
300-customer demo, finishes the sync, and HubSpot must then hold exactly the expected records."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus
from dagster._core.events import EngineEventData
from dagster._core.utils import make_new_run_id

from fp_demo_store import simulate
from fp_demo_store.generate import generate
from fp_hubspot_assets.failpoints import FAILPOINT_ENV
from fp_hubspot_assets.mapping import ID_PROPERTY
from fp_hubspot_assets.runner import HOST_TAG, release_dead_runs
from fp_hubspot_assets.state.store import StateStore
from hubspot_sandbox.testing import SandboxHandle, running_sandbox

BENCH = Path(__file__).resolve().parents[2] / "bench" / "crash_safety.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_safety", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("crash_safety", module)
    spec.loader.exec_module(module)
    return module


def test_killed_syncs_converge_to_exactly_the_source(tmp_path: Path) -> None:
    report = _bench().crash_and_converge(tmp_path, customers=300, kills=3, seed=5, log=False)
    assert report.kills == 3
    assert report.discrepancies.total == 0, report.lines()
    assert report.rerun_writes == 0, "after convergence the state store must know every record"
    home = tmp_path / "dagster_home"
    with DagsterInstance.from_config(str(home)) as instance:
        statuses = [r.status for r in instance.get_runs()]
    # Every killed run was released: none is left started (it would hold the pool). A kill in start-up can land
    # before its run is even recorded (a slow machine takes seconds to import), so at most one failed run per kill.
    assert not [s for s in statuses if s not in (DagsterRunStatus.FAILURE, DagsterRunStatus.SUCCESS)], statuses
    assert 1 <= statuses.count(DagsterRunStatus.FAILURE) <= 3
    assert statuses.count(DagsterRunStatus.SUCCESS) == 2


def test_killed_syncs_converge_without_unique_properties_on_products_and_line_items(tmp_path: Path) -> None:
    """An account refusing unique-value properties on products and line items: the client creates and maps
    them by id and finds a create lost to a kill by searching our key — still exactly the source."""
    report = _bench().crash_and_converge(tmp_path, customers=150, kills=3, seed=9, log=False,
                                         sandbox_options={"no_unique_on": "products,line_items"})
    assert report.kills == 3
    assert report.discrepancies.total == 0, report.lines()
    assert report.rerun_writes == 0


def test_a_create_whose_answer_a_kill_lost_is_looked_up_not_created_again(tmp_path: Path) -> None:
    """No unique property on line items: SIGKILL after HubSpot answered a create batch and before the state
    store recorded it. The batch's keys stay noted as sent; the next run searches those (and only those), finds
    the records the killed run created and creates nothing twice."""
    bench = _bench()
    generate(f"sqlite:///{tmp_path / 'sap.db'}", 120, seed=7)
    with running_sandbox(tmp_path / "hubspot.db", no_unique_on="products,line_items") as sandbox:
        ws = bench.Workspace(tmp_path, sandbox)
        ws.prepare()
        killed = subprocess.run(bench._sync_command(), env={**ws.env, FAILPOINT_ENV: "sync.unrecorded.line_items"},
                                cwd=ws.root, capture_output=True, timeout=600)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        state = StateStore(ws.state_url)
        unanswered = state.unanswered_creates("line_items")
        created = {o["properties"].get(ID_PROPERTY["line_items"]) for o in sandbox.objects("line_items")}
        lost = unanswered & created  # in HubSpot, unknown to the state store
        assert lost and not lost & set(state.id_map("line_items")["source_key"])
        searches_before = _searches(sandbox)
        with ws.instance() as instance:
            release_dead_runs(instance)
        bench.run_to_completion(ws)
        assert bench.verify(ws).total == 0  # no duplicate, none missing
        assert state.unanswered_creates("line_items") == set()
        # one count per guarded type, plus one search per batch holding a noted key (≤ 4 batches in flight)
        assert 2 < _searches(sandbox) - searches_before <= 2 + 4
        before = bench._write_requests(sandbox)
        bench.run_to_completion(ws)
        assert bench._write_requests(sandbox) == before


def _searches(sandbox: SandboxHandle) -> int:
    return sum(n for route, by in sandbox.stats()["requests"].items() if route.endswith("/search") for n in by.values())


def _started_run(instance: DagsterInstance, pid: int, host: str | None = None) -> str:
    run = instance.add_run(
        DagsterRun(
            job_name="sync_hubspot",
            run_id=make_new_run_id(),
            status=DagsterRunStatus.STARTED,
            tags={HOST_TAG: host or socket.gethostname()},
        )
    )
    instance.report_engine_event(f"Executing steps in process (pid: {pid})", run, EngineEventData.in_process(pid))
    return run.run_id


def test_only_runs_whose_worker_is_gone_are_released(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with DagsterInstance.ephemeral() as instance:
        live_run = _started_run(instance, os.getpid())
        dead_run = _started_run(instance, dead.pid)
        elsewhere = _started_run(instance, dead.pid, host="another-machine")  # its pid means nothing here
        assert release_dead_runs(instance) == [dead_run]
        other = instance.get_run_by_id(elsewhere)
        assert other is not None and other.status == DagsterRunStatus.STARTED
        run = instance.get_run_by_id(dead_run)
        assert run is not None and run.status == DagsterRunStatus.FAILURE
        still = instance.get_run_by_id(live_run)
        assert still is not None and still.status == DagsterRunStatus.STARTED


@pytest.mark.parametrize("failpoint", ["identity.released", "removals.archived.deals"])
def test_a_kill_between_the_write_phases_of_a_change_converges(tmp_path: Path, failpoint: str) -> None:
    """SIGKILL exactly between releasing an email and claiming it (a swap), or between archiving a merged
    deal and forgetting it (a late cart link): the next run converges and then writes nothing."""
    from fp_hubspot_assets_tests.e2e import test_change_semantics as change

    bench = _bench()
    generate(f"sqlite:///{tmp_path / 'sap.db'}", 120, seed=7)
    with running_sandbox(tmp_path / "hubspot.db") as sandbox:
        ws = bench.Workspace(tmp_path, sandbox)
        ws.prepare()
        bench.run_to_completion(ws)
        env = bench._as_sync_env(ws)
        if failpoint.startswith("identity"):
            a, b = change.web_customers_with_deals(env)[:2]
            contacts = env.hubspot("contacts")
            emails = {k: contacts[k]["properties"]["email"] for k in (a, b)}
            for key, other in ((a, b), (b, a)):
                change.sql(env, 'UPDATE "FP_CUSTOMER" SET "Email" = ?, "UpdatedAt" = ? WHERE "CustomerId" = ?',
                           emails[other], change.NOW, int(key[1:]))  # the store stamps what it changes
        else:
            cart_key, _lines = change.cart_deal_with_lines(env)
            doc_entry = simulate.complete_cart(ws.sap_url, int(cart_key[1:]))
            change._unlink(env, int(cart_key[1:]), doc_entry)
            bench.run_to_completion(ws)
            change._link(env, int(cart_key[1:]), doc_entry)

        killed = subprocess.run(
            bench._sync_command(), env={**ws.env, FAILPOINT_ENV: failpoint}, cwd=ws.root, capture_output=True, timeout=600
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        with ws.instance() as instance:
            release_dead_runs(instance)
        bench.run_to_completion(ws)
        assert bench.verify(ws).total == 0
        before = bench._write_requests(sandbox)
        bench.run_to_completion(ws)
        assert bench._write_requests(sandbox) == before
        if failpoint.startswith("identity"):
            contacts = env.hubspot("contacts")
            assert (contacts[a]["properties"]["email"], contacts[b]["properties"]["email"]) == (emails[b], emails[a])
        else:
            assert f"O{doc_entry}" not in env.hubspot("deals")
