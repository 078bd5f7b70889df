"""The bad-input corpus: ≥25 kinds of broken source records, inserted with SQL into a demo SAP database
next to good ones, then one full sync through Dagster against the sandbox.

Every bad record must be either repaired (and synced) or rejected with its reason in the integration log,
the mapping issues or the reader's rejects; every valid neighbour must still sync; nothing may crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets_tests.fixtures_sync import (
    TYPES,
    SyncEnv,
    assert_hubspot_matches,
    expected_payloads,
    make_sync_env,
)

NOW = "2025-06-01 12:00:00"
LONG = "x" * 70_000


@dataclass(frozen=True)
class Case:
    kind: str
    key: str  # the source key the outcome is looked up by (a HubSpot record's key or a reject's key)
    object_type: str  # where it would land in HubSpot
    sql: tuple[str, ...]
    # "synced": in HubSpot as is; "repaired": in HubSpot and the repair logged; "rejected": not in HubSpot,
    # the reason logged
    outcome: str
    gap: str = ""  # a known gap: the case is a strict xfail until it is closed
    holds: tuple[tuple[str, str], ...] = ()  # (property, value) HubSpot must hold afterwards


def _customer(cid: int, email: str | None, first: str = "Ok", last: str = "Person", *, role: int = 2,
              guest: int = 0, updated: str = NOW, phone: str = "+49 30 1234567") -> tuple[str, ...]:
    e = "NULL" if email is None else "'" + email.replace("'", "''") + "'"
    return (
        f"INSERT INTO FP_CUSTOMER VALUES ({cid}, 1, NULL, {e}, '{first}', '{last}', '{phone}', {guest}, 0, "
        f"'{NOW}', '{updated}')",
        f"INSERT INTO FP_CUSTOMER_ROLE VALUES ({cid}, {role})",
    )


def _address(aid: int, cid: int, kind: str = "billing", street: str = "Main St 1", country: str = "DE") -> str:
    return f"INSERT INTO FP_ADDRESS VALUES ({aid}, {cid}, '{kind}', 1, '{street}', NULL, 'Berlin', '10115', NULL, '{country}', '{NOW}')"


def _item(code: str, name: str = "Good Item", price: str = "10.0", text: str = "fine") -> tuple[str, ...]:
    return (
        f"INSERT INTO OITM VALUES ('{code}', '{name}', 100, '{text}', 'Y', 'N', 'pcs', NULL, '{NOW}', '{NOW}', 120000)",
        f"INSERT INTO ITM1 VALUES ('{code}', 1, {price}, 'EUR')",
        f"INSERT INTO FP_ITEM_STORE VALUES ('{code}', 1)",
    )


def _order(entry: int, card: str = "C0000001", *, total: str = "100.0", status: str = "O", canceled: str = "N",
           date: str = NOW, lines: tuple[tuple[str, str, str], ...] = (("A000001", "1", "100.0"),)) -> tuple[str, ...]:
    head = (
        f"INSERT INTO ORDR VALUES ({entry}, {entry + 900000}, '{card}', 'Corpus', '{date}', '{date}', {total}, 'EUR', "
        f"'{status}', '{canceled}', NULL, NULL, '{date}', '{NOW[:10]} 00:00:00', 120000)"
    )
    body = tuple(
        f"INSERT INTO RDR1 VALUES ({entry}, {n}, '{item}', 'line', {qty}, {price}, {price}, 'O', NULL)"
        for n, (item, qty, price) in enumerate(lines)
    )
    return (head, *body)


def _cart(cart: int, customer: int, *, email: str = "cart@example.org", status: str = "open",
          lines: tuple[tuple[str, str, str], ...] = (("A000001", "1", "10.0"),), updated: str = NOW) -> tuple[str, ...]:
    head = f"INSERT INTO FP_CART VALUES ({cart}, 1, {customer}, '{email}', '{status}', NULL, '{NOW}', '{updated}')"
    body = tuple(
        f"INSERT INTO FP_CART_LINE VALUES ({cart}, {n}, '{item}', NULL, {qty}, {price})"
        for n, (item, qty, price) in enumerate(lines)
    )
    return (head, *body)


BIG_CART = tuple(("A000001", "1", "1.5") for _ in range(1000))

CASES: tuple[Case, ...] = (
    Case("invalid email", "W9001", "contacts", _customer(9001, "not-an-email"), "repaired"),
    Case("missing email", "W9002", "contacts", _customer(9002, None), "synced"),
    Case("blank email", "W9003", "contacts", _customer(9003, "   "), "synced"),
    Case("duplicate email (case and spaces)", "W9004", "contacts",
         _customer(9004, " Daniel.Turner1@EXAMPLE.com ", updated="2020-01-01 00:00:00"), "rejected"),
    Case("unicode name", "W9005", "contacts", _customer(9005, "zoe@example.org", "Zoë Ångström", "Ñúñez 李"), "synced"),
    Case("right-to-left name", "W9006", "contacts", _customer(9006, "rtl@example.org", "محمد", "עברית\u200f"), "synced"),
    Case("emoji name", "W9007", "contacts", _customer(9007, "emoji@example.org", "🦄 Uni", "Corn 🌽👩‍👩‍👧"), "synced"),
    Case("70,000-character name", "W9008", "contacts", _customer(9008, "long@example.org", LONG, "Long"), "repaired"),
    Case("NUL bytes in a name", "W9009", "contacts", _customer(9009, "nul@example.org", "Nu' || char(0) || 'll", "Byte"),
         "repaired"),
    Case("email with a NUL byte", "W9010", "contacts", _customer(9010, "nul' || char(0) || 'mail@example.org"), "repaired"),
    Case("customer updated in 1900", "W9011", "contacts", _customer(9011, "old@example.org", updated="1900-01-01 00:00:00"),
         "synced"),
    Case("customer updated in 2100", "W9012", "contacts", _customer(9012, "future@example.org", updated="2100-12-31 00:00:00"),
         "synced"),
    Case("unknown role", "W9013", "contacts", _customer(9013, "norole@example.org", role=777), "rejected"),
    Case("missing addresses", "W9014", "contacts", _customer(9014, "homeless@example.org"), "synced"),
    Case("address of an unknown customer", "W99999:A9015", "contacts", (_address(9015, 99999),), "rejected"),
    Case("70,000-character street", "W9016", "contacts",
         (*_customer(9016, "street@example.org"), _address(9016, 9016, street=LONG)), "repaired"),
    Case("phone without digits", "W9017", "contacts", _customer(9017, "phone@example.org", phone="call me"), "repaired"),
    Case("negative price item", "IZNEG", "products", _item("ZNEG", price="-5.0"), "rejected"),
    Case("NaN price item", "IZNAN", "products", _item("ZNAN", price="'NaN'"), "rejected"),
    Case("infinite price item", "IZINF", "products", _item("ZINF", price="9e999"), "rejected"),
    Case("70,000-character item description", "IZLONG", "products", _item("ZLONG", text=LONG), "repaired"),
    Case("emoji item name", "IZEMO", "products", _item("ZEMO", name="Mug ☕🔥"), "synced"),
    Case("order for an unknown customer", "O9101", "deals", _order(9101, card="NOBODY"), "repaired"),
    Case("order line for an unknown item", "O9102:L0", "line_items",
         _order(9102, lines=(("NOSUCHITEM", "1", "5.0"),)), "repaired"),
    Case("negative quantity", "O9103:L0", "line_items", _order(9103, lines=(("A000001", "-3", "5.0"),)), "rejected"),
    Case("negative line price", "O9104:L0", "line_items", _order(9104, lines=(("A000001", "1", "-5.0"),)), "rejected"),
    Case("NaN order total", "O9105", "deals", _order(9105, total="'NaN'"), "repaired"),
    Case("infinite order total", "O9106", "deals", _order(9106, total="9e999"), "repaired"),
    Case("order dated 1900", "O9107", "deals", _order(9107, date="1900-01-01 00:00:00"), "repaired"),
    Case("order dated 2100", "O9108", "deals", _order(9108, date="2100-06-30 00:00:00"), "synced"),
    Case("unknown order status", "O9109", "deals", _order(9109, status="Z", canceled="?"), "repaired"),
    Case("cart of an unknown customer", "C9201", "deals", _cart(9201, 88888), "repaired"),
    Case("unknown cart status", "C9202", "deals", _cart(9202, 1, status="limbo"), "rejected"),
    Case("1,000-line cart", "C9203", "deals", _cart(9203, 1, lines=BIG_CART), "synced"),
    Case("cart line for an unknown item", "C9204:L0", "line_items", _cart(9204, 1, lines=(("GHOST", "1", "2.0"),)),
         "repaired"),
    # timestamps as stores really write them: read, stored as UTC
    Case("timestamp without seconds", "W9018", "contacts", _customer(9018, "nosec@example.org", updated="2025-03-01 10:00"),
         "synced"),
    Case("ISO timestamp with +02:00", "W9019", "contacts",
         _customer(9019, "offset@example.org", updated="2025-03-01T10:00:00+02:00"), "synced"),
    Case("ISO timestamp with Z", "W9020", "contacts", _customer(9020, "zulu@example.org", updated="2025-03-01T10:00:00Z"),
         "synced"),
    Case("order dated with an offset", "O9110", "deals", _order(9110, date="2025-03-01T23:30:00-02:00"), "synced",
         holds=(("closedate", "2025-03-02T01:30:00.000Z"),)),
    # emails, countries, phones through maintained libraries
    Case("internationalised email", "W9021", "contacts", _customer(9021, "lisa.turner12@bücher.de"), "synced",
         holds=(("email", "lisa.turner12@xn--bcher-kva.de"),)),
    Case("country written as a name", "W9022", "contacts",
         (*_customer(9022, "land@example.org", phone="030 1234567"), _address(9022, 9022, country="Germany")), "synced",
         holds=(("country", "DE"), ("phone", "+49301234567"))),
    Case("unknown country", "W9023", "contacts",
         (*_customer(9023, "atlantis@example.org"), _address(9023, 9023, country="Atlantis")), "repaired",
         holds=(("country", "Atlantis"),)),
    Case("phone that is no number", "W9024", "contacts", _customer(9024, "nonum@example.org", phone="12"), "repaired",
         holds=(("phone", "12"),)),
    # empty amounts and prices are logged, never a silent clear or a flipped status
    Case("order without DocTotal", "O9111", "deals", _order(9111, total="NULL", lines=(("A000001", "2", "21.5"),)),
         "repaired", holds=(("amount", "43"), ("fp_payment_status", "unpaid"))),
    Case("item without price", "IZNOPRICE", "products", _item("ZNOPRICE", price="NULL"), "repaired"),
    Case("item codes differing only in case", "Izcase", "products", (*_item("zcase"), *_item("ZCASE")), "repaired"),
    # a far-future marker syncs the cart but never becomes the sensor's cursor (see the test below)
    Case("cart updated in 9999", "C9205", "deals", _cart(9205, 1, updated="9999-12-31 00:00:00"), "synced"),
)


def _insert(sap_url: str, cases: tuple[Case, ...]) -> None:
    engine = sa.create_engine(sap_url)
    with engine.begin() as conn:
        for case in cases:
            for statement in case.sql:
                conn.exec_driver_sql(statement)
    engine.dispose()


def _reasons(env: SyncEnv, expected: dict[str, object]) -> dict[str, list[str]]:
    """Every reason recorded for a source key: integration log, mapping issues, reader rejects."""
    reasons: dict[str, list[str]] = {}
    log = env.state().log_frame()
    for key, action, category, message in log.select("source_key", "action", "error_category", "message").iter_rows():
        if action not in ("created", "updated", "unchanged", "adopted"):
            reasons.setdefault(key, []).append(f"log {action} {category}: {message}")
    for mapped in expected.values():
        for key, action, reason in mapped.issues.iter_rows():  # type: ignore[attr-defined]
            reasons.setdefault(key, []).append(f"mapping {action}: {reason}")
    for result in SapReader(env.sap_url).read_all().values():
        for row in result.rejects.iter_rows(named=True):
            reasons.setdefault(row["source_key"], []).append(f"reader: {row['reason']}")
    return reasons


@pytest.fixture(scope="module")
def corpus_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SyncEnv, dict[str, set[str]]]]:
    root = tmp_path_factory.mktemp("corpus")
    for env in make_sync_env(Path(root), customers=100, seed=3):
        clean = {t: set(m.records["source_key"]) for t, m in expected_payloads(env).items()}
        _insert(env.sap_url, CASES)
        env.run()
        yield env, clean


def test_the_corpus_has_at_least_25_kinds() -> None:
    assert len({c.kind for c in CASES}) >= 25


def test_nothing_crashes_and_hubspot_holds_exactly_the_mapped_records(corpus_env: tuple[SyncEnv, dict[str, set[str]]]) -> None:
    env, _clean = corpus_env
    assert_hubspot_matches(env)
    failed = env.state().log_frame().filter(pl.col("action") == "failed")
    assert failed.height == 0, f"HubSpot rejected records the mapping let through: {failed.head(5).to_dicts()}"


def test_every_valid_neighbour_still_syncs(corpus_env: tuple[SyncEnv, dict[str, set[str]]]) -> None:
    env, clean = corpus_env
    for object_type in TYPES:
        in_hubspot = set(env.hubspot(object_type))
        missing = clean[object_type] - in_hubspot
        # a corpus duplicate may only take over an email by being newer, and is older: nothing may go
        assert not missing, (object_type, sorted(missing)[:10])


def _params() -> list[object]:
    return [pytest.param(c, id=c.kind, marks=[pytest.mark.xfail(strict=True, reason=c.gap)] if c.gap else [])
            for c in CASES]


@pytest.mark.parametrize("case", _params())
def test_each_bad_record_is_repaired_or_rejected_with_a_reason(
    corpus_env: tuple[SyncEnv, dict[str, set[str]]], case: Case
) -> None:
    env, _clean = corpus_env
    synced = case.key in env.hubspot(case.object_type)
    reasons = _reasons(env, expected_payloads(env)).get(case.key, [])
    held = env.hubspot(case.object_type).get(case.key, {}).get("properties", {})
    for prop, value in case.holds:
        assert held.get(prop) == value, (case.kind, prop, held.get(prop))
    if case.outcome == "synced":
        assert synced, (case.kind, reasons)
    elif case.outcome == "repaired":
        assert synced and reasons, (case.kind, synced, reasons)
    else:
        assert not synced and reasons, (case.kind, synced, reasons)


def test_long_values_are_cut_to_hubspots_limit_and_nul_bytes_removed(
    corpus_env: tuple[SyncEnv, dict[str, set[str]]],
) -> None:
    env, _clean = corpus_env
    contacts = env.hubspot("contacts")
    assert 0 < len(contacts["W9008"]["properties"]["firstname"]) <= 65_536
    assert "\x00" not in contacts["W9009"]["properties"]["firstname"]
    assert contacts["W9007"]["properties"]["firstname"] == "🦄 Uni"
    products = env.hubspot("products")
    assert len(products["IZLONG"]["properties"]["description"]) <= 65_536
    line_items = [k for k in env.hubspot("line_items") if k.startswith("C9203:")]
    assert len(line_items) == 1000


def test_a_far_future_marker_is_reported_and_never_becomes_a_cursor(
    corpus_env: tuple[SyncEnv, dict[str, set[str]]],
) -> None:
    env, _clean = corpus_env
    with SapReader(env.sap_url) as reader:
        newest = reader.newest_cart_change()
        assert newest is not None and newest.year < 9999
        assert (reader.max_updated_at("carts") or newest).year < 9999
        assert "FP_CART:9205" in reader.future_markers("carts")
