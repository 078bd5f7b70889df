"""Normalization helpers and the final hardening pass shared by every mapper."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest

from fp_hubspot_assets.mapping.common import (
    HUBSPOT_MAX_CHARS,
    decimal_string,
    email_is_valid,
    finalize,
    iso_datetime,
    join_sorted,
    keep_rows,
    naive_utc,
    natural_order,
    normalize_email,
    normalize_phone,
    usable_rows,
    valid_email,
    with_clean_phone,
    with_country_codes,
)
from fp_hubspot_assets.mapping.model import PROPERTIES, REFERENCES


def apply(expr: pl.Expr, values: list, dtype: pl.DataType = pl.String) -> list:
    return pl.DataFrame({"v": values}, schema={"v": dtype}).select(expr.alias("out")).to_series().to_list()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Alice@Example.COM ", "alice@example.com"),
        ("al ice@exa mple.com", "alice@example.com"),
        ("a\x00b@x.de", "ab@x.de"),
        ("\t\n ", None),
        (None, None),
    ],
)
def test_normalize_email(raw: str | None, expected: str | None) -> None:
    assert apply(normalize_email(pl.col("v")), [raw]) == [expected]


@pytest.mark.parametrize(
    "email",
    [
        "a@b.de",
        "first.last+tag@sub.example.co.uk",
        "o'brien@example.ie",
        "x@xn--80ak6aa92e.com",
        "u@example.xn--p1ai",
    ],
)
def test_valid_emails(email: str) -> None:
    assert apply(email_is_valid(pl.col("v")), [email]) == [True]


@pytest.mark.parametrize(
    "email",
    [
        "no-at-sign",
        "two@@example.com",
        "a@b",
        ".lead@example.com",
        "dou..ble@example.com",
        "trail.@example.com",
        "a@-bad.com",
        "a@bad-.com",
        "ü@example.com",
        "a@example.123",
        "a@x.test",  # a special-use name (email-validator): never a real mailbox
        ("x" * 65) + "@example.com",
        "a@" + ("b" * 250) + ".com",
        None,
    ],
)
def test_invalid_emails(email: str | None) -> None:
    assert apply(email_is_valid(pl.col("v")), [email]) == [False]


@pytest.mark.parametrize(
    ("raw", "sent"),
    [
        ("lisa.turner12@bücher.de", "lisa.turner12@xn--bcher-kva.de"),  # internationalised domain → punycode
        ("lisa.turner12@xn--bcher-kva.de", "lisa.turner12@xn--bcher-kva.de"),
        ("büro@example.de", None),  # HubSpot cannot store non-ASCII before the @
        ("a@b.de", "a@b.de"),
    ],
)
def test_valid_email_is_the_address_hubspot_is_sent(raw: str, sent: str | None) -> None:
    assert apply(valid_email(normalize_email(pl.col("v"))), [raw]) == [sent]


@pytest.mark.parametrize(
    ("phone", "country", "sent"),
    [
        ("030 1234567", "DE", "+49301234567"),  # a national number read with the address's country
        ("+49 (30) 123-4567", None, "+49301234567"),
        ("+49 (0)30 1234567", "DE", "+49301234567"),  # the national "(0)" is not part of the number
        ("+1-212-555-0100", "DE", "+12125550100"),  # international: the address's country does not matter
        ("0043 1 5134567", "DE", "+4315134567"),
        ("call me", "DE", "call me"),  # not a number: kept as typed, reported
        ("12", "DE", "12"),
        ("020 7946 0958", "United Kingdom", "+442079460958"),  # the country as a name
    ],
)
def test_phones_become_e164_with_the_address_country(phone: str, country: str | None, sent: str) -> None:
    frame = pl.DataFrame({"source_key": ["K"], "phone": [phone], "country": [country]}, schema_overrides={"country": pl.String})
    cleaned, issues = with_clean_phone(frame, country="country")
    assert cleaned["phone"].to_list() == [sent]
    assert issues.height == (0 if sent.startswith("+") else 1)


def test_countries_map_names_and_codes_and_report_the_rest() -> None:
    frame = pl.DataFrame({"source_key": ["A", "B", "C", "D", "E", "F"],
                          "country": ["Germany", "GERMANY", "de", "DEU", "Atlantis", None]})
    coded, issues = with_country_codes(frame)
    assert coded["country"].to_list() == ["DE", "DE", "DE", "DE", "Atlantis", None]
    assert issues.rows() == [("E", "repaired", "country 'Atlantis' is not a known country name or ISO code; sent as written")]


def test_phone_keeps_format_but_needs_a_digit() -> None:
    assert apply(normalize_phone(pl.col("v")), ["  +49  30\t1234 ", "n/a", "", None]) == [
        "+49 30 1234",
        None,
        None,
        None,
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (19.99, "19.99"),
        (3.0, "3"),
        (0.1 + 0.2, "0.3"),
        (-0.5, "-0.5"),
        (-0.0, "0"),
        (1e-7, "0"),
        (123456789.125, "123456789.125"),
        (999_999_999_999.5, "999999999999.5"),
        (1e20, None),
        (math.nan, None),
        (math.inf, None),
        (-math.inf, None),
        (None, None),
    ],
)
def test_decimal_string_never_has_an_exponent(value: float | None, expected: str | None) -> None:
    assert apply(decimal_string(pl.col("v")), [value], pl.Float64) == [expected]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2025, 5, 2, 10, 30, 15, 123456), "2025-05-02T10:30:15.123Z"),
        (datetime(1970, 1, 1), "1970-01-01T00:00:00.000Z"),
        (datetime(2100, 12, 31, 23, 59, 59), "2100-12-31T23:59:59.000Z"),
        (datetime(1969, 12, 31, 23, 59, 59), None),
        (datetime(2101, 1, 1), None),
        (datetime(1, 1, 1), None),
        (None, None),
    ],
)
def test_iso_datetime_range_and_format(moment: datetime | None, expected: str | None) -> None:
    assert apply(iso_datetime(pl.col("v")), [moment], pl.Datetime("us")) == [expected]


def test_naive_utc() -> None:
    cest = timezone(timedelta(hours=2))
    assert naive_utc(datetime(2025, 6, 1, 14, 0, tzinfo=cest)) == datetime(2025, 6, 1, 12, 0)
    assert naive_utc(datetime(2025, 6, 1, 12, 0, tzinfo=UTC)) == datetime(2025, 6, 1, 12, 0)
    assert naive_utc(datetime(2025, 6, 1, 12, 0)) == datetime(2025, 6, 1, 12, 0)


def test_join_sorted_trims_dedupes_and_sorts() -> None:
    out = apply(join_sorted(pl.col("v")), [[" b", "a", "", "b", None], [], None], pl.List(pl.String))
    assert out == ["a;b", "", None]


def test_natural_order_sorts_ids_numerically() -> None:
    keys = pl.DataFrame({"k": ["CP10", "CP9", "CP100", "CP1"]}).sort(natural_order("k")).to_series().to_list()
    assert keys == ["CP1", "CP9", "CP10", "CP100"]


def test_usable_rows_skips_bad_keys_and_keeps_latest_duplicate() -> None:
    frame = pl.DataFrame(
        {
            "k": ["A", None, " B", "C\x00", "", "A", "D"],
            "v": [1, 2, 3, 4, 5, 6, 7],
            "updated_at": [datetime(2025, 1, 1), None, None, None, None, datetime(2025, 2, 1), None],
        }
    )
    kept, issues = usable_rows(frame, "k", "thing")
    assert kept.select("k", "v").rows() == [("A", 6), ("D", 7)]
    assert sorted(issues.get_column("reason").to_list()) == [
        "duplicate thing row; kept the most recently updated",
        *["invalid thing key"] * 4,
    ]
    assert set(issues.get_column("action")) == {"skipped"}
    assert not any("\x00" in k for k in issues.get_column("source_key"))


def test_keep_rows_filters_like_filter_and_does_not_copy_when_every_row_passes() -> None:
    frame = pl.DataFrame({"k": ["a", "b", "c"], "n": [1, None, 3]})
    assert keep_rows(frame, pl.col("k") != "z") is frame  # nothing dropped: the same frame, no copy
    assert keep_rows(frame, pl.col("n") > 1).rows() == [("c", 3)]  # a null condition drops the row, as filter does
    assert keep_rows(frame, pl.col("n").is_null()).rows() == [("b", None)]
    assert keep_rows(frame.clear(), pl.col("n") > 1).is_empty()


def _line_item_frame(**values: str | None) -> pl.DataFrame:
    row = {
        "source_key": "D1:L0",
        "name": "n",
        "quantity": "1",
        "price": "2",
        "product_key": None,
        "assoc_deals": "D1",
        "assoc_orders": None,
        "assoc_carts": None,
    }
    row.update(values)
    return pl.DataFrame([row], schema={c: pl.String for c in row})


def test_finalize_shapes_the_contract() -> None:
    mapped = finalize("line_items", _line_item_frame(name=None), [])
    assert mapped.records.columns == ["source_key", *PROPERTIES["line_items"], *REFERENCES["line_items"]]
    row = mapped.records.row(0, named=True)
    assert row["fp_line_item_id"] == "D1:L0"
    assert row["name"] == ""
    assert row["product_key"] is None
    assert mapped.issues.is_empty()


def test_finalize_strips_nul_trims_and_truncates_with_issues() -> None:
    long = "é" * (HUBSPOT_MAX_CHARS + 10)
    mapped = finalize("line_items", _line_item_frame(name="  a\x00b  ", price=long), [])
    row = mapped.records.row(0, named=True)
    assert row["name"] == "ab"
    assert row["price"] == "é" * HUBSPOT_MAX_CHARS
    assert sorted(mapped.issues.get_column("reason").to_list()) == [
        "NUL bytes removed from name",
        f"price truncated to {HUBSPOT_MAX_CHARS} characters",
    ]
    assert set(mapped.issues.get_column("action")) == {"repaired"}


def test_finalize_rejects_undeclared_shapes() -> None:
    with pytest.raises(ValueError, match="did not produce"):
        finalize("line_items", _line_item_frame().drop("quantity"), [])
    duplicated = pl.concat([_line_item_frame(), _line_item_frame()])
    with pytest.raises(ValueError, match="duplicate source keys"):
        finalize("line_items", duplicated, [])
