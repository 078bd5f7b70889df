"""The Dagster instance at $DAGSTER_HOME, initialised once even when two commands start together.

Dagster creates its SQLite storages (runs, event log index, schedules) on first use and stamps each with an
alembic version. Two processes doing that at the same moment on a fresh $DAGSTER_HOME race: one fails with
``UNIQUE constraint failed: alembic_version.version_num`` and a storage can be left with two heads, so every
later start fails. The first opener therefore creates every storage under a file lock; the others wait for
it and then find them ready.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import DagsterInstance
from filelock import FileLock

LOCK_NAME = ".fp-instance-init.lock"
LOCK_TIMEOUT_SECONDS = 300.0


def initialise(instance: DagsterInstance) -> None:
    """Touch every storage, so each one creates and stamps its database now (a no-op when they exist)."""
    instance.get_runs(limit=1)
    instance.event_log_storage.get_asset_records()
    instance.all_instigator_state()


@contextmanager
def dagster_instance() -> Iterator[DagsterInstance]:
    """``DagsterInstance.get()`` with its storages created under a lock in $DAGSTER_HOME."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        with DagsterInstance.get() as instance:  # Dagster's own error names DAGSTER_HOME
            yield instance
        return
    folder = Path(home).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / LOCK_NAME), timeout=LOCK_TIMEOUT_SECONDS):
        instance = DagsterInstance.get()
        try:
            initialise(instance)
        except BaseException:
            instance.dispose()
            raise
    try:
        yield instance
    finally:
        instance.dispose()
