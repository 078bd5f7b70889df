"""An end-to-end environment: a demo SAP database, a live sandbox over HTTP, a state store and a Dagster
instance — the real parts, small."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from fp_hubspot_assets.runner import RunSummary, resource_config, run_sync
from fp_hubspot_assets.sandbox.testing import SandboxHandle, running_sandbox
from fp_hubspot_assets.sap.demo import generate
from fp_hubspot_assets.state.store import StateStore


@dataclass
class SyncEnv:
    root: Path
    sap_url: str
    state_url: str
    panel_path: Path
    sandbox: SandboxHandle
    instance: DagsterInstance

    def write_panel(self, extra_yaml: str = "") -> None:
        self.panel_path.write_text(f"integration:\n  base_url: {self.sandbox.base_url}\n{extra_yaml}", encoding="utf-8")

    def run(self, dry_run: bool = False, mode: str = "full", **kwargs: Any) -> RunSummary:
        """Full reads by default: most tests edit source rows without moving their change markers, which only
        a full read sees (incremental runs: test_incremental.py)."""
        config = resource_config(
            panel=str(self.panel_path), sap_url=self.sap_url, state_url=self.state_url, dry_run=dry_run, mode=mode
        )
        summary = run_sync(self.instance, config, **kwargs)
        assert summary.success, f"run failed in {summary.failed_steps}"
        return summary

    def state(self) -> StateStore:
        return StateStore(self.state_url)

    def hubspot(self, object_type: str) -> dict[str, dict[str, Any]]:
        """HubSpot's records of a type keyed by our unique id property."""
        from fp_hubspot_assets.mapping import ID_PROPERTY

        prop = ID_PROPERTY[object_type]
        return {o["properties"].get(prop): o for o in self.sandbox.objects(object_type)}


def make_sync_env(root: Path, customers: int = 120, seed: int = 7, **sandbox_options: Any) -> Iterator[SyncEnv]:
    sap_url = f"sqlite:///{root / 'sap.db'}"
    generate(sap_url, customers, seed=seed)
    with running_sandbox(root / "hubspot.db", **sandbox_options) as sandbox, DagsterInstance.ephemeral() as instance:
        env = SyncEnv(root, sap_url, f"sqlite:///{root / 'state.db'}", root / "panel.yaml", sandbox, instance)
        env.write_panel()
        yield env


@pytest.fixture
def sync_env(tmp_path: Path) -> Iterator[SyncEnv]:
    yield from make_sync_env(tmp_path)
