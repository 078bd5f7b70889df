"""The output contract the sync engine relies on, checked on every mapper."""

from __future__ import annotations

import polars as pl
import pytest

from fp_hubspot_assets.mapping import (
    ID_PROPERTY,
    ISSUES_SCHEMA,
    OBJECT_TYPES,
    PROPERTIES,
    REFERENCES,
    Mapped,
    custom_properties,
    map_carts,
    map_companies,
    map_contacts,
    map_deals,
    map_line_items,
    map_orders,
    map_products,
)
from fp_hubspot_assets.source_model import empty
from fp_hubspot_assets.tracing import compute_payloads, iter_payloads
from fp_hubspot_assets_tests.fixtures_mapping import NOW, panel

# ``both``: every object type has records (deals are the same as in the default mode)
SETTINGS = panel(customers={"roles": ["Guest"], "all_registered": True}, commerce={"objects": "both"})


def map_all(customers, addresses, items, stores, orders, carts) -> dict[str, Mapped]:
    contacts = map_contacts(customers, addresses, SETTINGS)
    companies = map_companies(customers, addresses, SETTINGS)
    products = map_products(items, stores, SETTINGS)
    deals = map_deals(orders, carts, customers, contacts, companies, SETTINGS, NOW)
    order_records = map_orders(orders, carts, customers, addresses, stores, contacts, companies, SETTINGS, NOW, deals)
    cart_records = map_carts(orders, carts, customers, stores, contacts, companies, order_records, SETTINGS, NOW)
    lines = map_line_items(
        orders, carts, products, SETTINGS, deals=deals, order_records=order_records, cart_records=cart_records
    )
    return {m.object_type: m for m in (contacts, companies, products, deals, lines, order_records, cart_records)}


@pytest.fixture
def fixture_outputs(customers, addresses, items, stores, orders, carts) -> dict[str, Mapped]:
    return map_all(customers, addresses, items, stores, orders, carts)


@pytest.fixture
def empty_outputs() -> dict[str, Mapped]:
    return map_all(*(empty(e) for e in ("customers", "addresses", "items", "stores", "orders", "carts")))


def check_contract(mapped: Mapped) -> None:
    kind = mapped.object_type
    records = mapped.records
    assert records.columns == ["source_key", *PROPERTIES[kind], *REFERENCES[kind]]
    assert all(dtype == pl.String for dtype in records.dtypes)
    assert records.select(pl.col(PROPERTIES[kind]).null_count()).sum_horizontal().item() == 0
    keys = records.get_column("source_key")
    assert not keys.has_nulls() and not keys.is_duplicated().any()
    assert records.get_column(ID_PROPERTY[kind]).equals(keys, check_names=False)
    assert mapped.issues.schema == ISSUES_SCHEMA
    assert set(mapped.issues.get_column("action")) <= {"skipped", "repaired", "excluded"}
    assert not mapped.issues.get_column("source_key").has_nulls()
    if kind in ("contacts", "deals"):
        assert mapped.aliases is not None and mapped.aliases.columns == ["source_key", "survivor_key"]
    else:
        assert mapped.aliases is None


@pytest.mark.parametrize("kind", OBJECT_TYPES)
def test_contract_on_fixture_store(fixture_outputs: dict[str, Mapped], kind: str) -> None:
    check_contract(fixture_outputs[kind])
    assert not fixture_outputs[kind].records.is_empty()


@pytest.mark.parametrize("kind", OBJECT_TYPES)
def test_contract_on_empty_input(empty_outputs: dict[str, Mapped], kind: str) -> None:
    check_contract(empty_outputs[kind])
    assert empty_outputs[kind].records.is_empty() and empty_outputs[kind].issues.is_empty()


@pytest.mark.parametrize("kind", OBJECT_TYPES)
def test_custom_properties_are_ours_and_the_id_is_unique(kind: str) -> None:
    custom = custom_properties(kind)
    assert all(p.name.startswith("fp_") and p.label for p in custom)
    assert [p.name for p in custom if p.unique] == [ID_PROPERTY[kind]]
    assert PROPERTIES[kind][0] == ID_PROPERTY[kind]
    assert len(set(PROPERTIES[kind])) == len(PROPERTIES[kind])
    assert not set(PROPERTIES[kind]) & set(REFERENCES[kind])


def test_deals_carry_a_stage_reference_and_no_pipeline() -> None:
    assert "dealstage" in REFERENCES["deals"] and "dealstage" not in PROPERTIES["deals"]
    assert "pipeline" not in PROPERTIES["deals"] + REFERENCES["deals"]
    assert "hs_product_id" not in PROPERTIES["line_items"] and "product_key" in REFERENCES["line_items"]


def test_mapping_is_pure(customers, addresses, items, stores, orders, carts) -> None:
    before = [f.clone() for f in (customers, addresses, items, stores, orders, carts)]
    first = map_all(customers, addresses, items, stores, orders, carts)
    second = map_all(customers, addresses, items, stores, orders, carts)
    for kind in OBJECT_TYPES:
        assert first[kind].records.equals(second[kind].records)
        assert first[kind].issues.equals(second[kind].issues)
    after = (customers, addresses, items, stores, orders, carts)
    assert all(b.equals(a) for b, a in zip(before, after, strict=True))


def test_iter_payloads_maps_in_the_jobs_order_and_releases_each_frame_after_its_last_use(
    customers, addresses, items, stores, orders, carts, fixture_outputs
) -> None:
    """What keeps million_rows.py's peak down: one payload type at a time, each source frame popped after its
    last mapping; compute_payloads (the tracing view) leaves the caller's frames alone."""
    sources = {"stores": stores, "customers": customers, "addresses": addresses, "items": items, "orders": orders,
               "carts": carts}
    frames = dict(sources)
    seen: list[str] = []
    for object_type, mapped in iter_payloads(frames, SETTINGS):
        seen.append(object_type)
        check_contract(mapped)
        if object_type in ("products", "companies", "contacts"):  # not clock-dependent: same as the assets' wiring
            assert mapped.records.equals(fixture_outputs[object_type].records)
        else:
            assert mapped.records.height
    assert seen == ["products", "companies", "contacts", "deals", "orders", "carts", "line_items"]
    assert frames == {}, "every source frame is released once mapped"
    assert set(compute_payloads(sources, SETTINGS)) == set(seen)
    assert set(sources) == {"stores", "customers", "addresses", "items", "orders", "carts"}
