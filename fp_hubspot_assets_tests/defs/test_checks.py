"""Asset checks: duplicates that would corrupt HubSpot fail (and block); clean payloads pass."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
    asset,
    materialize,
)

from fp_hubspot_assets.definitions import defs
from fp_hubspot_assets.defs.checks import id_map_unique, orders_reference_known_records, payload_checks
from fp_hubspot_assets.defs.resources import StateStoreResource
from fp_hubspot_assets.defs.run_storage import RunScopedIOManager, write_value
from fp_hubspot_assets.mapping import Mapped
from fp_hubspot_assets.source_model import conform


def _check(asset: str, name: str):
    return next(c for c in payload_checks if AssetCheckKey(AssetKey(asset), name) in c.check_keys)


def _contacts(emails: list[str]) -> Mapped:
    records = pl.DataFrame({"source_key": [f"W{i}" for i in range(len(emails))], "email": emails,
                            "firstname": ["not read by the check"] * len(emails)})  # fmt: skip
    return Mapped("contacts", records, pl.DataFrame(schema={"source_key": pl.String, "action": pl.String, "reason": pl.String}))


def _checked(check_name: str, payload: Mapped, tmp_path: Path) -> AssetCheckEvaluation:
    """Materialize a contact_payloads that returns ``payload``, with the real check beside it (the check loads
    the stored value's columns through the run-scoped IO manager)."""

    @asset(name="contact_payloads")
    def contact_payloads() -> Mapped:
        return payload

    with DagsterInstance.ephemeral() as instance:
        result = materialize([contact_payloads, _check("contact_payloads", check_name)], instance=instance,
                             resources={"io_manager": RunScopedIOManager(base_dir=str(tmp_path))}, raise_on_error=False)  # fmt: skip
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_duplicate_emails_fail_with_error_severity(tmp_path: Path) -> None:
    result = _checked("unique_email", _contacts(["a@x.org", "b@x.org", "a@x.org", ""]), tmp_path)
    assert not result.passed
    assert result.severity == AssetCheckSeverity.ERROR
    assert result.metadata["duplicates"].value == 1
    # empty emails are not duplicates
    assert _checked("unique_email", _contacts(["a@x.org", "b@x.org", "", ""]), tmp_path).passed
    assert _checked("unique_source_key", _contacts(["a@x.org", "a@x.org"]), tmp_path).passed


def test_a_check_reads_only_the_checked_columns(tmp_path: Path) -> None:
    manager = RunScopedIOManager(base_dir=str(tmp_path))
    with DagsterInstance.ephemeral() as instance:
        (tmp_path / "runs" / "r1").mkdir(parents=True)
        write_value(tmp_path / "runs" / "r1" / "contact_payloads", _contacts(["a@x.org"]))
        loaded = manager.load_columns(instance, "r1", AssetKey("contact_payloads"), ["email", "source_key"])
    assert set(loaded.records.columns) == {"email", "source_key"}, "firstname is not read"


def test_blocking_only_where_a_duplicate_corrupts_hubspot() -> None:
    graph = defs.resolve_asset_graph()
    specs = {spec.key: spec for node in graph.asset_check_keys for spec in [graph.get_check_spec(node)]}
    assert specs[AssetCheckKey(AssetKey("contact_payloads"), "unique_email")].blocking
    assert specs[AssetCheckKey(AssetKey("deal_payloads"), "unique_source_key")].blocking
    assert not specs[AssetCheckKey(AssetKey("product_payloads"), "unique_hs_sku")].blocking


def test_orders_referencing_unknown_records_warn() -> None:
    customers = conform(pl.DataFrame({"customer_key": ["BPC1"], "kind": ["bp"], "card_code": ["C1"]}), "customers")
    items = conform(pl.DataFrame({"product_key": ["IA"], "item_code": ["A"]}), "items")
    lines = [[{"line_num": 0, "item_code": "A", "quantity": 1.0, "price": 1.0}], [{"line_num": 0, "item_code": "ZZZ", "quantity": 1.0, "price": 1.0}]]
    orders = conform(pl.DataFrame({"order_key": ["O1", "O2"], "card_code": ["C1", "C404"], "lines": lines}), "orders")
    result = orders_reference_known_records(sap_orders=orders, sap_customers=customers, sap_items=items)
    assert not result.passed and result.severity == AssetCheckSeverity.WARN
    assert result.metadata["orders_with_unknown_customer"].value == 1
    assert result.metadata["lines_with_unknown_item"].value == 1


def test_id_map_duplicates_fail(tmp_path: Path) -> None:
    """The check counts in the state store. Its keys forbid duplicates, so the failing case is a table that
    lost them (made by hand here, before the store creates its own)."""
    good = StateStoreResource(url=f"sqlite:///{tmp_path / 'good.db'}")
    good.store().record_synced("contacts", [("W1", "1", "h")], "run-1")
    good.store().record_synced("deals", [("W1", "1", "h")], "run-1")  # the same key and id in another type
    assert id_map_unique(state=good).passed
    bare = tmp_path / "bare.db"
    with sqlite3.connect(bare) as conn:
        conn.execute("CREATE TABLE fp_id_map (object_type TEXT, source_key TEXT, hubspot_id TEXT, payload_hash TEXT, "
                     "synced_at TEXT, run_id TEXT)")  # fmt: skip
        rows = [("contacts", "W1", "1"), ("contacts", "W2", "1"), ("contacts", "W2", "2"), ("deals", "W1", "1")]
        conn.executemany("INSERT INTO fp_id_map VALUES (?, ?, ?, NULL, '2026-01-01 00:00:00.000000', NULL)", rows)
    result = id_map_unique(state=StateStoreResource(url=f"sqlite:///{bare}"))
    assert not result.passed and result.severity == AssetCheckSeverity.ERROR
    assert result.metadata["duplicate_source_keys"].value == 1 and result.metadata["duplicate_hubspot_ids"].value == 1
