"""Run the main job in-process on a Dagster instance and summarize it (used by the CLI, demo and tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dagster import DagsterInstance

from fp_hubspot_assets.definitions import SYNC_JOB, defs

OBJECT_TYPES = ("contacts", "companies", "products", "deals", "line_items")


@dataclass
class RunSummary:
    run_id: str
    success: bool
    failed_steps: list[str] = field(default_factory=list)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # asset name -> metadata values

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
) -> dict[str, Any]:
    """Run config for the job's resources; empty strings keep the environment's defaults."""
    return {
        "loggers": {"console": {"config": {"log_level": log_level}}},
        "resources": {
            "panel": {"config": {"path": panel}},
            "sap": {"config": {"url": sap_url}},
            "state": {"config": {"url": state_url}},
            "hubspot": {"config": {"dry_run": dry_run, "max_workers": max_workers}},
        }
    }


def run_sync(instance: DagsterInstance, run_config: dict[str, Any] | None = None, asset_selection: list[str] | None = None) -> RunSummary:
    from dagster import AssetKey

    job = defs.resolve_job_def(SYNC_JOB)
    result = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config=run_config or {},
        asset_selection=[AssetKey(a) for a in asset_selection] if asset_selection else None,
    )
    summary = RunSummary(result.run_id, result.success)
    for event in result.all_events:
        if event.is_step_failure:
            summary.failed_steps.append(str(event.step_key))
        if event.is_step_materialization:
            mat = event.step_materialization_data.materialization
            summary.metadata[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    return summary
