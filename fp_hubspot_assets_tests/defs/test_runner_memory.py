"""The runner frees each step's output once the IO manager has stored it: ``execute_in_process`` would keep every
output until the run ends (at 1M customers the whole job then held 6.3 GiB, bench/README §3c)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    FilesystemIOManager,
    asset,
    define_asset_job,
)

from fp_hubspot_assets.runner import execute_without_output_capture


class Frame:
    """Stands in for a large frame: weak-referenceable, so the test sees when nothing holds it any more."""

    def __init__(self, rows: int) -> None:
        self.rows = rows


MADE: list[weakref.ref[Frame]] = []


@asset
def upstream() -> Frame:
    frame = Frame(3)
    MADE.append(weakref.ref(frame))
    return frame


@asset
def downstream(upstream: Frame) -> int:
    return upstream.rows + 1


@asset
def broken() -> int:
    raise ValueError("bad row")


def _job_and_instance(tmp_path: Path) -> tuple[Definitions, DagsterInstance]:
    defs = Definitions(
        assets=[upstream, downstream, broken],
        jobs=[define_asset_job("both", AssetSelection.assets(upstream, downstream)),
              define_asset_job("broken_job", AssetSelection.assets(broken))],
        resources={"io_manager": FilesystemIOManager(base_dir=str(tmp_path / "values"))},
    )
    return defs, DagsterInstance.ephemeral(tempdir=str(tmp_path / "home"))


def _output_alive_after(result: ExecuteInProcessResult) -> bool:
    gc.collect()
    assert result.success
    return MADE[-1]() is not None


def test_execute_in_process_keeps_each_output_until_the_run_ends(tmp_path: Path) -> None:
    # why the runner does not use it: the result still holds the upstream frame after the run
    defs, instance = _job_and_instance(tmp_path)
    with instance:
        result = defs.resolve_job_def("both").execute_in_process(instance=instance)
        assert _output_alive_after(result)


def test_the_runner_frees_each_output_once_stored(tmp_path: Path) -> None:
    defs, instance = _job_and_instance(tmp_path)
    with instance:
        result = execute_without_output_capture(defs.resolve_job_def("both"), instance, {}, {"fp/test": "yes"}, [])
        assert not _output_alive_after(result)
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.tags["fp/test"] == "yes"
        done = {e.step_key for e in result.all_events if e.is_step_success}
        assert done == {"upstream", "downstream"}


def test_the_runner_runs_an_asset_selection_and_reports_failures_without_raising(tmp_path: Path) -> None:
    defs, instance = _job_and_instance(tmp_path)
    with instance:
        result = execute_without_output_capture(defs.resolve_job_def("both"), instance, {}, {}, [AssetKey("upstream")])
        assert {e.step_key for e in result.all_events if e.is_step_success} == {"upstream"}
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.asset_selection == {AssetKey("upstream")}
        bad = execute_without_output_capture(defs.resolve_job_def("broken_job"), instance, {}, {}, [])
        assert not bad.success
        assert [e.step_key for e in bad.all_events if e.is_step_failure] == ["broken"]
