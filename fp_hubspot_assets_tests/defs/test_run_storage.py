"""The run-scoped IO manager's files: every frame of a value as a compressed Arrow IPC file of its own, read
back equal; ``prune`` counts only the values, never those frame files, as asset keys."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance
from polars.testing import assert_frame_equal

from fp_hubspot_assets.defs.run_storage import FRAMES_SUFFIX, Stored, prune, read_value, write_value
from fp_hubspot_assets.mapping.model import Mapped


def _mapped() -> Mapped:
    records = pl.DataFrame({"source_key": ["a", "b"], "email": ["a@x.io", ""], "lines": [[1, 2], []]})
    issues = pl.DataFrame({"source_key": ["c"], "action": ["skipped"], "reason": ["no email"]})
    return Mapped("contacts", records, issues, aliases=None, parents=pl.Series("parents", ["p1"]))


def test_a_value_round_trips_with_each_frame_in_its_own_ipc_file(tmp_path: Path) -> None:
    path = tmp_path / "contact_payloads"
    value = _mapped()
    write_value(path, value)
    frames = sorted(p.name for p in (tmp_path / f"contact_payloads{FRAMES_SUFFIX}").iterdir())
    assert frames == ["0.arrow", "1.arrow"]  # records and issues; the pickle holds only their names
    assert path.stat().st_size < 1_000
    loaded = read_value(path)
    assert isinstance(loaded, Mapped) and loaded.object_type == "contacts" and loaded.aliases is None
    assert_frame_equal(loaded.records, value.records)
    assert_frame_equal(loaded.issues, value.issues)
    assert loaded.parents is not None and loaded.parents.to_list() == ["p1"]


def test_a_frame_value_and_a_plain_value_round_trip(tmp_path: Path) -> None:
    frame = pl.DataFrame({"k": list(range(1000)), "s": [str(i) for i in range(1000)]})
    write_value(tmp_path / "sap_orders", frame)
    assert_frame_equal(read_value(tmp_path / "sap_orders"), frame)
    write_value(tmp_path / "hubspot_contacts", {"written": 3})
    assert read_value(tmp_path / "hubspot_contacts") == {"written": 3}
    assert not (tmp_path / f"hubspot_contacts{FRAMES_SUFFIX}").exists()


def test_an_input_can_read_only_some_columns_and_a_missing_one_is_named(tmp_path: Path) -> None:
    frame = pl.DataFrame({"order_key": ["O1"], "lines_total": [9.5], "lines": [[{"q": 1}]]})
    write_value(tmp_path / "sap_orders", frame)
    loaded = read_value(tmp_path / "sap_orders", ["order_key", "lines_total"])
    assert loaded.columns == ["order_key", "lines_total"] and loaded.rows() == [("O1", 9.5)]
    with pytest.raises(ValueError, match=r"sap_orders has no column\(s\) \['cart_key'\].*materialize sap_orders"):
        read_value(tmp_path / "sap_orders", ["order_key", "cart_key"], "sap_orders")


def test_the_deals_step_loads_orders_and_carts_without_their_lines() -> None:
    from fp_hubspot_assets.definitions import defs

    for name in ("deal_payloads", "order_payloads", "cart_payloads"):
        ins = defs.resolve_assets_def(name).node_def.input_defs
        columns = {i.name: i.metadata.get("columns") for i in ins}
        assert "lines" not in columns["sap_orders"] and "lines_total" in columns["sap_orders"]
        assert "lines" not in columns["store_carts"] and "total" in columns["store_carts"]
    line_items = {i.name: i.metadata.get("columns") for i in defs.resolve_assets_def("line_item_payloads").node_def.input_defs}
    assert "lines" in line_items["sap_orders"] and "total" not in line_items["sap_orders"]  # the lines and the keys
    assert line_items["store_carts"] is None
    assert line_items["deal_payloads"] == ["source_key"]  # and of the deals only their keys
    deals = {i.name: i.metadata.get("columns") for i in defs.resolve_assets_def("deal_payloads").node_def.input_defs}
    assert deals["contact_payloads"] == ["source_key", "action", "survivor_key"] and "email" not in deals["sap_customers"]


def test_a_payload_read_for_its_keys_keeps_only_them(tmp_path: Path) -> None:
    write_value(tmp_path / "deal_payloads", _mapped())
    keys = read_value(tmp_path / "deal_payloads", ["source_key"])
    assert isinstance(keys, Mapped) and keys.keys().to_list() == ["a", "b"] and keys.records.columns == ["source_key"]
    assert keys.issues["source_key"].to_list() == ["c"]


def test_a_payload_read_for_some_columns_gets_those_each_frame_has(tmp_path: Path) -> None:
    write_value(tmp_path / "contact_payloads", _mapped())  # no aliases: their survivor_key is in no frame
    read = read_value(tmp_path / "contact_payloads", ["source_key", "action", "survivor_key"])
    assert read.records.columns == ["source_key"] and read.issues.columns == ["source_key", "action"]
    assert read.aliases is None


def test_native_orders_and_carts_defer_loading_their_inputs() -> None:
    from fp_hubspot_assets.definitions import defs

    for name in ("order_payloads", "cart_payloads"):
        ins = {i.name: i.metadata for i in defs.resolve_assets_def(name).node_def.input_defs}
        assert all(metadata.get("deferred") for metadata in ins.values())
        assert "lines" not in ins["sap_orders"]["columns"]


def test_a_deferred_input_loads_when_asked(tmp_path: Path) -> None:
    write_value(tmp_path / "deal_payloads", _mapped())
    stored = Stored(tmp_path / "deal_payloads", ["source_key"], "deal_payloads")
    assert stored.load().keys().to_list() == ["a", "b"]


def test_rewriting_a_value_keeps_a_frame_already_loaded_intact(tmp_path: Path) -> None:
    # a retried step writes its key again while a reader may hold the first file mapped
    path = tmp_path / "sap_items"
    write_value(path, pl.DataFrame({"k": [1, 2, 3]}))
    first = read_value(path)
    write_value(path, pl.DataFrame({"k": [7]}))
    assert first["k"].to_list() == [1, 2, 3]
    assert read_value(path)["k"].to_list() == [7]


def test_prune_removes_a_finished_runs_values_and_frames_and_never_reads_frames_as_keys(tmp_path: Path) -> None:
    with DagsterInstance.ephemeral(tempdir=str(tmp_path / "home")) as instance:
        run_dir = tmp_path / "runs" / "gone-run"
        run_dir.mkdir(parents=True)
        write_value(run_dir / "contact_payloads", _mapped())
        seen: list[AssetKey] = []
        latest = instance.get_latest_materialization_event

        def spy(key: AssetKey) -> None:
            seen.append(key)
            return latest(key)

        instance.get_latest_materialization_event = spy  # type: ignore[method-assign]
        assert prune(instance, str(tmp_path)) == ["gone-run"]  # unknown to the instance: nothing reads it again
        assert seen == [AssetKey("contact_payloads")]
        assert not run_dir.exists()
