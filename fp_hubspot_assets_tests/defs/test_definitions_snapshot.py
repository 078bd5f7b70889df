"""Every asset, check, job, schedule, sensor and resource key of the full Definitions, against a checked-in
snapshot (``__snapshots__/``): a change to the graph shows as a diff in review.

After an intended change: ``pytest fp_hubspot_assets_tests/test_definitions_snapshot.py --snapshot-update``."""

from __future__ import annotations

from typing import Any

from dagster import AssetKey, EnvVar
from syrupy.assertion import SnapshotAssertion

from fp_hubspot_assets.definitions import defs


def _asset(key: AssetKey) -> dict[str, Any]:
    node = defs.resolve_asset_graph().get(key)
    return {
        "group": node.group_name,
        "upstream": sorted(k.to_user_string() for k in node.parent_keys),
        "kinds": sorted(node.kinds),
        "pools": sorted(node.pools or ()),
        "owners": list(node.owners),
        "code_version": node.code_version,
        "checks": sorted(c.name for c in node.check_keys),
    }


def _resource(resource: object) -> dict[str, Any]:
    """The resource's class and the environment variables it reads (``EnvVar``)."""
    fields = vars(resource).items() if not hasattr(resource, "model_fields") else (
        (name, getattr(resource, name)) for name in type(resource).model_fields
    )
    return {"class": type(resource).__name__,
            "env": {name: value.env_var_name for name, value in fields if isinstance(value, EnvVar)}}


def graph_summary() -> dict[str, Any]:
    graph = defs.resolve_asset_graph()
    repository = defs.get_repository_def()
    checks = {}
    for key in graph.asset_check_keys:
        node = graph.get(key)
        checks[f"{key.asset_key.to_user_string()}:{key.name}"] = {
            "blocking": node.blocking,
            "reads": sorted(k.to_user_string() for k in node.parent_entity_keys if isinstance(k, AssetKey)),
        }
    jobs = {}
    for job in repository.get_all_jobs():
        if job.name.startswith("__"):  # Dagster's implicit asset job
            continue
        jobs[job.name] = {
            "assets": sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys),
            "executor": job.executor_def.name,
        }
    return {
        "assets": {key.to_user_string(): _asset(key) for key in sorted(graph.get_all_asset_keys())},
        "checks": dict(sorted(checks.items())),
        "jobs": dict(sorted(jobs.items())),
        "schedules": {
            s.name: {"cron": s.cron_schedule, "job": s.job_name, "default": s.default_status.value,
                     "resources": sorted(s.required_resource_keys)}
            for s in sorted(repository.schedule_defs, key=lambda s: s.name)
        },
        "sensors": {
            s.name: {"job": s.job_name, "interval_seconds": s.minimum_interval_seconds, "default": s.default_status.value,
                     "resources": sorted(s.required_resource_keys)}
            for s in sorted(repository.sensor_defs, key=lambda s: s.name)
        },
        "resources": {key: _resource(resource) for key, resource in sorted(defs.resources.items())},
    }


def test_definitions_match_the_snapshot(snapshot: SnapshotAssertion) -> None:
    assert graph_summary() == snapshot
