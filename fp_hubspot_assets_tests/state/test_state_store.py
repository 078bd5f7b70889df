"""The state store on both backends (SQLite file, PostgreSQL schema): every table, upserts, speed,
file permissions, token encryption and two concurrent writer processes."""

from __future__ import annotations

import multiprocessing
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from fp_hubspot_assets.state import crypto, queries
from fp_hubspot_assets.state import store as store_module
from fp_hubspot_assets.state.queries import log_new_source_problems, logged_source_problems
from fp_hubspot_assets.state.schema import SCHEMA_VERSION_KEY, id_map, metadata, oauth_tokens
from fp_hubspot_assets.state.store import LogRow, StateSchemaError, StateStore, TokenRecord

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    s = StateStore(state_url)
    yield s
    s.dispose()


def _sqlite_path(url: str) -> Path:
    return Path(sa.engine.make_url(url).database or "")


# ---------------------------------------------------------------------------- creation


def test_create_is_idempotent_and_keeps_data(state_url: str) -> None:
    first = StateStore(state_url)
    first.record_synced("contacts", [("W1", "101", "h1")], "run-1")
    first.dispose()
    second = StateStore(state_url)  # tables exist now: must neither fail nor wipe them
    try:
        assert second.hubspot_ids("contacts", ["W1"]) == {"W1": "101"}
        present = set(sa.inspect(second.engine).get_table_names())
        assert {t.name for t in metadata.sorted_tables} <= present
    finally:
        second.dispose()


def test_store_from_a_newer_schema_version_is_refused(store: StateStore) -> None:
    store.set_setup(SCHEMA_VERSION_KEY, 999)
    with pytest.raises(StateSchemaError, match="upgrade"):
        StateStore(store.url)


