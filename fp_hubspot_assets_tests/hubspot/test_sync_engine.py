"""The sync engine against the sandbox over HTTP: per-record failures never block a batch, they are logged,
retried a bounded number of times, and retried again when the record changes."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from fp_hubspot_assets.hubspot import sync
from fp_hubspot_assets.hubspot.client import HubSpotClient
from fp_hubspot_assets.hubspot.properties import SetupReport, ensure_properties
from fp_hubspot_assets.hubspot.ratelimit import RateBudget
from fp_hubspot_assets.hubspot.sync import (
    MAX_FAILED_ATTEMPTS,
    SyncContext,
    SyncReport,
    payload_hashes,
    sync_associations,
    sync_records,
)
from fp_hubspot_assets.mapping import custom_properties
from fp_hubspot_assets.state.store import StateStore
from hubspot_sandbox.testing import SandboxHandle


def _contacts(n: int, bad: dict[int, str]) -> pl.DataFrame:
    keys = [f"W{i}" for i in range(n)]
    return pl.DataFrame(
        {
            "source_key": keys,
            "fp_customer_id": keys,
            "email": [bad.get(i, f"person{i}@example.org") for i in range(n)],
            "firstname": [f"First {i}" for i in range(n)],
        }
    )


@pytest.fixture
def engine(sandbox: SandboxHandle, tmp_path: Path) -> tuple[HubSpotClient, StateStore]:
    client = HubSpotClient(sandbox.base_url, sandbox.token, RateBudget(1000, None))
    ensure_properties(client, {"contacts": custom_properties("contacts")}, SetupReport())
    return client, StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def _run(engine: tuple[HubSpotClient, StateStore], records: pl.DataFrame, run_id: str):
    client, store = engine
    return sync_records(SyncContext(client, store, run_id), "contacts", "fp_customer_id", records)


def test_rejected_record_is_logged_and_does_not_block_its_batch(
    engine: tuple[HubSpotClient, StateStore], sandbox: SandboxHandle
) -> None:
    records = _contacts(250, bad={37: "not-an-email", 140: "also bad"})
    report = _run(engine, records, "run-1")
    assert report.counts["created"] == 248
    assert report.counts["failed"] == 2
    # 250 records → 3 batches; HubSpot fails a batch with one bad record as a whole, naming it: the bad
    # record is re-sent alone and the others together, 2 more requests per bad record.
    assert report.write_requests == 3 + 2 * 2
    in_hubspot = {o["properties"]["fp_customer_id"] for o in sandbox.objects("contacts")}
    assert in_hubspot == set(records["source_key"]) - {"W37", "W140"}
    _client, store = engine
    log = store.log_frame(run_id="run-1").filter(pl.col("action") == "failed")
    assert set(log["source_key"]) == {"W37", "W140"}
    assert all("INVALID_EMAIL" in m or "invalid" in m.lower() for m in log["message"])
    assert set(store.failures("contacts")["source_key"]) == {"W37", "W140"}


def test_failed_record_is_retried_a_bounded_number_of_times_then_when_it_changes(
    engine: tuple[HubSpotClient, StateStore], sandbox: SandboxHandle
) -> None:
    records = _contacts(5, bad={2: "broken"})
    for attempt in range(1, MAX_FAILED_ATTEMPTS + 1):
        report = _run(engine, records, f"run-{attempt}")
        assert report.counts["failed"] == 1, attempt
        assert report.counts["unchanged"] == (0 if attempt == 1 else 4)
    given_up = _run(engine, records, "run-gave-up")
    assert given_up.counts["failed"] == 0 and given_up.counts["skipped"] == 1
    assert given_up.write_requests == 0
    fixed = records.with_columns(pl.when(pl.col("source_key") == "W2").then(pl.lit("fixed@example.org")).otherwise(pl.col("email")).alias("email"))
    report = _run(engine, fixed, "run-fixed")
    assert report.counts["created"] == 1 and report.counts["unchanged"] == 4
    _client, store = engine
    assert store.failures("contacts").height == 0
    assert len(sandbox.objects("contacts")) == 5


def test_payload_hash_is_stable_and_sensitive() -> None:
    frame = _contacts(3, bad={})
    first, again = payload_hashes(frame, ["email", "firstname"]), payload_hashes(frame, ["email", "firstname"])
    assert first.to_list() == again.to_list()
    assert first.n_unique() == 3
    changed = frame.with_columns(pl.lit("x").alias("firstname"))
    assert payload_hashes(changed, ["email", "firstname"])[0] != first[0]
    # an empty value and a missing value are different payloads
    nulls = frame.with_columns(pl.lit(None, dtype=pl.String).alias("firstname"))
    empty = frame.with_columns(pl.lit("").alias("firstname"))
    assert payload_hashes(nulls, ["firstname"])[0] != payload_hashes(empty, ["firstname"])[0]


def test_creates_are_noted_as_sent_only_until_hubspot_accepts_an_upsert_by_our_id(
    sandbox: SandboxHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # products may lack a unique id property (then a create whose answer is lost must be looked up next run, so
    # each batch is noted before it goes out); once HubSpot has accepted an upsert by the id it is unique there
    client = HubSpotClient(sandbox.base_url, sandbox.token, RateBudget(1000, None))
    ensure_properties(client, {"products": custom_properties("products")}, SetupReport())
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    noted: list[list[str]] = []
    note = store.note_sent_creates
    monkeypatch.setattr(store, "note_sent_creates", lambda t, keys, run: (noted.append(list(keys)), note(t, keys, run))[1])
    keys = [f"P{i}" for i in range(250)]
    records = pl.DataFrame({"source_key": keys, "fp_product_id": keys, "name": [f"Item {i}" for i in range(250)]})
    assert not client.upserts_by("products", "fp_product_id")
    report = sync_records(SyncContext(client, store, "run-1", max_workers=1), "products", "fp_product_id", records)
    assert report.counts["created"] == 250 and len(sandbox.objects("products")) == 250
    assert client.upserts_by("products", "fp_product_id")
    assert noted == [keys[:100]]  # the first batch only: the two after it went out once the id was known unique
    assert store.unanswered_creates("products") == set()


def test_associations_are_created_slice_by_slice(
    engine: tuple[HubSpotClient, StateStore], sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Missing associations get their ends' HubSpot ids and are sent a slice at a time (4.1M line items' deal
    links at 1M customers): every pair is created once, whichever slice it falls in, and a re-run sends none."""
    client, store = engine
    ensure_properties(client, {"companies": custom_properties("companies")}, SetupReport())
    ctx = SyncContext(client, store, "run-1")
    companies = [f"BP{i}" for i in range(5)]
    sync_records(ctx, "companies", "fp_company_id",
                 pl.DataFrame({"source_key": companies, "fp_company_id": companies, "name": companies}))  # fmt: skip
    links = [companies[i % 5] if i % 4 else None for i in range(23)]
    contacts = _contacts(23, bad={}).with_columns(pl.Series("assoc_companies", links))
    report = sync_records(ctx, "contacts", "fp_customer_id", contacts)
    monkeypatch.setattr(sync, "ASSOCIATION_SLICE_ROWS", 4)
    sync_associations(ctx, "contacts", "companies", contacts.select("source_key", "assoc_companies"), report)

    expected = {(f"W{i}", c) for i, c in enumerate(links) if c}
    assert report.associations_created == len(expected) == 17
    company_of = {o["id"]: o["properties"]["fp_company_id"] for o in sandbox.objects("companies")}
    linked = {(o["properties"]["fp_customer_id"], company_of[a["id"]])
              for o in sandbox.objects("contacts") for a in o["associations"].get("companies", [])}  # fmt: skip
    assert linked == expected
    again, writes = SyncReport("contacts"), client.write_requests
    sync_associations(ctx, "contacts", "companies", contacts.select("source_key", "assoc_companies"), again)
    assert again.associations_created == 0 and client.write_requests == writes
