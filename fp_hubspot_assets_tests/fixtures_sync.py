"""An end-to-end environment: a demo SAP database, a live sandbox over HTTP, a state store and a Dagster
instance — the real parts, small."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from dagster import DagsterInstance

from fp_demo_store.generate import generate
from fp_hubspot_assets import mapping
from fp_hubspot_assets.hubspot.properties import pipeline_from_state
from fp_hubspot_assets.objects import SPECS, synced_types
from fp_hubspot_assets.panel import load_panel
from fp_hubspot_assets.runner import RunSummary, resource_config, run_sync
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets.state.store import StateStore
from fp_hubspot_assets.tracing import compute_payloads
from hubspot_sandbox.testing import SandboxHandle, running_sandbox


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


# ---------------------------------------------------------------- what HubSpot must hold afterwards
TYPES = synced_types()  # the default commerce.objects (deals); orders and carts: test_commerce_objects.py
ASSOCIATIONS = {  # object type -> (reference column, associated type), from the registry
    name: [(ref.column, ref.to_type) for ref in spec.references if ref.to_type in TYPES]
    for name, spec in SPECS.items()
    if spec.references and name in TYPES
}


def expected_payloads(env: SyncEnv) -> dict[str, mapping.Mapped]:
    frames = SapReader(env.sap_url).read_all()
    return compute_payloads({name: result.frame for name, result in frames.items()}, load_panel(env.panel_path))


def hubspot_value(record: dict[str, Any], prop: str) -> str:
    value = record["properties"].get(prop)
    return "" if value is None else str(value)


def assert_hubspot_matches(env: SyncEnv) -> None:
    """Every expected record is in HubSpot exactly once with exactly our properties, and exactly the
    associations the source names among our records. Besides them HubSpot may hold only records the source
    still has but rejected for a bad value (kept as they were) and records flagged as deleted in the source."""
    expected = expected_payloads(env)
    known = env.state().id_map_all()
    flagged = set(known.filter(pl.col("payload_hash").fill_null("").str.starts_with("deleted:"))["source_key"])
    flagged |= {k for k in known.filter(pl.col("object_type") == "line_items")["source_key"] if k.rpartition(":L")[0] in flagged}
    stages = pipeline_from_state(env.state())
    ids: dict[str, dict[str, str]] = {}
    for object_type in TYPES:
        records = expected[object_type].records
        assert records.height > 0, f"the demo should produce {object_type}"
        in_hubspot = env.hubspot(object_type)
        raw = env.sandbox.objects(object_type)
        assert len(raw) == len(in_hubspot), f"{object_type}: duplicate fp ids in HubSpot"
        rejected = set(expected[object_type].issues.filter(pl.col("action") == "skipped")["source_key"])
        extra = set(in_hubspot) - set(records["source_key"])
        assert set(records["source_key"]) <= set(in_hubspot), f"{object_type}: records missing in HubSpot"
        assert extra <= rejected | flagged, f"{object_type}: HubSpot holds other records: {sorted(extra)[:5]}"
        ids[object_type] = {key: rec["id"] for key, rec in in_hubspot.items()}
        columns = [c for c in records.columns if c != "source_key" and not c.startswith("assoc_") and c != "product_key"]
        for row in records.iter_rows(named=True):
            record = in_hubspot[row["source_key"]]
            for column in columns:
                want = row[column] or ""
                if column == "dealstage":
                    want = stages["stages"][want]
                assert hubspot_value(record, column) == want, (object_type, row["source_key"], column)
            if object_type == "deals":
                assert hubspot_value(record, "pipeline") == stages["pipeline_id"]
            if object_type == "line_items":
                product = row["product_key"]
                assert hubspot_value(record, "hs_product_id") == (ids["products"][product] if product else "")
    for object_type, links in ASSOCIATIONS.items():
        in_hubspot = env.hubspot(object_type)
        for column, to_type in links:
            ours = set(ids[to_type].values())
            for key, target in expected[object_type].records.select("source_key", column).iter_rows():
                linked = {a["id"] for a in in_hubspot[key]["associations"].get(to_type, [])} & ours
                if target is not None and target not in ids[to_type]:
                    continue  # a rejected target: HubSpot keeps what it had
                want = {ids[to_type][target]} if target is not None else set()
                assert linked == want, (object_type, key, to_type, target)


def logged_keys(env: SyncEnv, run_id: str, action: str) -> dict[str, set[str]]:
    log = env.state().log_frame(run_id=run_id).filter(pl.col("action") == action)
    out: dict[str, set[str]] = {}
    for object_type, key in log.select("object_type", "source_key").iter_rows():
        out.setdefault(object_type, set()).add(key)
    return out


def sql(env: SyncEnv, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(env.sap_url.removeprefix("sqlite:///")) as conn:
        return conn.execute(statement, params).fetchall()
