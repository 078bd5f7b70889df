"""Operator mistakes: `fp-hubspot sync` says what is wrong in its first line (what, where, how to fix) and
writes nothing anywhere — no HubSpot request, the state store untouched; a run started from the UI stops at
its first writer with the same line."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fp_demo_store.generate import generate
from fp_hubspot_assets.runner import resource_config, run_sync
from fp_hubspot_assets_tests.fixtures_sync import SyncEnv
from hubspot_sandbox.testing import SandboxHandle, free_port, running_sandbox

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_sap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sap") / "sap.db"
    generate(f"sqlite:///{path}", 100, seed=11)
    return path


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    with running_sandbox(tmp_path_factory.mktemp("hub") / "hubspot.db") as sb:
        yield sb


class Setup:
    def __init__(self, root: Path, demo_sap: Path, sandbox: SandboxHandle) -> None:
        self.root, self.sandbox = root, sandbox
        self.sap = root / "sap.db"
        shutil.copy(demo_sap, self.sap)
        self.state = root / "state.db"
        self.panel = root / "panel.yaml"
        self.panel.write_text(f"integration:\n  base_url: {sandbox.base_url}\n", encoding="utf-8")
        self.home = root / "dagster_home"
        self.env = {**os.environ, "DAGSTER_HOME": str(self.home), "FP_SAP_URL": f"sqlite:///{self.sap}",
                    "FP_STATE_URL": f"sqlite:///{self.state}", "FP_PANEL_FILE": str(self.panel)}
        self.env.pop("FP_HUBSPOT_ACCESS_TOKEN", None)

    def sap_sql(self, statement: str) -> None:
        with sqlite3.connect(self.sap) as con:
            con.execute(statement)

    def sync(self) -> tuple[int, str]:
        """Exit code and the first line of stderr; asserts nothing was written anywhere."""
        before = self.sandbox.stats()["total_requests"]
        done = subprocess.run([sys.executable, "-m", "fp_hubspot_assets.cli", "sync"], capture_output=True, text=True,
                              cwd=self.root, env=self.env, timeout=300)
        assert self.sandbox.stats()["total_requests"] == before, "a failed preflight must not call HubSpot"
        assert not self.state.exists(), "a failed preflight must not create or touch the state store"
        assert not self.home.exists() or not any(self.home.rglob("*.db")), "no Dagster run was started"
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr[-2000:]  # one line, no traceback
        return done.returncode, lines[0]


@pytest.fixture
def setup(tmp_path: Path, demo_sap: Path, sandbox: SandboxHandle) -> Setup:
    return Setup(tmp_path, demo_sap, sandbox)


def test_an_invalid_panel(setup: Setup) -> None:
    setup.panel.write_text('items:\n  sync_sku: "yes"\n', encoding="utf-8")
    code, line = setup.sync()
    assert code == 2
    assert line.startswith(f"fp-hubspot: invalid panel: {setup.panel}: invalid panel settings; "
                           "items.sync_sku: must be true or false (unquoted), got 'yes'")
    assert "panel.example.yaml" in line


def test_a_missing_sap_database(setup: Setup) -> None:
    setup.sap.unlink()
    code, line = setup.sync()
    assert code == 2 and line.startswith(f"fp-hubspot: SAP database not found: {setup.sap}")
    assert "FP_SAP_URL" in line and not setup.sap.exists()  # and the check did not create an empty one


def test_a_missing_table(setup: Setup) -> None:
    setup.sap_sql('DROP TABLE "FP_CART_LINE"')
    code, line = setup.sync()
    assert code == 2 and line.startswith(f"fp-hubspot: SAP database sqlite:///{setup.sap} has no table FP_CART_LINE")


def test_a_missing_column(setup: Setup) -> None:
    setup.sap_sql('DROP INDEX "ix_OCRD_email"')  # our lookup index on the column (a store without it has none)
    setup.sap_sql('ALTER TABLE "OCRD" DROP COLUMN "E_Mail"')
    code, line = setup.sync()
    assert code == 2 and line.startswith(f"fp-hubspot: SAP database sqlite:///{setup.sap}: table OCRD has no column E_Mail")


def test_an_unreachable_hubspot_host_is_named(setup: Setup) -> None:
    port = free_port()
    setup.panel.write_text(f"integration:\n  base_url: http://127.0.0.1:{port}\n", encoding="utf-8")
    code, line = setup.sync()
    assert code == 2 and line.startswith(f"fp-hubspot: HubSpot unreachable at 127.0.0.1:{port} (http://127.0.0.1:{port})")


def test_a_token_with_an_invisible_character(setup: Setup) -> None:
    setup.env["FP_HUBSPOT_ACCESS_TOKEN"] = "pat-na1-secret\u200b"
    code, line = setup.sync()
    assert code == 2 and "FP_HUBSPOT_ACCESS_TOKEN holds a character a token cannot contain (U+200B" in line
    assert "pat-na1-secret" not in line


def test_a_state_store_that_cannot_be_created(setup: Setup) -> None:
    blocker = setup.root / "not-a-folder"
    blocker.write_text("a file where the state store's folder should be", encoding="utf-8")
    setup.env["FP_STATE_URL"] = f"sqlite:///{blocker / 'state.db'}"
    code, line = setup.sync()
    assert code == 2 and line.startswith(f"fp-hubspot: state store cannot be created: {blocker / 'state.db'}")


def test_a_run_started_from_the_ui_stops_at_its_first_writer_with_the_same_line(sync_env: SyncEnv) -> None:
    with sqlite3.connect(sync_env.sap_url.removeprefix("sqlite:///")) as con:
        con.execute('DROP TABLE "FP_CART_LINE"')
    state = Path(sync_env.state_url.removeprefix("sqlite:///"))
    config = resource_config(panel=str(sync_env.panel_path), sap_url=sync_env.sap_url, state_url=sync_env.state_url)
    summary = run_sync(sync_env.instance, config)
    assert not summary.success and "hubspot_properties" in summary.failed_steps
    failure = next(
        e.dagster_event.step_failure_data.error  # type: ignore[union-attr]
        for e in sync_env.instance.all_logs(summary.run_id)
        if e.dagster_event and e.dagster_event.is_step_failure and e.step_key == "hubspot_properties"
    )
    assert "has no table FP_CART_LINE" in failure.message.splitlines()[0]
    assert sync_env.sandbox.stats()["total_requests"] == 0
    assert not state.exists() or sync_env.state().id_map_all().height == 0
