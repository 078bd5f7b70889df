"""The one in-process job runner: the main job, the cart job and first set-up on a Dagster instance,
summarized for the CLI, the demo, the benchmarks and the tests."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    ExecuteInProcessResult,
    JobDefinition,
    RunsFilter,
)

from fp_hubspot_assets.definitions import SYNC_JOB, defs
from fp_hubspot_assets.objects import OBJECT_TYPES as OBJECT_TYPES

HOST_TAG = "fp/host"


@dataclass
class RunSummary:
    run_id: str
    success: bool
    failed_steps: list[str] = field(default_factory=list)
    first_error: str = ""  # the first failed step's error, first line (what went wrong, for people)
    error: str = ""  # the first failure in full: a Failure's description, else the error's message
    refused: bool = False  # the first failure is an expected refusal (metadata status "refused"), not a crash
    detail: str = ""  # Dagster's error with its stack trace, for a failure that is not a refusal
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # asset name -> metadata values
    checks: dict[str, bool] = field(default_factory=dict)  # asset check name -> passed

    @property
    def writes(self) -> int:
        return sum(int(m.get("api_write_requests", 0)) for m in self.metadata.values())

    def count(self, object_type: str, action: str) -> int:
        return int(self.metadata.get(f"hubspot_{object_type}", {}).get(f"count_{action}", 0))


def resource_config(
    *,
    panel: str = "",
    sap_url: str = "",
    state_url: str = "",
    dry_run: bool = False,
    max_workers: int = 4,
    log_level: str = "INFO",
    reconcile: bool = False,
    mode: str = "",
) -> dict[str, Any]:
    """Run config for the job's resources; an empty string keeps the environment's value (``EnvVar``). ``reconcile``
    also writes back records edited or deleted by hand in HubSpot (the nightly reconcile, which reads in
    full); ``mode`` ``incremental`` or ``full`` says how sources are read ("" = full for a reconcile, else
    the resource's default, incremental)."""
    mode = mode or ("full" if reconcile else "")
    sync_mode = {"sync_mode": {"config": {"mode": mode}}} if mode else {}
    locations = {name: {"config": {key: value}} for name, key, value in
                 (("panel", "path", panel), ("sap", "url", sap_url), ("state", "url", state_url)) if value}
    return {
        "loggers": {"console": {"config": {"log_level": log_level}}},
        "resources": {
            **locations,
            "hubspot": {"config": {"dry_run": dry_run, "max_workers": max_workers, "reconcile": reconcile}},
            **sync_mode,
        }
    }


def run_sync(
    instance: DagsterInstance,
    run_config: dict[str, Any] | None = None,
    asset_selection: list[str] | None = None,
    tags: dict[str, str] | None = None,
    job_name: str = SYNC_JOB,
) -> RunSummary:
    release_dead_runs(instance)
    result = execute_without_output_capture(
        defs.resolve_job_def(job_name),
        instance,
        run_config or {},
        tags={**(tags or {}), HOST_TAG: socket.gethostname()},
        asset_selection=[AssetKey(a) for a in asset_selection] if asset_selection else [],
    )
    summary = RunSummary(result.run_id, result.success)
    for event in result.all_events:
        if event.is_step_failure:
            summary.failed_steps.append(str(event.step_key))
            if not summary.first_error:
                _note_failure(summary, event)
        if event.is_step_materialization:
            mat = event.step_materialization_data.materialization
            summary.metadata[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
        evaluation = event.event_specific_data
        if isinstance(evaluation, AssetCheckEvaluation):
            summary.checks[evaluation.check_name] = bool(evaluation.passed)
    return summary


def execute_without_output_capture(
    job: JobDefinition,
    instance: DagsterInstance,
    run_config: dict[str, Any],
    tags: dict[str, str],
    asset_selection: list[AssetKey],
) -> ExecuteInProcessResult:
    """``job.execute_in_process(..., raise_on_error=False)`` without its output capture.

    ``execute_in_process`` keeps every step's output (for ``ExecuteInProcessResult.output_for_node``) until the
    run ends, on top of the IO manager's copy: at 1M customers the whole job then held 6.3 GiB (bench/README
    §3c). Our callers read only the event log, so the run is executed exactly as ``execute_in_process`` does
    (the same ephemeral in-process job, tags and run record) with the capture off, and each step's output is
    freed once the IO manager has stored it — as in the runs the daemon launches. Dagster offers no public
    switch for it; ``fp_hubspot_assets_tests/defs/test_runner_memory.py`` fails if a Dagster upgrade changes these internals."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.execute_in_process import core_execute_in_process, merge_run_tags

    ephemeral = job.as_ephemeral_job(resource_defs={}, input_values={}, asset_selection=asset_selection or None)
    run_tags = merge_run_tags(job_def=job, partition_key=None, tags=tags, asset_selection=asset_selection,
                              instance=instance, run_config=run_config)  # fmt: skip
    return core_execute_in_process(
        run_config=run_config,
        job=InMemoryJob(job_def=ephemeral),
        instance=instance,
        output_capturing_enabled=False,
        raise_on_error=False,
        run_tags=run_tags,
        asset_selection=frozenset(asset_selection),
    )


def run_first_setup(
    instance: DagsterInstance, run_config: dict[str, Any] | None = None, *, force: bool = False, quiet: bool = False
) -> RunSummary:
    """Execute the ``first_setup`` job; ``force`` overrides the guard (the manual attempt). ``quiet``
    silences Dagster's console logger (the CLI prints its own report; the event log is complete either way)."""
    from fp_hubspot_assets.defs.first_setup import ASSET_NAME
    from fp_hubspot_assets.defs.jobs import FIRST_SETUP_JOB

    config = dict(run_config or {})
    config["ops"] = {ASSET_NAME: {"config": {"force": force}}}
    # full reads: Pull Contacts / Ignore existing deals match every record, not only those changed lately
    config["resources"] = {**config.get("resources", {}), "sync_mode": {"config": {"mode": "full"}}}
    if quiet:
        config["loggers"] = {"console": {"config": {"log_level": "CRITICAL"}}}
    return run_sync(instance, config, job_name=FIRST_SETUP_JOB)


def _note_failure(summary: RunSummary, event: Any) -> None:
    data = event.step_failure_data
    user = data.user_failure_data
    summary.first_error = first_error_line(data.error)
    summary.error = (user.description if user and user.description else None) or (
        data.error.message.strip() if data.error else f"step {event.step_key} failed"
    )
    status = user.metadata.get("status") if user else None
    summary.refused = getattr(status, "value", None) == "refused"
    if not summary.refused and data.error:
        summary.detail = data.error.to_string()


def first_error_line(error: Any) -> str:
    """The message of a step's error, first line, without Dagster's wrapper class names."""
    message = str(getattr(error, "message", "") or "").strip()
    first = message.splitlines()[0] if message else ""
    for prefix in ("dagster._core.definitions.events.Failure: ", "dagster._core.errors.DagsterExecutionStepExecutionError: "):
        first = first.removeprefix(prefix)
    return first


def release_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark runs whose in-process worker is gone as failed and free their pool slots; returns their ids.

    A SIGKILLed `fp-hubspot sync` leaves its run STARTED and holding the ``hubspot`` pool slot, and the next
    run would wait for that slot forever: Dagster frees slots only after a run *ends*, and neither
    execute_in_process nor the default run launcher reports a dead worker. The in-process executor logs its
    pid ("Executing steps in process (pid: N)"); a run whose pid no longer exists on this machine is dead.
    Single-machine only: a pid from another host cannot be checked here."""
    released = []
    alive = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING]
    mine = {HOST_TAG: socket.gethostname()}  # runs this runner started on this machine; never another host's
    for run in instance.get_runs(RunsFilter(statuses=alive, tags=mine)):
        pid = _worker_pid(instance, run.run_id)
        if pid is None or _process_exists(pid):
            continue
        instance.report_run_failed(run, f"run worker (pid {pid}) is gone: the run was killed")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def _worker_pid(instance: DagsterInstance, run_id: str) -> int | None:
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        data = event.engine_event_data if event else None
        pid = data.metadata.get("pid") if data and data.metadata else None
        if pid is not None and isinstance(pid.value, int | str):
            return int(pid.value)
    return None


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed, not yet reaped) still answers signal 0; it is dead all the same
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())