def test_sqlite_file_and_wal_are_private_to_the_owner(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "fp_state.db"
    store = StateStore(f"sqlite:///{path}")
    try:
        store.set_cursor("c", "1")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        wal = path.with_name(path.name + "-wal")
        assert wal.exists(), "the store should run in WAL mode"
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
    finally:
        store.dispose()


def test_existing_world_readable_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "fp_state.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    StateStore(f"sqlite:///{path}").dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_in_memory_sqlite_works() -> None:
    store = StateStore("sqlite://")
    store.set_setup("k", {"a": 1})
    assert store.get_setup("k") == {"a": 1}
    store.dispose()


def test_default_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FP_STATE_URL", "postgresql://u@h/db")
    assert StateStore.default_url() == "postgresql://u@h/db"
    monkeypatch.delenv("FP_STATE_URL")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert StateStore.default_url() == f"sqlite:///{(tmp_path / 'home').resolve() / 'fp_state.db'}"
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.chdir(tmp_path)
    assert StateStore.default_url() == f"sqlite:///{tmp_path.resolve() / '.fp_state.db'}"


def test_unsupported_url_is_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported state store URL"):
        StateStore("mysql://u@h/db")


@pytest.mark.postgres
def test_bare_postgresql_url_uses_the_installed_psycopg2(pg_url: str) -> None:
    store = StateStore(pg_url.replace("postgresql+psycopg2://", "postgresql://", 1))
    try:
        assert store.engine.dialect.driver == "psycopg2"
        store.set_cursor("c", "v")
        assert store.get_cursor("c") == "v"
    finally:
        store.dispose()


# ---------------------------------------------------------------------------- id map


def test_id_map_round_trip_and_upsert(store: StateStore) -> None:
    assert store.id_map("contacts").is_empty()
    assert store.id_map("contacts").schema == pl.Schema(
        {"source_key": pl.String, "hubspot_id": pl.String, "payload_hash": pl.String}
    )
    store.record_synced("contacts", [("W1", "101", "h1"), ("W2", "102", None)], "run-1")
    store.record_synced("companies", [("BP1", "101", "c1")], "run-1")  # same HubSpot id, other type: fine
    store.record_synced("contacts", [("W2", "102", "h2"), ("W3", "103", "h3")], "run-2")

    frame = store.id_map("contacts").sort("source_key")
    assert frame.rows() == [("W1", "101", "h1"), ("W2", "102", "h2"), ("W3", "103", "h3")]
    assert store.hubspot_ids("contacts", ["W1", "W3", "W9"]) == {"W1": "101", "W3": "103"}
    assert store.id_map("contacts", ["W1", "W9"], with_hash=False).rows() == [("W1", "101")]
    assert store.id_map("contacts", with_hash=False).columns == ["source_key", "hubspot_id"]
    assert store.count_ids("contacts") == 3
    assert store.hubspot_ids("contacts", []) == {}

    everything = store.id_map_all()
    assert everything.columns == ["object_type", "source_key", "hubspot_id", "payload_hash", "synced_at"]
    assert everything.schema["synced_at"] == pl.Datetime("us", "UTC")
    assert everything.select("object_type", "source_key").rows() == [
        ("companies", "BP1"),
        ("contacts", "W1"),
        ("contacts", "W2"),
        ("contacts", "W3"),
    ]
    assert (datetime.now(UTC) - everything["synced_at"].max()) < timedelta(minutes=5)  # type: ignore[operator]
    assert store.id_map_all(limit=2).rows() == everything.head(2).rows()
    assert store.id_map_counts() == {"companies": 1, "contacts": 3}
    assert store.id_map_duplicates() == {"duplicate_source_keys": 0, "duplicate_hubspot_ids": 0}
    with store.engine.connect() as conn:
        run_ids = dict(conn.execute(sa.select(id_map.c.source_key, id_map.c.run_id)).all())
    assert run_ids == {"W1": "run-1", "W2": "run-2", "W3": "run-2", "BP1": "run-1"}


def test_hubspot_id_is_unique_per_type(store: StateStore) -> None:
    store.record_synced("contacts", [("W1", "101", "h1")], "run-1")
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:  # the constraint itself
        conn.execute(
            sa.insert(id_map),
            {
                "object_type": "contacts",
                "source_key": "W2",
                "hubspot_id": "101",
                "synced_at": datetime.now(UTC),
            },
        )
    # through the API, the latest claim wins and the displaced key is reported
    assert store.record_synced("contacts", [("BP7", "101", "h7")], "run-2") == ["W1"]
    assert store.id_map("contacts").rows() == [("BP7", "101", "h7")]
    # inside one batch too: applied in order
    displaced = store.record_synced(
        "contacts", [("A", "500", "a"), ("B", "500", "b"), ("C", "600", "c")], "r"
    )
    assert displaced == ["A"]
    assert store.hubspot_ids("contacts", ["A", "B", "C"]) == {"B": "500", "C": "600"}
    with pytest.raises(ValueError, match="'E' has no HubSpot id"):
        store.record_synced("contacts", [("E", None, "e")], "r")  # type: ignore[list-item]
    # a key that moves to a new id frees its old one
    store.record_synced("contacts", [("B", "501", "b"), ("D", "500", "d")], "r")
    assert store.hubspot_ids("contacts", ["B", "D"]) == {"B": "501", "D": "500"}


def test_record_synced_100k_rows_round_trip(store: StateStore) -> None:
    """Round trip only: speed is measured by bench/million_rows.py, never asserted on a shared CI machine."""
    rows = [(f"W{i}", str(50_000_000 + i), f"{i:040x}") for i in range(100_000)]
    store.record_synced("contacts", rows, "run-big")
    frame = store.id_map("contacts")
    expected = pl.DataFrame(rows, schema=["source_key", "hubspot_id", "payload_hash"], orient="row")
    assert_frame_equal(frame.sort("source_key"), expected.sort("source_key"))

    store.record_synced("contacts", rows[:10], "run-again")  # re-recording is a plain upsert
    assert store.id_map("contacts").height == 100_000


@pytest.mark.slow
def test_id_map_reads_a_million_rows_in_one_query(state_store: StateStore) -> None:
    """What keeps the read fast is one SELECT, never a query per row (its speed: bench/million_rows.py)."""
    stamp = "2024-01-01 00:00:00.000000"  # loaded through the raw driver
    rows = [("contacts", f"W{i}", str(i), f"{i:040x}", stamp, "r") for i in range(1_000_000)]
    with state_store.engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO {id_map.name} VALUES (?, ?, ?, ?, ?, ?)", rows)
    statements: list[str] = []
    sa.event.listen(state_store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    frame = state_store.id_map("contacts")
    assert frame.height == 1_000_000
    assert frame.row(123_456) is not None and frame["payload_hash"].null_count() == 0
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1


def test_forget_drops_ids_and_their_associations(store: StateStore) -> None:
    store.record_synced("contacts", [("W1", "1", "h"), ("W2", "2", "h")], "r")
    store.record_associations("contacts", "companies", [("W1", "BP1", 1), ("W2", "BP1", 1)])
    store.record_associations("deals", "contacts", [("C1", "W1", 3), ("C2", "W2", 3)])
    store.forget("contacts", ["W1"])
    assert store.hubspot_ids("contacts", ["W1", "W2"]) == {"W2": "2"}
    assert store.known_associations("contacts", "companies") == {("W2", "BP1", 1)}
    assert store.known_associations("deals", "contacts") == {("C2", "W2", 3)}


# ---------------------------------------------------------------------------- associations


def test_associations_round_trip(store: StateStore) -> None:
    assert store.known_associations("contacts", "companies") == set()
    store.record_associations("contacts", "companies", [("W1", "BP1", 1), ("W2", "BP1", 1)])
    store.record_associations("contacts", "companies", [("W1", "BP1", 1), ("W1", "BP1", 279)])  # idempotent
    store.record_associations("deals", "contacts", [("C1", "W1", 3)])
    assert store.known_associations("contacts", "companies") == {
        ("W1", "BP1", 1),
        ("W2", "BP1", 1),
        ("W1", "BP1", 279),
    }
    store.forget_associations("contacts", "companies", [("W1", "BP1", 279)])
    assert store.known_associations("contacts", "companies") == {("W1", "BP1", 1), ("W2", "BP1", 1)}
    assert store.known_associations("deals", "contacts") == {("C1", "W1", 3)}


def test_association_frame_of_some_keys_by_lookup_or_by_scan(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.record_associations("line_items", "deals", [(f"C{i}:L1", f"C{i}", 20) for i in range(50)])
    store.record_associations("line_items", "products", [("C1:L1", "P1", 21)])
    keys = pl.Series("from_key", ["C3:L1", "C7:L1", "C99:L1"])
    expected = [("C3:L1", "C3", 20), ("C7:L1", "C7", 20)]
    assert sorted(store.association_frame("line_items", "deals", keys).iter_rows()) == expected
    monkeypatch.setattr(store_module, "IN_LOOKUP_MAX", 2)  # more keys than that, and a large share of the rows:
    monkeypatch.setattr(store_module, "_SCAN_SHARE", 100)  # one scan of the type, filtered
    assert store.worth_scanning("line_items", 3), "3 keys × 100 > 0 line items in the ID map"
    assert sorted(store.association_frame("line_items", "deals", keys).iter_rows()) == expected
    assert store.association_frame("line_items", "deals", keys[:0]).height == 0
    assert store.association_frame("line_items", "deals").height == 50


def test_id_map_by_prefix_reads_the_line_items_of_some_deals(store: StateStore) -> None:
    """Key ranges per prefix: O1's lines, not O10's or O1x's (which sort right after ``O1:L``'s range)."""
    rows = [(f"{deal}:L{line}", f"{deal}{line}", "h") for deal in ("O1", "O10", "O1x", "O2", "C1") for line in (0, 1, 10)]
    store.record_synced("line_items", rows, "run-1")
    store.record_synced("deals", [("O1:L0", "99", "h")], "run-1")  # another type with a key in the range
    found = store.id_map_by_prefix("line_items", ["O1:L", "C1:L", "O3:L"])
    assert sorted(found["source_key"]) == ["C1:L0", "C1:L1", "C1:L10", "O1:L0", "O1:L1", "O1:L10"]
    assert found.columns == ["source_key", "hubspot_id", "payload_hash"]
    assert store.id_map_by_prefix("line_items", []).height == 0
    assert not store.worth_scanning("line_items", 3), "no more keys than IN_LOOKUP_MAX: looked up"
    many = store.id_map_by_prefix("line_items", [f"X{i}:L" for i in range(700)] + ["O2:L"])  # several statements
    assert sorted(many["source_key"]) == ["O2:L0", "O2:L1", "O2:L10"]


# ---------------------------------------------------------------------------- integration log


def test_a_source_problem_is_logged_once_while_it_stays_the_same(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Looked up by the keys of the run's problems (or, for many, all of the type's): the same answer both ways."""
    first = [("W1", "skipped", "invalid email"), ("W2", "repaired", "phone cleaned")]
    assert log_new_source_problems(store, "run-1", "contacts", first) == 2
    assert log_new_source_problems(store, "run-2", "contacts", first) == 0, "unchanged: not logged again"
    changed = [("W1", "skipped", "invalid email"), ("W2", "repaired", "country guessed"), ("W3", "skipped", "no name")]
    monkeypatch.setattr(queries, "IN_LOOKUP_MAX", 2)  # 3 keys: every problem of the type is read instead
    assert log_new_source_problems(store, "run-3", "contacts", changed) == 2
    assert log_new_source_problems(store, "run-3", "companies", first[:1]) == 1, "per object type"
    assert logged_source_problems(store, "contacts", ["W2"]) == {("W2", "repaired", "phone cleaned"), ("W2", "repaired", "country guessed")}


def test_integration_log(store: StateStore) -> None:
    store.log(
        "run-1",
        [
            LogRow("contacts", "W1", "created", "101"),
            LogRow("contacts", "W2", "failed", None, "VALIDATION_ERROR", "Property values were not valid"),
            ("contacts", "W3", "unchanged", 103),  # plain tuples are accepted too; ids become text
            LogRow("deals", "C1", "created", "900"),
        ],
    )
    store.log("run-2", [LogRow("contacts", "W1", "updated", "101")])

    frame = store.log_frame("run-1")
    assert frame.columns == [
        "id", "run_id", "logged_at", "object_type", "source_key", "action", "hubspot_id", "error_category", "message",
    ]  # fmt: skip
    assert frame.schema["logged_at"] == pl.Datetime("us", "UTC")
    assert frame["source_key"].to_list() == ["C1", "W3", "W2", "W1"]  # newest first
    failed = frame.filter(pl.col("action") == "failed").row(0, named=True)
    assert (failed["error_category"], failed["message"], failed["hubspot_id"]) == (
        "VALIDATION_ERROR",
        "Property values were not valid",
        None,
    )
    assert frame.filter(pl.col("source_key") == "W3")["hubspot_id"].to_list() == ["103"]
    assert store.log_frame().height == 5
    assert store.log_frame(limit=2)["run_id"].to_list() == ["run-2", "run-1"]
    assert store.log_counts("run-1") == {
        "contacts": {"created": 1, "failed": 1, "unchanged": 1},
        "deals": {"created": 1},
    }
    assert store.log_counts("nope") == {}

    with pytest.raises(ValueError, match="unknown integration-log action 'exploded'"):
        store.log("run-3", [LogRow("contacts", "W1", "exploded")])
    assert store.log_frame("run-3").is_empty()

    assert store.prune_log(datetime.now(UTC) - timedelta(days=1)) == 0
    assert store.prune_log(datetime.now(UTC) + timedelta(seconds=1)) == 5
    assert store.log_frame().is_empty()


# ---------------------------------------------------------------------------- failures


def test_failures_count_attempts_per_payload(store: StateStore) -> None:
    store.record_failures(
        "contacts", [("W1", "h1", "VALIDATION_ERROR", "bad email"), ("W2", "h2", "CONFLICT", "x")]
    )
    store.record_failures("contacts", [("W1", "h1", "VALIDATION_ERROR", "bad email again")])  # same payload
    store.record_failures("contacts", [("W2", "h2-new", "RATE_LIMIT", "slow down")])  # payload changed
    frame = store.failures("contacts").sort("source_key")
    assert frame.rows() == [
        ("W1", "h1", 2, "VALIDATION_ERROR", "bad email again"),
        ("W2", "h2-new", 1, "RATE_LIMIT", "slow down"),
    ]
    assert frame.schema["attempts"] == pl.Int64
    assert store.failures("deals").is_empty()
    store.clear_failures("contacts", ["W1", "W9"])
    assert store.failures("contacts")["source_key"].to_list() == ["W2"]


def test_sent_creates_are_kept_until_their_answer_is_recorded(store: StateStore) -> None:
    store.note_sent_creates("line_items", ["L2", "L1", "L1"], "run-1")
    store.note_sent_creates("line_items", ["L3"], "run-1")
    store.note_sent_creates("products", ["P1"], "run-1")
    assert store.unanswered_creates("line_items") == {"L1", "L2", "L3"}
    store.note_sent_creates("line_items", ["L1"], "run-2")  # sent again by a later run: one row
    with store.transaction():
        store.record_synced("line_items", [("L1", "101", "h1")], "run-2")
        store.clear_sent_creates("line_items", ["L1", "L2"])
    assert store.unanswered_creates("line_items") == {"L3"}
    assert store.unanswered_creates("products") == {"P1"}
    assert store.unanswered_creates("deals") == set()
    assert (store.count_ids("line_items"), store.count_ids("products")) == (1, 0)


# ---------------------------------------------------------------------------- cursors, setup, baseline


def test_cursors_and_setup_state(store: StateStore) -> None:
    assert store.get_cursor("sap_orders") is None
    store.set_cursor("sap_orders", "2024-01-01T00:00:00")
    store.set_cursor("sap_orders", "2024-02-01T00:00:00")
    assert store.get_cursor("sap_orders") == "2024-02-01T00:00:00"

    assert store.get_setup("pipeline") is None
    assert store.get_setup("pipeline", {"missing": True}) == {"missing": True}
    pipeline = {"id": "default", "stages": {"checkout_pending": "s1", "checkout_completed": "s2"}}
    store.set_setup("pipeline", pipeline)
    store.set_setup("first_setup_done", True)
    store.set_setup("properties_created", ["fp_customer_id", "fp_deal_id"])
    assert store.get_setup("pipeline") == pipeline
    assert store.get_setup("first_setup_done") is True
    assert store.get_setup("properties_created") == ["fp_customer_id", "fp_deal_id"]
    store.set_setup("first_setup_done", False)
    assert store.get_setup("first_setup_done", True) is False
    with pytest.raises(TypeError):
        store.set_setup("bad", object())


def test_baseline(store: StateStore) -> None:
    assert store.baseline("deals") == set()
    assert store.add_baseline("deals", ["O1", "O2", "O2"]) == 2
    assert store.add_baseline("deals", ["O2", "O3"]) == 1
    assert store.add_baseline("deals", []) == 0
    assert store.baseline("deals") == {"O1", "O2", "O3"}
    assert store.baseline("contacts") == set()


def test_anything_synced(store: StateStore) -> None:
    assert store.anything_synced() is False
    store.record_synced(
        "contacts", [("W1", "101", None)], "setup"
    )  # adopted at first setup: content not sent
    store.set_setup("first_setup_done", True)
    store.add_baseline("deals", ["O1"])
    assert store.anything_synced() is False
    store.record_synced("contacts", [("W1", "101", "h1")], "run-1")
    assert store.anything_synced() is True
    store.forget("contacts", ["W1"])
    assert store.anything_synced() is False
    store.record_associations("contacts", "companies", [("W1", "BP1", 1)])
    assert store.anything_synced() is True


# ---------------------------------------------------------------------------- transactions


def test_transaction_is_atomic_and_joined_by_store_calls(store: StateStore) -> None:
    with pytest.raises(RuntimeError, match="boom"), store.transaction():
        store.record_synced("contacts", [("W1", "101", "h1")], "r")
        store.log("r", [LogRow("contacts", "W1", "created", "101")])
        assert store.hubspot_ids("contacts", ["W1"]) == {"W1": "101"}  # own writes are visible inside
        raise RuntimeError("boom")
    assert store.hubspot_ids("contacts", ["W1"]) == {}
    assert store.log_frame().is_empty()

    with store.transaction() as conn:
        store.record_synced("contacts", [("W1", "101", "h1")], "r")
        with store.transaction() as inner:
            assert inner is conn
            store.set_cursor("c", "1")
    assert store.hubspot_ids("contacts", ["W1"]) == {"W1": "101"}
    assert store.get_cursor("c") == "1"


# ---------------------------------------------------------------------------- tokens


def test_tokens_are_encrypted_at_rest(store: StateStore, fp_state_key: str) -> None:
    assert store.load_tokens("portal-1") is None
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    store.save_tokens("portal-1", "refresh-SECRET-1234", "access-SECRET-5678", expires)

    record = store.load_tokens("portal-1")
    assert record == TokenRecord(
        account="portal-1",
        refresh_token="refresh-SECRET-1234",
        access_token="access-SECRET-5678",
        expires_at=datetime(2030, 1, 2, 1, 4, 5, tzinfo=UTC),
        updated_at=record.updated_at if record else datetime.now(UTC),
    )
    assert "SECRET" not in repr(record)

    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(oauth_tokens)).one()._asdict()
    assert "SECRET" not in str(stored)
    assert crypto.decrypt(stored["refresh_token_enc"]) == "refresh-SECRET-1234"

    store.save_tokens("portal-1", "refresh-2", None, None)  # a refresh replaces the row
    record = store.load_tokens("portal-1")
    assert record is not None
    assert (record.refresh_token, record.access_token, record.expires_at) == ("refresh-2", None, None)
    store.delete_tokens("portal-1")
    assert store.load_tokens("portal-1") is None


def test_tokens_with_a_wrong_or_missing_key_fail_clearly(
    store: StateStore, fp_state_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save_tokens("portal-1", "refresh-SECRET", "access-SECRET", None)
    monkeypatch.setenv(crypto.KEY_ENV_VAR, crypto.generate_key())
    with pytest.raises(crypto.StateKeyError, match="FP_STATE_KEY is not the key"):
        store.load_tokens("portal-1")
    monkeypatch.delenv(crypto.KEY_ENV_VAR)
    with pytest.raises(crypto.StateKeyError, match="FP_STATE_KEY is not set"):
        store.load_tokens("portal-1")
    with pytest.raises(crypto.StateKeyError, match="FP_STATE_KEY is not set"):
        store.save_tokens("portal-2", "r", None, None)
    monkeypatch.setenv(crypto.KEY_ENV_VAR, "not-a-fernet-key")
    with pytest.raises(crypto.StateKeyError, match="FP_STATE_KEY key #1 is not a valid Fernet key"):
        store.load_tokens("portal-1")
    # rotation: a new key first, the old one after it, still reads what the old one wrote
    monkeypatch.setenv(crypto.KEY_ENV_VAR, f"{crypto.generate_key()},{fp_state_key}")
    record = store.load_tokens("portal-1")
    assert record is not None and record.refresh_token == "refresh-SECRET"


def test_naive_datetimes_are_refused(store: StateStore, fp_state_key: str) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        store.save_tokens("portal-1", "r", "a", datetime(2030, 1, 1))


def test_crypto_round_trip_and_errors() -> None:
    key = crypto.generate_key()
    token = crypto.encrypt("pat-na1-secret", key)
    assert "pat-na1-secret" not in token
    assert crypto.decrypt(token, key) == "pat-na1-secret"
    assert crypto.encrypt("same", key) != crypto.encrypt("same", key)  # random IV
    with pytest.raises(crypto.StateKeyError, match="FP_STATE_KEY"):
        crypto.decrypt(token, crypto.generate_key())
    with pytest.raises(crypto.StateKeyError, match="FP_STATE_KEY"):
        crypto.decrypt("garbage", key)
    with pytest.raises(crypto.StateKeyError, match="FP_STATE_KEY is not set"):
        crypto.load_key(" , ")


# ---------------------------------------------------------------------------- concurrency

WRITERS = 2
BATCHES = 40
BATCH_SIZE = 200


MEET_EVERY = 10  # batches between two meetings of the writers: each round of batches runs side by side


def _concurrent_writer(url: str, worker: int, barrier: Barrier) -> None:
    """One writer process: its own store (creating the tables if it is first), many short transactions. The
    writers meet at a barrier before every round of MEET_EVERY batches, so their writes interleave by
    construction (however loaded the machine), not by luck."""
    barrier.wait(timeout=60)
    store = StateStore(url)
    for batch in range(BATCHES):
        if batch % MEET_EVERY == 0:
            barrier.wait(timeout=120)
        keys = [f"W{worker}-{batch}-{i}" for i in range(BATCH_SIZE)]
        store.record_synced(
            "contacts", [(k, f"{worker}{batch:03d}{i:04d}", "h") for i, k in enumerate(keys)], f"run-{worker}"
        )
        store.log(f"run-{worker}", [LogRow("contacts", k, "created") for k in keys])
        store.record_failures("contacts", [("shared", "same-hash", "RATE_LIMIT", f"worker {worker}")])
        store.record_associations("contacts", "companies", [(keys[0], "BP1", 1)])
    store.dispose()


def test_two_processes_write_concurrently_without_losing_rows(state_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter each, as two Dagster runs would be
    barrier = ctx.Barrier(WRITERS)
    procs = [ctx.Process(target=_concurrent_writer, args=(state_url, w, barrier)) for w in range(WRITERS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=240)
    assert [proc.exitcode for proc in procs] == [0] * WRITERS

    store = StateStore(state_url)
    try:
        per_writer = BATCHES * BATCH_SIZE
        assert store.id_map("contacts").height == WRITERS * per_writer
        assert store.log_counts("run-0") == {"contacts": {"created": per_writer}}
        assert store.log_counts("run-1") == {"contacts": {"created": per_writer}}
        # every increment of the shared failure row survived (no lost update)
        assert store.failures("contacts")["attempts"].to_list() == [WRITERS * BATCHES]
        assert len(store.known_associations("contacts", "companies")) == WRITERS * BATCHES
    finally:
        store.dispose()
