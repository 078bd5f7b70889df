"""Crash safety in small: bench/crash_safety.py kills `fp-hubspot sync` with SIGKILL three times on a
300-customer demo, finishes the sync, and HubSpot must then hold exactly the expected records."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus
from dagster._core.events import EngineEventData
from dagster._core.utils import make_new_run_id

from fp_hubspot_assets.runner import HOST_TAG, release_dead_runs

BENCH = Path(__file__).resolve().parents[1] / "bench" / "crash_safety.py"


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
    assert statuses.count(DagsterRunStatus.FAILURE) == 3  # the killed runs, released
    assert statuses.count(DagsterRunStatus.SUCCESS) == 2


def test_killed_syncs_converge_without_unique_properties_on_products_and_line_items(tmp_path: Path) -> None:
    """An account refusing unique-value properties on products and line items: the client creates and maps
    them by id and finds a create lost to a kill by searching our key — still exactly the source."""
    report = _bench().crash_and_converge(tmp_path, customers=150, kills=3, seed=9, log=False,
                                         sandbox_options={"no_unique_on": "products,line_items"})
    assert report.kills == 3
    assert report.discrepancies.total == 0, report.lines()
    assert report.rerun_writes == 0


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
