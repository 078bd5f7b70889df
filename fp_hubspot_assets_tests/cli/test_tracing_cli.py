"""The CLI from a fresh shell, its summary line and dry-run report, the "last successful sync" marker of a CLI
run, ``fp-hubspot log`` and ``fp-hubspot trace``, and source problems logged once — against a demo folder,
a live sandbox over HTTP and a real Dagster instance, through ``fp_hubspot_assets.cli.main``."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import AssetKey, DagsterInstance

from fp_demo_store.cli import prepare_demo
from fp_demo_store.generate import simulate
from fp_hubspot_assets import cli
from fp_hubspot_assets.cli import sync as cli_run
from fp_hubspot_assets.defs.metadata import DRY_RUN_NOTE, DRY_RUN_TAG
from fp_hubspot_assets.panel import load_panel
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets.state.queries import SOURCE_DATA
from fp_hubspot_assets.state.schema import integration_log
from fp_hubspot_assets.state.store import StateStore
from fp_hubspot_assets.state.sync_cursor import SYNC_CURSOR, SourceState, read_source_state
from hubspot_sandbox.testing import SandboxHandle, running_sandbox

ENV_VARS = ("DAGSTER_HOME", "FP_SAP_URL", "FP_STATE_URL", "FP_PANEL_FILE", "FP_HUBSPOT_PORTAL_ID", "FP_TRACING_URL")


@dataclass
class Demo:
    dir: Path
    sandbox: SandboxHandle
    first_output: str

    def store(self) -> StateStore:
        return StateStore(f"sqlite:///{self.dir / 'state.db'}")


def _run(capsys: pytest.CaptureFixture[str] | None, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr().out if capsys is not None else ""
    return code, out


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """A demo folder as `make dev` prepares it, and a shell where nothing is set: the CLI must find it."""
    root = tmp_path_factory.mktemp("cli")
    demo_dir = root / ".demo"
    with pytest.MonkeyPatch.context() as mp, running_sandbox(root / "hubspot.db") as sandbox:
        for name in ENV_VARS:
            mp.delenv(name, raising=False)
        mp.setattr(cli_run, "DEMO_DIR", demo_dir)
        prepare_demo(demo_dir, 200, 7, sandbox.base_url)
        for name in ENV_VARS:  # prepare_demo exports them; a fresh shell has none
            mp.delenv(name, raising=False)
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert cli.main(["sync"]) == 0
        yield Demo(demo_dir, sandbox, buffer.getvalue())


@pytest.fixture
def fresh_shell(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> Demo:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cli_run, "DEMO_DIR", demo.dir)
    return demo


def test_fresh_shell_without_a_demo_gets_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cli_run, "DEMO_DIR", tmp_path / "no-demo")
    with pytest.raises(SystemExit) as exc:
        cli.main(["log"])
    message = str(exc.value)
    assert "\n" not in message and "DAGSTER_HOME" in message and "make demo" in message


def test_fresh_shell_sync_uses_the_demo_and_says_what_the_run_did(fresh_shell: Demo) -> None:
    line = fresh_shell.first_output.strip().splitlines()[-1]
    match = re.fullmatch(
        r"synced: created=(\d+) updated=(\d+) adopted=(\d+) archived=(\d+) failed=(\d+) skipped=(\d+) requests=(\d+)"
        r" \| in HubSpot: contacts=(\d+) companies=(\d+) products=(\d+) deals=(\d+) line_items=(\d+)",
        line,
    )
    assert match, line
    created, requests, totals = int(match[1]), int(match[7]), [int(n) for n in match.groups()[7:]]
    assert created == sum(totals), "a first run creates every record it knows"
    assert 0 < requests < created, "requests are batched: fewer requests than records"
    assert len(fresh_shell.sandbox.objects("contacts")) == totals[0]


def test_cli_run_records_the_last_successful_sync(fresh_shell: Demo) -> None:
    with fresh_shell.store() as store:
        cursor = SourceState.from_json(store.get_cursor(SYNC_CURSOR))
    assert cursor is not None, "a CLI run must record the marker, or the schedule re-runs it at start"
    with SapReader(f"sqlite:///{fresh_shell.dir / 'sap.db'}") as reader:
        now = read_source_state(reader, load_panel(fresh_shell.dir / "panel.yaml"))
    assert now.changes_since(cursor) == [], "nothing changed since the CLI run: the schedule must skip"


def test_second_run_logs_no_source_problem_again(fresh_shell: Demo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "sync")
    assert code == 0
    # nothing changed: the incremental run reads no bad row, so it skips none
    assert "created=0 updated=0 adopted=0 archived=0 failed=0 skipped=0" in out
    code, out = _run(capsys, "sync", "--full")
    assert code == 0
    assert "created=0 updated=0 adopted=0 archived=0 failed=0" in out
    skipped = int(re.search(r"skipped=(\d+)", out)[1])  # type: ignore[index]
    assert skipped > 0, "a full run still counts every current source problem"
    c = integration_log.c
    with fresh_shell.store() as store, store.engine.connect() as conn:
        per_key = conn.execute(
            sa.select(c.object_type, c.source_key, c.message, sa.func.count()).where(c.error_category == SOURCE_DATA)
            .group_by(c.object_type, c.source_key, c.message)
        ).all()
    assert per_key, "the demo data has source problems"
    assert max(n for *_k, n in per_key) == 1, "an unchanged problem is logged when it appears, not every run"


def test_log_filters_pages_and_exports(fresh_shell: Demo, capsys: pytest.CaptureFixture[str]) -> None:
    _code, out = _run(capsys, "log", "--action", "skipped", "--json", "--limit", "5")
    first = json.loads(out)
    assert first["total"] > 5 and len(first["rows"]) == 5
    assert {r["action"] for r in first["rows"]} == {"skipped"}
    _code, out = _run(capsys, "log", "--action", "skipped", "--json", "--limit", "5", "--page", "2")
    second = json.loads(out)
    assert second["offset"] == 5 and not {r["source_key"] for r in second["rows"]} & {r["source_key"] for r in first["rows"]}
    stamps = [r["logged_at"] for r in first["rows"] + second["rows"]]
    assert stamps == sorted(stamps, reverse=True), "newest first"

    key = first["rows"][0]["source_key"]
    _code, out = _run(capsys, "log", "--key", key, "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and {r["source_key"] for r in rows} == {key}

    with fresh_shell.store() as store:
        contact = store.id_map("contacts").row(0, named=True)
    _code, out = _run(capsys, "log", "--hubspot-id", contact["hubspot_id"], "--type", "contacts", "--json")
    assert {r["source_key"] for r in json.loads(out)["rows"]} == {contact["source_key"]}

    _code, out = _run(capsys, "log", "--reason", "source_data", "--text", first["rows"][0]["message"][:12])
    header, *lines = out.strip().splitlines()
    assert header.startswith("rows 1–") and lines
    assert all("[SOURCE_DATA]" in line for line in lines)
    _code, out = _run(capsys, "log", "--since", "2999-01-01")
    assert out.strip() == "no integration-log rows match"


def test_trace_tells_a_records_story(fresh_shell: Demo, capsys: pytest.CaptureFixture[str]) -> None:
    with fresh_shell.store() as store:
        deal = store.id_map("deals").row(0, named=True)
    code, out = _run(capsys, "trace", deal["source_key"], "--json")
    assert code == 0
    story = json.loads(out)
    hubspot = {m["object_type"]: m for m in story["hubspot"]}
    assert hubspot["deals"]["hubspot_id"] == deal["hubspot_id"]
    assert hubspot["deals"]["url"].endswith(f"/_sandbox/objects/deals?id={deal['hubspot_id']}")
    linked = fresh_shell.sandbox._http.get(hubspot["deals"]["url"].removeprefix(fresh_shell.sandbox.base_url)).json()
    assert [r["id"] for r in linked["results"]] == [deal["hubspot_id"]], "the link opens that very record"
    assert story["payloads"]["deals"]["record"]["dealname"]
    assert {s["entity"] for s in story["source"]} & {"orders", "carts"}
    assert any(a["object_type"] in ("contacts", "companies") for a in story["associations"])
    assert [r["action"] for r in story["log"]][-1] == "created"

    code, out = _run(capsys, "trace", deal["source_key"])
    assert code == 0 and deal["hubspot_id"] in out and "integration log (" in out


def test_trace_links_to_the_hubspot_app_with_a_portal_id(fresh_shell: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    from fp_hubspot_assets.panel import PanelSettings
    from fp_hubspot_assets.tracing import record_url

    settings = PanelSettings.model_validate({"integration": {"region": "eu1"}})
    assert record_url(settings, "contacts", "51") is None, "no portal id: no guessed link"
    monkeypatch.setenv("FP_HUBSPOT_PORTAL_ID", "1234567")
    assert record_url(settings, "contacts", "51") == "https://app-eu1.hubspot.com/contacts/1234567/record/0-1/51"


def test_dry_run_reports_and_is_tagged(fresh_shell: Demo, capsys: pytest.CaptureFixture[str]) -> None:
    simulate(f"sqlite:///{fresh_shell.dir / 'sap.db'}", seed=3)
    with fresh_shell.store() as store:
        before = store.id_map_all().height
    code, out = _run(capsys, "sync", "--dry-run")
    assert code == 0
    assert out.startswith("dry run — nothing written")
    deals = re.search(r"deals: would-create=(\d+), would-update=(\d+), would-archive=(\d+)", out)
    assert deals and int(deals[1]) > 0
    assert re.search(r"would-create C\d+: new: not in HubSpot yet", out)
    # the first updates name what differs from HubSpot, read back in one request: "property: 'theirs' → 'ours'"
    assert re.search(r"would-update \S+: \w+: '[^']*' → '[^']*'", out)
    assert out.strip().splitlines()[-1].startswith("dry run: created=0 updated=0")
    with fresh_shell.store() as store:
        assert store.id_map_all().height == before, "a dry run writes nothing"
    with DagsterInstance.from_config(str(fresh_shell.dir / "dagster_home")) as instance:
        run = instance.get_runs(limit=1)[0]
        assert run.tags.get(DRY_RUN_TAG) == "true"
        mat = instance.get_latest_materialization_event(AssetKey("hubspot_deals"))
        assert mat is not None and mat.asset_materialization.metadata["note"].value == DRY_RUN_NOTE
        assert mat.asset_materialization.metadata["tracing_page"].value == "http://127.0.0.1:3001/records/deals"


def test_sandbox_inspection_route_is_paged(fresh_shell: Demo) -> None:
    http, everything = fresh_shell.sandbox._http, fresh_shell.sandbox.objects("line_items")
    page = http.get("/_sandbox/objects/line_items", params={"limit": 100, "after": 100}).json()
    assert page["total"] == len(everything) > 200
    assert [r["id"] for r in page["results"]] == [r["id"] for r in everything[100:200]]
    assert page["paging"]["next"]["after"] == "200"
    first = http.get("/_sandbox/objects/line_items").json()
    assert len(first["results"]) == 100, "100 per page unless asked"
    assert http.get("/_sandbox/objects/line_items", params={"limit": "x"}).status_code == 400
    deals = http.get("/_sandbox/objects/deals", params={"limit": 50}).json()["results"]
    assert all(d["dealstageLabel"] and not d["dealstageLabel"].isdigit() for d in deals), "stages by name"


def test_without_dagster_home_the_cli_uses_the_checkouts_demo_folder() -> None:
    """From a fresh shell the CLI finds `.demo/` beside the Makefile (the tests above point it elsewhere)."""
    assert (cli_run.REPO_ROOT / "Makefile").is_file() and (cli_run.REPO_ROOT / "fp_hubspot_assets").is_dir()
