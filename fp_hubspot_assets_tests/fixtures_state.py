"""Shared pytest fixtures for the state store: a SQLite store, fresh PostgreSQL schemas, both backends.

- ``state_store``  a StateStore on a SQLite file in tmp_path (for any area's tests).
- ``state_url``    parametrized over both backends: a SQLite file URL, then a fresh PostgreSQL schema URL.
- ``pg_url``       a fresh PostgreSQL schema on the server at FP_TEST_POSTGRES_URL, dropped afterwards.
                   The schema is selected through libpq's ``options=-csearch_path=…`` in the URL, so the
                   URL alone isolates a test, even in a child process or a parallel pytest run.
- ``fp_state_key`` sets FP_STATE_KEY to a fresh key for the test (tokens need it).

PostgreSQL is skipped only off CI: when CI=true a server that does not answer is a test error.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from fp_hubspot_assets.state.crypto import KEY_ENV_VAR, generate_key
from fp_hubspot_assets.state.store import StateStore

PG_URL_ENV = "FP_TEST_POSTGRES_URL"
DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[sa.Engine]:
    """An engine on the test server's database; skips (fails on CI) when the server does not answer."""
    url = os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5}, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        message = f"PostgreSQL at {PG_URL_ENV}={make_url(url).render_as_string()} does not answer: {exc.orig}"
        if _on_ci():
            pytest.fail(message + " (CI=true: PostgreSQL is required)", pytrace=False)
        pytest.skip(message)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin_engine: sa.Engine) -> Iterator[str]:
    """URL of a freshly created, empty PostgreSQL schema (first on search_path); dropped after the test."""
    schema = f"fp_state_{uuid.uuid4().hex[:12]}"
    with pg_admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = pg_admin_engine.url.update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with pg_admin_engine.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs twice: on a SQLite file, then on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'fp_state.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def state_store(tmp_path: Path) -> Iterator[StateStore]:
    """A StateStore on a SQLite file of its own."""
    store = StateStore(f"sqlite:///{tmp_path / 'fp_state.db'}")
    yield store
    store.dispose()


@pytest.fixture
def fp_state_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh FP_STATE_KEY for this test; returns the key."""
    key = generate_key()
    monkeypatch.setenv(KEY_ENV_VAR, key)
    return key
