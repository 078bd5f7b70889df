"""Two overlapping runs (a scheduled one and a sensor's, say) as two processes on one Dagster instance,
one state store and one HubSpot: the ``hubspot`` pool (dagster.yaml, limit 1) lets one writer step run at
a time, so no record is written twice and HubSpot ends exact."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from dagster import DagsterInstance, DagsterRunStatus

from fp_hubspot_assets_tests.fixtures_sync import TYPES, SyncEnv, assert_hubspot_matches, make_sync_env

REPO_ROOT = Path(__file__).resolve().parents[2]
UPSERT = "POST /crm/objects/2026-03/{objectType}/batch/upsert"


def test_dagster_yaml_limits_the_hubspot_pool_and_frees_slots_of_dead_runs() -> None:
    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text(encoding="utf-8"))
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0


def test_two_overlapping_runs_never_write_a_record_twice(tmp_path: Path) -> None:
    for env in make_sync_env(tmp_path, customers=150, seed=9):
        home = tmp_path / "dagster_home"
        home.mkdir()
        shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
        with DagsterInstance.from_config(str(home)) as instance:  # storage created once, as a deployment has it
            instance.get_runs()
        process_env = _process_env(env, home)
        command = [sys.executable, "-m", "fp_hubspot_assets.cli", "sync"]
        first = subprocess.Popen(command, env=process_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        second = subprocess.Popen(command, env=process_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        outputs = [p.communicate(timeout=180)[0].decode("utf-8", "replace") for p in (first, second)]
        assert first.returncode == 0 and second.returncode == 0, "\n".join(o[-2000:] for o in outputs)

        records = env.sandbox.stats()["records"]
        upserted = sum(env.sandbox.stats()["requests"].get(UPSERT, {}).values())
        batches = sum(-(-records[t] // 100) for t in TYPES)
        assert upserted == batches, "every batch must be sent exactly once across both runs"
        assert_hubspot_matches(env)
        with DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_runs()
        assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS] * 2
        created = env.state().log_frame().filter(env.state().log_frame()["action"] == "created")
        assert created.height == sum(records.values()), "each record created once, by one of the runs"
        assert created["source_key"].is_unique().all()


def _process_env(env: SyncEnv, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FP_SAP_URL": env.sap_url,
        "FP_STATE_URL": env.state_url,
        "FP_PANEL_FILE": str(env.panel_path),
    }
