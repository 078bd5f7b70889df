"""Shared pytest fixtures for the sap tests: one small demo database per session, copies for tests that write."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from fp_demo_store.generate import generate
from fp_hubspot_assets.sap.reader import SapReader

SAP_DEMO_CUSTOMERS = 600
SAP_DEMO_SEED = 42


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def sql_rows(url: str, query: str, params: tuple = ()) -> list[tuple]:
    """Run a read query on a SQLite demo database, independently of the reader under test."""
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return con.execute(query, params).fetchall()
    finally:
        con.close()


def sql_exec(url: str, *statements: tuple[str, tuple]) -> None:
    """Write to a SQLite demo database directly (to corrupt or tweak rows behind the generator's back)."""
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        with con:
            for query, params in statements:
                con.execute(query, params)
    finally:
        con.close()


@pytest.fixture(scope="session")
def sap_demo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo database generated once per session: read it, never write to it (use ``sap_demo_copy``)."""
    path = tmp_path_factory.mktemp("sap") / "demo.db"
    generate(sqlite_url(path), SAP_DEMO_CUSTOMERS, seed=SAP_DEMO_SEED)
    return path


@pytest.fixture(scope="session")
def sap_demo_url(sap_demo_path: Path) -> str:
    return sqlite_url(sap_demo_path)


@pytest.fixture
def sap_demo_copy(sap_demo_path: Path, tmp_path: Path) -> str:
    """A private copy of the session demo database, free to change."""
    target = tmp_path / "demo-copy.db"
    shutil.copyfile(sap_demo_path, target)
    return sqlite_url(target)


@pytest.fixture
def sap_reader(sap_demo_url: str) -> Iterator[SapReader]:
    with SapReader(sap_demo_url) as reader:
        yield reader
