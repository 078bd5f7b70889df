"""A state file the sync's user cannot write: `fp-hubspot sync` says so in one line naming the file and what to
do, writes nothing to HubSpot and leaves the file as it was. As root (CI containers) a 0444 file is still
writable, so the command runs as the unprivileged user `nobody` there, like a service account would."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fp_demo_store.generate import generate
from fp_hubspot_assets.state.store import StateStore
from hubspot_sandbox.testing import SandboxHandle, running_sandbox

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder the unprivileged user can enter (pytest's own tmp folders are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="fp-readonly-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def sandbox(folder: Path) -> Iterator[SandboxHandle]:
    with running_sandbox(folder / "hubspot.db") as sb:
        yield sb


def _as_sync_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot drop to an unprivileged user")
    # the unprivileged user must reach the checkout's interpreter: a checkout under a private folder (mktemp -d
    # is 0700) gets the traverse bit on its ancestors, nothing more
    for parent in (REPO, *REPO.parents):
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_read_only_state_file_stops_the_sync_in_one_line(folder: Path, sandbox: SandboxHandle) -> None:
    sap = folder / "sap.db"
    generate(f"sqlite:///{sap}", 100, seed=3)
    state = folder / "state.db"
    with StateStore(f"sqlite:///{state}") as store:  # an existing store, as after earlier syncs
        store.set_cursor("earlier-sync", "kept")
    for leftover in folder.glob("state.db-*"):
        leftover.unlink()
    state.chmod(0o444)
    panel = folder / "panel.yaml"
    panel.write_text(f"integration:\n  base_url: {sandbox.base_url}\n", encoding="utf-8")
    home = folder / "dagster_home"
    home.mkdir()
    if os.geteuid() == 0:
        os.chown(home, NOBODY, NOBODY)  # the sync user's own Dagster home; the state file stays root's
    for path in (sap, panel):
        path.chmod(0o644)
    env = {**os.environ, "DAGSTER_HOME": str(home), "FP_SAP_URL": f"sqlite:///{sap}",
           "FP_STATE_URL": f"sqlite:///{state}", "FP_PANEL_FILE": str(panel), "HOME": str(folder)}
    env.pop("FP_HUBSPOT_ACCESS_TOKEN", None)
    before, digest = sandbox.stats()["total_requests"], _digest(state)

    done = subprocess.run([*_as_sync_user(), sys.executable, "-m", "fp_hubspot_assets.cli", "sync"],
                          capture_output=True, text=True, cwd=folder, env=env, timeout=300)

    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert lines[0] == (
        f"fp-hubspot: state store is read-only: {state} — make the file and its folder writable for this user, "
        "or set FP_STATE_URL to a writable location"
    )
    assert sandbox.stats()["total_requests"] == before, "nothing may reach HubSpot"
    assert _digest(state) == digest, "the state file is untouched"
    with StateStore(f"sqlite:///{state}") as store:
        assert store.get_cursor("earlier-sync") == "kept"
