"""The demo generator: deterministic per seed, scaled as documented, and messy in exactly the planned amounts."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from fp_demo_store.generate import AS_OF, FRESH_WITHIN, STALE_AFTER, build, generate, mess_plan
from fp_hubspot_assets.sap.tables import metadata
from fp_hubspot_assets_tests.fixtures_sap import SAP_DEMO_CUSTOMERS, sql_rows, sqlite_url

PLAN = mess_plan(SAP_DEMO_CUSTOMERS)
VALID_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SCRIPTS = {
    "names_cyrillic": re.compile(r"[\u0400-\u04FF]"),
    "names_cjk": re.compile(r"[\u3040-\u30FF\u4E00-\u9FFF\uAC00-\uD7AF]"),
    "names_arabic": re.compile(r"[\u0600-\u06FF]"),
    "names_latin_diacritic": re.compile(r"[\u00C0-\u024F]"),
}


def _dump(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def test_same_seed_gives_identical_tables_and_another_seed_does_not(tmp_path: Path) -> None:
    paths = {name: tmp_path / f"{name}.db" for name in ("a", "b", "c")}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        generate(sqlite_url(paths[name]), 150, seed=seed)
    first, again, other = (_dump(paths[n]) for n in ("a", "b", "c"))
    assert first == again
    assert first != other
    # the structure is the same, only the drawn contents differ
    assert [s for s in first if s.startswith("CREATE")] == [s for s in other if s.startswith("CREATE")]


def test_generate_replaces_existing_data_and_reports_row_counts(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "sap.db")
    generate(url, 300, seed=1)
    counts = generate(url, 150, seed=1)
    assert set(counts) == {t.name for t in metadata.sorted_tables}
    for table, n in counts.items():
        assert sql_rows(url, f'SELECT COUNT(*) FROM "{table}"')[0][0] == n, table


def test_too_few_customers_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        build(10)


def test_scale_ratios(sap_demo_url: str) -> None:
    n = SAP_DEMO_CUSTOMERS
    count = lambda table, where="1=1": sql_rows(sap_demo_url, f'SELECT COUNT(*) FROM "{table}" WHERE {where}')[0][0]  # noqa: E731
    assert 2 <= count("FP_STORE") <= 3
    assert count("FP_CUSTOMER") == n
    assert count("OCRD", "\"CardType\" = 'C' AND \"GroupCode\" <> 104") == n // 10
    assert count("OITM") == max(50, n // 20)
    assert count("ORDR") == round(1.5 * n)
    assert count("FP_CART") == n
    per_order = count("RDR1") / count("ORDR")
    assert 1 <= per_order <= 6
    per_partner = sql_rows(sap_demo_url, 'SELECT MIN(c), MAX(c) FROM (SELECT COUNT(*) c FROM "OCPR" GROUP BY "CardCode")')
    assert per_partner == [(1, 4)]
    combo_share = PLAN["items_with_combinations"] / PLAN["items"]
    assert combo_share == pytest.approx(0.4, abs=0.01)


def _customers(url: str) -> list[tuple]:
    return sql_rows(url, 'SELECT "CustomerId", "Email", "FirstName", "LastName", "IsGuest", "Disabled", "CardCode" '
                         'FROM "FP_CUSTOMER"')  # fmt: skip


def test_email_mess_is_present_in_planned_amounts(sap_demo_url: str) -> None:
    rows = _customers(sap_demo_url)
    emails = [r[1] for r in rows]
    missing = [e for e in emails if e is None or not e.strip()]
    present = [e for e in emails if e is not None and e.strip()]
    invalid = [e for e in present if not VALID_EMAIL.match(e.strip())]
    groups: dict[str, set[str]] = {}
    for e in present:
        groups.setdefault(e.strip().lower(), set()).add(e)
    case_or_space = [g for g in groups.values() if len(g) > 1]
    assert len(missing) == PLAN["missing_emails"]
    assert {e for e in missing} == {None, ""}
    assert len(invalid) == PLAN["invalid_emails"]
    assert len(case_or_space) == PLAN["duplicate_emails_case_or_space"]
    assert len(present) == len(set(present)), "no raw duplicates inside FP_CUSTOMER, only case/space variants"


def test_names_in_several_scripts(sap_demo_url: str) -> None:
    names = [f"{r[2]} {r[3]}" for r in _customers(sap_demo_url)]
    for kind, pattern in SCRIPTS.items():
        assert sum(1 for n in names if pattern.search(n)) == PLAN[kind], kind
    plain = [n for n in names if n.isascii()]
    assert len(plain) == len(names) - sum(PLAN[k] for k in SCRIPTS)
    companies = [r[0] for r in sql_rows(sap_demo_url, 'SELECT "CardName" FROM "OCRD"')]
    assert any(SCRIPTS["names_cjk"].search(c) for c in companies)
    assert any(SCRIPTS["names_cyrillic"].search(c) for c in companies)


def test_customer_and_partner_mess(sap_demo_url: str) -> None:
    rows = _customers(sap_demo_url)
    assert sum(r[4] for r in rows) == PLAN["guest_checkouts"]
    assert sum(r[5] for r in rows) == PLAN["disabled_customers"]
    logins = sql_rows(
        sap_demo_url,
        'SELECT COUNT(*) FROM "FP_CUSTOMER" c WHERE c."CardCode" IS NOT NULL AND EXISTS (SELECT 1 FROM "OCPR" p '
        'WHERE p."CardCode" = c."CardCode" AND p."E_MailL" = c."Email")',
    )
    assert logins[0][0] == PLAN["web_logins_of_partners"]
    several = sql_rows(sap_demo_url, 'SELECT COUNT(*) FROM (SELECT 1 FROM "OCPR" GROUP BY "CardCode" HAVING COUNT(*) > 1)')
    assert several[0][0] == PLAN["partners_with_several_contacts"]
    assert sql_rows(sap_demo_url, 'SELECT COUNT(*) FROM "OCPR"')[0][0] == PLAN["contact_persons"]
    others = sql_rows(sap_demo_url, 'SELECT COUNT(*) FROM "OCRD" WHERE "CardType" IN (\'S\', \'L\')')
    assert others[0][0] == PLAN["non_customer_partners"]
    frozen = sql_rows(sap_demo_url, 'SELECT COUNT(*) FROM "OCRD" WHERE "frozenFor" = \'Y\'')
    assert frozen[0][0] == PLAN["frozen_partners"]


def test_item_mess(sap_demo_url: str) -> None:
    with_combos = sql_rows(sap_demo_url, 'SELECT COUNT(DISTINCT "ItemCode") FROM "FP_ITEM_COMBINATION"')[0][0]
    assert with_combos == PLAN["items_with_combinations"]
    assert with_combos < PLAN["items"]  # items without combinations too
    no_store = sql_rows(
        sap_demo_url,
        'SELECT COUNT(*) FROM "OITM" i WHERE NOT EXISTS (SELECT 1 FROM "FP_ITEM_STORE" s WHERE s."ItemCode" = i."ItemCode")',
    )
    assert no_store[0][0] == PLAN["items_without_store"]
    attrs = [r[0] for r in sql_rows(sap_demo_url, 'SELECT "Attributes" FROM "FP_ITEM_COMBINATION"')]
    assert any(a.startswith("Color: ") and ", Size: " in a for a in attrs)
    assert all(re.fullmatch(r"(Color: \w+)?(, )?(Size: \w+)?", a) for a in attrs)


def test_order_and_cart_mess(sap_demo_url: str) -> None:
    one = lambda q: sql_rows(sap_demo_url, q)[0][0]  # noqa: E731
    assert one('SELECT COUNT(*) FROM "ORDR" WHERE "CANCELED" = \'Y\'') == PLAN["canceled_orders"]
    assert one('SELECT COUNT(*) FROM "ORDR" WHERE "U_FP_CartId" IS NULL') == PLAN["sap_only_orders"]
    # every ordered cart points at the order that points back at it
    linked = one(
        'SELECT COUNT(*) FROM "FP_CART" c JOIN "ORDR" o ON o."DocEntry" = c."OrderDocEntry" '
        'AND o."U_FP_CartId" = c."CartId" WHERE c."Status" = \'ordered\''
    )
    assert linked == PLAN["carts_ordered"] == one('SELECT COUNT(*) FROM "FP_CART" WHERE "Status" = \'ordered\'')
    stale_before = (AS_OF - STALE_AFTER).strftime("%Y-%m-%d %H:%M:%S")
    fresh_after = (AS_OF - FRESH_WITHIN).strftime("%Y-%m-%d %H:%M:%S")
    stale = one(f'SELECT COUNT(*) FROM "FP_CART" WHERE "Status" = \'open\' AND "UpdatedAt" < \'{stale_before}\'')
    fresh = one(f'SELECT COUNT(*) FROM "FP_CART" WHERE "Status" = \'open\' AND "UpdatedAt" >= \'{fresh_after}\'')
    assert (stale, fresh) == (PLAN["stale_open_carts"], PLAN["fresh_open_carts"])
    partly_paid = one(
        'SELECT COUNT(*) FROM (SELECT o."DocEntry" FROM "ORDR" o JOIN "INV1" l ON l."BaseEntry" = o."DocEntry" '
        'AND l."BaseType" = 17 JOIN "OINV" i ON i."DocEntry" = l."DocEntry" GROUP BY o."DocEntry", o."DocTotal" '
        'HAVING SUM(i."PaidToDate") > 0 AND SUM(i."PaidToDate") < o."DocTotal")'
    )
    assert partly_paid == PLAN["partly_paid_orders"]
