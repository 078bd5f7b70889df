"""Reads by key (``SapReader.read(entity, Keys)``) return exactly the rows a full read has for those keys, on
SQLite and on PostgreSQL; and the dependants of a change are found through the source's own links."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from fp_demo_store.generate import generate
from fp_demo_store.simulate import set_customer_email
from fp_hubspot_assets.sap.dependants import WINDOWS, customer_keys, item_keys
from fp_hubspot_assets.sap.reader import Keys, SapReader
from fp_hubspot_assets_tests.fixtures_sap import sqlite_url
from fp_hubspot_assets_tests.sap.test_sap_postgres import postgres_url  # noqa: F401  (fixture)

CUSTOMERS = 150


def _keys(reader: SapReader) -> Keys:
    full = reader.read("customers").frame
    web = full.filter(pl.col("kind") == "web").head(7)
    partners = full.filter(pl.col("kind") == "bp").head(3)
    persons = full.filter(pl.col("kind") == "contact_person").tail(2)
    items = reader.read("items").frame["item_code"].unique().sort().head(4)
    return Keys(
        web=frozenset(int(k[1:]) for k in web["customer_key"]),
        partners=frozenset(partners["card_code"]),
        persons=frozenset(int(k[2:]) for k in persons["customer_key"]),
        items=frozenset(items),
    )


def _expected(reader: SapReader, keys: Keys) -> dict[str, pl.DataFrame]:
    """What a full read holds for ``keys``: the rules of ``Keys``, applied to full frames."""
    web = [f"W{k}" for k in keys.web]
    partners = [f"BP{k}" for k in keys.partners]
    persons = [f"CP{k}" for k in keys.persons]
    customers = reader.read("customers").frame.filter(
        pl.col("customer_key").is_in(web + partners + persons)
        | ((pl.col("kind") == "contact_person") & pl.col("card_code").is_in(list(keys.partners)))
    )
    addresses = reader.read("addresses").frame.filter(pl.col("owner_key").is_in(web + partners))
    items = reader.read("items").frame.filter(pl.col("item_code").is_in(list(keys.items)))
    return {"customers": customers, "addresses": addresses, "items": items}


def _assert_keyed_reads_match(url: str) -> None:
    with SapReader(url) as reader:
        keys = _keys(reader)
        assert all(keys.counts().values())
        for entity, expected in _expected(reader, keys).items():
            got = reader.read(entity, keys).frame
            key = {"customers": "customer_key", "addresses": "address_key", "items": "product_key"}[entity]
            assert expected.height > 0
            assert got.sort(key).equals(expected.sort(key)), entity
        with pytest.raises(ValueError, match="by change marker"):
            reader.read("orders", keys)


def test_keyed_reads_on_sqlite(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "sap.db")
    generate(url, CUSTOMERS, seed=5)
    _assert_keyed_reads_match(url)


@pytest.mark.postgres
def test_keyed_reads_on_postgres(postgres_url: str) -> None:  # noqa: F811
    generate(postgres_url, CUSTOMERS, seed=5)
    _assert_keyed_reads_match(postgres_url)


def test_the_dependants_of_an_email_change_are_everyone_sharing_the_email(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "sap.db")
    generate(url, CUSTOMERS, seed=5)
    with SapReader(url) as reader:
        full = reader.read("customers").frame
        web = full.filter((pl.col("kind") == "web") & pl.col("card_code").is_null() & pl.col("email").is_not_null())
        first, second = web["customer_key"][0], web["customer_key"][1]
        later = reader.max_updated_at("customers") + timedelta(seconds=1)
        since = dict.fromkeys(WINDOWS, later)
        # the demo holds rows with markers in the future (a clock error): every incremental read has them
        before = customer_keys(reader, since, lambda survivors: set())
        email = str(web["email"][1]).strip().upper()  # the same address, written differently
        set_customer_email(url, first, f"  {email} ", now=later)
        after = customer_keys(reader, since, lambda survivors: set())
        assert after.web - before.web == {int(first[1:]), int(second[1:])}
        assert after.partners == before.partners and after.persons == before.persons
        # a record last mapped as a duplicate of one read joins (with its partner)
        person = next(k for k in full.filter(pl.col("kind") == "contact_person")["customer_key"] if int(k[2:]) not in after.persons)
        logged = customer_keys(reader, since, lambda survivors: {person} if first in survivors else set())
        assert logged.persons - after.persons == {int(person[2:])}
        assert full.filter(pl.col("customer_key") == person)["card_code"][0] in logged.partners
        everything = item_keys(reader, datetime(1900, 1, 1), since)
        assert everything.items == set(reader.read("items").frame["item_code"])
