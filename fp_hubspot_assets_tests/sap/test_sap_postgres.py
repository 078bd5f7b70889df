"""The same generator and reader on PostgreSQL: the frames must equal the SQLite ones for the same seed.

Runs against FP_TEST_POSTGRES_URL in a schema of its own (dropped afterwards). Skipped only outside CI when
the server is down; in CI (CI=true) a missing server fails the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from fp_demo_store.generate import generate
from fp_demo_store.simulate import complete_cart, ship_order
from fp_hubspot_assets.sap.reader import ENTITIES, SapReader
from fp_hubspot_assets.source_model import SCHEMAS
from fp_hubspot_assets_tests.fixtures_sap import sqlite_url

pytestmark = pytest.mark.postgres
DEFAULT_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
CUSTOMERS = 200


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, so nothing else in the database is touched."""
    base = sa.make_url(os.environ.get("FP_TEST_POSTGRES_URL", DEFAULT_URL))
    engine = sa.create_engine(base)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {base.render_as_string(hide_password=True)} is required in CI: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {base.render_as_string(hide_password=True)}")
    schema = f"fp_sap_test_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def test_generate_and_read_on_postgres_match_sqlite(postgres_url: str, tmp_path: Path) -> None:
    lite_url = sqlite_url(tmp_path / "sap.db")
    assert generate(postgres_url, CUSTOMERS, seed=5) == generate(lite_url, CUSTOMERS, seed=5)
    with SapReader(postgres_url) as pg, SapReader(lite_url) as lite:
        for entity in ENTITIES:
            ours, theirs = pg.read(entity), lite.read(entity)
            assert ours.frame.schema == SCHEMAS[entity]
            assert ours.rejects.is_empty()
            key = next(iter(SCHEMAS[entity]))
            assert ours.frame.sort(key).equals(theirs.frame.sort(key)), entity
            assert pg.max_updated_at(entity) == lite.max_updated_at(entity)
        with SapReader(postgres_url, full_read_slice=5) as sliced:  # full reads in slices of documents
            for entity in ("orders", "carts"):
                assert sliced.read(entity).frame.equals(pg.read(entity).frame), entity
        # incremental reads and the helpers work there too
        cart = pg.read("carts").frame.filter(pl.col("status") == "open")["cart_id"][0]
        newest = pg.max_updated_at("orders") + timedelta(minutes=1)
        doc_entry = complete_cart(postgres_url, int(cart), now=newest)
        ship_order(postgres_url, doc_entry, partial=True, now=newest)
        changed = pg.read("orders", since=newest).frame
        assert changed.filter(pl.col("doc_entry") == doc_entry)["shipment_status"].to_list() == ["partially_shipped"]
        assert pg.read("carts", since=newest).frame["order_key"].to_list() == [f"O{doc_entry}"]


def test_preflight_and_future_markers_on_postgres(postgres_url: str) -> None:
    from fp_hubspot_assets.preflight import PreflightError, check_sap

    generate(postgres_url, 100, seed=6)
    check_sap(postgres_url)  # every table and column found through PostgreSQL's catalogue
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text('UPDATE "FP_CART" SET "UpdatedAt" = \'9999-12-31\' WHERE "CartId" = (SELECT MIN("CartId") FROM "FP_CART")'))
        conn.execute(sa.text('ALTER TABLE "OCRD" DROP COLUMN "E_Mail"'))
    engine.dispose()
    with SapReader(postgres_url) as pg:
        assert len(pg.future_markers("carts")) == 1
        assert (pg.max_updated_at("carts") or pg.newest_cart_change()).year < 9999  # type: ignore[union-attr]
    with pytest.raises(PreflightError, match="table OCRD has no column E_Mail"):
        check_sap(postgres_url)


def test_a_store_stamped_in_local_time_on_postgres_reads_as_utc(postgres_url: str, tmp_path: Path) -> None:
    """Native timestamps (not SQLite text): a store stamped in Tokyo time (UTC+9 all year) and read with
    ``time_zone`` gives the frames and markers of the same store stamped in UTC."""
    lite_url = sqlite_url(tmp_path / "sap.db")
    generate(postgres_url, 100, seed=7)
    generate(lite_url, 100, seed=7)
    shifted = '({d} + interval \'9 hours\')'
    stamp = shifted.format(d='("UpdateDate" + make_interval(hours => COALESCE("UpdateTS", 0) / 10000, '
                             'mins => COALESCE("UpdateTS", 0) / 100 % 100, secs => COALESCE("UpdateTS", 0) % 100))')  # fmt: skip
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        for table, columns in {"FP_CUSTOMER": ("CreatedAt", "UpdatedAt"), "FP_ADDRESS": ("UpdatedAt",),
                               "FP_ITEM_COMBINATION": ("UpdatedAt",), "FP_CART": ("CreatedAt", "UpdatedAt")}.items():  # fmt: skip
            moved = (f'"{c}" = ' + shifted.format(d=f'"{c}"') for c in columns)
            conn.execute(sa.text(f'UPDATE "{table}" SET ' + ", ".join(moved)))
        for table in ("OCRD", "OITM", "ORDR", "ODLN", "OINV"):
            conn.execute(sa.text(
                f'UPDATE "{table}" SET "UpdateDate" = date_trunc(\'day\', {stamp}), "UpdateTS" = '
                f'(EXTRACT(HOUR FROM {stamp}) * 10000 + EXTRACT(MINUTE FROM {stamp}) * 100 + EXTRACT(SECOND FROM {stamp}))::int'
            ))  # fmt: skip
    engine.dispose()
    with SapReader(postgres_url, time_zone="Asia/Tokyo") as pg, SapReader(lite_url) as lite, SapReader(postgres_url) as naive:
        for entity in ENTITIES:
            key = next(iter(SCHEMAS[entity]))
            assert pg.read(entity).frame.sort(key).equals(lite.read(entity).frame.sort(key)), entity
            assert pg.max_updated_at(entity) == lite.max_updated_at(entity), entity
        assert naive.max_updated_at("orders") == lite.max_updated_at("orders") + timedelta(hours=9)  # type: ignore[operator]
