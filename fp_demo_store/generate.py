"""Demo SAP Business One + FocusPoint database: deterministic, messy on purpose, fast at a million customers.

``generate(url, customers, seed)`` (re)writes every table of ``tables.metadata`` at a SQLAlchemy URL. The data
is drawn from one seeded numpy ``Generator`` in a fixed order, so one seed always gives byte-identical table
contents; timestamps are relative to ``as_of`` (fixed by default, for the same reason).

Real stores are messy, and every kind of mess is planned with an exact count (``mess_plan``) so tests can count
it back: emails that differ only in case or spaces, missing and invalid emails, names in several scripts,
guest checkouts, B2B partners with several contact persons, web logins of those partners, several stores,
items with and without attribute combinations, canceled / partly shipped / partly paid orders, carts that
became orders, stale open carts, and SAP-only orders that never had a cart.

Speed: columns are built with numpy and polars, never row by row; SQLite is filled through ``sqlite3``
``executemany`` in one transaction with the journal off, and indexes are built after the load. Other databases
get SQLAlchemy ``executemany`` in chunks. Simulated changes and test helpers live in ``simulate.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import polars as pl
import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from fp_demo_store.data import (  # noqa: F401  (re-exported for tests and callers)
    FRESH_WITHIN,
    ORDER_CATEGORIES,
    STALE_AFTER,
    STORES,
    Sizes,
    TableBuilder,
)
from fp_demo_store.simulate import (  # noqa: F401  (re-exported: the demo's public API)
    add_cart,
    cancel_order,
    complete_cart,
    pay_order,
    set_customer_email,
    set_item_price,
    ship_order,
    simulate,
)
from fp_hubspot_assets.sap.tables import metadata

AS_OF = datetime(2025, 6, 30, 12, 0, 0)
MIN_CUSTOMERS = 100
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S%.6f"  # SQLAlchemy's SQLite DateTime storage format


def mess_plan(customers: int) -> dict[str, int]:
    """The exact count of every kind of row ``generate(customers=…)`` writes on purpose (same for any seed)."""
    s = Sizes(customers)
    counts = s.category_counts()

    def orders_where(field: int, value: str) -> int:
        return int(sum(n for c, n in zip(ORDER_CATEGORIES, counts, strict=True) if c[field] == value))

    per_partner = s.contacts_per_partner()
    return {
        "stores": len(STORES),
        "web_customers": s.customers,
        "guest_checkouts": s.guests,
        "duplicate_emails_case_or_space": s.mess,
        "missing_emails": s.mess,
        "invalid_emails": s.mess,
        "names_latin_diacritic": s.per_script,
        "names_cyrillic": s.per_script,
        "names_cjk": s.per_script,
        "names_arabic": s.per_script,
        "disabled_customers": s.disabled,
        "b2b_partners": s.partners,
        "partners_with_several_contacts": int(per_partner[1:].sum()),
        "contact_persons": int((per_partner * np.arange(1, 5)).sum()),
        "web_logins_of_partners": s.linked,
        "non_customer_partners": 2 * s.suppliers,
        "frozen_partners": max(1, s.partners // 50),
        "items": s.items,
        "items_with_combinations": s.combination_items,
        "items_without_store": s.sap_only_items,
        "orders": s.orders,
        "canceled_orders": orders_where(0, "canceled"),
        "partly_shipped_orders": orders_where(1, "partially_shipped"),
        "partly_paid_orders": orders_where(2, "partially_paid"),
        "sap_only_orders": s.orders - s.ordered_carts,
        "carts": s.carts,
        "carts_ordered": s.ordered_carts,
        "fresh_open_carts": s.fresh_open_carts,
        "stale_open_carts": s.carts - s.ordered_carts - s.fresh_open_carts,
    }


# --- writing ------------------------------------------------------------------------------------------------


def _rows(frame: pl.DataFrame, sqlite: bool) -> Iterator[tuple]:
    """Rows ready for the DB-API driver (SQLite: datetimes in SQLAlchemy's text format, booleans as 0/1)."""
    cols = []
    for s in frame.iter_columns():
        if sqlite and s.dtype == pl.Datetime:
            s = s.dt.strftime(SQLITE_DATETIME)
        elif sqlite and s.dtype == pl.Boolean:
            s = s.cast(pl.Int64)
        cols.append(s.to_list())
    return zip(*cols, strict=True)


def _sqlite_path(url: sa.URL) -> str:
    if not url.database or url.database == ":memory:":
        raise ValueError("the demo database needs a file: an in-memory SQLite database would vanish on close")
    return url.database


def _write_sqlite(engine: sa.Engine, tables: dict[str, pl.DataFrame]) -> None:
    """Create tables without indexes, bulk-load them in one unjournaled transaction, then build the indexes."""
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            conn.execute(CreateTable(table))
    con = sqlite3.connect(_sqlite_path(engine.url), isolation_level=None)
    try:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-262144", "temp_store=MEMORY"):
            con.execute(f"PRAGMA {pragma}")
        con.execute("BEGIN")
        for table in metadata.sorted_tables:
            frame = tables[table.name]
            cols = ", ".join(f'"{c}"' for c in frame.columns)
            marks = ", ".join("?" * frame.width)
            con.executemany(f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})', _rows(frame, sqlite=True))
        con.execute("COMMIT")
        for table in metadata.sorted_tables:
            for index in table.indexes:
                con.execute(str(CreateIndex(index).compile(dialect=engine.dialect)))
        con.execute("ANALYZE")
    finally:
        con.close()


def _write_generic(engine: sa.Engine, tables: dict[str, pl.DataFrame], chunk: int = 10_000) -> None:
    metadata.create_all(engine)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            frame = tables[table.name]
            rows = _rows(frame, sqlite=False)
            while batch := [dict(zip(frame.columns, r, strict=True)) for _, r in zip(range(chunk), rows, strict=False)]:
                conn.execute(table.insert(), batch)


def build(customers: int, seed: int = 42, as_of: datetime = AS_OF) -> dict[str, pl.DataFrame]:
    """Every demo table as a polars frame with the SQL column names (no database involved)."""
    if customers < MIN_CUSTOMERS:
        raise ValueError(f"customers must be at least {MIN_CUSTOMERS} so every kind of mess fits, got {customers}")
    tables = TableBuilder(customers, seed, as_of).build()
    return {t.name: tables[t.name].select([c.name for c in t.columns]) for t in metadata.sorted_tables}


def generate(url: str, customers: int, seed: int = 42, *, as_of: datetime = AS_OF) -> dict[str, int]:
    """Write a fresh demo database at ``url`` (tables dropped and recreated) and return row counts per table.

    ``as_of`` is the moment the data is "taken": fixed by default so a seed always yields the same bytes; pass
    the real time to get carts that look fresh to the abandonment sensor.
    """
    tables = build(customers, seed, as_of)
    engine = sa.create_engine(url)
    try:
        metadata.drop_all(engine)
        if engine.dialect.name == "sqlite":
            _write_sqlite(engine, tables)
        else:
            _write_generic(engine, tables)
    finally:
        engine.dispose()
    return {name: frame.height for name, frame in tables.items()}
