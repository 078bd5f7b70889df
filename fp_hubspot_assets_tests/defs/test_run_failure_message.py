"""A run started from the UI on a broken set-up: the run's failure event — the row the Dagster UI shows for
the failed run, "Execution of run … failed" with the first failed step's error under it — carries the
preflight's one line (what, where, how to fix), and so does every step that failed, whichever ran first.
Read back from a real on-disk Dagster instance; nothing is written to HubSpot."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance

from fp_demo_store.generate import generate
from fp_hubspot_assets.runner import first_error_line, resource_config, run_sync
from hubspot_sandbox.testing import SandboxHandle, running_sandbox


@pytest.fixture(scope="module")
def demo_sap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sap") / "sap.db"
    generate(f"sqlite:///{path}", 100, seed=5)
    return path


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    with running_sandbox(tmp_path_factory.mktemp("hub") / "hubspot.db") as sb:
        yield sb


def _failed_run(root: Path, sandbox: SandboxHandle, sap_url: str, panel_text: str | None = None) -> tuple[str, str, dict[str, str]]:
    """Run the main job on a real instance; (run failure message, first line of its error, {step: first line})."""
    panel = root / "panel.yaml"
    panel.write_text(panel_text or f"integration:\n  base_url: {sandbox.base_url}\n", encoding="utf-8")
    before = sandbox.stats()["total_requests"]
    (root / "home").mkdir()
    with DagsterInstance.local_temp(str(root / "home")) as instance:
        config = resource_config(panel=str(panel), sap_url=sap_url, state_url=f"sqlite:///{root / 'state.db'}")
        summary = run_sync(instance, config)
        assert not summary.success
        run_failures = [r.dagster_event for r in instance.all_logs(summary.run_id, of_type=DagsterEventType.RUN_FAILURE)]
        steps = {
            str(r.step_key): first_error_line(r.dagster_event.step_failure_data.error)  # type: ignore[union-attr]
            for r in instance.all_logs(summary.run_id, of_type=DagsterEventType.STEP_FAILURE)
        }
    assert sandbox.stats()["total_requests"] == before, "a broken set-up must not call HubSpot"
    assert len(run_failures) == 1 and run_failures[0] is not None
    error = run_failures[0].job_failure_data.error
    assert error is not None, "the run's failure event carries the first failed step's error"
    return run_failures[0].message or "", first_error_line(error), steps


def test_a_missing_sap_database_is_the_runs_failure_line(tmp_path: Path, sandbox: SandboxHandle) -> None:
    missing = tmp_path / "missing.db"
    message, line, steps = _failed_run(tmp_path, sandbox, f"sqlite:///{missing}")
    assert message.startswith('Execution of run for "sync_hubspot" failed.')
    assert line.startswith(f"SAP database not found: {missing} (FP_SAP_URL=sqlite:///{missing}) — set FP_SAP_URL")
    # the first source readers fail too (they run beside the first writer; customers, addresses and items
    # are read after orders and carts, as their dependants): each with the same line, no traceback
    assert {"hubspot_properties", "web_stores", "sap_orders", "store_carts"} <= set(steps)
    assert set(steps.values()) == {line}
    assert not missing.exists(), "the check must not create the SAP file"


def test_a_missing_table_is_the_runs_failure_line(tmp_path: Path, sandbox: SandboxHandle, demo_sap: Path) -> None:
    sap = tmp_path / "sap.db"
    sap.write_bytes(demo_sap.read_bytes())
    with sqlite3.connect(sap) as con:
        con.execute('DROP TABLE "FP_CART_LINE"')
    _message, line, steps = _failed_run(tmp_path, sandbox, f"sqlite:///{sap}")
    assert line.startswith(f"SAP database sqlite:///{sap} has no table FP_CART_LINE — point FP_SAP_URL")
    assert set(steps.values()) == {line}


def test_an_invalid_panel_is_the_runs_failure_line(tmp_path: Path, sandbox: SandboxHandle, demo_sap: Path) -> None:
    panel = f"tier: platinum\nintegration:\n  base_url: {sandbox.base_url}\n"
    _message, line, steps = _failed_run(tmp_path, sandbox, f"sqlite:///{demo_sap}", panel)
    assert line.startswith(f"invalid panel: {tmp_path / 'panel.yaml'}: invalid panel settings; tier: Input should be")
    assert line.endswith("— fix the file (every option: panel.example.yaml)")
    assert set(steps.values()) == {line}
