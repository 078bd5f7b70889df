"""Two `fp-hubspot sync` started together on a fresh $DAGSTER_HOME: the instance is initialised once, under a
lock, and both starts succeed (Dagster's SQLite storages stamp their schema version on first use; two first
uses at the same moment collide on ``alembic_version`` and can leave two heads behind)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import DagsterInstance

from fp_hubspot_assets.instance import dagster_instance

if TYPE_CHECKING:
    from multiprocessing import Queue
    from multiprocessing.synchronize import Barrier

REPO = Path(__file__).resolve().parents[2]
TRIALS = 20


def _first_start(home: str, barrier: Barrier, results: Queue) -> None:
    os.environ["DAGSTER_HOME"] = home
    try:
        barrier.wait(timeout=60)  # both open the instance at the same moment
        with dagster_instance() as instance:
            instance.get_runs(limit=1)
        results.put("ok")
    except BaseException:  # report every crash, whatever it is
        results.put(traceback.format_exc())


def _heads(home: Path) -> dict[str, int]:
    """Rows in alembic_version of every SQLite storage (exactly one each when initialised once)."""
    counts = {}
    for db in home.rglob("*.db"):
        with sqlite3.connect(db) as con:
            if con.execute("SELECT name FROM sqlite_master WHERE name='alembic_version'").fetchone():
                counts[db.name] = con.execute("SELECT COUNT(*) FROM alembic_version").fetchone()[0]
    return counts


def test_two_simultaneous_first_starts_never_crash(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")  # the children share this process's imports: each start is cheap
    crashes: list[str] = []
    for trial in range(TRIALS):
        home = tmp_path / f"home{trial}"
        home.mkdir()
        shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_first_start, args=(str(home), barrier, results)) for _ in range(2)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        crashes += [o for o in outcomes if o != "ok"]
        heads = _heads(home)
        assert heads and set(heads.values()) == {1}, (trial, heads)
    assert crashes == [], crashes[0]
    # and the last instance is usable afterwards
    with DagsterInstance.from_config(str(tmp_path / f"home{TRIALS - 1}")) as instance:
        assert instance.get_runs() == [] and instance.all_instigator_state() == []
