"""The state store's own first creation by two processes at once (two runs, or `fp-hubspot sync` and the UI,
starting together on a fresh file or an empty PostgreSQL database): both succeed and the store is usable."""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from fp_hubspot_assets.state.store import StateStore

if TYPE_CHECKING:
    from multiprocessing import Queue
    from multiprocessing.synchronize import Barrier

TRIALS = 20


def _first_open(url: str, name: str, barrier: Barrier, results: Queue) -> None:
    try:
        barrier.wait(timeout=60)  # both create the store at the same moment
        with StateStore(url) as store:
            store.set_cursor(f"first-open-{name}", name)
        results.put("ok")
    except BaseException:  # report every crash, whatever it is
        results.put(traceback.format_exc())


def _two_first_opens(url: str) -> list[str]:
    """Crashes (tracebacks) of two processes creating the store at ``url`` at the same moment."""
    ctx = multiprocessing.get_context("fork")  # the children share this process's imports: each open is cheap
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_first_open, args=(url, name, barrier, results)) for name in ("a", "b")]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return [o for o in outcomes if o != "ok"]


def _assert_usable(url: str) -> None:
    with StateStore(url) as store:
        assert store.get_cursor("first-open-a") == "a" and store.get_cursor("first-open-b") == "b"


def test_two_simultaneous_first_creations_of_a_sqlite_file(tmp_path: Path) -> None:
    crashes: list[str] = []
    for trial in range(TRIALS):
        url = f"sqlite:///{tmp_path / f'state{trial}.db'}"
        crashes += (trial_crashes := _two_first_opens(url))
        if not trial_crashes:
            _assert_usable(url)
    assert crashes == [], f"{len(crashes)} crash(es) in {TRIALS} trials; first:\n{crashes[0]}"


@pytest.fixture
def postgres_server() -> Iterator[sa.Engine]:
    url = os.environ.get("FP_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("FP_TEST_POSTGRES_URL not set (CI sets it)")
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def _fresh_database(server: sa.Engine, name: str) -> str:
    """An empty database of its own (other tests share the server's test database)."""
    with server.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return server.url.set(database=name).render_as_string(hide_password=False)


def test_two_simultaneous_first_creations_on_postgresql(postgres_server: sa.Engine) -> None:
    crashes: list[str] = []
    name = f"fp_first_creation_{os.getpid()}"
    try:
        for _trial in range(TRIALS):
            url = _fresh_database(postgres_server, name)  # empty, as on the first start
            crashes += (trial_crashes := _two_first_opens(url))
            if not trial_crashes:
                _assert_usable(url)
    finally:
        with postgres_server.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert crashes == [], f"{len(crashes)} crash(es) in {TRIALS} trials; first:\n{crashes[0]}"
